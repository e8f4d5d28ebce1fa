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
    put_u64(&w, a->duration_ms);
    put_u64(&w, a->bytes_in);
    put_u64(&w, a->bytes_out);
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
    a->duration_ms = get_u64(r);
    a->bytes_in = get_u64(r);
    a->bytes_out = get_u64(r);
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
