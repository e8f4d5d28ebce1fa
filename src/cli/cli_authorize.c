/* "mailgate user authorize NAME --device-code | --refresh-token-file FILE" and
 * "mailgate user deauthorize NAME": a user's delegated authorization at a provider with
 * flow = delegated. The device code flow (RFC 8628) runs here, on a private event loop with
 * the broker's HTTP code; the refresh token it yields is sealed into the store (grant_store.h)
 * and the access token into the token cache, so that the gateway's first login of the user
 * needs no request to the IdP. Tokens are never printed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "aadsts.h"
#include "cli.h"
#include "device_code.h"
#include "grant_store.h"
#include "log.h"
#include "secretbox.h"
#include "store.h"
#include "token.h"
#include "token_fingerprint.h"
#include "token_http.h"
#include "token_store.h"
#include "util.h"

#define REFRESH_TOKEN_MAX (16 * 1024)
#define SLOW_DOWN_STEP_S 5 /* RFC 8628 3.5 */
#define BACKOFF_MAX_S 60

struct authorize_args {
    const char *name;
    const char *refresh_file;
    bool device_code;
};

/* Everything a command needs: the user and its provider. */
struct auth_ctx {
    struct config *cfg;
    struct store *st;
    struct secretbox *box;
    struct user_record user;
    const struct provider_conf *p;
};

/* ---- context ---- */

static void close_ctx(struct auth_ctx *c)
{
    user_record_clear(&c->user);
    secretbox_free(&c->box);
    store_close(&c->st);
    config_free(&c->cfg);
}

/* Loads the configuration (with secrets when need_secrets), the store, the user and its
 * provider; with_box also opens the key file. Returns 0 or the exit code. */
static int open_ctx(const char *config_path, const char *name, bool with_box, struct auth_ctx *c)
{
    c->cfg = cli_load_config(config_path, with_box ? CONFIG_LOAD_SECRETS : CONFIG_SKIP_SECRETS);
    if (!c->cfg)
        return 1;
    c->st = cli_open_store(c->cfg);
    if (!c->st)
        return 1;
    char err[512] = "";
    if (with_box && !(c->box = secretbox_open(c->cfg->gateway.secret_key_file, err, sizeof err))) {
        fprintf(stderr, "mailgate: %s\n", err);
        return 1;
    }
    if (cli_find_user(c->cfg, c->st, name, &c->user) != 0)
        return 1;
    c->p = config_provider(c->cfg, c->user.provider);
    return 0;
}

static int require_delegated(const struct auth_ctx *c)
{
    if (!c->p) {
        fprintf(stderr, "mailgate: the provider '%s' of user %s is not configured\n",
                c->user.provider, c->user.name);
        return 1;
    }
    if (c->p->flow != MG_FLOW_DELEGATED) {
        fprintf(stderr,
                "mailgate: user %s belongs to provider %s, which does not use delegated "
                "authorizations: only users of a provider with 'flow = delegated' are "
                "authorized\n",
                c->user.name, c->p->name);
        return 1;
    }
    return 0;
}

static int store_failure(struct auth_ctx *c)
{
    fprintf(stderr, "mailgate: store error: %s\n", store_last_error(c->st));
    store_rollback(c->st);
    return 1;
}

/* ---- HTTP, one request at a time on a private loop ---- */

struct http_answer {
    struct event_base *base;
    bool done;
    bool transport_ok;
    long status;
    char *body; /* malloc'd copy; may hold tokens: wiped when freed */
    size_t len;
    char *retry_after;
    char error[256];
};

static void on_http(const struct token_http_result *res, void *arg)
{
    struct http_answer *a = arg;
    a->done = true;
    a->transport_ok = res->transport_ok;
    a->status = res->status;
    a->body = mg_strndup(res->body ? res->body : "", res->len);
    a->len = res->len;
    a->retry_after = res->retry_after ? mg_strdup(res->retry_after) : NULL;
    mg_strlcpy(a->error, res->error ? res->error : "", sizeof a->error);
    event_base_loopbreak(a->base);
}

static void http_answer_clear(struct http_answer *a)
{
    if (a->body)
        mg_wipe(a->body, a->len);
    free(a->body);
    free(a->retry_after);
    memset(a, 0, sizeof *a);
}

/* POSTs the form body and waits for the answer (token_timeout bounds the request). */
static void post_and_wait(struct event_base *base, const struct provider_conf *p, const char *url,
                          const char *body, uint64_t timeout_ms, struct http_answer *a)
{
    memset(a, 0, sizeof *a);
    a->base = base;
    struct token_http *th = token_http_new(base, timeout_ms);
    if (th && token_http_post(th, url, p->ca_file, body, on_http, a, a->error, sizeof a->error))
        event_base_dispatch(base);
    else if (!th)
        mg_strlcpy(a->error, "cannot set up the HTTP client", sizeof a->error);
    token_http_free(&th);
}

/* ---- device code flow ---- */

static void show_instructions(const struct device_authorization *d)
{
    if (d->message[0])
        printf("%s\n", d->message);
    else
        printf("Open %s and enter the code %s\n", d->verification_uri, d->user_code);
    printf("Waiting for the authorization (the code expires in %lld s)...\n",
           (long long)d->expires_in);
    fflush(stdout);
}

static int request_device_code(struct auth_ctx *c, struct event_base *base,
                               struct device_authorization *d)
{
    if (!c->p->device_authorization_endpoint) {
        fprintf(stderr,
                "mailgate: provider %s has no device_authorization_endpoint: set it, or import a "
                "refresh token with --refresh-token-file\n",
                c->p->name);
        return 1;
    }
    char *body = device_code_request_body(c->p);
    struct http_answer a;
    post_and_wait(base, c->p, c->p->device_authorization_endpoint, body,
                  c->cfg->gateway.token_timeout_ms, &a);
    mg_free_secret(&body);
    int rc = 0;
    if (!a.transport_ok) {
        fprintf(stderr, "mailgate: no answer from %s: %s\n", c->p->device_authorization_endpoint,
                a.error);
        rc = 1;
    } else if (device_code_parse(a.status, a.body, a.len, d) != 0) {
        fprintf(stderr, "mailgate: no device code from provider %s: %s\n", c->p->name, d->reason);
        const char *hint = aadsts_hint_for_text(d->reason);
        if (hint && !strstr(d->reason, hint))
            fprintf(stderr, "mailgate: fix: %s\n", hint);
        rc = 1;
    }
    http_answer_clear(&a);
    return rc;
}

enum poll_outcome { POLL_AGAIN, POLL_SLOW_DOWN, POLL_RETRY, POLL_DONE, POLL_FAILED };

/* Interprets one poll answer; on POLL_DONE tr holds the tokens. */
static enum poll_outcome poll_outcome(const struct auth_ctx *c, const struct http_answer *a,
                                      struct token_response *tr)
{
    memset(tr, 0, sizeof *tr);
    if (!a->transport_ok) {
        fprintf(stderr, "mailgate: no answer from the token endpoint (%s); still trying\n",
                a->error);
        return POLL_RETRY;
    }
    token_parse_response(a->status, a->body, a->len, a->retry_after, tr);
    if (tr->status == TOKEN_OK)
        return POLL_DONE;
    if (strcmp(tr->error, "authorization_pending") == 0)
        return POLL_AGAIN;
    if (strcmp(tr->error, "slow_down") == 0)
        return POLL_SLOW_DOWN;
    if (strcmp(tr->error, "authorization_declined") == 0 ||
        strcmp(tr->error, "access_denied") == 0) {
        fprintf(stderr, "mailgate: the authorization was declined at provider %s (%s)\n",
                c->p->name, tr->reason);
        return POLL_FAILED;
    }
    if (strcmp(tr->error, "expired_token") == 0) {
        fprintf(stderr,
                "mailgate: the code expired before the authorization was completed: run the "
                "command again\n");
        return POLL_FAILED;
    }
    if (tr->status == TOKEN_TEMPFAIL) {
        fprintf(stderr, "mailgate: the token endpoint failed (%s); still trying\n", tr->reason);
        return POLL_RETRY;
    }
    fprintf(stderr, "mailgate: provider %s refused the authorization: %s\n", c->p->name,
            tr->reason);
    const char *hint = aadsts_hint_for_text(tr->reason);
    if (hint && !strstr(tr->reason, hint))
        fprintf(stderr, "mailgate: fix: %s\n", hint);
    return POLL_FAILED;
}

/* Polls politely until the user acts or the code expires (RFC 8628 3.4, 3.5): `interval`
 * seconds between polls, 5 more after each slow_down, doubling (up to a minute) while the
 * endpoint fails. Returns 0 with tr holding the tokens, or 1. */
static int poll_for_tokens(struct auth_ctx *c, struct event_base *base,
                           const struct device_authorization *d, struct token_response *tr)
{
    int64_t deadline = (int64_t)time(NULL) + d->expires_in;
    int64_t interval = d->interval, wait = d->interval;
    char *body = device_code_poll_body(c->p, d->device_code);
    int rc = 1;
    for (;;) {
        if ((int64_t)time(NULL) + wait > deadline) {
            fprintf(stderr,
                    "mailgate: the code expired before the authorization was completed: run "
                    "the command again\n");
            break;
        }
        sleep((unsigned)wait);
        struct http_answer a;
        post_and_wait(base, c->p, c->p->token_endpoint, body, c->cfg->gateway.token_timeout_ms, &a);
        enum poll_outcome o = poll_outcome(c, &a, tr);
        http_answer_clear(&a);
        if (o == POLL_DONE) {
            rc = 0;
            break;
        }
        token_response_clear(tr);
        if (o == POLL_FAILED)
            break;
        if (o == POLL_SLOW_DOWN)
            interval += SLOW_DOWN_STEP_S;
        wait = o == POLL_RETRY ? (wait * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : wait * 2) : interval;
    }
    mg_free_secret(&body);
    return rc;
}

/* Stores the refresh token (and the access token when there is one) and the audit event in
 * one transaction. Returns the exit code. */
static int save_authorization(struct auth_ctx *c, const char *refresh, size_t refresh_len,
                              const struct token_response *tr, const char *how)
{
    struct new_authorization a = {.p = c->p,
                                  .user = c->user.name,
                                  .refresh = refresh,
                                  .refresh_len = refresh_len,
                                  .access = tr ? tr->access_token : NULL,
                                  .access_len = tr ? tr->token_len : 0,
                                  .expires_in = tr ? tr->expires_in : 0,
                                  .how = how};
    if (token_store_save_authorization(c->st, c->box, &a) != STORE_OK) {
        fprintf(stderr, "mailgate: store error: %s\n", store_last_error(c->st));
        return 1;
    }
    printf("user %s authorized at provider %s\n", c->user.name, c->p->name);
    return 0;
}

static int authorize_device_code(struct auth_ctx *c)
{
    log_init("cli", MG_LOG_ERROR); /* outcomes are reported on stderr, not as log lines */
    struct event_base *base = event_base_new();
    if (!base) {
        fputs("mailgate: cannot set up an event loop\n", stderr);
        return 1;
    }
    struct device_authorization d;
    int rc = request_device_code(c, base, &d);
    struct token_response tr = {0};
    if (rc == 0) {
        show_instructions(&d);
        rc = poll_for_tokens(c, base, &d, &tr);
    }
    if (rc == 0 && !tr.refresh_token) {
        fprintf(stderr,
                "mailgate: provider %s answered without a refresh token, so the gateway could not "
                "renew the access: add offline_access to the provider's scope\n",
                c->p->name);
        rc = 1;
    }
    if (rc == 0)
        rc = save_authorization(c, tr.refresh_token, tr.refresh_len, &tr, "device code");
    token_response_clear(&tr);
    device_authorization_clear(&d);
    event_base_free(base);
    return rc;
}

/* A refresh token obtained elsewhere: visible ASCII, one line, FILE or "-" for stdin. */
static int authorize_from_file(struct auth_ctx *c, const char *file)
{
    const char *path = strcmp(file, "-") == 0 ? "/dev/stdin" : file;
    size_t len = 0;
    char *refresh = mg_read_file(path, REFRESH_TOKEN_MAX, 1, &len);
    if (!refresh) {
        fprintf(stderr, "mailgate: cannot read a refresh token from %s: %s\n", file,
                errno == EFBIG ? "longer than 16 KiB" : strerror(errno));
        return 1;
    }
    bool printable = len > 0;
    for (size_t i = 0; i < len && printable; i++)
        printable = (unsigned char)refresh[i] > 0x20 && (unsigned char)refresh[i] < 0x7f;
    int rc;
    if (!printable) {
        fprintf(stderr,
                "mailgate: %s does not hold a refresh token (one line of visible ASCII "
                "expected)\n",
                file);
        rc = 1;
    } else {
        rc = save_authorization(c, refresh, len, NULL, "imported refresh token");
        if (rc == 0)
            printf("the gateway redeems it at the user's next login\n");
    }
    mg_wipe(refresh, len);
    free(refresh);
    return rc;
}

/* ---- commands ---- */

/* argv[0] is "authorize". */
static int parse_authorize(int argc, char **argv, struct authorize_args *a)
{
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v = cli_option_value(argc, argv, &i, "--refresh-token-file", &missing);
        if (v)
            a->refresh_file = v;
        else if (missing)
            return cli_usage_error("%s needs a file name (or - for standard input)", argv[i]);
        else if (strcmp(argv[i], "--device-code") == 0)
            a->device_code = true;
        else if (cli_take_name(argv[i], &a->name) != 0)
            return 2;
    }
    if (!a->name)
        return cli_usage_error("user authorize needs a user NAME");
    if (a->device_code == (a->refresh_file != NULL))
        return cli_usage_error("user authorize needs exactly one of --device-code and "
                               "--refresh-token-file FILE");
    return 0;
}

int cli_user_authorize(const char *config_path, int argc, char **argv)
{
    struct authorize_args a = {0};
    int rc = parse_authorize(argc, argv, &a);
    if (rc)
        return rc;
    struct auth_ctx c = {0};
    rc = open_ctx(config_path, a.name, true, &c);
    if (!rc)
        rc = require_delegated(&c);
    if (!rc)
        rc = a.device_code ? authorize_device_code(&c) : authorize_from_file(&c, a.refresh_file);
    close_ctx(&c);
    return rc;
}

/* Deletes the user's grants and cached tokens; *found says whether there were any. */
static int forget_user(struct auth_ctx *c, bool *found)
{
    if (store_begin(c->st) != STORE_OK)
        return store_failure(c);
    enum store_status s = grant_store_forget(c->st, c->user.name);
    *found = s == STORE_OK;
    if (s == STORE_ERROR ||
        (*found && store_audit_add(c->st, "deauthorized", c->user.name, c->user.provider, NULL) !=
                       STORE_OK) ||
        store_commit(c->st) != STORE_OK)
        return store_failure(c);
    return 0;
}

int cli_user_deauthorize(const char *config_path, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cli_usage_error("usage: mailgate user deauthorize NAME");
    struct auth_ctx c = {0};
    bool found = false;
    int rc = open_ctx(config_path, argv[1], false, &c);
    if (!rc)
        rc = forget_user(&c, &found);
    if (!rc && found)
        printf("user %s deauthorized: its refresh token and cached tokens are deleted\n",
               c.user.name);
    else if (!rc)
        printf("user %s had no authorization or cached token stored: nothing to delete\n",
               c.user.name);
    close_ctx(&c);
    return rc;
}
