/* The shared parts of the upstream SASL login (see login_dialog.h). */
#include "login_dialog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "util.h"

/* ---- server lines ---- */

void server_lines_start(struct server_lines *l, size_t max_len, unsigned max_count)
{
    server_lines_stop(l);
    l->buf = mg_malloc(max_len + 1);
    l->max_len = max_len;
    l->max_count = max_count;
}

void server_lines_stop(struct server_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof *l);
}

int server_lines_read(struct server_lines *l, struct evbuffer *in, size_t *len, char *why,
                      size_t whylen)
{
    int r = session_take_line(in, l->buf, l->max_len + 1, len);
    if (r < 0) {
        snprintf(why, whylen, "line longer than %zu bytes", l->max_len);
        return -1;
    }
    if (r > 0 && ++l->count > l->max_count) {
        snprintf(why, whylen, "more than %u lines", l->max_count);
        return -1;
    }
    return r;
}

int session_upstream_line(struct session *s, struct server_lines *l, size_t *len)
{
    char why[64];
    int r = server_lines_read(l, upstream_input(s->upstream), len, why, sizeof why);
    if (r < 0)
        session_upstream_failed(s, UPSTREAM_PROTOCOL_ERROR, why);
    return r;
}

/* ---- the SASL exchange ---- */

void login_sasl_say(struct session *s, const char *before, const char *after)
{
    upstream_send(s->upstream, before);
    upstream_send(s->upstream, session_sasl_mechanism(s));
    upstream_send(s->upstream, after);
}

int login_sasl_build(struct session *s, struct login_sasl *x)
{
    login_sasl_reset(x);
    size_t size = session_sasl_response_size(s) + 2; /* and CRLF */
    char *b64 = mg_malloc(size);
    long n = session_sasl_response(s, b64, size - 2);
    if (n < 0) {
        mg_wipe(b64, size);
        free(b64);
        session_upstream_failedf(s, UPSTREAM_PROTOCOL_ERROR,
                                 "cannot build %s (bad mailbox or token)",
                                 session_sasl_mechanism(s));
        return -1;
    }
    x->b64 = b64;
    x->size = size;
    x->len = (size_t)n;
    return 0;
}

int login_sasl_pending(const struct login_sasl *x)
{
    return x->b64 != NULL;
}

static void forget_response(struct login_sasl *x)
{
    if (x->b64) {
        mg_wipe(x->b64, x->size);
        free(x->b64);
    }
    x->b64 = NULL;
    x->size = x->len = 0;
}

/* Bytes handed to the connection cannot be wiped; our copy is, at once. */
void login_sasl_send(struct session *s, struct login_sasl *x)
{
    if (!x->b64)
        return;
    memcpy(x->b64 + x->len, "\r\n", 2);
    upstream_write(s->upstream, x->b64, x->len + 2);
    forget_response(x);
}

void login_sasl_challenge(struct session *s, struct login_sasl *x, const char *b64, size_t len)
{
    char text[LOGIN_CHALLENGE_MAX];
    sasl_describe_error(b64, len, text, sizeof text);
    if (text[0])
        snprintf(x->note, sizeof x->note, " challenge: %s", text);
    else
        x->note[0] = '\0';
    upstream_send(s->upstream, s->sasl == MG_SASL_OAUTHBEARER ? "AQ==\r\n" : "\r\n");
}

const char *login_sasl_note(const struct login_sasl *x)
{
    return x->note;
}

void login_sasl_reset(struct login_sasl *x)
{
    forget_response(x);
    x->note[0] = '\0';
}
