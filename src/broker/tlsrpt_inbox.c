/* TLS reports from the workers into the store (tlsrpt_inbox.h). */
#include "tlsrpt_inbox.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store.h"
#include "store_tlsrpt.h"
#include "tlsrpt.h"
#include "util.h"

void tlsrpt_inbox_clear(struct tlsrpt_inbox *in)
{
    free(in->buf);
    memset(in, 0, sizeof *in);
}

static void append(struct tlsrpt_inbox *in, const struct ipc_tlsrpt_part *p)
{
    if (in->too_large || p->data_len > TLSRPT_MAX_NORMALISED - in->len) {
        in->too_large = 1;
        return;
    }
    in->buf = mg_realloc(in->buf, in->len + p->data_len + 1);
    memcpy(in->buf + in->len, p->data, p->data_len);
    in->len += p->data_len;
}

static void store_report(struct store *st, const struct tlsrpt_report *r,
                         struct ipc_tlsrpt_result *res)
{
    enum store_status s = store_tlsrpt_add(st, r, (int64_t)time(NULL), "http");
    if (s == STORE_OK) {
        res->result = TLSRPT_STORED;
        log_info("tlsrpt: stored report \"%s\" from \"%s\" (%zu policies, %lld dropped)",
                 r->report_id, r->organization, r->n_policies, (long long)r->dropped);
    } else if (s == STORE_EXISTS) {
        res->result = TLSRPT_DUPLICATE;
        mg_strlcpy(res->reason, "a report with this report-id is stored already",
                   sizeof res->reason);
    } else {
        res->result = TLSRPT_FAILED;
        mg_strlcpy(res->reason, "the report cannot be stored now", sizeof res->reason);
        log_error("tlsrpt: cannot store report \"%s\": %s", r->report_id, store_last_error(st));
    }
}

/* The whole report: parsed again (the worker is not trusted either), then stored. */
static void finish(struct tlsrpt_inbox *in, struct store *st, struct ipc_tlsrpt_result *res)
{
    struct tlsrpt_report r;
    if (in->too_large) {
        res->result = TLSRPT_REFUSED;
        mg_strlcpy(res->reason, "the normalised report is too large", sizeof res->reason);
        log_warn("tlsrpt: a worker sent a report over %d bytes", TLSRPT_MAX_NORMALISED);
    } else if (tlsrpt_parse(in->buf ? in->buf : "", in->len, &r, res->reason, sizeof res->reason) !=
               TLSRPT_OK) {
        res->result = TLSRPT_REFUSED;
        log_warn("tlsrpt: a worker sent a report the broker refuses: %s", res->reason);
        tlsrpt_free(&r);
    } else {
        store_report(st, &r, res);
        tlsrpt_free(&r);
    }
}

int tlsrpt_inbox_add(struct tlsrpt_inbox *in, struct store *st, const struct ipc_tlsrpt_part *p,
                     struct ipc_tlsrpt_result *res)
{
    if (in->active && in->id != p->id)
        tlsrpt_inbox_clear(in);
    in->active = 1;
    in->id = p->id;
    append(in, p);
    if (!p->last)
        return 0;
    memset(res, 0, sizeof *res);
    res->id = p->id;
    finish(in, st, res);
    tlsrpt_inbox_clear(in);
    return 1;
}
