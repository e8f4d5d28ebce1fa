/* The sign-in page, worker side (README, "Connecting a mailbox with the sign-in page"). The
 * worker holds no secret beyond one request: GET /oauth/start and GET /oauth/callback become
 * IPC requests to the broker (src/broker/signin.c), and the request waits, unanswered, for the
 * broker's IPC_SIGNIN_ANSWER, which it turns into a redirect (302, with the cookie that binds
 * the sign-in to this browser) or a plain page. Pages are never cached, never framed and send
 * no referrer (the callback's URL held the code). The query string is never logged. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "autoconfig.h"
#include "cookie.h"
#include "http_internal.h"
#include "ipc.h"
#include "log.h"
#include "session.h"
#include "util.h"

#define COOKIE_NAME "mailgate_signin"
#define COOKIE_ATTRIBUTES "; Path=/oauth/; HttpOnly; SameSite=Lax"
#define COOKIE_MAX_AGE_S 600 /* the broker's record lives as long */
/* Requests of this worker waiting for the broker: beyond, 503 at once (bounded memory). */
#define PENDING_MAX 256

struct pending {
    struct pending *next;
    struct http_server *server;
    struct evhttp_request *req;
    uint32_t id;
    char host[HTTP_HOST_MAX + 1];
    const char *path; /* a literal: one of the two paths */
};

/* One worker is one process with one loop: the requests waiting for the broker, across its
 * HTTP listeners. */
static struct pending *waiting;
static size_t n_waiting;

/* ---- pages ---- */

static int secure_cookie(const struct http_server *s)
{
    const char *url = s->cfg->gateway.public_url;
    return s->tls || (url && strncmp(url, "https://", 8) == 0);
}

static void page_headers(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
}

static void set_cookie(struct evhttp_request *req, const struct http_server *s, const char *value)
{
    char *cookie = value[0] ? mg_printf(COOKIE_NAME "=%s; Max-Age=%d" COOKIE_ATTRIBUTES "%s", value,
                                        COOKIE_MAX_AGE_S, secure_cookie(s) ? "; Secure" : "")
                            : mg_printf(COOKIE_NAME "=; Max-Age=0" COOKIE_ATTRIBUTES "%s",
                                        secure_cookie(s) ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    free(cookie);
}

static void wipe_page(const void *data, size_t len, void *extra)
{
    MG_UNUSED(extra);
    mg_wipe((void *)data, len);
    free((void *)data);
}

/* A plain HTML page: a title and paragraphs, every text escaped. paras ends with NULL. */
static void send_page(struct evhttp_request *req, int code, const char *reason, const char *title,
                      const char *const *paras)
{
    char *html = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&html, &len);
    if (f) {
        fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"referrer\" content=\"no-referrer\"><title>",
              f);
        autoconfig_xml_text(f, title);
        fputs("</title></head>\n<body>\n<h1 id=\"title\">", f);
        autoconfig_xml_text(f, title);
        fputs("</h1>\n", f);
        for (size_t i = 0; paras[i]; i++) {
            fprintf(f, "<p id=\"p%zu\">", i);
            autoconfig_xml_text(f, paras[i]);
            fputs("</p>\n", f);
        }
        fputs("</body></html>\n", f);
        fclose(f);
    }
    page_headers(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/html; charset=utf-8");
    /* The page may show a password: evhttp sends it from our memory, wiped once sent. */
    struct evbuffer *out = evbuffer_new();
    if (out && html && evbuffer_add_reference(out, html, len, wipe_page, NULL) == 0)
        html = NULL;
    evhttp_send_reply(req, code, reason, out);
    if (out)
        evbuffer_free(out);
    if (html)
        wipe_page(html, len, NULL);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case HTTP_SERVUNAVAIL:
        return "Service Unavailable";
    case HTTP_NOTFOUND:
        return "Not Found";
    case HTTP_BADMETHOD:
        return "Method Not Allowed";
    default:
        return "Bad Request";
    }
}

static void send_problem(struct evhttp_request *req, int code, const char *text)
{
    const char *paras[] = {text, NULL};
    send_page(req, code, reason_phrase(code), "Sign-in not completed", paras);
}

static void send_redirect(struct evhttp_request *req, const struct http_server *s,
                          const struct ipc_signin_answer *a)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", a->location);
    set_cookie(req, s, a->browser);
    const char *paras[] = {"Continue to your provider's sign-in page.", NULL};
    send_page(req, 302, "Found", "Sign in", paras);
}

static void send_connected(struct evhttp_request *req, const struct http_server *s,
                           const struct ipc_signin_answer *a)
{
    set_cookie(req, s, "");
    char *title = mg_printf("Mailbox %s connected", a->mailbox);
    char *done = mg_printf("The mail gateway may now open the mailbox %s for the user %s. You "
                           "can close this page.",
                           a->mailbox, a->user);
    char *pw = a->password[0]
                   ? mg_printf("Your gateway password (user %s): %s", a->user, a->password)
                   : NULL;
    const char *paras[] = {done,
                           pw ? pw
                              : "Mail programs log in to the gateway with the password you "
                                "were given for it.",
                           pw ? "Write it down now: it is shown only this once and is stored "
                                "only as a hash. Mail programs log in with it."
                              : NULL,
                           NULL};
    send_page(req, HTTP_OK, "OK", title, paras);
    if (pw)
        mg_free_secret(&pw);
    free(done);
    free(title);
}

static void send_not_allowed(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    send_problem(req, HTTP_BADMETHOD, "Open this page with a link, not a form.");
}

/* ---- waiting for the broker ---- */

static void log_reply(const struct pending *p, int status)
{
    http_log_request(p->server, p->req, p->host, p->path, status);
}

static struct pending *take_waiting(uint32_t id)
{
    for (struct pending **link = &waiting; *link; link = &(*link)->next) {
        struct pending *p = *link;
        if (p->id == id) {
            *link = p->next;
            n_waiting--;
            return p;
        }
    }
    return NULL;
}

void http_signin_answer(const struct ipc_signin_answer *a)
{
    struct pending *p = take_waiting(a->id);
    if (!p)
        return;
    int code = a->status == SIGNIN_REDIRECT    ? 302
               : a->status == SIGNIN_CONNECTED ? HTTP_OK
               : a->status == SIGNIN_REFUSED   ? HTTP_BADREQUEST
                                               : HTTP_SERVUNAVAIL;
    log_reply(p, code);
    if (a->status == SIGNIN_REDIRECT)
        send_redirect(p->req, p->server, a);
    else if (a->status == SIGNIN_CONNECTED)
        send_connected(p->req, p->server, a);
    else
        send_problem(p->req, code, a->text);
    free(p);
}

void http_signin_drop(struct http_server *s)
{
    for (struct pending **link = &waiting; *link;) {
        struct pending *p = *link;
        if (p->server != s) {
            link = &p->next;
            continue;
        }
        *link = p->next;
        n_waiting--;
        send_problem(p->req, HTTP_SERVUNAVAIL, "The gateway is restarting: try again.");
        free(p);
    }
}

/* Queues the request for the broker's answer (its id in *id); on failure answers 503 itself. */
static int wait_for_broker(struct http_server *s, struct evhttp_request *req, const char *host,
                           const char *path, uint32_t *id)
{
    struct worker_ctx *w = s->w;
    if (!w || !w->ipc || n_waiting >= PENDING_MAX) {
        send_problem(req, HTTP_SERVUNAVAIL, "The gateway is busy: try again in a minute.");
        return -1;
    }
    struct pending *p = mg_calloc(1, sizeof *p);
    *p = (struct pending){
        .next = waiting, .server = s, .req = req, .id = ++w->next_request_id, .path = path};
    mg_strlcpy(p->host, host, sizeof p->host);
    waiting = p;
    n_waiting++;
    *id = p->id;
    return 0;
}

static void encoding_failed(uint32_t id)
{
    struct pending *p = take_waiting(id);
    if (p) {
        send_problem(p->req, HTTP_SERVUNAVAIL, "The gateway is busy: try again in a minute.");
        free(p);
    }
}

/* ---- the two requests ---- */

static void peer_of(struct evhttp_request *req, char *out, size_t size)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
    /* As the mail sessions write it: "[v6]:port" (mg_addr_host reads it back). */
    int v6 = host && strchr(host, ':');
    snprintf(out, size, "%s%s%s:%u", v6 ? "[" : "", host ? host : "?", v6 ? "]" : "",
             (unsigned)port);
}

/* Copies a query value; -1 when it is too long for its IPC field (answered 400). */
static int query_value(const struct evkeyvalq *q, const char *name, char *out, size_t size)
{
    const char *v = evhttp_find_header(q, name);
    out[0] = '\0';
    return v && mg_strlcpy(out, v, size) >= size ? -1 : 0;
}

static void start(struct http_server *s, struct evhttp_request *req, const char *host,
                  const struct evkeyvalq *q)
{
    struct ipc_signin_start m = {0};
    if (query_value(q, "user", m.user, sizeof m.user) != 0 || !m.user[0]) {
        send_problem(req, HTTP_BADREQUEST,
                     "This sign-in link names no user: use the link you were given.");
        return;
    }
    peer_of(req, m.client_addr, sizeof m.client_addr);
    if (wait_for_broker(s, req, host, "/oauth/start", &m.id) == 0 &&
        ipc_encode_signin_start(bufferevent_get_output(s->w->ipc), &m) != 0)
        encoding_failed(m.id);
}

static void finish(struct http_server *s, struct evhttp_request *req, const char *host,
                   const struct evkeyvalq *q)
{
    struct ipc_signin_finish m = {0};
    const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie");
    http_cookie_value(cookie, COOKIE_NAME, m.browser, sizeof m.browser);
    if (query_value(q, "state", m.state, sizeof m.state) != 0 ||
        query_value(q, "code", m.code, sizeof m.code) != 0 ||
        query_value(q, "error", m.error, sizeof m.error) != 0) {
        send_problem(req, HTTP_BADREQUEST,
                     "The provider's answer is not one this page understands. Start the sign-in "
                     "again.");
        mg_wipe(&m, sizeof m);
        return;
    }
    /* Only its AADSTS code is read: a longer description is cut, not refused. */
    const char *description = evhttp_find_header(q, "error_description");
    mg_strlcpy(m.error_description, description ? description : "", sizeof m.error_description);
    peer_of(req, m.client_addr, sizeof m.client_addr);
    if (wait_for_broker(s, req, host, "/oauth/callback", &m.id) == 0 &&
        ipc_encode_signin_finish(bufferevent_get_output(s->w->ipc), &m) != 0)
        encoding_failed(m.id);
    mg_wipe(&m, sizeof m);
}

int http_signin_route(struct http_server *s, struct evhttp_request *req, const char *host,
                      const char *path, const struct evkeyvalq *query)
{
    int is_start = strcmp(path, "/oauth/start") == 0;
    if (!is_start && strcmp(path, "/oauth/callback") != 0)
        return 0;
    if (!s->cfg->gateway.public_url)
        send_problem(req, HTTP_NOTFOUND, "There is no sign-in page here.");
    else if (evhttp_request_get_command(req) == EVHTTP_REQ_POST)
        send_not_allowed(req);
    else if (is_start)
        start(s, req, host, query);
    else
        finish(s, req, host, query);
    return 1;
}
