/* "mailgate token test NAME [--protocol imap|pop3|smtp] [--password-stdin]": gets the user's
 * token exactly as the gateway would, then logs in upstream with it over IMAP, POP3 and SMTP
 * (probe.h) and reports per protocol whether it works, and if not what the server said and
 * what to fix (probe_advice.h). Never prints the token. Exit 0 when every tested protocol
 * works. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "cli_token.h"
#include "jwt_claims.h"
#include "probe.h"
#include "probe_advice.h"
#include "sasl.h"
#include "util.h"

#define PROBE_TIMEOUT_MIN_S 5

struct test_args {
    struct cli_token_opts opts;
    int only; /* an enum mg_proto, or -1 for all three */
};

/* argv[0] is "test". */
static int parse_args(int argc, char **argv, struct test_args *a)
{
    a->only = -1;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = cli_option_value(argc, argv, &i, "--protocol", &missing))) {
            enum mg_proto p;
            if (mg_proto_parse(v, &p) != 0 || p == MG_PROTO_HTTP)
                return cli_usage_error("--protocol is imap, pop3 or smtp, not '%s'", v);
            a->only = (int)p;
        } else if (missing) {
            return cli_usage_error("%s needs a value", argv[i]);
        } else if (strcmp(argv[i], "--password-stdin") == 0) {
            a->opts.password_stdin = true;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("unknown option %s", argv[i]);
        } else if (a->opts.user) {
            return cli_usage_error("unexpected argument '%s'", argv[i]);
        } else {
            a->opts.user = argv[i];
        }
    }
    if (!a->opts.user)
        return cli_usage_error("token test needs a user NAME");
    return 0;
}

/* ---- the token ---- */

static void print_expiry(int64_t exp)
{
    char when[96];
    jwt_format_expiry(exp, time(NULL), when, sizeof when);
    printf("; expires %s", when);
}

/* "token  ok: roles ...; expires ...; from the cache" */
static void report_token(const struct cli_token *t, const json_t *claims)
{
    printf("token  ok: ");
    int64_t exp = t->expires_at;
    if (claims) {
        const char *kind = NULL;
        char *perms = jwt_claims_permissions(claims, &kind);
        printf("%s %s", kind && strcmp(kind, "roles") == 0 ? "roles" : "scopes",
               perms && perms[0] ? perms : "(none)");
        free(perms);
        jwt_claims_time(claims, "exp", &exp);
    } else {
        printf("%zu bytes (opaque)", t->len);
    }
    if (exp > 0)
        print_expiry(exp);
    printf("; %s\n", t->cached ? "from the cache" : "from the token endpoint");
}

/* ---- one protocol ---- */

/* The SASL initial response for the provider's mechanism (malloc'd; the caller wipes it), or
 * NULL when the mailbox or token cannot be put into one. */
static char *sasl_response(const struct cli_token_ctx *c, const struct server_addr *srv,
                           const struct cli_token *t)
{
    const char *mailbox = c->user.mailbox;
    bool bearer = c->p->sasl == MG_SASL_OAUTHBEARER;
    size_t size = bearer ? sasl_oauthbearer_size(mailbox, srv->host, t->len)
                         : sasl_xoauth2_size(mailbox, t->len);
    char *out = mg_malloc(size);
    long n =
        bearer ? sasl_oauthbearer_encode(mailbox, srv->host, srv->port, t->token, t->len, out, size)
               : sasl_xoauth2_encode(mailbox, t->token, t->len, out, size);
    if (n < 0) {
        mg_wipe(out, size);
        free(out);
        return NULL;
    }
    return out;
}

static void print_outcome(const struct cli_token_ctx *c, enum mg_proto proto, const json_t *claims,
                          const struct probe_report *r)
{
    if (r->outcome == PROBE_WORKS) {
        puts("works");
        return;
    }
    if (r->outcome == PROBE_REFUSED)
        printf("refused: %s", r->reply);
    else
        printf("unavailable (%s): %s", r->stage, r->reply);
    if (r->challenge[0])
        printf(" (error challenge: %s)", r->challenge);
    char fix[1024];
    struct probe_facts f = {.proto = proto,
                            .outcome = r->outcome,
                            .claims = claims,
                            .mailbox = c->user.mailbox,
                            .user = c->user.name,
                            .reply = r->reply};
    probe_advice(&f, fix, sizeof fix);
    /* The server's reply may end with its own full stop: no "failed.. Fix:". */
    size_t n = strlen(r->reply);
    bool stop = !r->challenge[0] && n > 0 && r->reply[n - 1] == '.';
    if (fix[0])
        printf("%s Fix: %s", stop ? "" : ".", fix);
    putchar('\n');
}

/* Logs in over one protocol and prints its line; true when it works. */
static bool test_protocol(const struct cli_token_ctx *c, const struct cli_token *t,
                          const json_t *claims, enum mg_proto proto)
{
    const struct server_addr *srv = provider_server(c->p, proto);
    if (!srv) {
        printf("%-5s  not configured for provider %s\n", mg_proto_name(proto), c->p->name);
        return false;
    }
    char where[300];
    snprintf(where, sizeof where, "%s:%u", srv->host, (unsigned)srv->port);
    printf("%-5s  %-28s ", mg_proto_name(proto), where);
    fflush(stdout);
    char *response = sasl_response(c, srv, t);
    if (!response) {
        puts("unavailable (auth): the mailbox or the token cannot be put into a SASL response");
        return false;
    }
    int timeout_s = (int)((c->cfg->gateway.token_timeout_ms + 999) / 1000);
    struct probe_login login = {.proto = proto,
                                .server = srv,
                                .ca_file = c->p->ca_file,
                                .mechanism = mg_sasl_name(c->p->sasl),
                                .response = response,
                                .challenge_reply = c->p->sasl == MG_SASL_OAUTHBEARER ? "AQ==" : "",
                                .timeout_s = timeout_s < PROBE_TIMEOUT_MIN_S ? PROBE_TIMEOUT_MIN_S
                                                                             : timeout_s};
    struct probe_report report;
    probe_run(&login, &report);
    mg_wipe(response, strlen(response));
    free(response);
    print_outcome(c, proto, claims, &report);
    return report.outcome == PROBE_WORKS;
}

/* ---- the command ---- */

static int run_tests(const struct cli_token_ctx *c, const struct cli_token *t, int only)
{
    json_t *claims = jwt_claims_decode(t->token, t->len);
    report_token(t, claims);
    bool all_work = true;
    for (enum mg_proto proto = MG_PROTO_IMAP; proto <= MG_PROTO_SMTP; proto++) {
        if (only >= 0 && (int)proto != only)
            continue;
        bool works = test_protocol(c, t, claims, proto);
        /* A protocol the provider has no server for fails the test only when asked for. */
        if (!works && (provider_server(c->p, proto) || only >= 0))
            all_work = false;
    }
    json_decref(claims);
    return all_work ? 0 : 1;
}

int cli_token_test(const char *config_path, int argc, char **argv)
{
    struct test_args a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a);
    if (rc != 0)
        return rc;
    struct cli_token_ctx c;
    rc = cli_token_open(config_path, &a.opts, &c);
    if (rc != 0) {
        cli_token_close(&c);
        return rc;
    }
    printf("user %s: mailbox %s at provider %s (flow %s, %s)\n", c.user.name, c.user.mailbox,
           c.p->name, mg_flow_name(c.p->flow), mg_sasl_name(c.p->sasl));
    struct cli_token t;
    cli_token_fetch(&c, &t, false);
    if (t.status == TOKEN_OK && t.token) {
        rc = run_tests(&c, &t, a.only);
    } else {
        cli_token_explain_failure(&c, &t, stdout, "token  ");
        rc = 1;
    }
    cli_token_clear(&t);
    cli_token_close(&c);
    return rc;
}
