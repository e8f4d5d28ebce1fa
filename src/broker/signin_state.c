/* The sign-in page's records (signin_state.h): an array searched linearly (at most
 * SIGNIN_STATES_MAX, touched once per start and callback). */
#include "signin_state.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct signin_states {
    struct signin_record *records;
    size_t n, max, per_address;
    uint64_t ttl_ms;
};

struct signin_states *signin_states_new(size_t max, size_t per_address, uint64_t ttl_ms)
{
    struct signin_states *ss = mg_calloc(1, sizeof *ss);
    ss->records = mg_calloc(max ? max : 1, sizeof *ss->records);
    ss->max = max;
    ss->per_address = per_address;
    ss->ttl_ms = ttl_ms;
    return ss;
}

void signin_states_free(struct signin_states **ssp)
{
    struct signin_states *ss = *ssp;
    if (!ss)
        return;
    mg_wipe(ss->records, ss->max * sizeof *ss->records);
    free(ss->records);
    free(ss);
    *ssp = NULL;
}

/* The last record moves into slot i (order does not matter); the vacated slot is wiped. */
static void remove_at(struct signin_states *ss, size_t i)
{
    ss->n--;
    if (i != ss->n)
        ss->records[i] = ss->records[ss->n];
    mg_wipe(&ss->records[ss->n], sizeof ss->records[ss->n]);
}

static void drop_expired(struct signin_states *ss, uint64_t now_ms)
{
    for (size_t i = ss->n; i-- > 0;)
        if (now_ms >= ss->records[i].expires_ms)
            remove_at(ss, i);
}

static size_t count_client(const struct signin_states *ss, const char *client)
{
    size_t n = 0;
    for (size_t i = 0; i < ss->n; i++)
        n += strcmp(ss->records[i].client, client) == 0;
    return n;
}

const struct signin_record *signin_states_add(struct signin_states *ss, const struct signin_for *f,
                                              uint64_t now_ms)
{
    drop_expired(ss, now_ms);
    char client[IPC_ADDR_MAX];
    mg_addr_host(f->client_addr, client, sizeof client);
    if (ss->n >= ss->max || count_client(ss, client) >= ss->per_address ||
        strlen(f->user) >= IPC_USER_MAX || strlen(f->provider) >= IPC_NAME_MAX ||
        strlen(f->mailbox) >= IPC_MAILBOX_MAX)
        return NULL;
    struct signin_record *r = &ss->records[ss->n++];
    auth_code_nonce(r->state);
    auth_code_nonce(r->browser);
    auth_code_nonce(r->verifier);
    mg_strlcpy(r->user, f->user, sizeof r->user);
    mg_strlcpy(r->provider, f->provider, sizeof r->provider);
    mg_strlcpy(r->mailbox, f->mailbox, sizeof r->mailbox);
    mg_strlcpy(r->client, client, sizeof r->client);
    r->expires_ms = now_ms + ss->ttl_ms;
    return r;
}

/* Equal as nonces: the same length and bytes, compared in constant time. */
static int nonce_equal(const char *a, const char *b)
{
    size_t len = strnlen(b, AUTH_CODE_NONCE_LEN + 1);
    return len == AUTH_CODE_NONCE_LEN && strnlen(a, AUTH_CODE_NONCE_LEN + 1) == len &&
           mg_ct_equal(a, b, len);
}

enum signin_take signin_states_take(struct signin_states *ss, const char *state,
                                    const char *browser, uint64_t now_ms, struct signin_record *out)
{
    for (size_t i = 0; i < ss->n; i++) {
        struct signin_record *r = &ss->records[i];
        if (!nonce_equal(r->state, state))
            continue;
        enum signin_take t = now_ms >= r->expires_ms             ? SIGNIN_EXPIRED
                             : !nonce_equal(r->browser, browser) ? SIGNIN_OTHER_BROWSER
                                                                 : SIGNIN_TAKEN;
        if (t == SIGNIN_TAKEN)
            *out = *r;
        remove_at(ss, i);
        return t;
    }
    return SIGNIN_UNKNOWN;
}

size_t signin_states_count(const struct signin_states *ss)
{
    return ss->n;
}
