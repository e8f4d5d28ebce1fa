/* Login throttling state of the broker (pure: time is passed in, no I/O).
 *
 * Two kinds of counters, both keyed by the client's address without its port:
 *   - per (user, address): failures within a window; at the threshold the pair is locked out
 *     for a while (the right password is refused too, with the ordinary failure reply);
 *   - per address: failures within the window (for the failure delay) and logins in flight.
 * The failure delay grows with the larger of the two failure counts, doubling from the base
 * delay up to a ceiling. Memory is bounded: idle entries are swept, and when the table is full
 * new keys are not counted (logins still go through; the in-flight limit needs no entry to
 * refuse, since a full table only happens under a flood and is logged). */
#ifndef MG_THROTTLE_H
#define MG_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

struct throttle;

struct throttle_policy {
    uint32_t lockout_threshold; /* 0: never lock out */
    uint64_t window_ms;
    uint64_t lockout_ms;
    uint64_t base_delay_ms; /* the worker's own delay; the first failure uses it (0 in replies) */
    uint64_t max_delay_ms;
    uint32_t max_in_flight; /* per address; 0: no limit */
    size_t max_entries;
};

enum throttle_verdict {
    THROTTLE_GO,     /* verify; call throttle_release() when the attempt is answered */
    THROTTLE_LOCKED, /* (user, address) is locked out: answer as a wrong password */
    THROTTLE_BUSY    /* too many logins of this address in flight: "try later" */
};

struct throttle_outcome {
    uint32_t delay_ms; /* for the reply's delay_ms: 0 = the worker's base delay */
    int locked_now;    /* this failure started a lockout of the pair */
};

struct throttle *throttle_new(const struct throttle_policy *policy);
/* A reload's new policy: counters and lockouts already running are kept (a lockout keeps the
 * end it got), the new thresholds and delays apply from the next failure on. */
void throttle_set_policy(struct throttle *t, const struct throttle_policy *policy);
void throttle_free(struct throttle **t);

/* addr: "1.2.3.4:5678", "[2001:db8::1]:5678" or a bare address; the port is ignored. */
enum throttle_verdict throttle_admit(struct throttle *t, const char *user, const char *addr,
                                     uint64_t now_ms);
void throttle_release(struct throttle *t, const char *addr);
/* A failed attempt (wrong password, unknown user, or refused while locked out). */
struct throttle_outcome throttle_failure(struct throttle *t, const char *user, const char *addr,
                                         uint64_t now_ms);
/* The delay_ms a failure of the pair would get now, without counting one. For an accepted
 * password: the upstream may still refuse the mailbox, and that refusal must be answered when a
 * wrong guess would have been (an accepted password resets nothing either, since a reset would
 * show a guesser which guess was right; failures expire with the window). */
uint32_t throttle_failure_delay(struct throttle *t, const char *user, const char *addr,
                                uint64_t now_ms);
/* Lifts lockouts of user (every address when addr is NULL). Returns how many were lifted. */
size_t throttle_unlock(struct throttle *t, const char *user, const char *addr);
/* Calls cb for every pair locked out at now_ms (user as lowercased, address without port). */
void throttle_each_lockout(struct throttle *t, uint64_t now_ms,
                           void (*cb)(const char *user, const char *addr, void *arg), void *arg);
/* The address part of a client address, without the port (for logs and the store). */
void throttle_address(const char *client_addr, char *out, size_t size);
size_t throttle_size(const struct throttle *t);

#endif
