/* Upstream TLS session resumption. A full handshake with the upstream on every login costs the
 * worker more CPU than anything else in a login: decoding the server's certificate chain and
 * key, verifying it, and the key exchange. Resuming skips all of that.
 *
 * Sessions are kept per worker, per upstream context (one per ca_file) and per key: the provider
 * and the server's name and port, so a session is never offered across providers or to another
 * server name. TLS 1.3 tickets are used once (RFC 8446 C.4: reuse lets an observer link
 * connections); each resumed handshake brings new ones. TLS 1.2 sessions may be offered again
 * until they expire. A resumed session was verified in full when it was made (CA and host
 * name), and the key includes the host, so verification carries over. Nothing here outlives
 * the worker: a reload or restart starts with full handshakes. OpenSSL itself marks the session
 * of a connection freed without close_notify as not resumable; conn_free() sends it. */
#include "tls_resume.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

#define RESUME_SESSIONS_PER_KEY 8
/* Keys come from the configuration (providers x servers); this only bounds a mistake. */
#define RESUME_MAX_KEYS 256

struct resume_slot {
    char *key;
    SSL_SESSION *sessions[RESUME_SESSIONS_PER_KEY]; /* oldest first */
    int count;
    struct resume_slot *next;
};

struct tls_resume {
    struct resume_slot *slots;
    int nslots;
};

static int ctx_index = -1; /* SSL_CTX ex_data: struct tls_resume */
static int ssl_index = -1; /* SSL ex_data: the connection's struct resume_slot */

static void slot_drop_oldest(struct resume_slot *slot)
{
    SSL_SESSION_free(slot->sessions[0]);
    memmove(slot->sessions, slot->sessions + 1, (size_t)(slot->count - 1) * sizeof(SSL_SESSION *));
    slot->count--;
}

static int session_expired(const SSL_SESSION *sess, time_t now)
{
    return SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) <= now;
}

/* OpenSSL hands over every new session (TLS 1.2 after the handshake, each TLS 1.3 ticket when
 * it arrives). Returning 1 keeps the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct resume_slot *slot = SSL_get_ex_data(ssl, ssl_index);
    if (!slot || !SSL_SESSION_is_resumable(sess))
        return 0;
    if (slot->count == RESUME_SESSIONS_PER_KEY)
        slot_drop_oldest(slot);
    slot->sessions[slot->count++] = sess;
    return 1;
}

static void resume_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    MG_UNUSED(parent), MG_UNUSED(ad), MG_UNUSED(idx), MG_UNUSED(argl), MG_UNUSED(argp);
    struct tls_resume *r = ptr;
    if (!r)
        return;
    for (struct resume_slot *s = r->slots, *next; s; s = next) {
        next = s->next;
        while (s->count > 0)
            slot_drop_oldest(s);
        free(s->key);
        free(s);
    }
    free(r);
}

int tls_resume_enable(SSL_CTX *ctx)
{
    if (ctx_index < 0) {
        ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, resume_free);
        ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (ctx_index < 0 || ssl_index < 0)
            return -1;
    }
    struct tls_resume *r = mg_calloc(1, sizeof *r);
    if (SSL_CTX_set_ex_data(ctx, ctx_index, r) != 1) {
        free(r);
        return -1;
    }
    /* Client side: OpenSSL's internal store is keyed by session id only; ours is keyed by
     * provider and server, so keep none internally. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return 0;
}

static struct resume_slot *find_slot(struct tls_resume *r, const char *key)
{
    for (struct resume_slot *s = r->slots; s; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    if (r->nslots >= RESUME_MAX_KEYS)
        return NULL;
    struct resume_slot *s = mg_calloc(1, sizeof *s);
    s->key = mg_strdup(key);
    s->next = r->slots;
    r->slots = s;
    r->nslots++;
    return s;
}

/* The newest usable session, expired ones dropped on the way. A TLS 1.3 ticket leaves the
 * slot (used once); a TLS 1.2 session stays. The caller gets its own reference. */
static SSL_SESSION *take_session(struct resume_slot *slot)
{
    time_t now = time(NULL);
    while (slot->count > 0) {
        SSL_SESSION *sess = slot->sessions[slot->count - 1];
        if (session_expired(sess, now) || !SSL_SESSION_is_resumable(sess)) {
            slot->sessions[--slot->count] = NULL;
            SSL_SESSION_free(sess);
            continue;
        }
        if (SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION)
            slot->sessions[--slot->count] = NULL;
        else
            SSL_SESSION_up_ref(sess);
        return sess;
    }
    return NULL;
}

int tls_resume_offer(SSL *ssl, const char *scope, const char *host, unsigned port)
{
    if (ctx_index < 0 || !scope)
        return 0;
    struct tls_resume *r = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    if (!r)
        return 0;
    char key[512];
    int n = snprintf(key, sizeof key, "%s\n%s:%u", scope, host, port);
    if (n < 0 || (size_t)n >= sizeof key)
        return 0;
    struct resume_slot *slot = find_slot(r, key);
    if (!slot)
        return 0;
    SSL_set_ex_data(ssl, ssl_index, slot);
    SSL_SESSION *sess = take_session(slot);
    if (!sess)
        return 0;
    int ok = SSL_set_session(ssl, sess) == 1;
    SSL_SESSION_free(sess); /* SSL_set_session took its own reference */
    return ok;
}
