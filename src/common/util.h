/* Small helpers shared by every part of mailgate. */
#ifndef MG_UTIL_H
#define MG_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MG_UNUSED(x) ((void)(x))

/* Allocation that never returns NULL: a mail gateway that runs out of memory aborts loudly
 * instead of limping on with half-initialised sessions. */
void *mg_malloc(size_t size);
void *mg_calloc(size_t n, size_t size);
void *mg_realloc(void *p, size_t size);
char *mg_strdup(const char *s);
char *mg_strndup(const char *s, size_t n);
char *mg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe memory that held a secret (explicit_bzero: never optimised away). */
void mg_wipe(void *p, size_t len);
/* Wipe a NUL-terminated secret string and free it; sets *s to NULL. */
void mg_free_secret(char **s);
/* Keeps the pages under [p, p+len) out of core dumps (MADV_DONTDUMP) and, where the memlock
 * limit allows, out of swap (mlock). Best effort, never undone: the pages may hold other heap
 * data too, which merely shares the protection. For key material the broker keeps. */
void mg_protect_secret(const void *p, size_t len);

/* Copies at most size-1 bytes, always terminates; returns strlen(src). */
size_t mg_strlcpy(char *dst, const char *src, size_t size);
/* The host part of a client address as the workers format it ("1.2.3.4:5678", "[::1]:993"):
 * without port and brackets. A bare address (no port) is copied as it is. */
void mg_addr_host(const char *client_addr, char *out, size_t size);

/* Cryptographically strong random bytes (OpenSSL RAND_bytes); aborts on failure. */
void mg_random_bytes(void *buf, size_t len);

/* Constant-time comparison; returns 1 when equal. */
int mg_ct_equal(const void *a, const void *b, size_t len);

/* Durations: "90", "90s", "500ms", "30m", "2h", "1d". Returns 0 on success, -1 on error. */
int mg_parse_duration_ms(const char *s, uint64_t *out_ms);

/* Monotonic clock in milliseconds. */
uint64_t mg_now_ms(void);

/* Case-insensitive ASCII comparison helpers (no locale). */
int mg_ascii_casecmp(const char *a, const char *b);
int mg_ascii_ncasecmp(const char *a, const char *b, size_t n);

/* Reads a whole small file (<= max bytes) into a NUL-terminated buffer; trailing CR/LF and
 * spaces are stripped when strip is true. Returns NULL and sets errno on failure. */
char *mg_read_file(const char *path, size_t max, int strip, size_t *out_len);
/* The same for an open descriptor, read from offset 0 whatever its file position. */
char *mg_read_fd(int fd, size_t max, int strip, size_t *out_len);

/* A file the CLI creates as root in a directory that belongs to the gateway's user (state_dir
 * after the broker dropped root) gets that owner too, so the running broker can read it (a
 * rotated key). Not root, or a root-owned directory: nothing changes. 0, or -1 with errno. */
int mg_chown_like_dir(int fd, const char *path);

#endif
