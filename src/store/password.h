/* Local passwords: Argon2id hashes (libargon2) and generated passwords. */
#ifndef MG_PASSWORD_H
#define MG_PASSWORD_H

#include <stddef.h>

#define PASSWORD_HASH_MAX 256
#define PASSWORD_MAX 1024 /* longest local password accepted anywhere */

/* Hashes with Argon2id (t=3, m=64 MiB, p=1, 16-byte salt, 32-byte tag) into out as the encoded
 * string. Returns 0 or -1. */
int password_hash(const char *pw, size_t len, char *out, size_t outlen);
/* Returns 1 when pw matches, 0 when it does not, -1 when the encoded hash is unusable. */
int password_verify(const char *encoded, const char *pw, size_t len);
/* A strong random password: 24 characters from an unambiguous alphabet (about 140 bits). */
void password_generate(char *out, size_t outlen);

#endif
