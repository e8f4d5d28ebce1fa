/* TLS contexts for both ends of a session, and the one operation both ends share: turning a
 * plain bufferevent into a TLS one on the same socket (implicit TLS and STARTTLS alike).
 *
 * Client side (our certificates, [tls] policy from tls_policy.h: TLS 1.2 only with ECDHE+AEAD
 * suites unless configured otherwise): no compression, no renegotiation, and ALPN checked
 * against the listener's protocol (ALPACA): a client that offers ALPN without our protocol is
 * refused; a client that offers none is fine.
 * Upstream side: the peer is always verified (CA, host name or IP address, SNI). */
#ifndef MG_TLS_H
#define MG_TLS_H

#include <openssl/ssl.h>

#include "config.h"
#include "proto.h"

struct bufferevent;
struct event_base;

/* Server context from [tls]. Logs the reason and returns NULL on failure. */
SSL_CTX *tls_server_ctx_new(const struct tls_conf *conf);
/* A new server-side connection for a listener of protocol proto (ALPN is checked against it). */
SSL *tls_server_ssl_new(SSL_CTX *ctx, enum mg_proto proto);

/* Upstream contexts, one per distinct ca_file (NULL = the system trust store). */
struct tls_client_cache;
struct tls_client_cache *tls_client_cache_new(void);
void tls_client_cache_free(struct tls_client_cache **cache);
/* Returns the cached context for ca_file, creating it on first use; NULL (logged) on failure. */
SSL_CTX *tls_client_ctx(struct tls_client_cache *cache, const char *ca_file);
/* A new client-side connection that verifies host (a DNS name or an IP literal) and sends SNI
 * for DNS names. NULL on failure. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *host);

/* Why the handshake or a TLS read/write failed, for the log: the certificate verification
 * result when it failed, else the OpenSSL error queue of bev (consumed), else errno text. */
void tls_describe_error(struct bufferevent *bev, char *out, size_t outlen);

/* A TLS bufferevent on socket fd in state (BUFFEREVENT_SSL_ACCEPTING or _CONNECTING); it owns
 * fd and ssl. A dirty shutdown (TCP close without close_notify) is reported as EOF. Returns
 * NULL (fd closed) on failure. */
/* Bytes moved per read/write callback on relayed connections. */
#define CONN_MAX_SINGLE_IO (256 * 1024)
/* TCP_NODELAY: every mail connection is interactive during login. */
void conn_tune_socket(int fd);
void conn_tune_bufferevent(struct bufferevent *bev);
struct bufferevent *tls_bev_new(struct event_base *base, int fd, SSL *ssl, int state);

/* Replaces the plain bufferevent *bev (which must not own its socket) by a TLS bufferevent on
 * the same socket in state (BUFFEREVENT_SSL_ACCEPTING or _CONNECTING). Every byte buffered in
 * the plain bufferevent is discarded on purpose: bytes received before the handshake must never
 * be taken as protected (STARTTLS injection). Takes ownership of ssl even on failure. The new
 * bufferevent owns the socket and the SSL object. Returns 0, or -1 (the socket is then closed
 * and *bev is NULL). */
int tls_upgrade(struct event_base *base, struct bufferevent **bev, SSL *ssl, int state);

/* Frees a bufferevent and closes its socket: TLS bufferevents own their socket, plain ones do
 * not (so that they can be upgraded). Sends close_notify when the TLS session is healthy. */
void conn_free(struct bufferevent **bev);

#endif
