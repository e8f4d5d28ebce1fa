/* Reading the claims of a JWT access token, for showing them to an administrator (mailgate
 * token get). No signature check: the token comes straight from the token endpoint over TLS and
 * is only displayed. Pure: no I/O. */
#ifndef MG_JWT_CLAIMS_H
#define MG_JWT_CLAIMS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "proto.h"

/* base64url (RFC 4648 section 5), padding optional. Returns a malloc'd buffer (NUL-terminated,
 * *out_len without it) or NULL when the input is not base64url. */
unsigned char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len);

/* The payload (second segment) of a compact JWS "header.payload.signature" as a JSON object
 * (json_decref it), or NULL when the token is not shaped like that. */
json_t *jwt_claims_decode(const char *token, size_t len);

/* The granted permissions: the "roles" array of an app-only token (*kind = "roles", joined with
 * spaces) or the "scp" string of a delegated one (*kind = "scp"). malloc'd; NULL when the token
 * has neither. */
char *jwt_claims_permissions(const json_t *claims, const char **kind);

/* 1 when perm is one of the token's roles or scopes (exact, case-sensitive), else 0. */
int jwt_claims_has_permission(const json_t *claims, const char *perm);

/* The Exchange Online permission a protocol needs: app-only (roles) or delegated (scp). */
const char *jwt_required_permission(enum mg_proto proto, int delegated);

/* A numeric claim such as "exp" (integer or integral real); 0 and -1 when absent. */
int jwt_claims_time(const json_t *claims, const char *name, int64_t *out);

/* "2026-11-25T04:12:00Z (in 59 min)" / "(expired 3 min ago)"; always NUL-terminates buf. */
void jwt_format_expiry(int64_t exp, time_t now, char *buf, size_t size);

#endif
