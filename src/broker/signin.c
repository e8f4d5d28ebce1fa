/* The sign-in page, broker side (signin.h). Who may start: an existing user whose provider has
 * flow = delegated and an authorize endpoint; anyone else (unknown name, another flow) gets one
 * and the same page, so the page tells a stranger no more than that the name has no sign-in. */
#include "signin.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "account.h"
#include "auth_code.h"
#include "config.h"
#include "jwt_claims.h"
#include "log.h"
#include "login_name.h"
#include "password.h"
#include "secretbox.h"
#include "signin_state.h"
#include "store.h"
#include "token.h"
#include "token_http.h"
#include "token_store.h"
#include "token_subject.h"
#include "util.h"

#define NO_SIGNIN                                                                                  \
    "There is no sign-in for this name here. Check the link you were given, or ask your "          \
    "administrator."
#define START_AGAIN                                                                                \
    "This sign-in link has expired or was already used. Start the sign-in again from the "         \
    "beginning."
#define OTHER_BROWSER                                                                              \
    "This sign-in was started in another browser, or this browser did not keep its cookie. "       \
    "Start the sign-in again from the beginning, in this browser."
#define TRY_LATER "The sign-in could not be finished right now. Try again in a few minutes."

struct exchange {
    struct exchange *prev, *next;
    struct signin *s;
    void *conn; /* NULL: the worker went away; the answer is dropped */
    uint32_t id;
    char client[IPC_ADDR_MAX]; /* of the callback, for the log */
    struct signin_record rec;
    struct token_http_req *req;
};

struct signin {
    struct event_base *base;
    const struct config *cfg;
    struct store *st;
    struct secretbox *box;
    struct token_client *tc;
    struct token_http *http;
    struct signin_states *states;
    struct exchange *exchanges;
    signin_reply_fn reply;
};

/* ---- answers ---- */

static void answer(struct signin *s, void *conn, uint32_t id, enum signin_status status,
                   const char *text)
{
    struct ipc_signin_answer a = {.id = id, .status = status};
    mg_strlcpy(a.text, text, sizeof a.text);
    if (conn)
        s->reply(conn, &a);
}

static void log_outcome(const char *step, const char *user, const char *client, const char *what)
{
    char q[IPC_USER_MAX * 2 + 8];
    log_info("signin %s user=%s client=%s result=%s", step,
             log_quote(q, sizeof q, user, strlen(user)), client, what);
}

/* ---- GET /oauth/start ---- */

/* The user's provider when it offers the sign-in page, else NULL. */
static const struct provider_conf *signin_provider(const struct signin *s,
                                                   const struct user_record *u)
{
    const struct provider_conf *p = config_provider(s->cfg, u->provider);
    if (!p || p->flow != MG_FLOW_DELEGATED || !p->authorization_endpoint)
        return NULL;
    return p;
}

/* Answers the authorize URL for the record just made. 0, or -1 when it does not fit. */
static int redirect(struct signin *s, void *conn, uint32_t id, const struct provider_conf *p,
                    const struct signin_record *r)
{
    char challenge[AUTH_CODE_NONCE_LEN + 1];
    auth_code_challenge(r->verifier, challenge);
    char *redirect_uri = auth_code_redirect_uri(s->cfg->gateway.public_url);
    char *url = auth_code_authorize_url(p, redirect_uri, r->state, challenge, r->mailbox);
    free(redirect_uri);
    struct ipc_signin_answer a = {.id = id, .status = SIGNIN_REDIRECT};
    int rc = url && strlen(url) < sizeof a.location ? 0 : -1;
    if (rc == 0) {
        mg_strlcpy(a.location, url, sizeof a.location);
        mg_strlcpy(a.browser, r->browser, sizeof a.browser);
        mg_strlcpy(a.mailbox, r->mailbox, sizeof a.mailbox);
        s->reply(conn, &a);
        mg_wipe(&a, sizeof a);
    }
    free(url);
    return rc;
}

void signin_start(struct signin *s, void *conn, const struct ipc_signin_start *m)
{
    const char *domain = s->cfg->gateway.default_domain;
    struct login_name name;
    struct user_record u = {0};
    enum store_status found = STORE_NOT_FOUND;
    if (login_name_parse(m->user, domain, &name) == 0 && !name.alias[0])
        found = account_find(s->st, name.user, domain, &u);
    const struct provider_conf *p = found == STORE_OK ? signin_provider(s, &u) : NULL;
    if (found == STORE_ERROR) {
        log_error("signin: user store: %s", store_last_error(s->st));
        answer(s, conn, m->id, SIGNIN_FAILED, TRY_LATER);
    } else if (!p || !s->cfg->gateway.public_url) {
        log_outcome("start", m->user, m->client_addr,
                    found == STORE_OK ? "refused reason=\"no delegated provider\""
                                      : "refused reason=\"unknown user\"");
        answer(s, conn, m->id, SIGNIN_REFUSED, NO_SIGNIN);
    } else {
        struct signin_for f = {u.name, p->name, u.mailbox, m->client_addr};
        const struct signin_record *r = signin_states_add(s->states, &f, mg_now_ms());
        if (!r || redirect(s, conn, m->id, p, r) != 0) {
            log_outcome("start", u.name, m->client_addr, "busy");
            answer(s, conn, m->id, SIGNIN_FAILED, TRY_LATER);
        } else {
            log_outcome("start", u.name, m->client_addr, "redirected");
        }
    }
    user_record_clear(&u);
}

/* ---- the exchange's end ---- */

static void exchange_free(struct exchange *x)
{
    struct signin *s = x->s;
    if (x->prev)
        x->prev->next = x->next;
    else
        s->exchanges = x->next;
    if (x->next)
        x->next->prev = x->prev;
    mg_wipe(x, sizeof *x);
    free(x);
}

/* The account the token is for, when the access token says (Microsoft: upn or
 * preferred_username); NULL for opaque tokens. A malloc'd copy. */
static char *token_account(const struct token_response *tr)
{
    json_t *claims = jwt_claims_decode(tr->access_token, tr->token_len);
    const char *name = json_string_value(json_object_get(claims, "upn"));
    if (!name)
        name = json_string_value(json_object_get(claims, "preferred_username"));
    char *copy = name ? mg_strdup(name) : NULL;
    json_decref(claims);
    return copy;
}

/* A generated password for a user who has none yet; "" otherwise, or when it cannot be stored
 * (logged; the page then shows none, and the administrator sets one with user passwd). */
static void first_password(struct signin *s, const char *user, char *out, size_t size)
{
    out[0] = '\0';
    struct user_record u;
    if (store_user_get(s->st, user, &u) != STORE_OK)
        return;
    int has_one = u.password_hash && u.password_hash[0];
    user_record_clear(&u);
    if (has_one)
        return;
    /* Argon2id on the loop (about 0.1 s): once per user, at its first sign-in. */
    char hash[PASSWORD_HASH_MAX];
    password_generate(out, size);
    if (password_hash(out, strlen(out), hash, sizeof hash) != 0 ||
        store_user_set_password(s->st, user, hash) != STORE_OK) {
        log_error("signin: cannot store a password for the user: %s", store_last_error(s->st));
        mg_wipe(out, size);
        out[0] = '\0';
    }
    mg_wipe(hash, sizeof hash);
}

/* The tokens are good: stored, handed to the token client, the page answered. */
static void connect_mailbox(struct exchange *x, const struct provider_conf *p,
                            const struct token_response *tr)
{
    struct signin *s = x->s;
    const struct signin_record *r = &x->rec;
    struct new_authorization a = {.p = p,
                                  .user = r->user,
                                  .refresh = tr->refresh_token,
                                  .refresh_len = tr->refresh_len,
                                  .access = tr->access_token,
                                  .access_len = tr->token_len,
                                  .expires_in = tr->expires_in,
                                  .how = "sign-in page"};
    char err[256];
    if (s->box && secretbox_follow_key_file(s->box, err, sizeof err) < 0)
        log_warn("signin: %s", err); /* the key in use stays: rows sealed with it open */
    if (!s->box || token_store_save_authorization(s->st, s->box, &a) != STORE_OK) {
        log_error("signin: cannot store the authorization: %s", store_last_error(s->st));
        log_outcome("callback", r->user, x->client, "failed reason=\"store error\"");
        answer(s, x->conn, x->id, SIGNIN_FAILED, TRY_LATER);
        return;
    }
    struct token_subject subj;
    char *principal = token_subject_for(p, r->user, r->mailbox, NULL, 0, &subj);
    subj.principal = principal;
    token_client_seed(s->tc, p, &subj, tr->access_token, tr->token_len, tr->expires_in);
    free(principal);
    struct ipc_signin_answer ans = {.id = x->id, .status = SIGNIN_CONNECTED};
    first_password(s, r->user, ans.password, sizeof ans.password);
    mg_strlcpy(ans.mailbox, r->mailbox, sizeof ans.mailbox);
    mg_strlcpy(ans.user, r->user, sizeof ans.user);
    log_outcome("callback", r->user, x->client,
                ans.password[0] ? "connected password=generated" : "connected");
    if (x->conn)
        s->reply(x->conn, &ans);
    mg_wipe(&ans, sizeof ans);
}

/* Judges the token endpoint's answer: the refresh token must be there, and the account signed
 * in must be the user's mailbox (login_hint only suggests it). */
static void judge_tokens(struct exchange *x, const struct provider_conf *p,
                         const struct token_response *tr)
{
    struct signin *s = x->s;
    char text[IPC_SIGNIN_TEXT_MAX];
    char *account = token_account(tr);
    if (account && mg_ascii_casecmp(account, x->rec.mailbox) != 0) {
        snprintf(text, sizeof text,
                 "You signed in as another account than the mailbox %s of this link. Start "
                 "again and sign in as %s.",
                 x->rec.mailbox, x->rec.mailbox);
        log_outcome("callback", x->rec.user, x->client, "refused reason=\"another account\"");
        answer(s, x->conn, x->id, SIGNIN_REFUSED, text);
    } else if (!tr->refresh_token) {
        log_outcome("callback", x->rec.user, x->client, "refused reason=\"no refresh token\"");
        answer(s, x->conn, x->id, SIGNIN_REFUSED,
               "The provider gave no lasting access (no refresh token: offline_access is "
               "missing from the provider's scope). Tell your administrator.");
    } else {
        connect_mailbox(x, p, tr);
    }
    free(account);
}

static void on_exchanged(const struct token_http_result *res, void *arg)
{
    struct exchange *x = arg;
    struct signin *s = x->s;
    x->req = NULL;
    const struct provider_conf *p = config_provider(s->cfg, x->rec.provider);
    struct token_response tr = {0};
    if (res->transport_ok)
        token_parse_response(res->status, res->body, res->len, res->retry_after, &tr);
    if (!res->transport_ok || !p || tr.status == TOKEN_TEMPFAIL) {
        log_outcome("callback", x->rec.user, x->client,
                    "failed reason=\"token endpoint unavailable\"");
        answer(s, x->conn, x->id, SIGNIN_FAILED, TRY_LATER);
    } else if (tr.status != TOKEN_OK) {
        char text[IPC_SIGNIN_TEXT_MAX], why[64];
        auth_code_error_words(tr.error, tr.reason, text, sizeof text);
        snprintf(why, sizeof why, "refused reason=\"code refused: %.32s\"", tr.error);
        log_outcome("callback", x->rec.user, x->client, why);
        answer(s, x->conn, x->id, SIGNIN_REFUSED, text);
    } else {
        judge_tokens(x, p, &tr);
    }
    token_response_clear(&tr);
    exchange_free(x);
}

/* ---- GET /oauth/callback ---- */

/* Redeems the code with the record's verifier. */
static void exchange_code(struct signin *s, void *conn, const struct ipc_signin_finish *m,
                          const struct signin_record *r)
{
    const struct provider_conf *p = config_provider(s->cfg, r->provider);
    char err[256] = "";
    char *redirect_uri = auth_code_redirect_uri(s->cfg->gateway.public_url);
    char *body =
        p ? token_auth_code_body(p, m->code, redirect_uri, r->verifier, err, sizeof err) : NULL;
    free(redirect_uri);
    struct exchange *x = mg_calloc(1, sizeof *x);
    *x = (struct exchange){.s = s, .conn = conn, .id = m->id, .rec = *r, .next = s->exchanges};
    mg_strlcpy(x->client, m->client_addr, sizeof x->client);
    if (body)
        x->req = token_http_post(s->http, p->token_endpoint, p->ca_file, body, on_exchanged, x, err,
                                 sizeof err);
    mg_free_secret(&body);
    if (!x->req) {
        log_error("signin: cannot redeem the code at provider %s: %s", r->provider,
                  p ? err : "the provider is gone from the configuration");
        answer(s, conn, m->id, SIGNIN_FAILED, TRY_LATER);
        mg_wipe(x, sizeof *x);
        free(x);
        return;
    }
    if (s->exchanges)
        s->exchanges->prev = x;
    s->exchanges = x;
}

static const char *take_refusal(enum signin_take t)
{
    return t == SIGNIN_OTHER_BROWSER ? OTHER_BROWSER : START_AGAIN;
}

void signin_finish(struct signin *s, void *conn, const struct ipc_signin_finish *m)
{
    static const char *const take_words[] = {"taken", "unknown state", "expired state",
                                             "other browser"};
    struct signin_record r;
    enum signin_take t = signin_states_take(s->states, m->state, m->browser, mg_now_ms(), &r);
    if (t != SIGNIN_TAKEN) {
        char why[64];
        snprintf(why, sizeof why, "refused reason=\"%s\"", take_words[t]);
        log_outcome("callback", "", m->client_addr, why);
        answer(s, conn, m->id, SIGNIN_REFUSED, take_refusal(t));
    } else if (m->error[0] || !m->code[0]) {
        char text[IPC_SIGNIN_TEXT_MAX], why[64];
        auth_code_error_words(m->error[0] ? m->error : "no code", m->error_description, text,
                              sizeof text);
        snprintf(why, sizeof why, "refused reason=\"provider: %.32s\"",
                 m->error[0] ? m->error : "no code");
        log_outcome("callback", r.user, m->client_addr, why);
        answer(s, conn, m->id, SIGNIN_REFUSED, text);
    } else {
        exchange_code(s, conn, m, &r);
    }
    mg_wipe(&r, sizeof r);
}

void signin_conn_gone(struct signin *s, void *conn)
{
    for (struct exchange *x = s->exchanges; x; x = x->next)
        if (x->conn == conn)
            x->conn = NULL;
}

/* ---- life cycle ---- */

struct signin *signin_new(struct event_base *base, const struct config *cfg, struct store *st,
                          struct token_client *tc, signin_reply_fn reply)
{
    struct signin *s = mg_calloc(1, sizeof *s);
    *s = (struct signin){.base = base, .cfg = cfg, .st = st, .tc = tc, .reply = reply};
    s->http = token_http_new(base, cfg->gateway.token_timeout_ms);
    uint64_t ttl_ms = SIGNIN_STATE_TTL_MS;
#ifdef MG_TEST_HOOKS
    /* Test builds: the expiry test does not wait ten minutes. */
    const char *test_ttl = getenv("MAILGATE_TEST_SIGNIN_TTL_MS");
    if (test_ttl)
        ttl_ms = strtoull(test_ttl, NULL, 10);
#endif
    s->states = signin_states_new(SIGNIN_STATES_MAX, SIGNIN_STATES_PER_ADDRESS, ttl_ms);
    if (!s->http)
        signin_free(&s);
    return s;
}

void signin_set_config(struct signin *s, const struct config *cfg)
{
    s->cfg = cfg;
}

void signin_set_secretbox(struct signin *s, struct secretbox *box)
{
    s->box = box;
}

void signin_free(struct signin **sp)
{
    struct signin *s = *sp;
    if (!s)
        return;
    token_http_free(&s->http); /* aborts the exchanges without calling back */
    while (s->exchanges)
        exchange_free(s->exchanges);
    signin_states_free(&s->states);
    free(s);
    *sp = NULL;
}
