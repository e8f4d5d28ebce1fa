/* Argon2id verification off the event loop: a few threads verify, the result comes back on the
 * loop's thread as a callback. */
#ifndef MG_VERIFY_POOL_H
#define MG_VERIFY_POOL_H

#include <stddef.h>

struct event_base;
struct verify_pool;

/* result: 1 match, 0 mismatch, -1 unusable hash. Called on the event loop's thread. */
typedef void (*verify_done_cb)(int result, void *arg);

struct verify_pool *verify_pool_new(struct event_base *base, int threads);
/* Copies (and later wipes) hash and password. Returns 0 or -1. */
int verify_pool_submit(struct verify_pool *vp, const char *encoded_hash, const char *pw,
                       size_t len, verify_done_cb cb, void *arg);
/* Jobs still queued or running finish without calling their callback. */
void verify_pool_free(struct verify_pool **vp);

#endif
