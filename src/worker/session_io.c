/* Client I/O of the session core for protocols: writing replies within the login-phase budget
 * (session_io.h) and reading lines. */
#include "session_io.h"

#include <stdarg.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

int session_output_full(const struct session *s)
{
    return s->client && evbuffer_get_length(bufferevent_get_output(s->client)) > CLIENT_OUTPUT_MAX;
}

void session_wait_for_output(struct session *s)
{
    s->state = SESSION_OUTPUT_WAIT;
    bufferevent_disable(s->client, EV_READ);
}

/* Called after every reply: the protocol's command loop ends at the state change, so at most
 * one command's replies go over the bound. */
static void check_output_budget(struct session *s)
{
    if (s->state == SESSION_PRELOGIN && session_output_full(s))
        session_wait_for_output(s);
}

int session_password_allowed(const struct session *s)
{
    return s->client_tls || s->listener->conf->login_type == MG_LOGIN_PLAINTEXT;
}

/* ---- replies ---- */

void session_write(struct session *s, const void *data, size_t len)
{
    if (!s->client)
        return;
    bufferevent_write(s->client, data, len);
    check_output_budget(s);
}

static void client_vprintf(struct session *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void client_vprintf(struct session *s, const char *fmt, va_list ap)
{
    if (!s->client)
        return;
    evbuffer_add_vprintf(bufferevent_get_output(s->client), fmt, ap);
    check_output_budget(s);
}

void session_printf(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client_vprintf(s, fmt, ap);
    va_end(ap);
}

void session_reject(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client_vprintf(s, fmt, ap);
    va_end(ap);
    session_bad_command(s);
}

/* ---- reading ---- */

struct evbuffer *session_input(struct session *s)
{
    return bufferevent_get_input(s->client);
}

int session_take_line(struct evbuffer *in, char *buf, size_t size, size_t *len)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0) {
        if (evbuffer_get_length(in) < size)
            return 0;
        evbuffer_drain(in, evbuffer_get_length(in));
        return -2;
    }
    size_t n = (size_t)eol.pos;
    if (n >= size) {
        evbuffer_drain(in, n + eol_len);
        return -1;
    }
    evbuffer_remove(in, buf, n);
    evbuffer_drain(in, eol_len);
    buf[n] = '\0';
    *len = n;
    return 1;
}

int session_skip_line(struct session *s)
{
    if (!s->skipping_line)
        return 1;
    struct evbuffer *in = session_input(s);
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    size_t part = eol.pos < 0 ? evbuffer_get_length(in) : (size_t)eol.pos;
    evbuffer_drain(in, eol.pos < 0 ? part : part + eol_len);
    s->skipping_line = eol.pos < 0;
    for (s->skipped += part; s->skipped >= s->skip_limit; s->skipped -= s->skip_limit) {
        if (session_bad_command(s) != 0)
            return 0;
    }
    return !s->skipping_line;
}

int session_read_line(struct session *s, char *buf, size_t size, size_t *len)
{
    if (!session_skip_line(s))
        return 0;
    int r = session_take_line(session_input(s), buf, size, len);
    if (r == -2) {
        s->skipping_line = 1;
        s->skip_limit = size;
        s->skipped = 0;
    }
    return r < 0 ? -1 : r;
}
