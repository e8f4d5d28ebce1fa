/* c-ares on a select() loop (dns_lookup.h). The CLI is single-threaded and asks a dozen
 * questions, so a plain loop over ares_fds/ares_timeout is enough: no event library. */
#include "dns_lookup.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "util.h"

/* Per try; with two tries a dead resolver is given up after about 3 s, within the deadline. */
#define DNS_TRY_TIMEOUT_MS 1500
#define DNS_TRIES 2

struct dns_batch {
    ares_channel channel;
    size_t pending;
};

static void strlist_add(struct mg_strlist *l, char *s)
{
    l->v = mg_realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = s;
}

/* A name as the DNS gives it, without the root's trailing dot; a byte no host name has is
 * shown as '?', so a hostile zone cannot put control sequences on the admin's terminal. */
static char *host_name(const char *name)
{
    size_t n = strlen(name);
    char *host = mg_strndup(name, n && name[n - 1] == '.' ? n - 1 : n);
    for (char *c = host; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*", *c))
            *c = '?';
    return host;
}

struct dns_batch *dns_batch_new(const char *resolver, char *err, size_t err_size)
{
    static int initialised;
    if (!initialised && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        mg_strlcpy(err, "cannot initialise c-ares", err_size);
        return NULL;
    }
    initialised = 1;
    struct ares_options opts = {.flags = ARES_FLAG_NOSEARCH,
                                .timeout = DNS_TRY_TIMEOUT_MS,
                                .tries = DNS_TRIES,
                                .lookups = (char *)"b"};
    struct dns_batch *b = mg_calloc(1, sizeof *b);
    int rc =
        ares_init_options(&b->channel, &opts,
                          ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) {
        snprintf(err, err_size, "cannot set up the resolver: %s", ares_strerror(rc));
        free(b);
        return NULL;
    }
    if (resolver && (strchr(resolver, ',') ||
                     (rc = ares_set_servers_ports_csv(b->channel, resolver)) != ARES_SUCCESS)) {
        snprintf(err, err_size, "--resolver %s: expected IP or IP:PORT ([IPv6]:PORT)", resolver);
        dns_batch_free(&b);
        return NULL;
    }
    return b;
}

/* Joins each record's character-strings: a sender reads them as one string (RFC 7208 3.3
 * style, which RFC 8461 and RFC 8460 follow). */
static void take_txt(struct dns_answer *a, const unsigned char *abuf, int alen)
{
    struct ares_txt_ext *txt = NULL;
    if ((a->status = ares_parse_txt_reply_ext(abuf, alen, &txt)) != ARES_SUCCESS)
        return;
    for (struct ares_txt_ext *t = txt; t; t = t->next) {
        if (t->record_start || a->n_txt == 0) {
            a->txt = mg_realloc(a->txt, (a->n_txt + 1) * sizeof *a->txt);
            a->txt[a->n_txt++] = (struct dns_txt){.data = mg_strdup(""), .len = 0};
        }
        struct dns_txt *r = &a->txt[a->n_txt - 1];
        r->data = mg_realloc(r->data, r->len + t->length + 1);
        memcpy(r->data + r->len, t->txt, t->length);
        r->len += t->length;
        r->data[r->len] = '\0';
    }
    ares_free_data(txt);
}

static void take_mx(struct dns_answer *a, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL;
    if ((a->status = ares_parse_mx_reply(abuf, alen, &mx)) != ARES_SUCCESS)
        return;
    for (struct ares_mx_reply *m = mx; m; m = m->next)
        strlist_add(&a->hosts, host_name(m->host));
    ares_free_data(mx);
}

static void take_srv(struct dns_answer *a, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *srv = NULL;
    if ((a->status = ares_parse_srv_reply(abuf, alen, &srv)) != ARES_SUCCESS)
        return;
    for (struct ares_srv_reply *s = srv; s; s = s->next) {
        a->srv = mg_realloc(a->srv, (a->n_srv + 1) * sizeof *a->srv);
        a->srv[a->n_srv++] = (struct dns_srv){.priority = s->priority,
                                              .weight = s->weight,
                                              .port = s->port,
                                              .target = host_name(s->host)};
    }
    ares_free_data(srv);
}

struct question {
    struct dns_batch *batch;
    struct dns_answer *answer;
};

static void on_query(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    MG_UNUSED(timeouts);
    struct question *q = arg;
    struct dns_answer *a = q->answer;
    a->status = status == ARES_ECANCELLED || status == ARES_EDESTRUCTION ? ARES_ETIMEOUT : status;
    if (status == ARES_SUCCESS) {
        if (a->kind == DNS_TXT)
            take_txt(a, abuf, alen);
        else if (a->kind == DNS_MX)
            take_mx(a, abuf, alen);
        else
            take_srv(a, abuf, alen);
    }
    q->batch->pending--;
    free(q);
}

static void add_address(struct dns_answer *a, const struct sockaddr *sa)
{
    char text[INET6_ADDRSTRLEN];
    const void *raw = sa->sa_family == AF_INET6
                          ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                          : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, raw, text, sizeof text))
        return;
    for (size_t i = 0; i < a->addrs.n; i++)
        if (strcmp(a->addrs.v[i], text) == 0)
            return;
    strlist_add(&a->addrs, mg_strdup(text));
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    MG_UNUSED(timeouts);
    struct question *q = arg;
    struct dns_answer *a = q->answer;
    a->status = status == ARES_ECANCELLED || status == ARES_EDESTRUCTION ? ARES_ETIMEOUT : status;
    for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n; n = n->ai_next)
        add_address(a, n->ai_addr);
    if (a->status == ARES_SUCCESS && a->addrs.n == 0)
        a->status = ARES_ENODATA;
    if (res)
        ares_freeaddrinfo(res);
    q->batch->pending--;
    free(q);
}

void dns_batch_ask(struct dns_batch *b, enum dns_kind kind, const char *name,
                   struct dns_answer *out)
{
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->name = mg_strdup(name);
    out->status = ARES_ETIMEOUT;
    struct question *q = mg_calloc(1, sizeof *q);
    *q = (struct question){.batch = b, .answer = out};
    b->pending++;
    if (kind == DNS_ADDR) {
        struct ares_addrinfo_hints hints = {.ai_family = AF_UNSPEC, .ai_flags = ARES_AI_NOSORT};
        ares_getaddrinfo(b->channel, name, NULL, &hints, on_addrinfo, q);
        return;
    }
    static const int types[] = {[DNS_TXT] = ns_t_txt, [DNS_MX] = ns_t_mx, [DNS_SRV] = ns_t_srv};
    ares_query(b->channel, name, ns_c_in, types[kind], on_query, q);
}

void dns_batch_run(struct dns_batch *b, uint64_t deadline_ms)
{
    for (uint64_t now; b->pending && (now = mg_now_ms()) < deadline_ms;) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        int nfds = ares_fds(b->channel, &rd, &wr);
        uint64_t left = deadline_ms - now;
        struct timeval max = {.tv_sec = (time_t)(left / 1000),
                              .tv_usec = (suseconds_t)(left % 1000) * 1000};
        struct timeval tv, *wait = ares_timeout(b->channel, &max, &tv);
        select(nfds, &rd, &wr, NULL, wait);
        ares_process(b->channel, &rd, &wr);
    }
    if (b->pending)
        ares_cancel(b->channel); /* each open question is answered ARES_ECANCELLED */
}

void dns_batch_free(struct dns_batch **b)
{
    if (!*b)
        return;
    ares_destroy((*b)->channel);
    free(*b);
    *b = NULL;
}

void dns_answer_free(struct dns_answer *a)
{
    for (size_t i = 0; i < a->n_txt; i++)
        free(a->txt[i].data);
    free(a->txt);
    for (size_t i = 0; i < a->n_srv; i++)
        free(a->srv[i].target);
    free(a->srv);
    dns_strlist_free(&a->hosts);
    dns_strlist_free(&a->addrs);
    free(a->name);
    memset(a, 0, sizeof *a);
}

int dns_answer_missing(const struct dns_answer *a)
{
    return a->status == ARES_ENOTFOUND || a->status == ARES_ENODATA;
}

const char *dns_answer_error(const struct dns_answer *a)
{
    switch (a->status) {
    case ARES_SUCCESS:
        return "ok";
    case ARES_ENOTFOUND:
        return "no such name (NXDOMAIN)";
    case ARES_ENODATA:
        return "no record of this type";
    case ARES_ETIMEOUT:
        return "no answer from the resolver within the time limit";
    case ARES_ESERVFAIL:
        return "the resolver failed (SERVFAIL)";
    case ARES_EREFUSED:
        return "the resolver refused the query";
    case ARES_ECONNREFUSED:
        return "the resolver cannot be reached";
    default:
        return ares_strerror(a->status);
    }
}
