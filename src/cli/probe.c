/* Blocking upstream login probe (see probe.h). */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sasl.h"
#include "tls.h"
#include "util.h"

#define PROBE_LINE_MAX 8192
#define PROBE_MAX_LINES 200 /* per reply: capabilities, multi-line EHLO */

enum reply_kind { REPLY_MORE, REPLY_CONT, REPLY_OK, REPLY_FAIL, REPLY_TEMP };

/* The only things that differ between the three protocols. */
struct grammar {
    enum reply_kind (*classify)(const char *line, int greeting);
    const char *hello;    /* sent after the greeting and after STARTTLS (SMTP), or NULL */
    const char *starttls; /* NULL: only implicit TLS */
    const char *auth;     /* the AUTH command, before the mechanism */
    const char *quit;
};

static int has(const char *line, const char *word)
{
    return strstr(line, word) != NULL;
}

static enum reply_kind imap_classify(const char *line, int greeting)
{
    if (greeting)
        return strncmp(line, "* OK", 4) == 0 ? REPLY_OK : REPLY_TEMP;
    if (line[0] == '+')
        return REPLY_CONT;
    if (strncmp(line, "A1 OK", 5) == 0)
        return REPLY_OK;
    if (strncmp(line, "A1 ", 3) == 0)
        return has(line, "[UNAVAILABLE]") ? REPLY_TEMP : REPLY_FAIL;
    if (strncmp(line, "* BYE", 5) == 0)
        return REPLY_TEMP;
    return REPLY_MORE;
}

static enum reply_kind pop3_classify(const char *line, int greeting)
{
    if (strncmp(line, "+OK", 3) == 0)
        return REPLY_OK;
    if (line[0] == '+' && !greeting)
        return REPLY_CONT;
    if (greeting || has(line, "[SYS/TEMP]") || has(line, "[IN-USE]"))
        return REPLY_TEMP;
    return REPLY_FAIL;
}

static enum reply_kind smtp_classify(const char *line, int greeting)
{
    (void)greeting;
    if (strlen(line) < 3 || line[0] < '2' || line[0] > '5')
        return REPLY_FAIL;
    if (line[3] == '-')
        return REPLY_MORE;
    if (strncmp(line, "334", 3) == 0)
        return REPLY_CONT;
    return line[0] == '2' ? REPLY_OK : line[0] == '4' ? REPLY_TEMP : REPLY_FAIL;
}

static const struct grammar grammars[] = {
    [MG_PROTO_IMAP] = {imap_classify, NULL, NULL, "A1 AUTHENTICATE", "A2 LOGOUT"},
    [MG_PROTO_POP3] = {pop3_classify, NULL, "STLS", "AUTH", "QUIT"},
    [MG_PROTO_SMTP] = {smtp_classify, "EHLO mailgate-token-test", "STARTTLS", "AUTH", "QUIT"},
};

struct conn {
    int fd;
    SSL *ssl;
    char buf[PROBE_LINE_MAX];
    size_t len;
    struct probe_report *out;
};

static enum probe_outcome fail(struct conn *c, enum probe_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum probe_outcome fail(struct conn *c, enum probe_outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->out->reply, sizeof c->out->reply, fmt, ap);
    va_end(ap);
    c->out->outcome = o;
    return o;
}

static void stage(struct conn *c, const char *name)
{
    mg_strlcpy(c->out->stage, name, sizeof c->out->stage);
}

static int wait_connected(int fd, int timeout_s)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, timeout_s * 1000) != 1)
        return ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        return errno;
    return err;
}

static int connect_tcp(struct conn *c, const struct server_addr *srv, int timeout_s)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)srv->port);
    int rc = getaddrinfo(srv->host, port, &hints, &res);
    if (rc != 0) {
        fail(c, PROBE_UNAVAILABLE, "cannot resolve %s: %s", srv->host, gai_strerror(rc));
        return -1;
    }
    int err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        err = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS)
            err = wait_connected(fd, timeout_s);
        if (err == 0)
            c->fd = fd;
        else
            close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        fail(c, PROBE_UNAVAILABLE, "cannot connect to %s:%u: %s", srv->host, (unsigned)srv->port,
             strerror(err));
        return -1;
    }
    /* Blocking from here on, every read and write bounded by the timeout. */
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return 0;
}

static int start_tls(struct conn *c, const struct probe_login *l)
{
    stage(c, "tls");
    c->len = 0; /* nothing read before the handshake counts (STARTTLS injection) */
    struct tls_client_cache *cache = tls_client_cache_new();
    SSL_CTX *ctx = cache ? tls_client_ctx(cache, l->ca_file) : NULL;
    c->ssl = ctx ? tls_client_ssl_new(ctx, l->server->host) : NULL;
    tls_client_cache_free(&cache); /* the SSL object keeps its own reference to the context */
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        fail(c, PROBE_UNAVAILABLE, "cannot set up TLS (ca_file?)");
        return -1;
    }
    if (SSL_connect(c->ssl) == 1)
        return 0;
    long verify = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (verify != X509_V_OK)
        fail(c, PROBE_UNAVAILABLE, "certificate verify failed: %s",
             X509_verify_cert_error_string(verify));
    else
        fail(c, PROBE_UNAVAILABLE, "TLS handshake failed: %s",
             e ? ERR_reason_error_string(e) : "connection closed");
    return -1;
}

static int send_all(struct conn *c, const char *data, size_t len)
{
    while (len > 0) {
        int n = c->ssl ? SSL_write(c->ssl, data, (int)len) : (int)send(c->fd, data, len, 0);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_line(struct conn *c, const char *text)
{
    return send_all(c, text, strlen(text)) == 0 && send_all(c, "\r\n", 2) == 0 ? 0 : -1;
}

/* One line without CRLF into line (NUL-terminated). Returns 0, or -1 (closed, timeout, too long).
 */
static int read_line(struct conn *c, char *line, size_t size)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf), take = n > 0 && nl[-1] == '\r' ? n - 1 : n;
            if (take >= size)
                return -1;
            memcpy(line, c->buf, take);
            line[take] = '\0';
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return 0;
        }
        if (c->len == sizeof c->buf)
            return -1;
        int r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
                       : (int)recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static void keep_reply(struct conn *c, const char *line)
{
    size_t i = 0;
    for (; line[i] && i + 1 < sizeof c->out->reply; i++)
        c->out->reply[i] = (unsigned char)line[i] < 0x20 || line[i] == 0x7f ? ' ' : line[i];
    c->out->reply[i] = '\0';
}

/* Reads lines up to the final one of a reply; returns its kind (REPLY_FAIL when the connection
 * broke, with the reply saying so). The final line stays in line. */
static enum reply_kind read_reply(struct conn *c, const struct grammar *g, int greeting, char *line,
                                  size_t size)
{
    for (int i = 0; i < PROBE_MAX_LINES; i++) {
        if (read_line(c, line, size) != 0) {
            fail(c, PROBE_UNAVAILABLE, "the server closed the connection or did not answer");
            return REPLY_TEMP;
        }
        enum reply_kind k = g->classify(line, greeting);
        if (k != REPLY_MORE) {
            keep_reply(c, line);
            return k;
        }
    }
    fail(c, PROBE_UNAVAILABLE, "more than %d lines in one reply", PROBE_MAX_LINES);
    return REPLY_TEMP;
}

/* A command whose reply must be a success. */
static int expect_ok(struct conn *c, const struct grammar *g, const char *cmd, char *line,
                     size_t size)
{
    if (cmd && send_line(c, cmd) != 0)
        return fail(c, PROBE_UNAVAILABLE, "the server closed the connection"), -1;
    enum reply_kind k = read_reply(c, g, cmd == NULL, line, size);
    if (k == REPLY_OK)
        return 0;
    c->out->outcome = PROBE_UNAVAILABLE;
    return -1;
}

static int open_session(struct conn *c, const struct probe_login *l, const struct grammar *g,
                        char *line, size_t size)
{
    stage(c, "connect");
    if (connect_tcp(c, l->server, l->timeout_s) != 0)
        return -1;
    if (l->server->tls == MG_TLS_IMPLICIT && start_tls(c, l) != 0)
        return -1;
    stage(c, "greeting");
    if (expect_ok(c, g, NULL, line, size) != 0 ||
        (g->hello && expect_ok(c, g, g->hello, line, size)))
        return -1;
    if (l->server->tls != MG_TLS_STARTTLS)
        return 0;
    stage(c, "starttls");
    if (!g->starttls)
        return fail(c, PROBE_UNAVAILABLE, "STARTTLS is not supported for this protocol"), -1;
    if (expect_ok(c, g, g->starttls, line, size) != 0 || start_tls(c, l) != 0)
        return -1;
    return g->hello ? expect_ok(c, g, g->hello, line, size) : 0;
}

/* After our response: success, failure, or an error challenge we answer before the failure. */
static enum probe_outcome authenticate(struct conn *c, const struct probe_login *l,
                                       const struct grammar *g, char *line, size_t size)
{
    stage(c, "auth");
    char cmd[64];
    snprintf(cmd, sizeof cmd, "%s %s", g->auth, l->mechanism);
    if (send_line(c, cmd) != 0)
        return fail(c, PROBE_UNAVAILABLE, "the server closed the connection");
    enum reply_kind k = read_reply(c, g, 0, line, size);
    if (k != REPLY_CONT)
        return c->out->outcome = k == REPLY_FAIL ? PROBE_REFUSED : PROBE_UNAVAILABLE;
    if (send_line(c, l->response) != 0)
        return fail(c, PROBE_UNAVAILABLE, "the server closed the connection");
    k = read_reply(c, g, 0, line, size);
    if (k == REPLY_CONT) {
        const char *b64 = line + (line[0] == '+' ? 1 : 3);
        b64 += strspn(b64, " ");
        sasl_describe_error(b64, strlen(b64), c->out->challenge, sizeof c->out->challenge);
        if (send_line(c, l->challenge_reply) != 0)
            return fail(c, PROBE_REFUSED, "the server sent an error challenge and closed");
        k = read_reply(c, g, 0, line, size);
        if (k == REPLY_CONT || k == REPLY_OK)
            k = REPLY_FAIL; /* an error challenge never ends in success */
    }
    c->out->outcome = k == REPLY_OK     ? PROBE_WORKS
                      : k == REPLY_FAIL ? PROBE_REFUSED
                                        : PROBE_UNAVAILABLE;
    return c->out->outcome;
}

enum probe_outcome probe_run(const struct probe_login *l, struct probe_report *out)
{
    memset(out, 0, sizeof *out);
    out->outcome = PROBE_UNAVAILABLE;
    const struct grammar *g = &grammars[l->proto];
    struct conn c = {.fd = -1, .out = out};
    char *line = mg_malloc(PROBE_LINE_MAX);
    if (open_session(&c, l, g, line, PROBE_LINE_MAX) == 0 &&
        authenticate(&c, l, g, line, PROBE_LINE_MAX) == PROBE_WORKS)
        send_line(&c, g->quit);
    free(line);
    if (c.ssl) {
        SSL_shutdown(c.ssl);
        SSL_free(c.ssl);
    }
    if (c.fd >= 0)
        close(c.fd);
    mg_wipe(c.buf, sizeof c.buf);
    return out->outcome;
}
