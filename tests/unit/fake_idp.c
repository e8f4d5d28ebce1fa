/* A scripted HTTPS token endpoint (see fake_idp.h). Blocking OpenSSL in its own thread: the
 * test's thread runs the token client's event loop. */
#include "fake_idp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"
#include "cert_fixture.h"

#define MAX_QUEUED 16
#define MAX_BODIES 64
#define REQUEST_MAX 65536

struct answer {
    int status;
    char *body;
};

struct fake_idp {
    int fd;
    pthread_t thread;
    SSL_CTX *ctx;
    char url[64];
    char ca_file[64];
    pthread_mutex_t lock;
    struct answer queue[MAX_QUEUED];
    size_t queued, next;
    char *bodies[MAX_BODIES];
    size_t n_bodies;
    volatile int stopping;
};

static int setup_tls(struct fake_idp *f)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *cert = key ? test_self_signed_cert(key, "127.0.0.1", "127.0.0.1") : NULL;
    snprintf(f->ca_file, sizeof f->ca_file, "/tmp/fake_idp_XXXXXX");
    int tmp = mkstemp(f->ca_file);
    FILE *pem = tmp >= 0 ? fdopen(tmp, "w") : NULL;
    int ok = cert && pem && PEM_write_X509(pem, cert) == 1;
    if (pem)
        fclose(pem);
    f->ctx = SSL_CTX_new(TLS_server_method());
    ok = ok && f->ctx && SSL_CTX_use_certificate(f->ctx, cert) == 1 &&
         SSL_CTX_use_PrivateKey(f->ctx, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

/* Reads the request: headers, then Content-Length bytes of body. Answers 100 Continue when
 * asked. Returns the malloc'd body or NULL. */
static char *read_request(SSL *ssl)
{
    char *buf = mg_malloc(REQUEST_MAX + 1);
    buf[0] = '\0';
    size_t len = 0, want = 0;
    char *body = NULL;
    int continued = 0;
    for (;;) {
        char *end = body ? NULL : strstr(buf, "\r\n\r\n");
        if (end && !body) {
            body = end + 4;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = cl ? strtoul(cl + 17, NULL, 10) : 0;
            if (!continued && strcasestr(buf, "\r\nexpect: 100-continue") && body == buf + len) {
                SSL_write(ssl, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                continued = 1;
            }
        }
        if (body && (size_t)(buf + len - body) >= want)
            break;
        int n = len < REQUEST_MAX ? SSL_read(ssl, buf + len, (int)(REQUEST_MAX - len)) : 0;
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)n;
        buf[len] = '\0';
    }
    char *out = mg_strndup(body, want);
    free(buf);
    return out;
}

static void serve_one(struct fake_idp *f, int conn)
{
    SSL *ssl = SSL_new(f->ctx);
    SSL_set_fd(ssl, conn);
    char *body = SSL_accept(ssl) == 1 ? read_request(ssl) : NULL;
    if (body) {
        pthread_mutex_lock(&f->lock);
        struct answer a = {500, NULL};
        if (f->next < f->queued)
            a = f->queue[f->next++];
        if (f->n_bodies < MAX_BODIES)
            f->bodies[f->n_bodies++] = body;
        else
            free(body);
        pthread_mutex_unlock(&f->lock);
        const char *text = a.body ? a.body : "{\"error\":\"server_error\"}";
        char *resp = mg_printf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                               a.status, strlen(text), text);
        SSL_write(ssl, resp, (int)strlen(resp));
        free(resp);
        free(a.body);
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(conn);
}

static void *serve(void *arg)
{
    struct fake_idp *f = arg;
    while (!f->stopping) {
        int conn = accept(f->fd, NULL, NULL);
        if (conn >= 0)
            serve_one(f, conn);
    }
    return NULL;
}

struct fake_idp *fake_idp_start(void)
{
    struct fake_idp *f = mg_calloc(1, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sin;
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (setup_tls(f) != 0 || f->fd < 0 || bind(f->fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(f->fd, 16) != 0 || getsockname(f->fd, (struct sockaddr *)&sin, &len) != 0) {
        fprintf(stderr, "fake_idp: cannot start\n");
        abort();
    }
    snprintf(f->url, sizeof f->url, "https://127.0.0.1:%d/token", ntohs(sin.sin_port));
    pthread_create(&f->thread, NULL, serve, f);
    return f;
}

void fake_idp_stop(struct fake_idp **fp)
{
    struct fake_idp *f = *fp;
    *fp = NULL;
    f->stopping = 1;
    shutdown(f->fd, SHUT_RDWR); /* wakes accept() */
    pthread_join(f->thread, NULL);
    close(f->fd);
    unlink(f->ca_file);
    SSL_CTX_free(f->ctx);
    for (size_t i = f->next; i < f->queued; i++)
        free(f->queue[i].body);
    for (size_t i = 0; i < f->n_bodies; i++)
        free(f->bodies[i]);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

const char *fake_idp_url(const struct fake_idp *f)
{
    return f->url;
}

const char *fake_idp_ca_file(const struct fake_idp *f)
{
    return f->ca_file;
}

void fake_idp_push(struct fake_idp *f, int status, const char *body)
{
    pthread_mutex_lock(&f->lock);
    if (f->queued < MAX_QUEUED)
        f->queue[f->queued++] = (struct answer){status, mg_strdup(body)};
    pthread_mutex_unlock(&f->lock);
}

size_t fake_idp_requests(struct fake_idp *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n_bodies;
    pthread_mutex_unlock(&f->lock);
    return n;
}

char *fake_idp_body(struct fake_idp *f, size_t i)
{
    pthread_mutex_lock(&f->lock);
    char *b = i < f->n_bodies ? mg_strdup(f->bodies[i]) : NULL;
    pthread_mutex_unlock(&f->lock);
    return b;
}
