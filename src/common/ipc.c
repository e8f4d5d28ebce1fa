/* IPC framing between workers and the broker (see ipc.h for the wire format).
 *
 * Encoding builds the whole frame in a stack buffer first so that a field that does not fit
 * leaves `out` untouched; the buffer is wiped afterwards because it may hold a password or a
 * token. Decoding reads through a bounds-checked cursor: every read either succeeds completely
 * or marks the cursor failed, so a truncated or lying frame can never read past its end. */
#include "ipc.h"

#include <string.h>

#include <event2/buffer.h>

#include "util.h"

#define IPC_LEN_PREFIX 4

/* ---- encoding ---- */

struct writer {
    unsigned char buf[IPC_LEN_PREFIX + IPC_MAX_FRAME];
    size_t len;
    int failed;
};

static void put_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->failed || n > sizeof w->buf - w->len) {
        w->failed = 1;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u8(struct writer *w, uint8_t v)
{
    put_bytes(w, &v, 1);
}

static void put_u32(struct writer *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    put_bytes(w, b, sizeof b);
}

static void put_u64(struct writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}

/* A string field: u16 length + bytes. `max` is the size of the C field including its NUL, so
 * at most max-1 bytes go on the wire (the decoder must be able to terminate it). */
static void put_bytes_field(struct writer *w, const char *s, size_t len, size_t max)
{
    if (len >= max || len > UINT16_MAX) {
        w->failed = 1;
        return;
    }
    unsigned char b[2] = {(unsigned char)(len >> 8), (unsigned char)len};
    put_bytes(w, b, sizeof b);
    put_bytes(w, s, len);
}

/* A C string field: must be terminated inside its array and is sent without the NUL. */
static void put_str(struct writer *w, const char *s, size_t max)
{
    put_bytes_field(w, s, strnlen(s, max), max);
}

static void begin_frame(struct writer *w, enum ipc_type type)
{
    w->len = IPC_LEN_PREFIX; /* the length is filled in by finish_frame */
    w->failed = 0;
    put_u8(w, (uint8_t)type);
}

static int finish_frame(struct writer *w, struct evbuffer *out)
{
    int rc = -1;
    size_t body = w->len - IPC_LEN_PREFIX;
    if (!w->failed && body <= IPC_MAX_FRAME) {
        w->buf[0] = (unsigned char)(body >> 24);
        w->buf[1] = (unsigned char)(body >> 16);
        w->buf[2] = (unsigned char)(body >> 8);
        w->buf[3] = (unsigned char)body;
        rc = evbuffer_add(out, w->buf, w->len) == 0 ? 0 : -1;
    }
    mg_wipe(w->buf, w->len);
    return rc;
}

int ipc_encode_ready(struct evbuffer *out, uint32_t worker_index)
{
    struct writer w;
    begin_frame(&w, IPC_WORKER_READY);
    put_u32(&w, worker_index);
    return finish_frame(&w, out);
}

int ipc_encode_auth_request(struct evbuffer *out, const struct ipc_auth_request *req)
{
    struct writer w;
    begin_frame(&w, IPC_AUTH_REQUEST);
    if ((unsigned)req->protocol > MG_PROTO_SMTP)
        w.failed = 1;
    put_u32(&w, req->id);
    put_u32(&w, (uint32_t)req->protocol);
    put_str(&w, req->listener, sizeof req->listener);
    put_str(&w, req->client_addr, sizeof req->client_addr);
    put_str(&w, req->user, sizeof req->user);
    put_bytes_field(&w, req->password, req->password_len, sizeof req->password);
    return finish_frame(&w, out);
}

int ipc_encode_auth_response(struct evbuffer *out, const struct ipc_auth_response *res)
{
    struct writer w;
    begin_frame(&w, IPC_AUTH_RESPONSE);
    if ((unsigned)res->status > AUTH_DISABLED)
        w.failed = 1;
    put_u32(&w, res->id);
    put_u32(&w, (uint32_t)res->status);
    put_str(&w, res->mailbox, sizeof res->mailbox);
    put_str(&w, res->provider, sizeof res->provider);
    put_bytes_field(&w, res->token, res->token_len, sizeof res->token);
    put_str(&w, res->reason, sizeof res->reason);
    if (res->delay_ms > IPC_DELAY_MAX_MS)
        w.failed = 1;
    put_u32(&w, res->delay_ms);
    put_u64(&w, res->token_id);
    put_str(&w, res->cause, sizeof res->cause);
    return finish_frame(&w, out);
}

int ipc_encode_auth_cancel(struct evbuffer *out, uint32_t request_id)
{
    struct writer w;
    begin_frame(&w, IPC_AUTH_CANCEL);
    put_u32(&w, request_id);
    return finish_frame(&w, out);
}

int ipc_encode_token_refused(struct evbuffer *out, const struct ipc_token_refused *ref)
{
    struct writer w;
    begin_frame(&w, IPC_TOKEN_REFUSED);
    if ((unsigned)ref->protocol > MG_PROTO_SMTP || ref->want_token > 1)
        w.failed = 1;
    put_u32(&w, ref->id);
    put_u32(&w, (uint32_t)ref->protocol);
    put_str(&w, ref->user, sizeof ref->user);
    put_u64(&w, ref->token_id);
    put_u32(&w, ref->want_token);
    return finish_frame(&w, out);
}

int ipc_encode_audit(struct evbuffer *out, const struct ipc_audit *a)
{
    struct writer w;
    begin_frame(&w, IPC_AUDIT);
    if (a->event > AUDIT_END || (unsigned)a->protocol > MG_PROTO_SMTP || a->ok > 1)
        w.failed = 1;
    put_u32(&w, a->event);
    put_u32(&w, (uint32_t)a->protocol);
    put_u32(&w, a->ok);
    put_str(&w, a->session, sizeof a->session);
    put_str(&w, a->listener, sizeof a->listener);
    put_str(&w, a->client_addr, sizeof a->client_addr);
    put_str(&w, a->client_id, sizeof a->client_id);
    put_str(&w, a->user, sizeof a->user);
    put_str(&w, a->mailbox, sizeof a->mailbox);
    put_str(&w, a->cause, sizeof a->cause);
    put_str(&w, a->detail, sizeof a->detail);
    put_u64(&w, a->duration_ms);
    put_u64(&w, a->bytes_in);
    put_u64(&w, a->bytes_out);
    return finish_frame(&w, out);
}

int ipc_encode_ticket_keys(struct evbuffer *out, const struct ipc_ticket_keys *k)
{
    if (k->count < 1 || k->count > IPC_TICKET_KEYS_MAX)
        return -1;
    struct writer w;
    begin_frame(&w, IPC_TICKET_KEYS);
    put_u32(&w, k->count);
    put_u32(&w, k->lifetime_s);
    for (uint32_t i = 0; i < k->count; i++)
        put_bytes(&w, &k->key[i], sizeof k->key[i]);
    return finish_frame(&w, out); /* wipes its buffer */
}

int ipc_encode_signin_start(struct evbuffer *out, const struct ipc_signin_start *m)
{
    struct writer w;
    begin_frame(&w, IPC_SIGNIN_START);
    put_u32(&w, m->id);
    put_str(&w, m->client_addr, sizeof m->client_addr);
    put_str(&w, m->user, sizeof m->user);
    return finish_frame(&w, out);
}

int ipc_encode_signin_finish(struct evbuffer *out, const struct ipc_signin_finish *m)
{
    struct writer w;
    begin_frame(&w, IPC_SIGNIN_FINISH);
    put_u32(&w, m->id);
    put_str(&w, m->client_addr, sizeof m->client_addr);
    put_str(&w, m->state, sizeof m->state);
    put_str(&w, m->browser, sizeof m->browser);
    put_str(&w, m->code, sizeof m->code);
    put_str(&w, m->error, sizeof m->error);
    put_str(&w, m->error_description, sizeof m->error_description);
    return finish_frame(&w, out);
}

int ipc_encode_signin_answer(struct evbuffer *out, const struct ipc_signin_answer *m)
{
    struct writer w;
    begin_frame(&w, IPC_SIGNIN_ANSWER);
    if (m->status > SIGNIN_FAILED)
        w.failed = 1;
    put_u32(&w, m->id);
    put_u32(&w, m->status);
    put_str(&w, m->location, sizeof m->location);
    put_str(&w, m->browser, sizeof m->browser);
    put_str(&w, m->user, sizeof m->user);
    put_str(&w, m->mailbox, sizeof m->mailbox);
    put_str(&w, m->password, sizeof m->password);
    put_str(&w, m->text, sizeof m->text);
    return finish_frame(&w, out);
}

int ipc_encode_protolog(struct evbuffer *out, const char *text, size_t len)
{
    struct writer w;
    begin_frame(&w, IPC_PROTOLOG);
    put_bytes_field(&w, text, len, IPC_PROTOLOG_MAX);
    return finish_frame(&w, out);
}

/* ---- operations counters (metrics.h) ---- */

static void put_u64s(struct writer *w, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_u64(w, v[i]);
}

static void put_u32s(struct writer *w, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_u32(w, v[i]);
}

static void put_histogram(struct writer *w, const struct metrics_histogram *h)
{
    put_u64s(w, h->buckets, METRICS_BUCKETS);
    put_u64(w, h->count);
    put_u64(w, h->sum_ms);
}

static void put_counters(struct writer *w, const struct metrics_counters *c)
{
    put_u64s(w, &c->logins[0][0], METRICS_PROTOCOLS * METRICS_LOGIN_RESULTS);
    put_u64(w, c->bytes_to_upstream);
    put_u64(w, c->bytes_to_client);
    put_histogram(w, &c->upstream_connect);
    put_histogram(w, &c->upstream_login);
    put_u64(w, c->http_refused);
    put_u64(w, c->dns_cache_hits);
    put_u64(w, c->dns_cache_misses);
}

int ipc_encode_metrics_snapshot(struct evbuffer *out, const struct metrics_snapshot *m)
{
    struct writer w;
    begin_frame(&w, IPC_METRICS_SNAPSHOT);
    if (m->draining > 1)
        w.failed = 1;
    put_u32(&w, m->worker_index);
    put_u32(&w, m->draining);
    put_u32s(&w, m->sessions_open, METRICS_PROTOCOLS);
    put_counters(&w, &m->c);
    return finish_frame(&w, out);
}

int ipc_encode_metrics_query(struct evbuffer *out, uint32_t id)
{
    struct writer w;
    begin_frame(&w, IPC_METRICS_QUERY);
    put_u32(&w, id);
    return finish_frame(&w, out);
}

int ipc_encode_metrics_report(struct evbuffer *out, const struct metrics_report *m)
{
    struct writer w;
    begin_frame(&w, IPC_METRICS_REPORT);
    if (m->healthy > 1 || m->n_workers > METRICS_WORKERS_MAX ||
        m->n_providers > METRICS_PROVIDERS_MAX)
        w.failed = 1;
    put_u32(&w, m->id);
    put_u32(&w, m->healthy);
    put_str(&w, m->health, sizeof m->health);
    put_counters(&w, &m->totals);
    put_u32(&w, m->n_workers);
    for (uint32_t i = 0; i < m->n_workers && !w.failed; i++) {
        put_u32(&w, m->workers[i].index);
        put_u32s(&w, m->workers[i].sessions_open, METRICS_PROTOCOLS);
    }
    put_u64(&w, m->token_cache_hits);
    put_u64(&w, m->argon2_queue);
    put_u64(&w, m->lockouts);
    put_u32(&w, m->n_providers);
    for (uint32_t i = 0; i < m->n_providers && !w.failed; i++) {
        put_str(&w, m->providers[i].name, sizeof m->providers[i].name);
        put_u64s(&w, m->providers[i].requests, METRICS_TOKEN_RESULTS);
    }
    return finish_frame(&w, out);
}

int ipc_encode_tlsrpt_part(struct evbuffer *out, const struct ipc_tlsrpt_part *p)
{
    struct writer w;
    begin_frame(&w, IPC_TLSRPT_PART);
    if (p->last > 1)
        w.failed = 1;
    put_u32(&w, p->id);
    put_u32(&w, p->last);
    put_bytes_field(&w, p->data, p->data_len, sizeof p->data);
    return finish_frame(&w, out);
}

int ipc_encode_tlsrpt(struct evbuffer *out, uint32_t id, const char *data, size_t len)
{
    static struct ipc_tlsrpt_part part; /* 16 KiB: not on the stack; workers are one thread */
    size_t off = 0;
    do {
        size_t n = len - off < IPC_TLSRPT_PART_MAX ? len - off : IPC_TLSRPT_PART_MAX;
        part.id = id;
        part.data_len = (uint32_t)n;
        memcpy(part.data, data + off, n);
        off += n;
        part.last = off == len;
        if (ipc_encode_tlsrpt_part(out, &part) != 0)
            return -1;
    } while (off < len);
    return 0;
}

int ipc_encode_tlsrpt_result(struct evbuffer *out, const struct ipc_tlsrpt_result *r)
{
    struct writer w;
    begin_frame(&w, IPC_TLSRPT_RESULT);
    if ((unsigned)r->result > TLSRPT_FAILED)
        w.failed = 1;
    put_u32(&w, r->id);
    put_u32(&w, (uint32_t)r->result);
    put_str(&w, r->reason, sizeof r->reason);
    return finish_frame(&w, out);
}

/* ---- decoding ---- */

struct reader {
    const unsigned char *p;
    size_t left;
    int failed;
};

static const unsigned char *take(struct reader *r, size_t n)
{
    if (r->failed || n > r->left) {
        r->failed = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t get_u32(struct reader *r)
{
    const unsigned char *b = take(r, 4);
    if (!b)
        return 0;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static uint64_t get_u64(struct reader *r)
{
    uint64_t hi = get_u32(r);
    return hi << 32 | get_u32(r);
}

/* Copies a length-prefixed field into dst[max] and terminates it. Returns the length. */
static size_t get_bytes_field(struct reader *r, char *dst, size_t max)
{
    const unsigned char *b = take(r, 2);
    size_t len = b ? (size_t)b[0] << 8 | b[1] : 0;
    if (len >= max)
        r->failed = 1;
    const unsigned char *data = take(r, len);
    if (!data)
        return 0;
    memcpy(dst, data, len);
    dst[len] = '\0';
    return len;
}

/* A text field: an embedded NUL would silently shorten it for every C consumer, so refuse. */
static void get_str(struct reader *r, char *dst, size_t max)
{
    size_t len = get_bytes_field(r, dst, max);
    if (!r->failed && memchr(dst, '\0', len))
        r->failed = 1;
}

static enum mg_proto get_protocol(struct reader *r)
{
    uint32_t protocol = get_u32(r);
    if (protocol > MG_PROTO_SMTP)
        r->failed = 1;
    return (enum mg_proto)protocol;
}

static void decode_ready(struct reader *r, struct ipc_msg *msg)
{
    msg->u.worker_index = get_u32(r);
}

static void decode_auth_request(struct reader *r, struct ipc_auth_request *req)
{
    req->id = get_u32(r);
    req->protocol = get_protocol(r);
    get_str(r, req->listener, sizeof req->listener);
    get_str(r, req->client_addr, sizeof req->client_addr);
    get_str(r, req->user, sizeof req->user);
    req->password_len = (uint32_t)get_bytes_field(r, req->password, sizeof req->password);
}

static void decode_auth_response(struct reader *r, struct ipc_auth_response *res)
{
    res->id = get_u32(r);
    uint32_t status = get_u32(r);
    if (status > AUTH_DISABLED)
        r->failed = 1;
    res->status = (enum auth_status)status;
    get_str(r, res->mailbox, sizeof res->mailbox);
    get_str(r, res->provider, sizeof res->provider);
    res->token_len = (uint32_t)get_bytes_field(r, res->token, sizeof res->token);
    get_str(r, res->reason, sizeof res->reason);
    res->delay_ms = get_u32(r);
    if (res->delay_ms > IPC_DELAY_MAX_MS)
        r->failed = 1;
    res->token_id = get_u64(r);
    get_str(r, res->cause, sizeof res->cause);
}

static void decode_token_refused(struct reader *r, struct ipc_token_refused *ref)
{
    ref->id = get_u32(r);
    ref->protocol = get_protocol(r);
    get_str(r, ref->user, sizeof ref->user);
    ref->token_id = get_u64(r);
    ref->want_token = get_u32(r);
    if (ref->want_token > 1)
        r->failed = 1;
}

static void decode_audit(struct reader *r, struct ipc_audit *a)
{
    a->event = get_u32(r);
    a->protocol = get_protocol(r);
    a->ok = get_u32(r);
    if (a->event > AUDIT_END || a->ok > 1)
        r->failed = 1;
    get_str(r, a->session, sizeof a->session);
    get_str(r, a->listener, sizeof a->listener);
    get_str(r, a->client_addr, sizeof a->client_addr);
    get_str(r, a->client_id, sizeof a->client_id);
    get_str(r, a->user, sizeof a->user);
    get_str(r, a->mailbox, sizeof a->mailbox);
    get_str(r, a->cause, sizeof a->cause);
    get_str(r, a->detail, sizeof a->detail);
    a->duration_ms = get_u64(r);
    a->bytes_in = get_u64(r);
    a->bytes_out = get_u64(r);
}

static void decode_ticket_keys(struct reader *r, struct ipc_ticket_keys *k)
{
    k->count = get_u32(r);
    k->lifetime_s = get_u32(r);
    if (k->count < 1 || k->count > IPC_TICKET_KEYS_MAX || k->lifetime_s < 1 ||
        k->lifetime_s > IPC_TICKET_LIFETIME_MAX) {
        r->failed = 1;
        return;
    }
    for (uint32_t i = 0; i < k->count; i++) {
        const unsigned char *p = take(r, sizeof k->key[i]);
        if (p)
            memcpy(&k->key[i], p, sizeof k->key[i]);
    }
}

static void decode_signin_start(struct reader *r, struct ipc_signin_start *m)
{
    m->id = get_u32(r);
    get_str(r, m->client_addr, sizeof m->client_addr);
    get_str(r, m->user, sizeof m->user);
}

static void decode_signin_finish(struct reader *r, struct ipc_signin_finish *m)
{
    m->id = get_u32(r);
    get_str(r, m->client_addr, sizeof m->client_addr);
    get_str(r, m->state, sizeof m->state);
    get_str(r, m->browser, sizeof m->browser);
    get_str(r, m->code, sizeof m->code);
    get_str(r, m->error, sizeof m->error);
    get_str(r, m->error_description, sizeof m->error_description);
}

static void decode_signin_answer(struct reader *r, struct ipc_signin_answer *m)
{
    m->id = get_u32(r);
    m->status = get_u32(r);
    if (m->status > SIGNIN_FAILED)
        r->failed = 1;
    get_str(r, m->location, sizeof m->location);
    get_str(r, m->browser, sizeof m->browser);
    get_str(r, m->user, sizeof m->user);
    get_str(r, m->mailbox, sizeof m->mailbox);
    get_str(r, m->password, sizeof m->password);
    get_str(r, m->text, sizeof m->text);
}

static int protolog_text_valid(const char *text, size_t len)
{
    if (len == 0 || text[len - 1] != '\n')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\n') || c == 0x7f)
            return 0;
    }
    return 1;
}

static void decode_protolog(struct reader *r, struct ipc_protolog *p)
{
    p->len = (uint32_t)get_bytes_field(r, p->text, sizeof p->text);
    if (!r->failed && !protolog_text_valid(p->text, p->len))
        r->failed = 1;
}

static void get_u64s(struct reader *r, uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = get_u64(r);
}

static void get_u32s(struct reader *r, uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = get_u32(r);
}

/* The buckets may not hold more observations than the count: the exposition's cumulative
 * buckets would otherwise exceed the +Inf bucket. */
static void get_histogram(struct reader *r, struct metrics_histogram *h)
{
    get_u64s(r, h->buckets, METRICS_BUCKETS);
    h->count = get_u64(r);
    h->sum_ms = get_u64(r);
    uint64_t in_buckets = 0;
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        if (h->buckets[i] > h->count - in_buckets) {
            r->failed = 1;
            return;
        }
        in_buckets += h->buckets[i];
    }
}

static void get_counters(struct reader *r, struct metrics_counters *c)
{
    get_u64s(r, &c->logins[0][0], METRICS_PROTOCOLS * METRICS_LOGIN_RESULTS);
    c->bytes_to_upstream = get_u64(r);
    c->bytes_to_client = get_u64(r);
    get_histogram(r, &c->upstream_connect);
    get_histogram(r, &c->upstream_login);
    c->http_refused = get_u64(r);
    c->dns_cache_hits = get_u64(r);
    c->dns_cache_misses = get_u64(r);
}

static void decode_metrics_snapshot(struct reader *r, struct metrics_snapshot *m)
{
    m->worker_index = get_u32(r);
    m->draining = get_u32(r);
    if (m->draining > 1)
        r->failed = 1;
    get_u32s(r, m->sessions_open, METRICS_PROTOCOLS);
    get_counters(r, &m->c);
}

/* A count that says how many entries follow: never more than the array holds. */
static uint32_t get_count(struct reader *r, uint32_t max)
{
    uint32_t n = get_u32(r);
    if (n > max) {
        r->failed = 1;
        return 0;
    }
    return n;
}

static void decode_metrics_report(struct reader *r, struct metrics_report *m)
{
    m->id = get_u32(r);
    m->healthy = get_u32(r);
    if (m->healthy > 1)
        r->failed = 1;
    get_str(r, m->health, sizeof m->health);
    get_counters(r, &m->totals);
    m->n_workers = get_count(r, METRICS_WORKERS_MAX);
    for (uint32_t i = 0; i < m->n_workers && !r->failed; i++) {
        m->workers[i].index = get_u32(r);
        get_u32s(r, m->workers[i].sessions_open, METRICS_PROTOCOLS);
    }
    m->token_cache_hits = get_u64(r);
    m->argon2_queue = get_u64(r);
    m->lockouts = get_u64(r);
    m->n_providers = get_count(r, METRICS_PROVIDERS_MAX);
    for (uint32_t i = 0; i < m->n_providers && !r->failed; i++) {
        get_str(r, m->providers[i].name, sizeof m->providers[i].name);
        get_u64s(r, m->providers[i].requests, METRICS_TOKEN_RESULTS);
    }
}

static void decode_tlsrpt_part(struct reader *r, struct ipc_tlsrpt_part *p)
{
    p->id = get_u32(r);
    p->last = get_u32(r);
    if (p->last > 1)
        r->failed = 1;
    p->data_len = (uint32_t)get_bytes_field(r, p->data, sizeof p->data);
}

static void decode_tlsrpt_result(struct reader *r, struct ipc_tlsrpt_result *res)
{
    res->id = get_u32(r);
    uint32_t result = get_u32(r);
    if (result > TLSRPT_FAILED)
        r->failed = 1;
    res->result = (enum tlsrpt_result)result;
    get_str(r, res->reason, sizeof res->reason);
}

int ipc_decode_body(const unsigned char *body, size_t len, struct ipc_msg *msg)
{
    memset(msg, 0, sizeof *msg);
    if (len == 0 || len > IPC_MAX_FRAME)
        return -1;
    struct reader r = {.p = body + 1, .left = len - 1, .failed = 0};
    msg->type = (enum ipc_type)body[0];
    switch (body[0]) {
    case IPC_WORKER_READY:
        decode_ready(&r, msg);
        break;
    case IPC_AUTH_REQUEST:
        decode_auth_request(&r, &msg->u.req);
        break;
    case IPC_AUTH_RESPONSE:
        decode_auth_response(&r, &msg->u.res);
        break;
    case IPC_AUTH_CANCEL:
        msg->u.cancel_id = get_u32(&r);
        break;
    case IPC_TOKEN_REFUSED:
        decode_token_refused(&r, &msg->u.refused);
        break;
    case IPC_AUDIT:
        decode_audit(&r, &msg->u.audit);
        break;
    case IPC_TICKET_KEYS:
        decode_ticket_keys(&r, &msg->u.tickets);
        break;
    case IPC_SIGNIN_START:
        decode_signin_start(&r, &msg->u.signin_start);
        break;
    case IPC_SIGNIN_FINISH:
        decode_signin_finish(&r, &msg->u.signin_finish);
        break;
    case IPC_SIGNIN_ANSWER:
        decode_signin_answer(&r, &msg->u.signin_answer);
        break;
    case IPC_PROTOLOG:
        decode_protolog(&r, &msg->u.protolog);
        break;
    case IPC_METRICS_SNAPSHOT:
        decode_metrics_snapshot(&r, &msg->u.snapshot);
        break;
    case IPC_METRICS_QUERY:
        msg->u.query_id = get_u32(&r);
        break;
    case IPC_METRICS_REPORT:
        decode_metrics_report(&r, &msg->u.report);
        break;
    case IPC_TLSRPT_PART:
        decode_tlsrpt_part(&r, &msg->u.tlsrpt_part);
        break;
    case IPC_TLSRPT_RESULT:
        decode_tlsrpt_result(&r, &msg->u.tlsrpt_result);
        break;
    default:
        r.failed = 1;
    }
    if (r.failed || r.left != 0) {
        ipc_msg_wipe(msg);
        return -1;
    }
    return 1;
}

int ipc_decode(struct evbuffer *in, struct ipc_msg *msg)
{
    unsigned char prefix[IPC_LEN_PREFIX];
    memset(msg, 0, sizeof *msg);
    if (evbuffer_copyout(in, prefix, sizeof prefix) != (ev_ssize_t)sizeof prefix)
        return 0;
    uint32_t len = (uint32_t)prefix[0] << 24 | (uint32_t)prefix[1] << 16 |
                   (uint32_t)prefix[2] << 8 | (uint32_t)prefix[3];
    /* Judge the announced length before waiting for the bytes: never buffer an oversize frame. */
    if (len == 0 || len > IPC_MAX_FRAME)
        return -1;
    size_t total = IPC_LEN_PREFIX + (size_t)len;
    if (evbuffer_get_length(in) < total)
        return 0;
    /* Decode in place from a contiguous view and wipe it there, so the evbuffer's own copy of
     * a password or token does not linger in freed chains. */
    unsigned char *frame = evbuffer_pullup(in, (ev_ssize_t)total);
    if (!frame)
        return -1;
    int rc = ipc_decode_body(frame + IPC_LEN_PREFIX, len, msg);
    mg_wipe(frame, total);
    evbuffer_drain(in, total);
    return rc;
}

void ipc_msg_wipe(struct ipc_msg *msg)
{
    mg_wipe(msg, sizeof *msg);
}
