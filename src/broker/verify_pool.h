/* Argon2id verification off the event loop: a few threads verify, the result comes back on the
 * loop's thread as a callback.
 *
 * Fair: queued verifications wait in one queue per user (as typed, without case), and the
 * threads serve those queues round-robin, so a flood of guesses for one user delays another
 * user's login by at most one verification per thread. (A flood for many users from one
 * address is bounded before the pool, by the broker's logins-in-flight limit per address.)
 *
 * Shared: a request equal to one queued, running or finished but not answered yet (same user,
 * same stored hash, same password; compared by an HMAC under a per-process random key, so no
 * password is compared or kept twice) waits for that verification instead of starting its own.
 *
 * Cancellable: a ticket can be cancelled; a verification nobody waits for any more is dropped
 * from its queue (one already running finishes, unanswered). */
#ifndef MG_VERIFY_POOL_H
#define MG_VERIFY_POOL_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct verify_pool;
struct verify_ticket;

/* result: 1 match, 0 mismatch, -1 unusable hash. Called on the event loop's thread. */
typedef void (*verify_done_cb)(int result, void *arg);

/* Runs on a pool thread when a queued verification is about to start: 1 when the password is
 * already known to be right (the auth cache learned it meanwhile), so no Argon2 is needed. Must
 * be thread-safe. */
typedef int (*verify_precheck_fn)(const char *user, const char *hash, const char *pw, size_t len,
                                  void *arg);

struct verify_request {
    const char *user; /* the fairness queue and the precheck's user */
    const char *hash; /* Argon2id encoded */
    const char *pw;
    size_t len;
};

struct verify_stats {
    uint64_t computations; /* Argon2id verifications run */
    uint64_t shared;       /* requests that waited for an equal one instead */
    uint64_t prechecked;   /* verifications skipped by the precheck */
    uint64_t dropped;      /* verifications dropped from the queue: nobody waited any more */
    uint64_t queued;       /* now: verifications waiting for a thread (GET /metrics) */
};

struct verify_pool *verify_pool_new(struct event_base *base, int threads);
void verify_pool_set_precheck(struct verify_pool *vp, verify_precheck_fn fn, void *arg);
/* Copies what it needs of req (a password only for a new verification; wiped after use).
 * Returns a ticket, valid until cb runs or verify_pool_cancel(); NULL when the queue (or this
 * user's queue) is full. */
struct verify_ticket *verify_pool_submit(struct verify_pool *vp, const struct verify_request *req,
                                         verify_done_cb cb, void *arg);
/* cb will not run for this ticket. Loop thread only, before cb ran. */
void verify_pool_cancel(struct verify_pool *vp, struct verify_ticket *t);
void verify_pool_stats(struct verify_pool *vp, struct verify_stats *out);
/* Jobs still queued or running finish without calling their callback. */
void verify_pool_free(struct verify_pool **vp);

#endif
