/* Session tickets for clients (RFC 5077, RFC 8446 4.6.1), sealed with AES-256-CBC and
 * HMAC-SHA256 under the broker's keys. Until the first keys arrive a worker issues none (a
 * ticket under a key of its own would only work on this worker). A ticket under the previous
 * key is still accepted and renewed under the current one. No server-side session cache: TLS
 * 1.2 clients resume by ticket as well, and the worker keeps no per-session memory for it. */
#include "tls_tickets.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

static struct ipc_ticket_keys keys; /* count 0: none yet */

void tls_tickets_set_keys(const struct ipc_ticket_keys *k)
{
    mg_wipe(&keys, sizeof keys);
    keys = *k;
}

void tls_tickets_clear(void)
{
    mg_wipe(&keys, sizeof keys);
}

static int set_hmac_key(EVP_MAC_CTX *hctx, const struct ipc_ticket_key *k)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params);
}

static int seal(unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    if (keys.count == 0)
        return 0; /* no ticket */
    const struct ipc_ticket_key *k = &keys.key[0];
    memcpy(name, k->name, IPC_TICKET_NAME_LEN);
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1 ||
        EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1 ||
        set_hmac_key(hctx, k) != 1)
        return -1;
    return 1;
}

/* 1: decrypt with key 0; 2: with an older key, and issue a new ticket; 0: unknown key (a full
 * handshake follows). */
static int unseal(const unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx)
{
    for (uint32_t i = 0; i < keys.count; i++) {
        const struct ipc_ticket_key *k = &keys.key[i];
        if (memcmp(name, k->name, IPC_TICKET_NAME_LEN) != 0)
            continue;
        if (set_hmac_key(hctx, k) != 1 ||
            EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) != 1)
            return -1;
        return i == 0 ? 1 : 2;
    }
    return 0;
}

static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    MG_UNUSED(ssl);
    return enc ? seal(name, iv, cctx, hctx) : unseal(name, iv, cctx, hctx);
}

void tls_tickets_enable(SSL_CTX *ctx, uint64_t lifetime_ms)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (lifetime_ms == 0) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
        return;
    }
    SSL_CTX_set_timeout(ctx, (long)((lifetime_ms + 999) / 1000));
    SSL_CTX_set_num_tickets(ctx, 1); /* one per handshake: enough for a client to resume */
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
}
