/* Private to the token client: non-blocking HTTPS POSTs with libcurl multi, driven by a
 * libevent loop (socket and timer callbacks, the "hiper" pattern). Knows nothing of OAuth. */
#ifndef MG_TOKEN_HTTP_H
#define MG_TOKEN_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct token_http;
struct token_http_req;

#define TOKEN_HTTP_MAX_BODY (64 * 1024) /* larger answers are a failure, never buffered */

/* What came back. Pointers are valid only during the callback; the body is wiped after it. */
struct token_http_result {
    int transport_ok;  /* 0: no complete HTTP answer (connect, TLS, timeout, oversize) */
    const char *error; /* transport failure text when !transport_ok, else "" */
    long status;       /* HTTP status, 0 when none was received */
    const char *body;  /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
    const char *retry_after; /* header value, NULL when absent */
    uint64_t duration_ms;
};

typedef void (*token_http_cb)(const struct token_http_result *res, void *arg);

/* timeout_ms bounds one whole request (connect included). */
struct token_http *token_http_new(struct event_base *base, uint64_t timeout_ms);
/* Aborts requests still in flight without calling their callbacks. */
void token_http_free(struct token_http **th);

/* POSTs the form body (application/x-www-form-urlencoded) to an https:// url. The body is
 * copied and the copy wiped when done. ca_file may be NULL (system trust store). cb runs later
 * from the event loop, never from inside this call. Returns NULL when the request could not
 * even be set up (then cb is never called); error then holds a short reason. */
struct token_http_req *token_http_post(struct token_http *th, const char *url, const char *ca_file,
                                       const char *body, token_http_cb cb, void *arg, char *error,
                                       size_t error_size);
/* Aborts one request; its callback will not be called. */
void token_http_cancel(struct token_http_req *req);

#endif
