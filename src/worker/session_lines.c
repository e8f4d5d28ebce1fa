/* Reading client and server lines with a length limit (see session.h): an overlong line is
 * dropped whole, the part that arrived at once and the tail as it comes, so that its tail is
 * never read as a command of its own. */
#include <event2/buffer.h>

#include "session.h"

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
