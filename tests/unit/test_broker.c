/* Unit tests of broker.c: the real IPC framing, store, passwords, auth cache, verify pool and
 * config (written to a temporary directory); only the token client is faked here, at link time
 * (token.c is not linked). The test plays the worker on the other end of a socketpair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "broker.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "password.h"
#include "signin.h"
#include "store.h"
#include "token.h"
#include "util.h"

/* ---- the sign-in page: not linked (signin.c has tests of its own); the broker's glue only ---- */

struct signin {
    int unused;
};

struct signin *signin_new(struct event_base *base, const struct config *cfg, struct store *st,
                          struct token_client *tc, signin_reply_fn reply)
{
    (void)base, (void)cfg, (void)st, (void)tc, (void)reply;
    return mg_calloc(1, sizeof(struct signin));
}

void signin_free(struct signin **s)
{
    free(*s);
    *s = NULL;
}

void signin_set_config(struct signin *s, const struct config *cfg)
{
    (void)s, (void)cfg;
}

void signin_set_secretbox(struct signin *s, struct secretbox *box)
{
    (void)s, (void)box;
}

void signin_start(struct signin *s, void *conn, const struct ipc_signin_start *m)
{
    (void)s, (void)conn, (void)m;
}

void signin_finish(struct signin *s, void *conn, const struct ipc_signin_finish *m)
{
    (void)s, (void)conn, (void)m;
}

void signin_conn_gone(struct signin *s, void *conn)
{
    (void)s, (void)conn;
}

/* ---- fake token client ---- */

enum token_mode {
    TOK_SYNC,  /* answers at once (a cached token, or TEMPFAIL during a backoff) */
    TOK_ASYNC, /* answers 20 ms later from the loop (an HTTP request) */
    TOK_NEVER  /* never answers; the caller must cancel */
};

static struct {
    enum token_mode mode;
    enum token_status status; /* what the next answers carry */
    const char *reason;
    int gets, cancels, outstanding;
    uint64_t last_get_ms;
    const char *last_provider;
    enum token_grant last_grant;
    char last_principal[128], last_subject[128], last_password[64];
    /* refused tokens: what token_client_refused says, and what it was asked */
    enum token_refusal refusal;
    int refusals, agains;
    uint64_t last_refused_id, last_fresh_ms;
} fake;

#define FAKE_TOKEN_ID 0x0000000500000002ull

struct token_client {
    struct event_base *base;
};

struct token_wait {
    struct event *ev;
    token_cb cb;
    void *arg;
    char token[64];
};

struct token_client *token_client_new(struct event_base *base, uint64_t timeout_ms)
{
    (void)timeout_ms;
    struct token_client *tc = mg_calloc(1, sizeof *tc);
    tc->base = base;
    return tc;
}

/* Does not free outstanding waits: a broker that forgets to cancel one leaks it (LSan). */
void token_client_free(struct token_client **tc)
{
    free(*tc);
    *tc = NULL;
}

static void answer(token_cb cb, void *arg, const char *token)
{
    int ok = fake.status == TOKEN_OK;
    struct token_result r = {fake.status, ok ? token : NULL, ok ? strlen(token) : 0, fake.reason,
                             ok ? FAKE_TOKEN_ID : 0};
    cb(&r, arg);
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct token_wait w = *(struct token_wait *)arg;
    event_free(w.ev);
    free(arg);
    fake.outstanding--;
    answer(w.cb, w.arg, w.token);
}

char *token_app_principal(const struct provider_conf *p)
{
    return mg_printf("app:%s@%s", p->client_id, p->tenant);
}

char *token_password_principal(const char *user, const char *password, size_t len)
{
    (void)password;
    return mg_printf("password:%s:%zu", user, len);
}

struct token_wait *token_get_for(struct token_client *tc, const struct provider_conf *p,
                                 const struct token_subject *subj, token_cb cb, void *arg)
{
    fake.gets++;
    fake.last_get_ms = mg_now_ms();
    fake.last_provider = p->name;
    fake.last_grant = subj->grant;
    mg_strlcpy(fake.last_principal, subj->principal, sizeof fake.last_principal);
    mg_strlcpy(fake.last_subject, subj->subject ? subj->subject : "", sizeof fake.last_subject);
    size_t pw_len = subj->password_len < sizeof fake.last_password ? subj->password_len : 0;
    memcpy(fake.last_password, subj->password ? subj->password : "", pw_len);
    fake.last_password[pw_len] = '\0';
    char token[64];
    snprintf(token, sizeof token, "%s-token-for-%s", fake.mode == TOK_SYNC ? "sync" : "async",
             p->name);
    if (fake.mode == TOK_SYNC) {
        answer(cb, arg, token);
        return NULL;
    }
    struct token_wait *w = mg_calloc(1, sizeof *w);
    w->cb = cb;
    w->arg = arg;
    memcpy(w->token, token, sizeof token);
    w->ev = evtimer_new(tc->base, fire, w);
    struct timeval tv = {fake.mode == TOK_ASYNC ? 0 : 100, 20000};
    evtimer_add(w->ev, &tv);
    fake.outstanding++;
    return w;
}

enum token_refusal token_client_refused(struct token_client *tc, uint64_t token_id,
                                        uint64_t fresh_ms)
{
    (void)tc;
    fake.refusals++;
    fake.last_refused_id = token_id;
    fake.last_fresh_ms = fresh_ms;
    return fake.refusal;
}

struct token_wait *token_get_again(struct token_client *tc, uint64_t token_id, token_cb cb,
                                   void *arg)
{
    (void)tc;
    (void)token_id;
    fake.agains++;
    answer(cb, arg, "fresh-token");
    return NULL;
}

void token_wait_cancel(struct token_wait *w)
{
    fake.cancels++;
    fake.outstanding--;
    event_free(w->ev);
    free(w);
}

/* The counting hooks of GET /metrics: nothing to count in the fake. */
void token_client_set_outcome_cb(struct token_client *tc, token_outcome_cb cb, void *arg)
{
    (void)tc, (void)cb, (void)arg;
}

uint64_t token_client_cache_hits(const struct token_client *tc)
{
    (void)tc;
    return 0;
}

/* ---- fixture ---- */

/* The worker's end of one IPC socketpair. */
struct peer {
    int fd;
    struct evbuffer *in;
    int eof;
};

static struct {
    char dir[64];
    struct config *cfg;
    struct store *st;
    struct event_base *base;
    struct broker *b;
    struct peer w;       /* worker 7 */
    struct peer more[3]; /* workers 8, 9, 10 when a test adds them */
    int ready_index;
    const char *mailbox, *provider; /* expected in AUTH_OK answers; NULL: alice's */
} fx;

/* Computed once: Argon2id hashing costs ~150 ms. */
static char pw_hash[PASSWORD_HASH_MAX]; /* of "right", for every user */
static uint64_t argon2_ms;              /* one verification, as measured here */

static int setup_group(void **state)
{
    (void)state;
    log_init("test", MG_LOG_ERROR);
    if (password_hash("right", 5, pw_hash, sizeof pw_hash) != 0)
        return -1;
    uint64_t t0 = mg_now_ms();
    if (password_verify(pw_hash, "right", 5) != 1)
        return -1;
    argon2_ms = mg_now_ms() - t0;
    return 0;
}

static void on_ready(int index, void *arg)
{
    assert_ptr_equal(arg, &fx);
    fx.ready_index = index;
}

static void add_worker(struct peer *p, int index)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(evutil_make_socket_nonblocking(sv[1]), 0);
    assert_int_equal(broker_add_worker(fx.b, sv[0], index, on_ready, &fx), 0);
    p->fd = sv[1];
    p->in = evbuffer_new();
    p->eof = 0;
}

static void close_peer(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    if (p->in)
        evbuffer_free(p->in);
    p->in = NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    memset(&fake, 0, sizeof fake);
    fx.ready_index = -1;
    fx.w.fd = fx.more[0].fd = fx.more[1].fd = fx.more[2].fd = -1;
    strcpy(fx.dir, "/tmp/mg-test-broker-XXXXXX");
    assert_non_null(mkdtemp(fx.dir));
    char *path = mg_printf("%s/mailgate.conf", fx.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* No [listen]: the broker does not need one, and then no [tls] is needed either. */
    fprintf(f,
            "[gateway]\n"
            "state_dir = %s\n"
            "auth_cache_ttl = 10m\n"
            "token_timeout = 1s\n"
            "\n"
            "[provider contoso]\n"
            "type = microsoft\n"
            "tenant = contoso.onmicrosoft.com\n"
            "client_id = 11111111-2222-3333-4444-555555555555\n"
            "client_secret = not-a-real-secret\n"
            "\n"
            "[provider delegated]\n"
            "type = microsoft\n"
            "flow = delegated\n"
            "tenant = contoso.onmicrosoft.com\n"
            "client_id = 11111111-2222-3333-4444-555555555555\n"
            "\n"
            "[provider ropc]\n"
            "type = microsoft\n"
            "flow = password\n"
            "tenant = contoso.onmicrosoft.com\n"
            "client_id = 11111111-2222-3333-4444-555555555555\n",
            fx.dir);
    fclose(f);
    fx.cfg = config_load(path, CONFIG_LOAD_SECRETS, stderr);
    free(path);
    assert_non_null(fx.cfg);
    assert_int_equal(fx.cfg->gateway.auth_cache_ttl_ms, 600000);
    char err[256];
    fx.st = store_open(fx.cfg->gateway.state_dir, err, sizeof err);
    assert_non_null(fx.st);
    /* bob's provider is not in the config. */
    struct user_record users[] = {{"alice", "alice@contoso.com", "contoso", pw_hash, 0, 0},
                                  {"bob", "bob@contoso.com", "nowhere", pw_hash, 0, 0},
                                  {"Dora", "dora@contoso.com", "delegated", pw_hash, 0, 0},
                                  {"erin", "erin@contoso.com", "ropc", "", 0, 0}};
    for (size_t i = 0; i < MG_ARRAY_LEN(users); i++)
        assert_int_equal(store_user_add(fx.st, &users[i]), STORE_OK);
    fx.base = event_base_new();
    assert_non_null(fx.base);
    fx.b = broker_new(fx.base, fx.cfg, fx.st);
    assert_non_null(fx.b);
    add_worker(&fx.w, 7);
    fake.mode = TOK_SYNC;
    fake.status = TOKEN_OK;
    fake.reason = "";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    broker_free(&fx.b);
    close_peer(&fx.w);
    for (size_t i = 0; i < MG_ARRAY_LEN(fx.more); i++)
        close_peer(&fx.more[i]);
    event_base_free(fx.base);
    store_close(&fx.st);
    config_free(&fx.cfg);
    char *cmd = mg_printf("rm -rf '%s'", fx.dir);
    int rc = system(cmd);
    free(cmd);
    /* Every token wait was answered or cancelled. */
    return rc == 0 && fake.outstanding == 0 ? 0 : -1;
}

/* ---- driving the loop ---- */

static void on_break(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void on_peer_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct peer *p = arg;
    char buf[16384];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        evbuffer_add(p->in, buf, (size_t)n);
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        p->eof = 1;
    event_base_loopbreak(fx.base);
}

/* Runs the loop for at most ms, returning early when p (may be NULL) gets bytes or EOF. */
static void run_loop(struct peer *p, uint64_t ms)
{
    struct event *timer = evtimer_new(fx.base, on_break, fx.base);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(timer, &tv);
    struct event *rd = NULL;
    if (p && p->fd >= 0 && !p->eof) {
        rd = event_new(fx.base, p->fd, EV_READ, on_peer_readable, p);
        event_add(rd, NULL);
    }
    event_base_dispatch(fx.base);
    if (rd)
        event_free(rd);
    event_free(timer);
}

/* 1: a message from the broker (in m), 0: the broker closed the connection, -1: nothing
 * within timeout_ms. */
static int read_msg(struct peer *p, struct ipc_msg *m, uint64_t timeout_ms)
{
    uint64_t deadline = mg_now_ms() + timeout_ms;
    for (;;) {
        int rc = ipc_decode(p->in, m);
        assert_int_not_equal(rc, -1);
        if (rc == 1)
            return 1;
        if (p->eof)
            return 0;
        uint64_t now = mg_now_ms();
        if (now >= deadline)
            return -1;
        run_loop(p, deadline - now);
    }
}

/* Runs the loop until *counter reaches target or timeout_ms passed; returns 1 if reached. */
static int run_until(const int *counter, int target, uint64_t timeout_ms)
{
    uint64_t deadline = mg_now_ms() + timeout_ms;
    while (*counter < target && mg_now_ms() < deadline)
        run_loop(NULL, 5);
    return *counter >= target;
}

/* Generous: a few Argon2 verifications, queued behind each other on a slow machine. */
#define ANSWER_MS (3000 + 10 * argon2_ms)

static void send_bytes(struct peer *p, const void *data, size_t len)
{
    assert_int_equal(send(p->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void encode_request(struct evbuffer *out, uint32_t id, const char *user, const char *pw)
{
    struct ipc_auth_request req = {
        .id = id, .protocol = MG_PROTO_IMAP, .listener = "imaps", .client_addr = "192.0.2.1:5"};
    strcpy(req.user, user);
    req.password_len = (uint32_t)strlen(pw);
    memcpy(req.password, pw, req.password_len);
    assert_int_equal(ipc_encode_auth_request(out, &req), 0);
}

static void send_evbuffer(struct peer *p, struct evbuffer *b)
{
    send_bytes(p, evbuffer_pullup(b, -1), evbuffer_get_length(b));
    evbuffer_free(b);
}

static void send_request(struct peer *p, uint32_t id, const char *user, const char *pw)
{
    struct evbuffer *b = evbuffer_new();
    encode_request(b, id, user, pw);
    send_evbuffer(p, b);
}

static void send_refused(struct peer *p, uint32_t id, const char *user, int want_token)
{
    struct ipc_token_refused ref = {
        .id = id, .protocol = MG_PROTO_POP3, .token_id = FAKE_TOKEN_ID, .want_token = want_token};
    strcpy(ref.user, user);
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(ipc_encode_token_refused(b, &ref), 0);
    send_evbuffer(p, b);
}

/* Reads one response and checks it; reason and token may be NULL (not checked). */
static void expect(struct peer *p, uint32_t id, enum auth_status status, const char *reason,
                   const char *token)
{
    struct ipc_msg m;
    assert_int_equal(read_msg(p, &m, ANSWER_MS), 1);
    assert_int_equal(m.type, IPC_AUTH_RESPONSE);
    assert_int_equal(m.u.res.id, id);
    assert_int_equal(m.u.res.status, status);
    if (reason)
        assert_string_equal(m.u.res.reason, reason);
    if (status == AUTH_OK) {
        assert_string_equal(m.u.res.mailbox, fx.mailbox ? fx.mailbox : "alice@contoso.com");
        assert_string_equal(m.u.res.provider, fx.provider ? fx.provider : "contoso");
        if (token) {
            assert_int_equal(m.u.res.token_len, strlen(token));
            assert_memory_equal(m.u.res.token, token, strlen(token));
        }
    } else {
        assert_int_equal(m.u.res.token_len, 0); /* never a token with a failure */
    }
    ipc_msg_wipe(&m);
}

/* ---- tests ---- */

static void test_ready_reported(void **state)
{
    (void)state;
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(ipc_encode_ready(b, 7), 0);
    send_evbuffer(&fx.w, b);
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 30), -1); /* no answer to READY */
    assert_int_equal(fx.ready_index, 7);
}

static void test_login_ok(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "right");
    expect(&fx.w, 1, AUTH_OK, "", "sync-token-for-contoso");
    assert_int_equal(fake.gets, 1);
    assert_string_equal(fake.last_provider, "contoso");

    /* A token that needs a request to the endpoint: answered later from the loop. */
    fake.mode = TOK_ASYNC;
    send_request(&fx.w, 2, "alice", "right");
    expect(&fx.w, 2, AUTH_OK, "", "async-token-for-contoso");
    assert_int_equal(fake.gets, 2);
}

/* A cached login skips the verify pool: its answer overtakes verifications queued before it.
 * The unknown-user requests sent first occupy every pool thread (at most 4) with the dummy
 * hash; a login that went through the pool would be answered after at least one of them. */
static void test_second_login_from_cache(void **state)
{
    (void)state;
    uint64_t t0 = mg_now_ms();
    send_request(&fx.w, 1, "alice", "right");
    expect(&fx.w, 1, AUTH_OK, "", "sync-token-for-contoso");
    uint64_t first_ms = fake.last_get_ms - t0;

    struct evbuffer *b = evbuffer_new();
    for (uint32_t id = 2; id <= 5; id++)
        encode_request(b, id, "nobody", "right");
    encode_request(b, 6, "alice", "right");
    uint64_t t1 = mg_now_ms();
    send_evbuffer(&fx.w, b);
    expect(&fx.w, 6, AUTH_OK, "", "sync-token-for-contoso");
    uint64_t cached_ms = fake.last_get_ms - t1;
    assert_int_equal(fake.gets, 2);
    int seen = 0; /* the pool's threads finish in any order */
    for (int n = 0; n < 4; n++) {
        struct ipc_msg m;
        assert_int_equal(read_msg(&fx.w, &m, ANSWER_MS), 1);
        assert_in_range(m.u.res.id, 2, 5);
        assert_int_equal(m.u.res.status, AUTH_FAIL);
        seen |= 1 << m.u.res.id;
    }
    assert_int_equal(seen, 0x3c);
    print_message("token requested after %d ms, cached: %d ms\n", (int)first_ms, (int)cached_ms);
    assert_true(cached_ms < 50 || cached_ms * 2 < first_ms); /* and far faster */
}

static void test_wrong_password(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "wrong");
    expect(&fx.w, 1, AUTH_FAIL, "wrong password", NULL);
    /* Also after a success is cached: the cache only matches the same password. */
    send_request(&fx.w, 2, "alice", "right");
    expect(&fx.w, 2, AUTH_OK, "", NULL);
    send_request(&fx.w, 3, "alice", "righ");
    expect(&fx.w, 3, AUTH_FAIL, "wrong password", NULL);
    assert_int_equal(fake.gets, 1);
}

static void test_unknown_user(void **state)
{
    (void)state;
    uint64_t t0 = mg_now_ms();
    send_request(&fx.w, 1, "nobody", "right");
    expect(&fx.w, 1, AUTH_FAIL, "unknown user", NULL);
    /* Verified against the dummy hash: as slow as a wrong password (no user enumeration). */
    assert_true(mg_now_ms() - t0 >= 20);
    assert_int_equal(fake.gets, 0);
}

static void test_empty_password(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "");
    expect(&fx.w, 1, AUTH_FAIL, "empty password", NULL);
    send_request(&fx.w, 2, "nobody", "");
    expect(&fx.w, 2, AUTH_FAIL, "empty password", NULL);
    assert_int_equal(fake.gets, 0);
}

static void test_provider_not_configured(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "bob", "right");
    expect(&fx.w, 1, AUTH_TEMPFAIL, "provider nowhere is not configured", NULL);
    assert_int_equal(fake.gets, 0);
}

static void test_login_ok_app_principal(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "right");
    expect(&fx.w, 1, AUTH_OK, "", NULL);
    assert_int_equal(fake.last_grant, TOKEN_GRANT_CLIENT_CREDENTIALS);
    assert_string_equal(fake.last_principal,
                        "app:11111111-2222-3333-4444-555555555555@contoso.onmicrosoft.com");
    assert_string_equal(fake.last_password, "");
}

/* Delegated: the local password is checked, then the user's own token (refresh grant). */
static void test_delegated_login(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "dora", "wrong");
    expect(&fx.w, 1, AUTH_FAIL, "wrong password", NULL);
    assert_int_equal(fake.gets, 0);
    fx.mailbox = "dora@contoso.com";
    fx.provider = "delegated";
    send_request(&fx.w, 2, "dora", "right");
    expect(&fx.w, 2, AUTH_OK, "", "sync-token-for-delegated");
    assert_int_equal(fake.last_grant, TOKEN_GRANT_REFRESH_TOKEN);
    assert_string_equal(fake.last_principal, "user:dora"); /* lower case: names ignore case */
    assert_string_equal(fake.last_password, "");
    /* Not authorized (or revoked): an authentication failure, not "try later". */
    fake.status = TOKEN_NEEDS_AUTH;
    fake.reason = "user dora is not authorized: run mailgate user authorize";
    send_request(&fx.w, 3, "dora", "right");
    expect(&fx.w, 3, AUTH_FAIL, "user dora is not authorized: run mailgate user authorize", NULL);
}

/* Password flow: no local hash; the password goes to the IdP with the mailbox as user name. */
static void test_password_flow(void **state)
{
    (void)state;
    fake.mode = TOK_ASYNC;
    fx.mailbox = "erin@contoso.com";
    fx.provider = "ropc";
    send_request(&fx.w, 1, "erin", "entra-pass");
    expect(&fx.w, 1, AUTH_OK, "", "async-token-for-ropc");
    assert_int_equal(fake.last_grant, TOKEN_GRANT_PASSWORD);
    assert_string_equal(fake.last_subject, "erin@contoso.com");
    assert_string_equal(fake.last_password, "entra-pass");
    assert_string_equal(fake.last_principal, "password:erin:10");
    fake.status = TOKEN_DENIED;
    fake.reason = "invalid_grant: AADSTS50126: Error validating credentials";
    send_request(&fx.w, 2, "erin", "nope");
    expect(&fx.w, 2, AUTH_FAIL, "invalid_grant: AADSTS50126: Error validating credentials", NULL);
    /* An unknown user still costs an Argon2 verification and never reaches the IdP. */
    int gets = fake.gets;
    send_request(&fx.w, 3, "nobody", "entra-pass");
    expect(&fx.w, 3, AUTH_FAIL, "unknown user", NULL);
    assert_int_equal(fake.gets, gets);
}

static void test_token_tempfail(void **state)
{
    (void)state;
    fake.status = TOKEN_TEMPFAIL;
    fake.reason = "token endpoint answered 503";
    fake.mode = TOK_ASYNC; /* the request failed */
    send_request(&fx.w, 1, "alice", "right");
    expect(&fx.w, 1, AUTH_TEMPFAIL, "token endpoint answered 503", NULL);
    fake.mode = TOK_SYNC; /* in the backoff after it */
    fake.reason = "backing off after 503 (retry in 4 s)";
    send_request(&fx.w, 2, "alice", "right");
    expect(&fx.w, 2, AUTH_TEMPFAIL, "backing off after 503 (retry in 4 s)", NULL);
    assert_int_equal(fake.gets, 2);
}

/* The token id travels with an accepted login, so that a refusal can name it. */
static void test_response_names_the_token(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "right");
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, ANSWER_MS), 1);
    assert_int_equal(m.u.res.status, AUTH_OK);
    assert_true(m.u.res.token_id == FAKE_TOKEN_ID);
    ipc_msg_wipe(&m);
}

/* A stale token refused: dropped (token_client_refused), and a fresh one is the answer. */
static void test_refused_stale_token_retries(void **state)
{
    (void)state;
    fake.refusal = TOKEN_REFUSAL_DROPPED;
    send_refused(&fx.w, 9, "alice", 1);
    expect(&fx.w, 9, AUTH_OK, NULL, "fresh-token");
    assert_int_equal(fake.refusals, 1);
    assert_true(fake.last_refused_id == FAKE_TOKEN_ID);
    assert_true(fake.last_fresh_ms >= 5000 && fake.last_fresh_ms <= 60000);
    assert_int_equal(fake.agains, 1);
    /* No retry left: dropped all the same, the answer is "try later", no token is fetched. */
    send_refused(&fx.w, 10, "alice", 0);
    expect(&fx.w, 10, AUTH_TEMPFAIL, NULL, NULL);
    assert_int_equal(fake.refusals, 2);
    assert_int_equal(fake.agains, 1);
}

/* A token obtained just now refused: a permission problem, reported as a failure at once. */
static void test_refused_fresh_token_fails(void **state)
{
    (void)state;
    fake.refusal = TOKEN_REFUSAL_FRESH;
    send_refused(&fx.w, 3, "alice", 1);
    expect(&fx.w, 3, AUTH_FAIL, NULL, NULL);
    assert_int_equal(fake.agains, 0);
    fake.refusal = TOKEN_REFUSAL_UNKNOWN;
    send_refused(&fx.w, 4, "alice", 1);
    expect(&fx.w, 4, AUTH_TEMPFAIL, NULL, NULL);
    send_refused(&fx.w, 5, "nobody", 1);
    expect(&fx.w, 5, AUTH_TEMPFAIL, NULL, NULL);
    assert_int_equal(fake.agains, 0);
}

static void test_pipelined(void **state)
{
    (void)state;
    static const struct {
        const char *user, *pw;
        enum auth_status status;
    } reqs[] = {
        {"alice", "right", AUTH_OK}, {"nobody", "right", AUTH_FAIL},  {"alice", "bad", AUTH_FAIL},
        {"alice", "", AUTH_FAIL},    {"bob", "right", AUTH_TEMPFAIL},
    };
    fake.mode = TOK_ASYNC;
    struct evbuffer *b = evbuffer_new();
    for (uint32_t i = 0; i < MG_ARRAY_LEN(reqs); i++)
        encode_request(b, 100 + i, reqs[i].user, reqs[i].pw);
    send_evbuffer(&fx.w, b); /* one write: the broker reads all frames at once */
    int seen[MG_ARRAY_LEN(reqs)] = {0};
    for (size_t n = 0; n < MG_ARRAY_LEN(reqs); n++) {
        struct ipc_msg m;
        assert_int_equal(read_msg(&fx.w, &m, ANSWER_MS), 1);
        assert_int_equal(m.type, IPC_AUTH_RESPONSE);
        uint32_t i = m.u.res.id - 100;
        assert_in_range(i, 0, MG_ARRAY_LEN(reqs) - 1);
        if (n == 0)
            assert_int_equal(i, 3); /* the empty password needs no Argon2: answered first */
        assert_int_equal(m.u.res.status, reqs[i].status);
        if (reqs[i].status == AUTH_OK)
            assert_memory_equal(m.u.res.token, "async-token-for-contoso", 23);
        seen[i]++;
        ipc_msg_wipe(&m);
    }
    for (size_t i = 0; i < MG_ARRAY_LEN(reqs); i++)
        assert_int_equal(seen[i], 1);
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 50), -1); /* nothing more */
}

static void test_bad_frame_drops_worker(void **state)
{
    (void)state;
    struct peer *w8 = &fx.more[0], *w9 = &fx.more[1], *w10 = &fx.more[2];
    add_worker(w8, 8);
    add_worker(w9, 9);
    static const unsigned char unknown_type[] = {0, 0, 0, 2, 99, 1};
    static const unsigned char too_long[] = {0, 0x01, 0, 0, IPC_AUTH_REQUEST}; /* 64 KiB */
    send_bytes(&fx.w, unknown_type, sizeof unknown_type);
    send_bytes(w8, too_long, sizeof too_long);
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 2000), 0); /* EOF */
    assert_int_equal(read_msg(w8, &m, 2000), 0);
    /* A response sent by a worker is a protocol error too. */
    struct evbuffer *b = evbuffer_new();
    struct ipc_auth_response res = {.id = 1, .status = AUTH_OK};
    assert_int_equal(ipc_encode_auth_response(b, &res), 0);
    send_evbuffer(w9, b);
    assert_int_equal(read_msg(w9, &m, 2000), 0);
    /* The broker itself goes on serving a new worker. */
    add_worker(w10, 10);
    send_request(w10, 1, "alice", "");
    expect(w10, 1, AUTH_FAIL, "empty password", NULL);
}

static void test_worker_gone_while_waiting_for_token(void **state)
{
    (void)state;
    fake.mode = TOK_NEVER;
    send_request(&fx.w, 1, "alice", "right");
    assert_true(run_until(&fake.gets, 1, ANSWER_MS));
    assert_int_equal(fake.outstanding, 1);
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 50), -1); /* still waiting */
    broker_remove_worker(fx.b, 7);
    assert_int_equal(fake.cancels, 1);
    assert_int_equal(fake.outstanding, 0);
    assert_int_equal(read_msg(&fx.w, &m, 2000), 0); /* the broker closed its end */
    broker_remove_worker(fx.b, 7);                  /* unknown by now: a no-op */
    assert_int_equal(fake.cancels, 1);
}

/* The worker closes its end while its requests are in the verify pool: the results come back
 * to orphaned jobs, which are dropped (no token request, no crash, no leak). */
static void test_worker_gone_while_verifying(void **state)
{
    (void)state;
    send_request(&fx.w, 1, "alice", "right");
    send_request(&fx.w, 2, "nobody", "right");
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 20), -1); /* the broker reads them; no answer yet */
    close_peer(&fx.w);
    run_loop(NULL, 50 + 2 * argon2_ms); /* both verifications come back meanwhile */
    assert_int_equal(fake.gets, 0);
    /* A worker started in its place is served as usual. */
    add_worker(&fx.w, 7);
    send_request(&fx.w, 3, "alice", "right");
    expect(&fx.w, 3, AUTH_OK, "", NULL);
    assert_int_equal(fake.gets, 1);
}

/* Teardown frees the broker while a verification runs and a token request waits. */
static void test_free_with_jobs_in_flight(void **state)
{
    (void)state;
    fake.mode = TOK_NEVER;
    struct peer *w8 = &fx.more[0];
    add_worker(w8, 8);
    send_request(w8, 1, "alice", "right");
    assert_true(run_until(&fake.gets, 1, ANSWER_MS));
    send_request(&fx.w, 2, "nobody", "right");
    struct ipc_msg m;
    assert_int_equal(read_msg(&fx.w, &m, 20), -1);
    broker_free(&fx.b);
    assert_int_equal(fake.cancels, 1);
    assert_int_equal(fake.outstanding, 0);
    assert_int_equal(read_msg(w8, &m, 1000), 0);
    assert_int_equal(read_msg(&fx.w, &m, 1000), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ready_reported),
        T(test_login_ok),
        T(test_login_ok_app_principal),
        T(test_delegated_login),
        T(test_password_flow),
        T(test_second_login_from_cache),
        T(test_wrong_password),
        T(test_unknown_user),
        T(test_empty_password),
        T(test_provider_not_configured),
        T(test_response_names_the_token),
        T(test_refused_stale_token_retries),
        T(test_refused_fresh_token_fails),
        T(test_token_tempfail),
        T(test_pipelined),
        T(test_bad_frame_drops_worker),
        T(test_worker_gone_while_waiting_for_token),
        T(test_worker_gone_while_verifying),
        T(test_free_with_jobs_in_flight),
    };
    return cmocka_run_group_tests(tests, setup_group, NULL);
}
