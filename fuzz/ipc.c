/* libFuzzer target: ipc_decode_body must never crash or over-read, and whatever it accepts must
 * render (a metrics report) and re-encode to exactly the same frame and decode to the same message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "audit_rec.h"
#include "ipc.h"
#include "metrics_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int encode(struct evbuffer *out, const struct ipc_msg *msg)
{
    switch (msg->type) {
    case IPC_WORKER_READY:
        return ipc_encode_ready(out, msg->u.worker_index);
    case IPC_AUTH_REQUEST:
        return ipc_encode_auth_request(out, &msg->u.req);
    case IPC_AUTH_RESPONSE:
        return ipc_encode_auth_response(out, &msg->u.res);
    case IPC_AUTH_CANCEL:
        return ipc_encode_auth_cancel(out, msg->u.cancel_id);
    case IPC_TOKEN_REFUSED:
        return ipc_encode_token_refused(out, &msg->u.refused);
    case IPC_AUDIT:
        return ipc_encode_audit(out, &msg->u.audit);
    case IPC_TICKET_KEYS:
        return ipc_encode_ticket_keys(out, &msg->u.tickets);
    case IPC_SIGNIN_START:
        return ipc_encode_signin_start(out, &msg->u.signin_start);
    case IPC_SIGNIN_FINISH:
        return ipc_encode_signin_finish(out, &msg->u.signin_finish);
    case IPC_SIGNIN_ANSWER:
        return ipc_encode_signin_answer(out, &msg->u.signin_answer);
    case IPC_PROTOLOG:
        return ipc_encode_protolog(out, msg->u.protolog.text, msg->u.protolog.len);
    case IPC_METRICS_SNAPSHOT:
        return ipc_encode_metrics_snapshot(out, &msg->u.snapshot);
    case IPC_METRICS_QUERY:
        return ipc_encode_metrics_query(out, msg->u.query_id);
    case IPC_METRICS_REPORT:
        return ipc_encode_metrics_report(out, &msg->u.report);
    case IPC_TLSRPT_PART:
        return ipc_encode_tlsrpt_part(out, &msg->u.tlsrpt_part);
    case IPC_TLSRPT_RESULT:
        return ipc_encode_tlsrpt_result(out, &msg->u.tlsrpt_result);
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ipc_msg msg, again;
    if (ipc_decode_body(data, size, &msg) != 1)
        return 0;
    /* The broker's judgement of an audit record must hold for any decodable one. */
    if (msg.type == IPC_AUDIT) {
        struct audit_fields f;
        if (audit_rec_valid(&msg.u.audit) == 0 && audit_rec_fields(&msg.u.audit, &f) != 0)
            abort();
    }
    struct evbuffer *buf = evbuffer_new();
    /* A report the strict decoder accepts always renders (GET /metrics). */
    if (msg.type == IPC_METRICS_REPORT && metrics_text_render(buf, &msg.u.report) != 0)
        abort();
    evbuffer_drain(buf, evbuffer_get_length(buf));
    if (encode(buf, &msg) != 0)
        abort(); /* everything decodable must be encodable */
    /* Strict decoding means the encoding is canonical: same bytes as the input. */
    if (evbuffer_get_length(buf) != size + 4)
        abort();
    unsigned char *frame = evbuffer_pullup(buf, -1);
    if (memcmp(frame + 4, data, size) != 0)
        abort();
    if (ipc_decode(buf, &again) != 1 || evbuffer_get_length(buf) != 0)
        abort();
    if (memcmp(&msg, &again, sizeof msg) != 0)
        abort();
    evbuffer_free(buf);
    ipc_msg_wipe(&msg);
    ipc_msg_wipe(&again);
    return 0;
}
