/* What the upstream SMTP servers support, learned before any client has logged in.
 *
 * A client's EHLO is answered by the gateway, but after AUTH every command goes to the upstream
 * unchanged; so the gateway may only advertise extensions the upstream really has. Each worker
 * keeps one entry per distinct smtp_server (host, port, TLS mode, CA file) and fills it with a
 * probe: connect, EHLO, STARTTLS or implicit TLS, EHLO, QUIT (the same dialog code as a login,
 * smtp_hello). The first SMTP session of a worker starts the probes; an entry is refreshed when
 * it is older than 10 minutes (and for free from every login's EHLO answer); a failed probe is
 * retried after 30 s. With several providers only what all of them support is advertised; while
 * a server is unknown (first probe running, or failed) nothing beyond AUTH is advertised. A
 * client's EHLO that arrives while a worker's first probes run is held back until they end
 * (bounded by the front's own short timer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "tls.h"
#include "util.h"

#define CAPS_REFRESH_MS (10 * 60 * 1000)
#define CAPS_RETRY_MS (30 * 1000)
#define PROBE_TIMEOUT_MS 15000

struct probe;

struct caps_entry {
    const struct provider_conf *p; /* the first provider using this server */
    struct smtp_ehlo_caps caps;
    int known;           /* caps are valid */
    int tried;           /* a probe (or a login) has ended at least once */
    uint64_t updated_ms; /* of the last success or failure */
    struct probe *probe; /* running */
};

struct probe {
    struct caps_entry *e;
    struct upstream *u;
    struct smtp_hello hello;
    int quitting; /* caps recorded, QUIT sent */
};

static struct {
    struct worker_ctx *w;
    struct caps_entry *entries;
    size_t n;
    struct smtp_caps_waiter *waiters;
} g;

static int same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_server(const struct provider_conf *a, const struct provider_conf *b)
{
    return same_string(a->smtp.host, b->smtp.host) && a->smtp.port == b->smtp.port &&
           a->smtp.tls == b->smtp.tls && same_string(a->ca_file, b->ca_file);
}

static struct caps_entry *entry_for(const struct provider_conf *p)
{
    for (size_t i = 0; i < g.n; i++) {
        if (same_server(g.entries[i].p, p))
            return &g.entries[i];
    }
    return NULL;
}

static void init(struct worker_ctx *w)
{
    if (g.w)
        return;
    g.w = w;
    g.entries = mg_calloc(w->cfg->n_providers ? w->cfg->n_providers : 1, sizeof *g.entries);
    for (size_t i = 0; i < w->cfg->n_providers; i++) {
        const struct provider_conf *p = &w->cfg->providers[i];
        if (provider_server(p, MG_PROTO_SMTP) && !entry_for(p)) /* none: no SMTP logins */
            g.entries[g.n++].p = p;
    }
}

/* The EHLO name of the probe: the first SMTP listener's hostname. */
static const char *probe_hostname(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].protocol == MG_PROTO_SMTP && cfg->listeners[i].hostname)
            return cfg->listeners[i].hostname;
    }
    return "localhost";
}

static int first_probe_running(void)
{
    for (size_t i = 0; i < g.n; i++) {
        if (!g.entries[i].tried && g.entries[i].probe)
            return 1;
    }
    return 0;
}

static void notify_waiters(void)
{
    if (first_probe_running())
        return;
    while (g.waiters) {
        struct smtp_caps_waiter *wt = g.waiters;
        smtp_caps_cancel(wt);
        wt->done(wt->arg);
    }
}

static void record(struct caps_entry *e, const struct smtp_ehlo_caps *caps)
{
    e->caps = *caps;
    e->known = 1;
    e->tried = 1;
    e->updated_ms = mg_now_ms();
}

/* ---- the probe ---- */

static void probe_end(struct probe *pr, const char *failure)
{
    struct caps_entry *e = pr->e;
    if (failure && !pr->quitting) {
        log_warn("smtp capabilities of %s:%u unknown: %s", e->p->smtp.host, e->p->smtp.port,
                 failure);
        e->tried = 1;
        e->known = 0;
        e->updated_ms = mg_now_ms();
    }
    e->probe = NULL;
    upstream_free(&pr->u);
    smtp_hello_reset(&pr->hello);
    free(pr);
    notify_waiters();
}

static void probe_on_ready(void *arg)
{
    struct probe *pr = arg;
    struct smtp_failure err;
    if (smtp_hello_on_ready(&pr->hello, pr->u, &err) == SMTP_HELLO_FAILED)
        probe_end(pr, err.detail);
}

static void probe_ready(struct probe *pr)
{
    struct caps_entry *e = pr->e;
    record(e, &pr->hello.caps);
    char lines[512], words[512];
    size_t n = 0;
    if (smtp_ehlo_format(&e->caps, lines, sizeof lines) < 0)
        lines[0] = '\0';
    for (const char *c = lines; *c; c++) {
        if (c[0] == '2' && (c == lines || c[-1] == '\n'))
            c += 3; /* "250-" */
        else if (*c != '\r')
            words[n++] = *c == '\n' ? ' ' : *c;
    }
    words[n] = '\0';
    log_debug("smtp capabilities of %s:%u: %sAUTH%s%s", e->p->smtp.host, e->p->smtp.port, words,
              e->caps.auth & SMTP_AUTH_XOAUTH2 ? " XOAUTH2" : "",
              e->caps.auth & SMTP_AUTH_OAUTHBEARER ? " OAUTHBEARER" : "");
    pr->quitting = 1;
    upstream_write(pr->u, "QUIT\r\n", 6);
    notify_waiters();
}

static void probe_on_input(void *arg)
{
    struct probe *pr = arg;
    for (;;) {
        struct smtp_failure err;
        if (pr->hello.step == SMTP_HELLO_TLS)
            return;
        int r = smtp_hello_read_reply(&pr->hello, pr->u, &err);
        if (r == 0)
            return;
        if (r < 0 || pr->quitting) {
            probe_end(pr, r < 0 ? err.detail : NULL); /* the 221, or anything: done */
            return;
        }
        switch (smtp_hello_on_reply(&pr->hello, pr->u, &err)) {
        case SMTP_HELLO_WAIT:
            break;
        case SMTP_HELLO_READY:
            probe_ready(pr);
            break;
        case SMTP_HELLO_FAILED:
            probe_end(pr, err.detail);
            return;
        }
    }
}

static void probe_on_failure(void *arg, enum upstream_failure f, const char *detail)
{
    struct probe *pr = arg;
    char why[IPC_REASON_MAX + 40];
    snprintf(why, sizeof why, "%s: %s", upstream_failure_name(f), detail);
    probe_end(pr, why);
}

static const struct upstream_handler probe_handler = {
    .on_ready = probe_on_ready,
    .on_input = probe_on_input,
    .on_failure = probe_on_failure,
};

static void start_probe(struct worker_ctx *w, struct caps_entry *e)
{
    SSL_CTX *ctx = tls_client_ctx(w->client_tls, e->p->ca_file);
    if (!ctx) {
        e->tried = 1;
        e->updated_ms = mg_now_ms();
        return;
    }
    struct probe *pr = mg_calloc(1, sizeof *pr);
    pr->e = e;
    smtp_hello_init(&pr->hello, probe_hostname(w->cfg));
    struct upstream_params params = {
        .base = w->base,
        .resolver = w->resolver,
        .tls_ctx = ctx,
        .server = &e->p->smtp,
        .resume_scope = e->p->name,
        .timeout_ms = PROBE_TIMEOUT_MS,
    };
    e->probe = pr;
    pr->u = upstream_connect(&params, &probe_handler, pr);
}

/* ---- interface ---- */

void smtp_caps_prime(struct worker_ctx *w)
{
    init(w);
    uint64_t now = mg_now_ms();
    for (size_t i = 0; i < g.n; i++) {
        struct caps_entry *e = &g.entries[i];
        uint64_t age = now - e->updated_ms;
        if (e->probe)
            continue;
        if (!e->tried || (e->known && age >= CAPS_REFRESH_MS) ||
            (!e->known && age >= CAPS_RETRY_MS))
            start_probe(w, e);
    }
}

int smtp_caps_get(struct worker_ctx *w, struct smtp_ehlo_caps *caps,
                  struct smtp_caps_waiter *waiter)
{
    init(w);
    memset(caps, 0, sizeof *caps);
    if (first_probe_running()) {
        if (waiter && !waiter->queued) {
            waiter->prev = NULL;
            waiter->next = g.waiters;
            if (g.waiters)
                g.waiters->prev = waiter;
            g.waiters = waiter;
            waiter->queued = 1;
        }
        return 0;
    }
    for (size_t i = 0; i < g.n; i++) {
        if (!g.entries[i].known) {
            memset(caps, 0, sizeof *caps);
            return 1; /* one server unknown: advertise nothing it might refuse */
        }
        if (i == 0)
            *caps = g.entries[i].caps;
        else
            smtp_ehlo_intersect(caps, &g.entries[i].caps);
    }
    return 1;
}

void smtp_caps_cancel(struct smtp_caps_waiter *waiter)
{
    if (!waiter->queued)
        return;
    if (waiter->prev)
        waiter->prev->next = waiter->next;
    else
        g.waiters = waiter->next;
    if (waiter->next)
        waiter->next->prev = waiter->prev;
    waiter->prev = waiter->next = NULL;
    waiter->queued = 0;
}

void smtp_caps_learned(struct worker_ctx *w, const char *provider,
                       const struct smtp_ehlo_caps *caps)
{
    init(w);
    const struct provider_conf *p = config_provider(w->cfg, provider);
    struct caps_entry *e = p ? entry_for(p) : NULL;
    if (!e)
        return;
    record(e, caps);
    notify_waiters();
}
