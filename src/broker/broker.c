/* The broker's IPC server and login pipeline.
 *
 * One bufferevent per worker. Each IPC_AUTH_REQUEST becomes an auth_job that goes
 *   store lookup -> auth cache (hit) or verify pool (Argon2id) -> token client -> response.
 * Jobs sit in one broker-wide list. When a worker goes away, or tells us that the session of a
 * request has gone (IPC_AUTH_CANCEL), the job is cancelled and freed at once: its token request
 * or its verify pool ticket is cancelled (a verification still queued for nobody else is
 * dropped). Before any of that, lockout.c may refuse the login (locked-out user and address,
 * too many logins in flight from the address) and it learns every verdict (failure delays).
 *
 * Bounds: a worker's input is read at most 64 KiB ahead, and reading from it pauses while it
 * has WORKER_PENDING_MAX unanswered requests or WORKER_OUTPUT_HIGH bytes of answers it has not
 * read; the verify pool's queue is bounded too ("busy" answers beyond it). */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "access.h"
#include "audit_sink.h"
#include "account.h"
#include "authcache.h"
#include "config.h"
#include "jwt_claims.h"
#include "lockout.h"
#include "login_name.h"
#include "probe_advice.h"
#include "ipc.h"
#include "log.h"
#include "password.h"
#include "store.h"
#include "token.h"
#include "tlsrpt_inbox.h"
#include "token_subject.h"
#include "util.h"
#include "verify_pool.h"

#define AUTH_CACHE_MAX_ENTRIES 100000
#define VERIFY_THREADS_MAX 4 /* each Argon2id verification holds 64 MiB */
#define WORKER_PENDING_MAX 1024
#define WORKER_OUTPUT_HIGH (4u << 20)
#define WORKER_INPUT_MAX (64u << 10)
/* A token the upstream refuses although obtained less than this ago is refused for a missing
 * permission, not for being stale: dropping it would only fetch the same refusal again. */
#define TOKEN_FRESH_MS 10000

_Static_assert(PASSWORD_MAX <= IPC_PASSWORD_MAX, "a password must fit an IPC request");

struct worker_conn {
    struct broker *b;
    struct worker_conn *next;
    struct bufferevent *bev;
    int index;
    size_t pending; /* requests not answered yet */
    int ready_reported;
    void (*on_ready)(int index, void *arg);
    void *on_ready_arg;
    struct tlsrpt_inbox tlsrpt; /* a TLS report arriving in pieces (POST /tlsrpt) */
};

struct auth_job {
    struct auth_job *prev, *next;
    struct broker *b;
    struct worker_conn *conn; /* NULL: the worker went away, the result is dropped */
    uint32_t id;
    /* The throttle counts by these: the user the name stands for (whatever mailbox it names)
     * and the client's address. */
    char user[IPC_USER_MAX];
    char client_addr[IPC_ADDR_MAX];
    int holds_slot; /* counts against the address's logins in flight until freed */
    int known_user;
    int valid_name;          /* the name has a valid shape and is not a reserved one */
    struct login_name login; /* valid_name: the user and the mailbox it names */
    struct user_record rec;  /* rec.mailbox becomes the mailbox the login opens */
    enum mg_proto protocol;
    /* Kept for auth_cache_remember until the verification is back, or for the password flow
     * until the token request is sent. */
    char *pw;
    size_t pw_len;
    struct token_wait *token_wait;
    struct verify_ticket *ticket; /* inside the verify pool */
    uint64_t token_id;            /* of the token handed out (token_result.token_id) */
    /* The verdict on a refused token (IPC_TOKEN_REFUSED): the credentials were judged by the
     * login before it, so the throttle learns nothing from this one. */
    int token_verdict;
};

struct broker {
    struct event_base *base;
    const struct config *cfg;
    struct store *st;
    struct token_client *tokens;
    struct auth_cache *cache;
    struct verify_pool *pool;
    struct lockouts *guard; /* failure counts, lockouts, logins in flight per address */
    /* Verified instead of a real hash for unknown users, so that "no such user" takes as long
     * as "wrong password". Made at start with the current Argon2id parameters. */
    char dummy_hash[PASSWORD_HASH_MAX];
    struct worker_conn *workers;
    struct auth_job *jobs;
    struct audit_sink *audit; /* login audit records from the workers */
};

/* ---- jobs ---- */

static struct auth_job *job_new(struct worker_conn *conn, uint32_t id)
{
    struct auth_job *job = mg_calloc(1, sizeof *job);
    struct broker *b = conn->b;
    job->b = b;
    job->conn = conn;
    job->id = id;
    job->next = b->jobs;
    if (b->jobs)
        b->jobs->prev = job;
    b->jobs = job;
    conn->pending++;
    return job;
}

static void keep_password(struct auth_job *job, const char *pw, size_t len)
{
    job->pw = mg_malloc(len + 1);
    memcpy(job->pw, pw, len);
    job->pw[len] = '\0';
    job->pw_len = len;
}

static void forget_password(struct auth_job *job)
{
    if (job->pw) {
        mg_wipe(job->pw, job->pw_len);
        free(job->pw);
    }
    job->pw = NULL;
    job->pw_len = 0;
}

static void job_free(struct auth_job *job)
{
    struct broker *b = job->b;
    if (job->prev)
        job->prev->next = job->next;
    else
        b->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
    if (job->conn)
        job->conn->pending--;
    if (job->holds_slot)
        lockouts_release(b->guard, job->client_addr);
    user_record_clear(&job->rec);
    forget_password(job);
    mg_wipe(job, sizeof *job);
    free(job);
}

/* ---- output ---- */

static void wipe_and_free(const void *data, size_t len, void *extra)
{
    (void)extra;
    mg_wipe((void *)data, len);
    free((void *)data);
}

/* Empties b, wiping its chains on the way: an encoded response holds an access token. */
static void wipe_evbuffer(struct evbuffer *b)
{
    while (evbuffer_get_length(b) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(b, -1, NULL, &v, 1) < 1)
            break;
        mg_wipe(v.iov_base, v.iov_len);
        evbuffer_drain(b, v.iov_len);
    }
}

/* Moves the bytes of src to dst through memory that is wiped once written out. */
static void move_wiped(struct evbuffer *dst, struct evbuffer *src)
{
    size_t len = evbuffer_get_length(src);
    char *copy = mg_malloc(len);
    evbuffer_copyout(src, copy, len);
    wipe_evbuffer(src);
    if (evbuffer_add_reference(dst, copy, len, wipe_and_free, NULL) != 0)
        wipe_and_free(copy, len, NULL);
}

static void send_response(struct worker_conn *conn, struct ipc_auth_response *res)
{
    struct evbuffer *frame = evbuffer_new();
    if (!frame) {
        log_error("worker %d: out of memory encoding a response", conn->index);
        return;
    }
    if (ipc_encode_auth_response(frame, res) != 0) {
        /* A field did not fit (e.g. an absurdly long token): answer "try later" instead. */
        log_error("worker %d: response %u does not fit an IPC frame", conn->index,
                  (unsigned)res->id);
        wipe_evbuffer(frame);
        struct ipc_auth_response fallback = {.id = res->id, .status = AUTH_TEMPFAIL};
        mg_strlcpy(fallback.reason, "internal error: response too large", sizeof fallback.reason);
        mg_strlcpy(fallback.cause, "internal error", sizeof fallback.cause);
        if (ipc_encode_auth_response(frame, &fallback) != 0) {
            evbuffer_free(frame);
            return;
        }
    }
    move_wiped(bufferevent_get_output(conn->bev), frame);
    evbuffer_free(frame);
}

static void update_reading(struct worker_conn *conn);

/* An Exchange Online token without the permission the protocol needs will be refused
 * upstream with a bare "authentication failed": say which permission is missing in the
 * reason, which the worker adds to its log line if the upstream refuses. Other providers'
 * tokens are opaque or not Exchange's: nothing to say. */
static void permission_hint(const struct auth_job *job, const char *token, size_t len, char *out,
                            size_t size)
{
    const struct provider_conf *p = config_provider(job->b->cfg, job->rec.provider);
    json_t *claims = p && p->type == MG_PROVIDER_MICROSOFT ? jwt_claims_decode(token, len) : NULL;
    if (!claims)
        return;
    const char *kind = NULL;
    char *perms = jwt_claims_permissions(claims, &kind);
    int delegated = kind && strcmp(kind, "scp") == 0;
    if (perms &&
        !jwt_claims_has_permission(claims, jwt_required_permission(job->protocol, delegated))) {
        struct probe_facts f = {.proto = job->protocol,
                                .outcome = PROBE_REFUSED,
                                .claims = claims,
                                .mailbox = job->rec.mailbox,
                                .user = job->rec.name,
                                .reply = ""};
        probe_advice(&f, out, size);
    }
    free(perms);
    json_decref(claims);
}

/* Answers the job's worker (unless it went away) and frees the job. token may be NULL. */
/* The throttle counts every failure; a failure's reply carries its delay, and so does an
 * accepted one's, for the case that the upstream refuses the mailbox after all (the worker then
 * answers when a wrong password would have been answered). */
static uint32_t count_outcome(struct auth_job *job, enum auth_status status)
{
    if (job->token_verdict)
        return 0;
    if (status == AUTH_FAIL)
        return lockouts_failure(job->b->guard, job->user, job->client_addr);
    if (status == AUTH_OK)
        return lockouts_failure_delay(job->b->guard, job->user, job->client_addr);
    return 0;
}

static void finish(struct auth_job *job, enum auth_status status, const char *reason,
                   const char *cause, const char *token, size_t token_len)
{
    uint32_t delay_ms = count_outcome(job, status);
    struct worker_conn *conn = job->conn;
    if (!conn) {
        job_free(job);
        return;
    }
    struct ipc_auth_response res;
    memset(&res, 0, sizeof res);
    res.id = job->id;
    res.status = status;
    res.delay_ms = delay_ms;
    mg_strlcpy(res.reason, reason ? reason : "", sizeof res.reason);
    mg_strlcpy(res.cause, cause, sizeof res.cause);
    if (status == AUTH_OK) {
        permission_hint(job, token, token_len, res.reason, sizeof res.reason);
        int fits =
            token && token_len < sizeof res.token &&
            mg_strlcpy(res.mailbox, job->rec.mailbox, sizeof res.mailbox) < sizeof res.mailbox &&
            mg_strlcpy(res.provider, job->rec.provider, sizeof res.provider) < sizeof res.provider;
        if (fits) {
            memcpy(res.token, token, token_len);
            res.token_len = (uint32_t)token_len;
            res.token_id = job->token_id;
        } else {
            memset(&res, 0, sizeof res);
            res.id = job->id;
            res.status = AUTH_TEMPFAIL;
            mg_strlcpy(res.reason, "mailbox, provider name or token too long", sizeof res.reason);
            mg_strlcpy(res.cause, "internal error", sizeof res.cause);
        }
    }
    send_response(conn, &res);
    mg_wipe(&res, sizeof res);
    job_free(job);
    update_reading(conn);
}

/* cause: the fixed word for the audit (ipc.h); reason: the details for the log. */
static void fail(struct auth_job *job, enum auth_status status, const char *reason,
                 const char *cause)
{
    finish(job, status, reason, cause, NULL, 0);
}

/* ---- the login pipeline ---- */

static void on_token(const struct token_result *tr, void *arg)
{
    struct auth_job *job = arg;
    job->token_wait = NULL;
    switch (tr->status) {
    case TOKEN_OK:
        job->token_id = tr->token_id;
        finish(job, AUTH_OK, "", "ok", tr->access_token, tr->token_len);
        return;
    case TOKEN_NEEDS_AUTH: /* the user must be authorized (again): not a passing problem */
    case TOKEN_DENIED:     /* the IdP refused the user's own password */
        fail(job, AUTH_FAIL, tr->reason, "idp error");
        return;
    case TOKEN_TEMPFAIL:
    case TOKEN_PERMFAIL:
        break;
    }
    fail(job, AUTH_TEMPFAIL, tr->reason, "idp error");
}

static void request_token(struct auth_job *job)
{
    struct broker *b = job->b;
    const struct provider_conf *p = config_provider(b->cfg, job->rec.provider);
    char reason[IPC_REASON_MAX];
    if (!p) {
        snprintf(reason, sizeof reason, "provider %s is not configured", job->rec.provider);
        fail(job, AUTH_TEMPFAIL, reason, "internal error");
        return;
    }
    if (!provider_server(p, job->protocol)) {
        snprintf(reason, sizeof reason, "provider %s has no %s_server", p->name,
                 mg_proto_name(job->protocol));
        fail(job, AUTH_DISABLED, reason, "protocol disabled");
        return;
    }
    struct token_subject subj;
    char *principal =
        token_subject_for(p, job->rec.name, job->rec.mailbox, job->pw, job->pw_len, &subj);
    subj.principal = principal;
    /* When token_get_for answers synchronously (cached token, backoff), on_token has already
     * run and freed the job by the time it returns NULL: do not touch the job then. */
    struct token_wait *w = token_get_for(b->tokens, p, &subj, on_token, job);
    free(principal);
    if (w) {
        job->token_wait = w;
        forget_password(job); /* the token client copied what it needs */
    }
}

/* The switches and grants (access.h), after the password (flow = password: before the IdP
 * sees it). A refusal is answered and counted like a wrong password; the cause says why. On
 * success the job's mailbox is the one the login opens. 1 when the job was failed. */
static int refused_by_policy(struct auth_job *job)
{
    char mailbox[IPC_MAILBOX_MAX];
    enum access_verdict v = access_decide(job->b->st, &job->rec, job->login.alias, job->protocol,
                                          mailbox, sizeof mailbox);
    if (v == ACCESS_OK) {
        free(job->rec.mailbox);
        job->rec.mailbox = mg_strdup(mailbox);
        return 0;
    }
    if (v == ACCESS_STORE_ERROR)
        fail(job, AUTH_TEMPFAIL, "user store error", access_cause(v));
    else
        fail(job, AUTH_FAIL, access_cause(v), access_cause(v));
    return 1;
}

static void on_verified(int result, void *arg)
{
    struct auth_job *job = arg;
    job->ticket = NULL;
    if (!job->conn) {
        job_free(job); /* its worker went away meanwhile */
        return;
    }
    if (!job->known_user) {
        fail(job, AUTH_FAIL, job->valid_name ? "unknown user" : "invalid or reserved user name",
             job->valid_name ? "unknown user" : "invalid name");
        return;
    }
    if (result == 0) {
        fail(job, AUTH_FAIL, "wrong password", "wrong password");
        return;
    }
    if (result < 0) {
        char name[IPC_USER_MAX + 8];
        log_error("user %s has an unusable password hash in the store; set a new password",
                  log_quote(name, sizeof name, job->rec.name, (size_t)-1));
        fail(job, AUTH_TEMPFAIL, "unusable password hash", "internal error");
        return;
    }
    struct broker *b = job->b;
    auth_cache_remember(b->cache, job->rec.name, job->rec.password_hash, job->pw, job->pw_len,
                        mg_now_ms());
    forget_password(job);
    if (!refused_by_policy(job))
        request_token(job);
}

static void verify_in_pool(struct auth_job *job, const char *pw, size_t len)
{
    struct broker *b = job->b;
    struct verify_request vr = {.user = job->known_user ? job->rec.name : job->user,
                                .hash = job->known_user ? job->rec.password_hash : b->dummy_hash,
                                .pw = pw,
                                .len = len};
    if (job->known_user)
        keep_password(job, pw, len);
    job->ticket = verify_pool_submit(b->pool, &vr, on_verified, job);
    if (!job->ticket)
        fail(job, AUTH_TEMPFAIL, "too many logins waiting for password verification", "busy");
}

/* Runs on a verify pool thread as a queued verification starts (the cache is thread-safe). */
static int known_by_cache(const char *user, const char *hash, const char *pw, size_t len, void *arg)
{
    return auth_cache_check(arg, user, hash, pw, len, mg_now_ms());
}

/* Before any work: a locked-out (user, address) gets the ordinary failure reply; an address
 * with too many logins in flight, "try later". Returns 0 when the login may go on. */
static int throttled(struct auth_job *job, const struct ipc_auth_request *req)
{
    mg_strlcpy(job->user, job->valid_name ? job->login.user : req->user, sizeof job->user);
    mg_strlcpy(job->client_addr, req->client_addr, sizeof job->client_addr);
    switch (lockouts_admit(job->b->guard, job->user, req->client_addr)) {
    case THROTTLE_GO:
        job->holds_slot = 1;
        return 0;
    case THROTTLE_LOCKED:
        fail(job, AUTH_FAIL, "locked out after too many failed logins", "locked out");
        return 1;
    case THROTTLE_BUSY:
        fail(job, AUTH_TEMPFAIL, "too many logins in flight from this address", "busy");
        return 1;
    }
    return 0;
}

/* The user and mailbox the typed name stands for (login_name.h); reserved names and invalid
 * shapes stand for nobody. */
static void parse_login(struct auth_job *job, const char *typed)
{
    const char *domain = job->b->cfg->gateway.default_domain;
    job->valid_name =
        login_name_parse(typed, domain, &job->login) == 0 && !login_name_reserved(job->login.user);
}

static enum store_status load_account(struct auth_job *job)
{
    if (!job->valid_name)
        return STORE_NOT_FOUND;
    struct broker *b = job->b;
    return account_find(b->st, job->login.user, b->cfg->gateway.default_domain, &job->rec);
}

static int uses_password_flow(const struct broker *b, const struct user_record *u)
{
    const struct provider_conf *p = config_provider(b->cfg, u->provider);
    return p && p->flow == MG_FLOW_PASSWORD;
}

static void handle_auth_request(struct worker_conn *conn, const struct ipc_auth_request *req)
{
    struct broker *b = conn->b;
    struct auth_job *job = job_new(conn, req->id);
    job->protocol = req->protocol;
    parse_login(job, req->user);
    if (throttled(job, req))
        return;
    size_t len = req->password_len;
    if (len == 0) {
        fail(job, AUTH_FAIL, "empty password", "wrong password");
        return;
    }
    if (len > PASSWORD_MAX || len > sizeof req->password) {
        fail(job, AUTH_FAIL, "password too long", "wrong password");
        return;
    }
    enum store_status st = load_account(job);
    if (st == STORE_OK) {
        job->known_user = 1;
    } else if (st != STORE_NOT_FOUND) {
        log_error("user store: %s", store_last_error(b->st));
        fail(job, AUTH_TEMPFAIL, "user store error", "internal error");
        return;
    }
    /* The IdP checks the password: a login the policy refuses never sends it there. */
    if (job->known_user && uses_password_flow(b, &job->rec)) {
        if (refused_by_policy(job))
            return;
        keep_password(job, req->password, len);
        request_token(job);
        return;
    }
    /* A remembered password is only the password: the policy is read again for every login. */
    if (job->known_user && auth_cache_check(b->cache, job->rec.name, job->rec.password_hash,
                                            req->password, len, mg_now_ms())) {
        if (!refused_by_policy(job))
            request_token(job);
        return;
    }
    verify_in_pool(job, req->password, len);
}

/* ---- a token the upstream refused ---- */

/* The verdict on a refused token (see IPC_TOKEN_REFUSED): a fresh token refused is a
 * permission problem (authentication failure); a stale one is dropped and, when the worker may
 * still retry, a new one is the answer; else "try again" (the next login gets a new one). */
static void handle_token_refused(struct worker_conn *conn, const struct ipc_token_refused *ref)
{
    struct broker *b = conn->b;
    struct auth_job *job = job_new(conn, ref->id);
    job->token_verdict = 1;
    job->protocol = ref->protocol;
    parse_login(job, ref->user);
    if (load_account(job) != STORE_OK) {
        fail(job, AUTH_TEMPFAIL, "the user is gone from the store", "unknown user");
        return;
    }
    job->known_user = 1;
    if (refused_by_policy(job))
        return;
    enum token_refusal verdict = token_client_refused(b->tokens, ref->token_id, TOKEN_FRESH_MS);
    if (verdict == TOKEN_REFUSAL_FRESH) {
        fail(job, AUTH_FAIL, "a token obtained just now was refused: a permission problem",
             "upstream refused");
        return;
    }
    if (verdict == TOKEN_REFUSAL_UNKNOWN || !ref->want_token) {
        fail(job, AUTH_TEMPFAIL, "the refused token was dropped; the next login gets a new one",
             "upstream refused");
        return;
    }
    /* As in request_token: a synchronous answer has freed the job already. */
    struct token_wait *w = token_get_again(b->tokens, ref->token_id, on_token, job);
    if (w)
        job->token_wait = w;
}

/* ---- worker connections ---- */

/* Drops a job unanswered: its verification (if no other login waits for it) or token request
 * is cancelled, nothing calls back for it afterwards. */
static void cancel_job(struct auth_job *job)
{
    if (job->token_wait)
        token_wait_cancel(job->token_wait);
    if (job->ticket)
        verify_pool_cancel(job->b->pool, job->ticket);
    job_free(job);
}

static void cancel_jobs_of(struct broker *b, struct worker_conn *conn)
{
    struct auth_job *job = b->jobs;
    while (job) {
        struct auth_job *next = job->next;
        if (job->conn == conn)
            cancel_job(job);
        job = next;
    }
}

/* IPC_AUTH_CANCEL: the client of request id has gone. An unknown id was answered already. */
static void handle_auth_cancel(struct worker_conn *conn, uint32_t id)
{
    for (struct auth_job *job = conn->b->jobs; job; job = job->next) {
        if (job->conn == conn && job->id == id) {
            log_debug("worker %d: request %u cancelled: its session has gone", conn->index,
                      (unsigned)id);
            cancel_job(job);
            return;
        }
    }
}

static void drop_worker(struct worker_conn *conn)
{
    struct broker *b = conn->b;
    for (struct worker_conn **link = &b->workers; *link; link = &(*link)->next) {
        if (*link == conn) {
            *link = conn->next;
            break;
        }
    }
    cancel_jobs_of(b, conn);
    tlsrpt_inbox_clear(&conn->tlsrpt);
    bufferevent_free(conn->bev);
    free(conn);
}

static struct worker_conn *find_worker(struct broker *b, int index)
{
    for (struct worker_conn *c = b->workers; c; c = c->next)
        if (c->index == index)
            return c;
    return NULL;
}

static int may_read(struct worker_conn *conn)
{
    return conn->pending < WORKER_PENDING_MAX &&
           evbuffer_get_length(bufferevent_get_output(conn->bev)) < WORKER_OUTPUT_HIGH;
}

static void update_reading(struct worker_conn *conn)
{
    int enabled = (bufferevent_get_enabled(conn->bev) & EV_READ) != 0;
    if (may_read(conn) && !enabled) {
        bufferevent_enable(conn->bev, EV_READ);
        /* Frames already buffered would otherwise wait for the next byte from the worker. The
         * callback is deferred so that this never recurses into the read path. */
        if (evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
            bufferevent_trigger(conn->bev, EV_READ,
                                BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    } else if (!may_read(conn) && enabled) {
        bufferevent_disable(conn->bev, EV_READ);
    }
}

static void handle_ready(struct worker_conn *conn, uint32_t reported_index)
{
    if ((int)reported_index != conn->index)
        log_warn("worker %d reported itself ready as worker %u", conn->index,
                 (unsigned)reported_index);
    if (conn->ready_reported)
        return;
    conn->ready_reported = 1;
    if (conn->on_ready)
        conn->on_ready(conn->index, conn->on_ready_arg);
}

/* A piece of a TLS report; the last one is stored and answered (store writes are quick and
 * rare: one transaction per report). */
static void handle_tlsrpt_part(struct worker_conn *conn, const struct ipc_tlsrpt_part *p)
{
    struct ipc_tlsrpt_result res;
    if (tlsrpt_inbox_add(&conn->tlsrpt, conn->b->st, p, &res) &&
        ipc_encode_tlsrpt_result(bufferevent_get_output(conn->bev), &res) != 0)
        log_error("worker %d: cannot encode a TLS report result", conn->index);
}

static void on_worker_read(struct bufferevent *bev, void *arg)
{
    struct worker_conn *conn = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct ipc_msg msg;
    while (may_read(conn)) {
        int rc = ipc_decode(in, &msg);
        if (rc == 0)
            break;
        if (rc < 0 || msg.type == IPC_AUTH_RESPONSE || msg.type == IPC_TLSRPT_RESULT) {
            log_error("worker %d sent a malformed IPC frame; dropping its connection", conn->index);
            ipc_msg_wipe(&msg);
            drop_worker(conn);
            return;
        }
        if (msg.type == IPC_AUTH_REQUEST)
            handle_auth_request(conn, &msg.u.req);
        else if (msg.type == IPC_AUTH_CANCEL)
            handle_auth_cancel(conn, msg.u.cancel_id);
        else if (msg.type == IPC_TOKEN_REFUSED)
            handle_token_refused(conn, &msg.u.refused);
        else if (msg.type == IPC_AUDIT)
            audit_sink_push(conn->b->audit, &msg.u.audit);
        else if (msg.type == IPC_TLSRPT_PART)
            handle_tlsrpt_part(conn, &msg.u.tlsrpt_part);
        else
            handle_ready(conn, msg.u.worker_index);
        ipc_msg_wipe(&msg);
    }
    update_reading(conn);
}

static void on_worker_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    update_reading(arg);
}

static void on_worker_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct worker_conn *conn = arg;
    if (what & BEV_EVENT_ERROR)
        log_debug("worker %d: IPC connection error", conn->index);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        drop_worker(conn);
}

int broker_add_worker(struct broker *b, int fd, int index, void (*on_ready)(int index, void *arg),
                      void *arg)
{
    struct worker_conn *old = find_worker(b, index);
    if (old)
        drop_worker(old);
    if (evutil_make_socket_nonblocking(fd) != 0) {
        close(fd);
        return -1;
    }
    struct bufferevent *bev = bufferevent_socket_new(b->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        log_error("worker %d: cannot create the IPC connection", index);
        close(fd);
        return -1;
    }
    struct worker_conn *conn = mg_calloc(1, sizeof *conn);
    conn->b = b;
    conn->bev = bev;
    conn->index = index;
    conn->on_ready = on_ready;
    conn->on_ready_arg = arg;
    conn->next = b->workers;
    b->workers = conn;
    bufferevent_setcb(bev, on_worker_read, on_worker_write, on_worker_event, conn);
    bufferevent_setwatermark(bev, EV_READ, 0, WORKER_INPUT_MAX);
    bufferevent_setwatermark(bev, EV_WRITE, WORKER_OUTPUT_HIGH / 2, 0);
    bufferevent_enable(bev, EV_READ);
    return 0;
}

void broker_remove_worker(struct broker *b, int index)
{
    struct worker_conn *conn = find_worker(b, index);
    if (conn)
        drop_worker(conn);
}

/* ---- life cycle ---- */

static int verify_thread_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > VERIFY_THREADS_MAX ? VERIFY_THREADS_MAX : (int)n;
}

static int make_dummy_hash(struct broker *b)
{
    char pw[64];
    password_generate(pw, sizeof pw);
    int rc = password_hash(pw, strlen(pw), b->dummy_hash, sizeof b->dummy_hash);
    mg_wipe(pw, sizeof pw);
    return rc;
}

struct broker *broker_new(struct event_base *base, const struct config *cfg, struct store *st)
{
    struct broker *b = mg_calloc(1, sizeof *b);
    b->base = base;
    b->cfg = cfg;
    b->st = st;
    b->tokens = token_client_new(base, cfg->gateway.token_timeout_ms);
    b->cache = auth_cache_new(cfg->gateway.auth_cache_ttl_ms, AUTH_CACHE_MAX_ENTRIES);
    b->pool = verify_pool_new(base, verify_thread_count());
    b->guard = lockouts_new(&cfg->gateway, st);
    if (b->pool)
        verify_pool_set_precheck(b->pool, known_by_cache, b->cache);
    if (!b->tokens || !b->cache || !b->pool) {
        log_error("broker: cannot start the token client, auth cache or verify pool");
        broker_free(&b);
        return NULL;
    }
    char err[512];
    b->audit = audit_sink_new(base, cfg, st, err, sizeof err);
    if (!b->audit) {
        log_error("broker: %s", err);
        broker_free(&b);
        return NULL;
    }
    if (make_dummy_hash(b) != 0) {
        log_error("broker: cannot compute an Argon2id hash (out of memory?)");
        broker_free(&b);
        return NULL;
    }
    return b;
}

void broker_set_config(struct broker *b, const struct config *cfg)
{
    b->cfg = cfg;
    lockouts_configure(b->guard, &cfg->gateway);
    audit_sink_set_config(b->audit, cfg);
}

struct token_client *broker_token_client(struct broker *b)
{
    return b->tokens;
}

void broker_free(struct broker **bp)
{
    if (!bp || !*bp)
        return;
    struct broker *b = *bp;
    /* The pool first: after this no verification calls back. */
    verify_pool_free(&b->pool);
    while (b->jobs) {
        b->jobs->ticket = NULL; /* the pool is gone, and its tickets with it */
        cancel_job(b->jobs);
    }
    while (b->workers)
        drop_worker(b->workers);
    token_client_free(&b->tokens);
    auth_cache_free(&b->cache);
    lockouts_free(&b->guard);
    audit_sink_free(&b->audit);
    mg_wipe(b, sizeof *b);
    free(b);
    *bp = NULL;
}
