/* SASL pieces the gateway needs: base64, PLAIN (RFC 4616) and LOGIN from clients, XOAUTH2 and
 * OAUTHBEARER (RFC 7628) to upstreams. */
#ifndef MG_SASL_H
#define MG_SASL_H

#include <stddef.h>

#include "ipc.h"

/* Standard base64 with padding. Returns the encoded length (out NUL-terminated) or -1 if outlen
 * is too small (needs 4*ceil(len/3)+1). */
long b64_encode(const void *in, size_t len, char *out, size_t outlen);
/* Strict decoding: the standard alphabet, correct padding, no whitespace, length a multiple of 4.
 * Returns the decoded length or -1 (invalid, or does not fit). An empty input decodes to 0. */
long b64_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

struct sasl_plain {
    char authzid[IPC_USER_MAX];
    char authcid[IPC_USER_MAX];
    char passwd[IPC_PASSWORD_MAX];
    size_t passwd_len;
};

/* Decodes the PLAIN message "authzid NUL authcid NUL passwd". authcid and passwd must be
 * non-empty, no further NUL, each field must fit. Returns 0 or -1. */
int sasl_plain_decode(const unsigned char *msg, size_t len, struct sasl_plain *out);
/* The same from base64; "=" means an empty initial response (which is an error for PLAIN). */
int sasl_plain_decode_b64(const char *b64, size_t len, struct sasl_plain *out);
void sasl_plain_wipe(struct sasl_plain *p);

/* AUTH LOGIN (draft-murchison-sasl-login): one field (user name or password) as base64.
 * Decodes strictly into out (NUL-terminated); the field must be non-empty, contain no NUL and
 * fit in outlen-1 bytes. Returns its length, or -1 (out is then wiped). */
long sasl_login_decode_b64(const char *b64, size_t len, char *out, size_t outlen);

/* Builds base64("user=" user "\x01auth=Bearer " token "\x01\x01"). Refuses (returns -1) a user or
 * token containing \x01, CR, LF or NUL, or an empty one, or when out is too small. Returns the
 * encoded length. The unencoded intermediate is wiped. */
long sasl_xoauth2_encode(const char *user, const char *token, size_t token_len, char *out,
                         size_t outlen);
/* The buffer sasl_xoauth2_encode() needs (with the NUL). */
size_t sasl_xoauth2_size(const char *user, size_t token_len);

/* Builds the OAUTHBEARER initial response (RFC 7628 3.1), base64 of
 * "n,a=" mailbox ",\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01",
 * with ',' and '=' in the mailbox escaped as "=2C" and "=3D" (RFC 5801). Refuses what
 * sasl_xoauth2_encode() refuses (in mailbox, host and token). */
long sasl_oauthbearer_encode(const char *mailbox, const char *host, unsigned port,
                             const char *token, size_t token_len, char *out, size_t outlen);
/* The buffer sasl_oauthbearer_encode() needs (with the NUL), an upper bound. */
size_t sasl_oauthbearer_size(const char *mailbox, const char *host, size_t token_len);

/* Decodes a server's error challenge to XOAUTH2 or OAUTHBEARER (base64 JSON such as
 * {"status":"401","schemes":"bearer","scope":"..."}) into printable text for the log.
 * Always NUL-terminates out; on undecodable input writes a short note. */
void sasl_describe_error(const char *b64, size_t len, char *out, size_t outlen);

#endif
