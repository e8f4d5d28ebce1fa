/* Sending login audit records (session_audit.h). A record is fire-and-forget: the broker never
 * answers, and when the broker does not read (its queue to us already holds AUDIT_IPC_HIGH
 * bytes) the record is dropped rather than growing the worker's memory without bound. */
#include "session_audit.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "audit_rec.h"
#include "log.h"
#include "session.h"
#include "util.h"

#define AUDIT_IPC_HIGH (1u << 20)

void session_set_client_id(struct session *s, const char *id, size_t len)
{
    if (len >= sizeof s->client_id)
        len = sizeof s->client_id - 1;
    memcpy(s->client_id, id, len);
    s->client_id[len] = '\0';
    audit_text_clean(s->client_id); /* may end in a cut UTF-8 sequence: becomes '?' */
}

static void send_record(struct session *s, struct ipc_audit *a)
{
    struct worker_ctx *w = s->w;
    a->protocol = s->ops->protocol;
    mg_strlcpy(a->session, s->id, sizeof a->session);
    mg_strlcpy(a->listener, s->listener->conf->name, sizeof a->listener);
    mg_strlcpy(a->client_addr, s->client_addr, sizeof a->client_addr);
    mg_strlcpy(a->client_id, s->client_id, sizeof a->client_id);
    mg_strlcpy(a->user, s->user, sizeof a->user);
    mg_strlcpy(a->mailbox, s->mailbox, sizeof a->mailbox);
    /* What the client typed may be anything; the broker accepts only clean text. */
    audit_text_clean(a->user);
    audit_text_clean(a->mailbox);
    if (!w->ipc)
        return;
    struct evbuffer *out = bufferevent_get_output(w->ipc);
    if (evbuffer_get_length(out) > AUDIT_IPC_HIGH || ipc_encode_audit(out, a) != 0)
        log_warn("session=%s audit record dropped (broker link busy)", s->id);
}

void session_audit_login(struct session *s, const char *cause, const char *reason,
                         uint64_t duration_ms)
{
    struct ipc_audit a;
    memset(&a, 0, sizeof a);
    a.event = AUDIT_LOGIN;
    a.ok = strcmp(cause, "ok") == 0;
    mg_strlcpy(a.cause, cause, sizeof a.cause);
    audit_detail_of(cause, reason, a.detail, sizeof a.detail);
    a.duration_ms = duration_ms;
    send_record(s, &a);
}

void session_audit_end(struct session *s, uint64_t bytes_in, uint64_t bytes_out,
                       uint64_t duration_ms)
{
    struct ipc_audit a;
    memset(&a, 0, sizeof a);
    a.event = AUDIT_END;
    a.ok = 1;
    mg_strlcpy(a.cause, "ok", sizeof a.cause);
    a.duration_ms = duration_ms;
    a.bytes_in = bytes_in;
    a.bytes_out = bytes_out;
    send_record(s, &a);
}
