/* The sign-in page's server-side records (pure: time is passed in): one per GET /oauth/start,
 * keyed by its random state, holding what the callback needs and must not come from the
 * browser: the user, its provider and mailbox, the PKCE verifier and the browser binding (the
 * cookie's value). Short-lived, one-time (taken out by the first callback that names it,
 * whatever its outcome) and bounded in number, so a flood of starts cannot grow the broker. */
#ifndef MG_SIGNIN_STATE_H
#define MG_SIGNIN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "auth_code.h"
#include "ipc.h"

#define SIGNIN_STATES_MAX 1024
/* Live records per client address: one address cannot fill the table for everybody. */
#define SIGNIN_STATES_PER_ADDRESS 16
#define SIGNIN_STATE_TTL_MS (10 * 60 * 1000)

struct signin_record {
    char state[AUTH_CODE_NONCE_LEN + 1];
    char browser[AUTH_CODE_NONCE_LEN + 1];  /* the cookie's value */
    char verifier[AUTH_CODE_NONCE_LEN + 1]; /* PKCE code_verifier */
    char user[IPC_USER_MAX];                /* the local user (canonical name) */
    char provider[IPC_NAME_MAX];
    char mailbox[IPC_MAILBOX_MAX];
    char client[IPC_ADDR_MAX]; /* the address that started it, without port */
    uint64_t expires_ms;
};

enum signin_take {
    SIGNIN_TAKEN = 0,
    SIGNIN_UNKNOWN,      /* no such state: never issued, already used, or swept */
    SIGNIN_EXPIRED,      /* issued, but older than the time to live */
    SIGNIN_OTHER_BROWSER /* the cookie is missing or is another browser's */
};

struct signin_states;

/* per_address: live records one client address may hold. */
struct signin_states *signin_states_new(size_t max, size_t per_address, uint64_t ttl_ms);
void signin_states_free(struct signin_states **ss); /* wipes every record */

/* What a record is made for: the user, its provider and mailbox, the client's address. */
struct signin_for {
    const char *user, *provider, *mailbox, *client_addr;
};

/* A new record with a fresh state, browser binding and verifier; expired records are dropped
 * first. NULL when max records are live, or per_address of the client's, or a field does not
 * fit. */
const struct signin_record *signin_states_add(struct signin_states *ss, const struct signin_for *f,
                                              uint64_t now_ms);

/* Takes the record of state out (so it is used at most once) and, when it is live and browser
 * is its binding, copies it into out (SIGNIN_TAKEN). Compares in constant time. */
enum signin_take signin_states_take(struct signin_states *ss, const char *state,
                                    const char *browser, uint64_t now_ms,
                                    struct signin_record *out);

size_t signin_states_count(const struct signin_states *ss);

#endif
