/* What each HTTP request gets: routing by Host and path, and the answers (autoconfig.h,
 * mta_sts.h). Unknown hosts and paths get 404, bad input 400: never a redirect (RFC 8461 3.3
 * forbids them for the policy, and no client here needs one). The query string is not logged:
 * it holds the user's address. */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h> /* TAILQ_INIT for the query's evkeyvalq */

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "autoconfig.h"
#include "autodiscover_request.h"
#include "http.h"
#include "http_internal.h"
#include "log.h"
#include "mta_sts.h"
#include "tlsrpt_post.h"
#include "util.h"

static const char *const web_prefixes[] = {"mta-sts.", "autoconfig.", "autodiscover.", ""};

const struct domain_conf *http_domain_of_host(const struct config *cfg, const char *host,
                                              const char **prefix)
{
    for (size_t i = 0; i < MG_ARRAY_LEN(web_prefixes); i++) {
        size_t n = strlen(web_prefixes[i]);
        if (mg_ascii_ncasecmp(host, web_prefixes[i], n) != 0)
            continue;
        const struct domain_conf *d = config_domain(cfg, host + n);
        if (d) {
            *prefix = web_prefixes[i];
            return d;
        }
    }
    return NULL;
}

/* ---- answers ---- */

static void answer(struct evhttp_request *req, int code, const char *reason, const char *type,
                   const char *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, code, reason, out);
    if (out)
        evbuffer_free(out);
}

void http_fail(struct evhttp_request *req, int code, const char *reason, const char *why)
{
    char *body = mg_printf("%d %s: %s\n", code, reason, why);
    answer(req, code, reason, "text/plain; charset=utf-8", body);
    free(body);
}

void http_reply(struct evhttp_request *req, int code, const char *reason, const char *type,
                const char *body)
{
    answer(req, code, reason, type, body);
}

void http_reply_error(struct evhttp_request *req, int code, const char *reason, const char *why)
{
    http_fail(req, code, reason, why);
}

static void not_found(struct evhttp_request *req, const char *why)
{
    http_fail(req, HTTP_NOTFOUND, "Not Found", why);
}

static void bad_request(struct evhttp_request *req, const char *why)
{
    http_fail(req, HTTP_BADREQUEST, "Bad Request", why);
}

static void method_not_allowed(struct evhttp_request *req, const char *allow)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    http_fail(req, HTTP_BADMETHOD, "Method Not Allowed", "use another method");
}

static void answer_document(struct evhttp_request *req, char *doc, const char *type)
{
    if (!doc) {
        not_found(req, "this domain offers no mail server this format can describe");
        return;
    }
    answer(req, HTTP_OK, "OK", type, doc);
    free(doc);
}

/* ---- the request ---- */

struct request {
    struct evhttp_request *req;
    struct http_server *server;
    enum evhttp_cmd_type method;
    char host[HTTP_HOST_MAX + 1]; /* lower case, no port, no trailing dot; "" when none */
    const char *path;             /* not decoded: the paths served are plain ASCII */
    struct evkeyvalq query;
    char peer[IPC_ADDR_MAX]; /* for the log line */
    int deferred;            /* answered later, and logged then (POST /tlsrpt) */
};

static void read_host(struct request *r)
{
    const char *host = evhttp_request_get_host(r->req); /* Host header without its port */
    /* Only what a host name or an address literal holds: the name goes into the log. */
    if (!host || strlen(host) > HTTP_HOST_MAX ||
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
            strlen(host))
        return;
    mg_strlcpy(r->host, host, sizeof r->host);
    size_t len = strlen(r->host);
    if (len && r->host[len - 1] == '.')
        r->host[len - 1] = '\0';
    for (char *c = r->host; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
}

/* The domain of the address in query parameter `name`; answers 400/404 itself when NULL.
 * When the parameter is absent and fallback_host is set, the domain of the Host name. */
static const struct domain_conf *asked_domain(struct request *r, const char *name,
                                              const char **address, int fallback_host)
{
    *address = evhttp_find_header(&r->query, name);
    if (!*address && fallback_host) {
        const char *prefix;
        const struct domain_conf *d = http_domain_of_host(r->server->cfg, r->host, &prefix);
        if (!d)
            bad_request(r->req, "no emailaddress parameter");
        return d;
    }
    const char *domain = autoconfig_address_domain(*address);
    if (!domain) {
        bad_request(r->req, *address ? "not an e-mail address" : "no address parameter");
        return NULL;
    }
    const struct domain_conf *d = config_domain(r->server->cfg, domain);
    if (!d)
        not_found(r->req, "no such domain here");
    return d;
}

static void serve_thunderbird(struct request *r)
{
    const char *address;
    const struct domain_conf *d = asked_domain(r, "emailaddress", &address, 1);
    if (d) /* text/xml: Thunderbird parses nothing else */
        answer_document(r->req, autoconfig_thunderbird(d), "text/xml; charset=utf-8");
}

static void serve_mobileconfig(struct request *r)
{
    const char *address;
    const struct domain_conf *d = asked_domain(r, "email", &address, 0);
    if (d)
        answer_document(r->req, autoconfig_mobileconfig(d, address),
                        "application/x-apple-aspen-config");
}

static void serve_autodiscover(struct request *r)
{
    if (r->method != EVHTTP_REQ_POST) {
        method_not_allowed(r->req, "POST");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    struct autodiscover_request ad;
    switch (autodiscover_request_parse(body, len, &ad)) {
    case AUTODISCOVER_OK:
        break;
    case AUTODISCOVER_BAD_XML:
        bad_request(r->req, "the body is not a well-formed Autodiscover request");
        return;
    case AUTODISCOVER_NOT_REQUEST:
        bad_request(r->req, "no Autodiscover/Request/EMailAddress");
        return;
    case AUTODISCOVER_OTHER_SCHEMA:
        bad_request(r->req, "only the outlook/responseschema/2006a schema is answered");
        return;
    }
    const char *domain = autoconfig_address_domain(ad.email);
    const struct domain_conf *d = domain ? config_domain(r->server->cfg, domain) : NULL;
    if (!domain)
        bad_request(r->req, "EMailAddress is not an e-mail address");
    else if (!d || !d->autodiscover) /* off: Microsoft 365 answers for the domain */
        not_found(r->req, "no Autodiscover for this domain here");
    else
        answer_document(r->req, autoconfig_autodiscover(d, ad.email), "text/xml; charset=utf-8");
}

/* RFC 8461 3.3: only on mta-sts.DOMAIN, 200 with the policy or an error, never a redirect. */
static void serve_mta_sts(struct request *r, const struct domain_conf *d)
{
    if (strcmp(r->path, "/.well-known/mta-sts.txt") != 0) {
        not_found(r->req, "only /.well-known/mta-sts.txt is served on this host");
        return;
    }
    if (r->method == EVHTTP_REQ_POST) {
        method_not_allowed(r->req, "GET, HEAD");
        return;
    }
    char *policy = mta_sts_policy(d);
    if (!policy) {
        not_found(r->req, "no MTA-STS policy for this domain");
        return;
    }
    answer(r->req, HTTP_OK, "OK", "text/plain; charset=utf-8", policy);
    free(policy);
}

static int is_thunderbird_path(const char *path)
{
    return strcmp(path, "/mail/config-v1.1.xml") == 0 ||
           strcmp(path, "/.well-known/autoconfig/mail/config-v1.1.xml") == 0;
}

static void dispatch(struct request *r)
{
    if (tlsrpt_post_target(r->server->cfg, r->host, r->path)) {
        r->deferred = 1; /* logs itself */
        tlsrpt_post_serve(r->server, r->req, r->peer, r->host[0] ? r->host : "-", r->path);
        return;
    }
    /* The listener reads larger bodies only for TLS reports. */
    if (evbuffer_get_length(evhttp_request_get_input_buffer(r->req)) > HTTP_MAX_BODY_SIZE) {
        http_fail(r->req, HTTP_ENTITYTOOLARGE, "Payload Too Large", "the body is too large");
        return;
    }
    const char *prefix;
    const struct domain_conf *d = http_domain_of_host(r->server->cfg, r->host, &prefix);
    if (d && strcmp(prefix, "mta-sts.") == 0) {
        serve_mta_sts(r, d);
        return;
    }
    if (http_signin_route(r->server, r->req, r->host, r->path, &r->query))
        return;
    if (http_ops_route(r->server, r->req, r->path, r->method == EVHTTP_REQ_POST))
        return; /* /metrics, /healthz */
    /* Outlook spells the path in any case. */
    if (mg_ascii_casecmp(r->path, "/autodiscover/autodiscover.xml") == 0) {
        serve_autodiscover(r);
        return;
    }
    int thunderbird = is_thunderbird_path(r->path);
    if (!thunderbird && strcmp(r->path, "/email.mobileconfig") != 0) {
        not_found(r->req, "nothing here");
        return;
    }
    if (r->method == EVHTTP_REQ_POST)
        method_not_allowed(r->req, "GET, HEAD");
    else if (thunderbird)
        serve_thunderbird(r);
    else
        serve_mobileconfig(r);
}

static const char *method_name(enum evhttp_cmd_type m)
{
    return m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_HEAD ? "HEAD" : "POST";
}

void http_log_answer(const struct http_server *s, const char *peer, const char *host, int method,
                     const char *path, int status)
{
    log_info("http listener=%s client=%s host=%s %s %s status=%d", s->conf->name, peer, host,
             method_name((enum evhttp_cmd_type)method), path, status);
}

static void read_peer(struct request *r)
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(r->req), &peer, &port);
    mg_strlcpy(r->peer, peer ? peer : "?", sizeof r->peer);
}

void http_route(struct evhttp_request *req, void *arg)
{
    struct request r = {.req = req, .server = arg, .method = evhttp_request_get_command(req)};
    TAILQ_INIT(&r.query);
    read_host(&r);
    read_peer(&r);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    r.path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!r.path || !r.path[0])
        r.path = "/";
    if (!http_conn_admit(r.server, req))
        ; /* answered: too many connections from this address */
    else if (query && evhttp_parse_query_str(query, &r.query) != 0)
        bad_request(req, "malformed query string");
    else
        dispatch(&r);
    evhttp_clear_headers(&r.query);
    int status = evhttp_request_get_response_code(req);
    if (status) /* else the request waits for the broker: logged with its answer */
        http_log_request(r.server, req, r.host, r.path, status);
}

void http_log_request(const struct http_server *s, struct evhttp_request *req, const char *host,
                      const char *path, int status)
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn)
        evhttp_connection_get_peer(conn, &peer, &port);
    http_log_answer(s, peer ? peer : "?", host[0] ? host : "-", evhttp_request_get_command(req),
                    path, status);
}
