/* The broker's login guard: throttle.c's counters plus what needs the outside world: the
 * store's lockouts table (written when a lockout starts, rechecked when another process, the
 * admin's `mailgate user unlock`, has changed the database), the log lines, the configuration.
 * broker.c calls these around each login; they decide nothing about passwords. */
#ifndef MG_LOCKOUT_H
#define MG_LOCKOUT_H

#include <stdint.h>

#include "throttle.h"

struct gateway_conf;
struct store;
struct lockouts;

struct lockouts *lockouts_new(const struct gateway_conf *g, struct store *st);
/* SIGHUP: the reloaded [gateway] lockout and delay settings, for the next logins. */
void lockouts_configure(struct lockouts *l, const struct gateway_conf *g);
void lockouts_free(struct lockouts **l);
/* Lockouts started since the broker started (GET /metrics). */
uint64_t lockouts_started(const struct lockouts *l);
/* Before any Argon2 work. GO takes a slot of the address's logins in flight: give it back with
 * lockouts_release() when the attempt is answered. */
enum throttle_verdict lockouts_admit(struct lockouts *l, const char *user, const char *client_addr);
void lockouts_release(struct lockouts *l, const char *client_addr);
/* Counts a failed attempt; returns the reply's delay_ms (0: the worker's own delay). */
uint32_t lockouts_failure(struct lockouts *l, const char *user, const char *client_addr);
/* An accepted password: the delay_ms its reply carries (throttle_failure_delay). */
uint32_t lockouts_failure_delay(struct lockouts *l, const char *user, const char *client_addr);

#endif
