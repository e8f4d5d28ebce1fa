/* libcurl multi driven by libevent: the socket callback maps every curl socket to a libevent
 * event, the timer callback to one libevent timer; both feed curl_multi_socket_action and then
 * collect finished transfers. Nothing here blocks the loop (curl resolves names in a thread). */
#include "token_http.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "util.h"

#define RETRY_AFTER_MAX 64

struct sock_ctx {
    struct sock_ctx *prev, *next;
    struct token_http *th;
    curl_socket_t fd;
    struct event ev;
};

struct token_http_req {
    struct token_http_req *prev, *next;
    struct token_http *th;
    CURL *easy;
    struct curl_slist *headers;
    char *body;     /* the form body: holds the client secret */
    char *response; /* TOKEN_HTTP_MAX_BODY + 1 bytes: holds the access token on success */
    size_t response_len;
    int too_large;
    int have_retry_after;
    char retry_after[RETRY_AFTER_MAX];
    char error[CURL_ERROR_SIZE];
    uint64_t started_ms;
    token_http_cb cb;
    void *arg;
};

struct token_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    uint64_t timeout_ms;
    struct sock_ctx *socks;
    struct token_http_req *reqs;
};

/* ---- one request ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct token_http_req *req = userp;
    size_t n = size * nmemb;
    if (n > TOKEN_HTTP_MAX_BODY - req->response_len) {
        req->too_large = 1;
        return 0; /* makes curl abort with CURLE_WRITE_ERROR */
    }
    memcpy(req->response + req->response_len, data, n);
    req->response_len += n;
    return n;
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r' ||
                    (*s)[*len - 1] == '\n'))
        (*len)--;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct token_http_req *req = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        req->have_retry_after = 0; /* a new response (after 100 Continue): forget the old one */
    } else if (n > sizeof name - 1 && mg_ascii_ncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vlen = n - (sizeof name - 1);
        trim(&v, &vlen);
        if (vlen < sizeof req->retry_after) {
            memcpy(req->retry_after, v, vlen);
            req->retry_after[vlen] = '\0';
            req->have_retry_after = 1;
        }
    }
    return n;
}

static void req_unlink(struct token_http_req *req)
{
    struct token_http *th = req->th;
    if (req->prev)
        req->prev->next = req->next;
    else
        th->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
}

static void req_free(struct token_http_req *req)
{
    req_unlink(req);
    if (req->easy) {
        curl_multi_remove_handle(req->th->multi, req->easy);
        curl_easy_cleanup(req->easy);
    }
    curl_slist_free_all(req->headers);
    mg_free_secret(&req->body);
    mg_wipe(req->response, TOKEN_HTTP_MAX_BODY + 1);
    free(req->response);
    free(req);
}

static int setup_easy(struct token_http_req *req, const char *url, const char *ca_file)
{
    CURL *e = req->easy;
    req->headers = curl_slist_append(NULL, "Accept: application/json");
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB (signed assertions are). */
    if (req->headers)
        req->headers = curl_slist_append(req->headers, "Expect:");
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    /* https only, also for redirects (which are not followed anyway: never resend the secret). */
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    if (ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->th->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->th->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mailgate/" MAILGATE_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body)) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, req) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->error) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK;
    return bad || !req->headers ? -1 : 0;
}

struct token_http_req *token_http_post(struct token_http *th, const char *url, const char *ca_file,
                                       const char *body, token_http_cb cb, void *arg, char *error,
                                       size_t error_size)
{
    struct token_http_req *req = mg_calloc(1, sizeof *req);
    req->th = th;
    req->cb = cb;
    req->arg = arg;
    req->body = mg_strdup(body);
    req->response = mg_malloc(TOKEN_HTTP_MAX_BODY + 1);
    req->started_ms = mg_now_ms();
    req->next = th->reqs;
    if (th->reqs)
        th->reqs->prev = req;
    th->reqs = req;
    req->easy = curl_easy_init();
    if (!req->easy || setup_easy(req, url, ca_file) != 0) {
        mg_strlcpy(error, "cannot set up the HTTP request (libcurl)", error_size);
        req_free(req);
        return NULL;
    }
    CURLMcode mc = curl_multi_add_handle(th->multi, req->easy);
    if (mc != CURLM_OK) {
        mg_strlcpy(error, curl_multi_strerror(mc), error_size);
        curl_easy_cleanup(req->easy); /* not in the multi: no remove_handle */
        req->easy = NULL;
        req_free(req);
        return NULL;
    }
    return req;
}

void token_http_cancel(struct token_http_req *req)
{
    if (req)
        req_free(req);
}

/* A transfer ended: build the result, hand it over, then wipe everything. */
static void finish(struct token_http_req *req, CURLcode code)
{
    struct token_http_result res = {.transport_ok = code == CURLE_OK, .error = ""};
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &res.status);
    if (code != CURLE_OK)
        res.error = req->too_large  ? "token response larger than 64 KiB"
                    : req->error[0] ? req->error
                                    : curl_easy_strerror(code);
    req->response[req->response_len] = '\0';
    res.body = req->response;
    res.len = req->response_len;
    res.retry_after = req->have_retry_after ? req->retry_after : NULL;
    res.duration_ms = mg_now_ms() - req->started_ms;
    token_http_cb cb = req->cb;
    void *arg = req->arg;
    /* Out of the multi and the list before the callback, so that the callback may start new
     * requests or cancel others (but must not free the driver)... */
    curl_multi_remove_handle(req->th->multi, req->easy);
    req_unlink(req);
    cb(&res, arg);
    /* ...which is why only this request (already unlinked) is touched afterwards. */
    req->prev = req->next = NULL;
    curl_easy_cleanup(req->easy);
    curl_slist_free_all(req->headers);
    mg_free_secret(&req->body);
    mg_wipe(req->response, TOKEN_HTTP_MAX_BODY + 1);
    free(req->response);
    free(req);
}

static void collect_finished(struct token_http *th)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(th->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct token_http_req *req = NULL;
        CURLcode code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (req)
            finish(req, code);
    }
}

/* ---- libevent <-> libcurl glue ---- */

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct token_http *th = ((struct sock_ctx *)arg)->th; /* ctx may be freed by the action */
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(th->multi, fd, action, &running);
    collect_finished(th);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct token_http *th = arg;
    int running;
    curl_multi_socket_action(th->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect_finished(th);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct token_http *th = userp;
    if (timeout_ms < 0) {
        evtimer_del(th->timer);
        return 0;
    }
    /* Even a 0 timeout goes through the loop: curl must not be re-entered from here. */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    evtimer_add(th->timer, &tv);
    return 0;
}

static void sock_free(struct sock_ctx *ctx)
{
    struct token_http *th = ctx->th;
    event_del(&ctx->ev);
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        th->socks = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    free(ctx);
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct token_http *th = userp;
    struct sock_ctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx)
            sock_free(ctx);
        curl_multi_assign(th->multi, fd, NULL);
        return 0;
    }
    if (!ctx) {
        ctx = mg_calloc(1, sizeof *ctx);
        ctx->th = th;
        ctx->fd = fd;
        ctx->next = th->socks;
        if (th->socks)
            th->socks->prev = ctx;
        th->socks = ctx;
        curl_multi_assign(th->multi, fd, ctx);
    } else {
        event_del(&ctx->ev);
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    event_assign(&ctx->ev, th->base, fd, kind, on_socket_event, ctx);
    event_add(&ctx->ev, NULL);
    return 0;
}

/* ---- the driver ---- */

struct token_http *token_http_new(struct event_base *base, uint64_t timeout_ms)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    struct token_http *th = mg_calloc(1, sizeof *th);
    th->base = base;
    th->timeout_ms = timeout_ms ? timeout_ms : 15000;
    th->timer = evtimer_new(base, on_timer, th);
    th->multi = curl_multi_init();
    if (!th->timer || !th->multi) {
        token_http_free(&th);
        return NULL;
    }
    curl_multi_setopt(th->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(th->multi, CURLMOPT_SOCKETDATA, th);
    curl_multi_setopt(th->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(th->multi, CURLMOPT_TIMERDATA, th);
    return th;
}

void token_http_free(struct token_http **thp)
{
    struct token_http *th = *thp;
    if (!th)
        return;
    *thp = NULL;
    while (th->reqs)
        req_free(th->reqs);
    if (th->multi)
        curl_multi_cleanup(th->multi);
    /* Connections kept alive by the multi may still have events registered. */
    while (th->socks)
        sock_free(th->socks);
    if (th->timer)
        event_free(th->timer);
    free(th);
    curl_global_cleanup();
}
