/* TLS contexts and the plain-to-TLS switch shared by client and upstream connections. */
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "dns_table.h"
#include "log.h"
#include "tls_policy.h"
#include "tls_resume.h"
#include "util.h"

/* Index of the per-connection "expected ALPN protocol" (a static string) in SSL ex_data. */
static int alpn_index = -1;

static void log_openssl_error(const char *what, const char *path)
{
    char err[256];
    ERR_error_string_n(ERR_get_error(), err, sizeof err);
    log_error("tls: %s %s: %s", what, path ? path : "", err);
    ERR_clear_error();
}

static void set_common_options(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A peer closing TCP without close_notify is an ordinary EOF for mail protocols (they
     * frame their own data); OpenSSL 3 would otherwise report it as an error. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Idle connections (IMAP IDLE) keep no TLS buffers. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* No SSL_CTX_set_read_ahead(): libevent 2.1's bufferevent_openssl only asks SSL_pending(),
     * so records read ahead into OpenSSL's buffer while the socket is quiet would stall. */
}

/* ALPACA defence: a client that speaks ALPN must name our protocol, else the handshake fails
 * (it may be a browser tricked into talking to a mail port). No ALPN at all is fine. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    MG_UNUSED(arg);
    const char *want = SSL_get_ex_data(ssl, alpn_index);
    size_t want_len = want ? strlen(want) : 0;
    for (unsigned int i = 0; want && i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == want_len && memcmp(in + i + 1, want, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX *tls_server_ctx_new(const struct tls_conf *conf)
{
    if (alpn_index < 0)
        alpn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        log_openssl_error("cannot create the server context", NULL);
        return NULL;
    }
    set_common_options(ctx);
    /* Versions, suites and certificates: the policy the config check applied already. */
    struct tls_policy_failure why;
    if (tls_policy_apply(ctx, conf, &why) != 0) {
        log_error("tls: [tls] %s: %s", why.key ? why.key : "", why.message);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

SSL *tls_server_ssl_new(SSL_CTX *ctx, enum mg_proto proto)
{
    SSL *ssl = SSL_new(ctx);
    /* HTTP's ALPN name is "http/1.1" (evhttp speaks no HTTP/2): curl and browsers offer it. */
    if (ssl)
        SSL_set_ex_data(ssl, alpn_index,
                        (void *)(proto == MG_PROTO_HTTP ? "http/1.1" : mg_proto_name(proto)));
    return ssl;
}

struct tls_client_entry {
    char *ca_file; /* NULL: system trust store */
    SSL_CTX *ctx;
    struct tls_client_entry *next;
};

struct tls_client_cache {
    struct tls_client_entry *entries;
};

struct tls_client_cache *tls_client_cache_new(void)
{
    return mg_calloc(1, sizeof(struct tls_client_cache));
}

void tls_client_cache_free(struct tls_client_cache **cache)
{
    if (!*cache)
        return;
    struct tls_client_entry *e = (*cache)->entries;
    while (e) {
        struct tls_client_entry *next = e->next;
        SSL_CTX_free(e->ctx);
        free(e->ca_file);
        free(e);
        e = next;
    }
    free(*cache);
    *cache = NULL;
}

/* The system trust store as one file (SSL_CERT_FILE or OpenSSL's default, Debian's bundle), read
 * now: SSL_CTX_set_default_verify_paths() would also look certificates up in /etc/ssl/certs at
 * each verification, and a sandboxed worker opens no file after its setup (sandbox.h). */
static int load_system_cas(SSL_CTX *ctx)
{
    const char *file = getenv(X509_get_default_cert_file_env());
    if (!file || !*file)
        file = X509_get_default_cert_file();
    return SSL_CTX_load_verify_file(ctx, file);
}

static SSL_CTX *client_ctx_new(const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        log_openssl_error("cannot create a client context", NULL);
        return NULL;
    }
    set_common_options(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : load_system_cas(ctx);
    if (ok != 1) {
        log_openssl_error("cannot load CA certificates", ca_file ? ca_file : "(system)");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (tls_resume_enable(ctx) != 0)
        log_warn("tls: upstream sessions will not be resumed (out of memory?)");
    return ctx;
}

static int same_ca_file(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

SSL_CTX *tls_client_ctx(struct tls_client_cache *cache, const char *ca_file)
{
    for (struct tls_client_entry *e = cache->entries; e; e = e->next)
        if (same_ca_file(e->ca_file, ca_file))
            return e->ctx;
    SSL_CTX *ctx = client_ctx_new(ca_file);
    if (!ctx)
        return NULL;
    struct tls_client_entry *e = mg_calloc(1, sizeof *e);
    e->ca_file = ca_file ? mg_strdup(ca_file) : NULL;
    e->ctx = ctx;
    e->next = cache->entries;
    cache->entries = e;
    return ctx;
}

static int is_ip_literal(const char *host)
{
    struct dns_addrs parsed;
    return dns_addrs_parse_literal(host, &parsed);
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    int ok;
    if (is_ip_literal(host)) {
        /* RFC 6066: no SNI for addresses; the certificate must hold the IP in its SAN. */
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    } else {
        ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
    }
    if (!ok) {
        log_openssl_error("cannot set the expected host name", host);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

void tls_describe_error(struct bufferevent *bev, char *out, size_t outlen)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    if (ssl) {
        long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) {
            snprintf(out, outlen, "certificate verify failed: %s",
                     X509_verify_cert_error_string(verify));
            return;
        }
        unsigned long err = bufferevent_get_openssl_error(bev);
        if (err) {
            char text[200];
            ERR_error_string_n(err, text, sizeof text);
            snprintf(out, outlen, "%s", text);
            while (bufferevent_get_openssl_error(bev))
                ;
            return;
        }
    }
    int e = EVUTIL_SOCKET_ERROR();
    snprintf(out, outlen, "%s", e ? evutil_socket_error_to_string(e) : "connection closed");
}

void conn_tune_socket(int fd)
{
    /* Login dialogs are small request/response exchanges: with Nagle on, a TLS handshake or a
     * reply split over two segments waits for the peer's delayed ACK (40 ms on Linux). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void conn_tune_bufferevent(struct bufferevent *bev)
{
    /* libevent moves at most 16 KiB per callback by default; bulk relays (a 20 MB FETCH) then
     * spend their time in the event loop instead of in AES-GCM. */
    bufferevent_set_max_single_read(bev, CONN_MAX_SINGLE_IO);
    bufferevent_set_max_single_write(bev, CONN_MAX_SINGLE_IO);
}

struct bufferevent *tls_bev_new(struct event_base *base, int fd, SSL *ssl, int state)
{
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, (enum bufferevent_ssl_state)state, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return NULL;
    }
    /* A TCP close without close_notify is an ordinary end of stream for mail protocols. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    conn_tune_socket(fd);
    conn_tune_bufferevent(bev);
    return bev;
}

int tls_upgrade(struct event_base *base, struct bufferevent **bev, SSL *ssl, int state)
{
    evutil_socket_t fd = bufferevent_getfd(*bev);
    /* The plain bufferevent does not own fd: freeing it keeps the socket open. Its buffered
     * input goes with it, which is the point. */
    bufferevent_free(*bev);
    *bev = NULL;
    if (fd < 0) {
        SSL_free(ssl);
        return -1;
    }
    *bev = tls_bev_new(base, fd, ssl, state);
    return *bev ? 0 : -1;
}

void conn_free(struct bufferevent **bev)
{
    if (!*bev)
        return;
    SSL *ssl = bufferevent_openssl_get_ssl(*bev);
    if (ssl) {
        /* Best effort close_notify; never after a fatal error (undefined in OpenSSL). */
        if (SSL_is_init_finished(ssl))
            SSL_shutdown(ssl);
        ERR_clear_error();
        bufferevent_free(*bev); /* owns the socket and the SSL object */
    } else {
        evutil_socket_t fd = bufferevent_getfd(*bev);
        bufferevent_free(*bev);
        if (fd >= 0)
            close(fd);
    }
    *bev = NULL;
}
