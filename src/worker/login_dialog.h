/* The parts of an upstream SASL login (XOAUTH2 or OAUTHBEARER, by the provider's sasl =) that
 * every protocol shares (session core): server lines bounded in length and number, our initial
 * response (a secret, sent at the server's go-ahead) and the server's error challenge. The
 * protocol files only say the words. */
#ifndef MG_LOGIN_DIALOG_H
#define MG_LOGIN_DIALOG_H

#include <stddef.h>

#include "session.h"
#include "upstream.h"

#define LOGIN_REMOTE_TEXT_MAX 200 /* of the server's text kept for the log */
#define LOGIN_CHALLENGE_MAX 256   /* decoded error challenge, for the log */

/* For "%.*s" of remote text in a log detail: at most LOGIN_REMOTE_TEXT_MAX bytes. */
static inline int login_text_len(size_t len)
{
    return (int)(len < LOGIN_REMOTE_TEXT_MAX ? len : LOGIN_REMOTE_TEXT_MAX);
}

/* Server lines during a login (or SMTP's capability probe). */
struct server_lines {
    char *buf; /* max_len + 1, while talking to the server */
    size_t max_len;
    unsigned count, max_count;
};

void server_lines_start(struct server_lines *l, size_t max_len, unsigned max_count);
/* Frees the buffer; the lines are not counted any more. */
void server_lines_stop(struct server_lines *l);
/* Takes the next line out of in into l->buf (NUL-terminated, length in *len). Returns 1, 0 (no
 * complete line yet) or -1: longer than max_len or more than max_count lines; why says which. */
int server_lines_read(struct server_lines *l, struct evbuffer *in, size_t *len, char *why,
                      size_t whylen);
/* The same from the session's upstream; on -1 the login has failed already. */
int session_upstream_line(struct session *s, struct server_lines *l, size_t *len);

struct login_sasl {
    char *b64; /* secret: our response with room for CRLF, until it is sent */
    size_t size, len;
    /* " challenge: <decoded JSON>" once the server sent an error challenge, else "". */
    char note[LOGIN_CHALLENGE_MAX + 16];
};

/* Sends before + the mechanism's name + after to the server, e.g. "AUTH " "OAUTHBEARER" "\r\n". */
void login_sasl_say(struct session *s, const char *before, const char *after);
/* Builds our initial response (base64 of mailbox and token, for OAUTHBEARER also the server;
 * the session's token is wiped).
 * Returns 0, or -1 when it cannot be built: the login has failed then. */
int login_sasl_build(struct session *s, struct login_sasl *x);
/* Built and not yet sent. */
int login_sasl_pending(const struct login_sasl *x);
/* Sends the response as one line to the upstream and wipes it. */
void login_sasl_send(struct session *s, struct login_sasl *x);
/* The server answered our response with an error challenge (its base64 text): decodes it for
 * the log and answers it, so that the server's failure follows: with an empty line for XOAUTH2,
 * with the dummy response "AQ==" (base64 of \x01) for OAUTHBEARER (RFC 7628 3.2.3). */
void login_sasl_challenge(struct session *s, struct login_sasl *x, const char *b64, size_t len);
/* For the log detail of a refusal: " challenge: ..." or "". */
const char *login_sasl_note(const struct login_sasl *x);
/* Forgets everything; wipes the response when it was not sent. */
void login_sasl_reset(struct login_sasl *x);

#endif
