/* Remembered password verifications (as Dovecot's auth cache): a password verified once with
 * Argon2id is remembered as HMAC-SHA256(per-process random key, stored_hash NUL password) for a
 * TTL, so steady-state logins cost microseconds. The stored hash is part of the key, so a
 * password change or a deleted user (different or no hash) never matches an old entry. */
#ifndef MG_AUTHCACHE_H
#define MG_AUTHCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Thread-safe: the verify pool's threads check it too. */
struct auth_cache;

struct auth_cache *auth_cache_new(uint64_t ttl_ms, size_t max_entries);
void auth_cache_free(struct auth_cache **c);
/* 1 when this (user, stored hash) has a remembered password equal to pw and not expired. */
int auth_cache_check(struct auth_cache *c, const char *user, const char *stored_hash,
                     const char *pw, size_t len, uint64_t now_ms);
void auth_cache_remember(struct auth_cache *c, const char *user, const char *stored_hash,
                         const char *pw, size_t len, uint64_t now_ms);
void auth_cache_forget(struct auth_cache *c, const char *user);
size_t auth_cache_size(const struct auth_cache *c);

#endif
