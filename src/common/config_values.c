/* One configuration value at a time: the syntax of each kind of value, the files a value names,
 * host:port addresses (resolved once, at load time) and the TLS certificate/key pair. Problems
 * are reported through conf_error() with the line of the key; config.c does the rest. */
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_policy.h"
#include "util.h"

#define MAX_DURATION_MS (365ull * 24 * 3600 * 1000)
#define WORKERS_MAX 256

static void set_string(char **field, const char *value)
{
    free(*field);
    *field = mg_strdup(value);
}

/* Opens the file to prove it is readable (access() would check the wrong user under sudo -u
 * with some setups, and says nothing about directories). Returns its size or -1. */
static long long check_readable_file(struct parser *p, int line, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        conf_error(p, line, "cannot read %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (!S_ISREG(st.st_mode)) {
        conf_error(p, line, "%s is not a regular file", path);
        return -1;
    }
    return (long long)st.st_size;
}

static void parse_duration(struct parser *p, int line, const char *key, const char *value,
                           bool zero_ok, uint64_t *out)
{
    uint64_t ms;
    if (mg_parse_duration_ms(value, &ms) != 0 || ms > MAX_DURATION_MS || (!zero_ok && ms == 0))
        conf_error(p, line, "%s: bad duration '%s' (examples: 500ms, 60s, 30m, 2h, 1d)", key,
                   value);
    else
        *out = ms;
}

int config_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

static void parse_workers(struct parser *p, int line, const char *value, int *out)
{
    if (strcmp(value, "auto") == 0) {
        *out = config_online_cpus();
        return;
    }
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || n < 1 || n > WORKERS_MAX)
        conf_error(p, line, "workers: expected 'auto' or a number from 1 to %d, not '%s'",
                   WORKERS_MAX, value);
    else
        *out = (int)n;
}

#define COUNT_MAX 1000000

static void parse_count(struct parser *p, int line, const char *key, const char *value,
                        uint32_t *out)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || errno || n < 0 || n > COUNT_MAX)
        conf_error(p, line, "%s: expected a number from 0 to %d, not '%s'", key, COUNT_MAX, value);
    else
        *out = (uint32_t)n;
}

#define SIZE_MIN_BYTES 1024ull
#define SIZE_MAX_BYTES (1ull << 40)

/* A size in bytes with an optional K, M or G (powers of 1024). */
static void parse_size(struct parser *p, int line, const char *key, const char *value,
                       uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(value, &end, 10);
    const char *units = "KMG";
    const char *unit = *end ? strchr(units, *end) : NULL;
    if (unit && end[1] == '\0') {
        for (const char *u = units; u <= unit && n <= SIZE_MAX_BYTES; u++)
            n *= 1024;
        end++;
    }
    if (value[0] < '0' || value[0] > '9' || *end || errno || n < SIZE_MIN_BYTES ||
        n > SIZE_MAX_BYTES)
        conf_error(p, line, "%s: expected a size from 1K to 1024G (e.g. 100M), not '%s'", key,
                   value);
    else
        *out = n;
}

static void parse_protocol(struct parser *p, int line, const char *value, enum mg_proto *out)
{
    enum mg_proto proto;
    if (mg_proto_parse(value, &proto) != 0)
        conf_error(p, line, "protocol: unknown protocol '%s' (use imap, pop3, smtp or http)",
                   value);
    else
        *out = proto;
}

/* Numeric address, "*", or a host name resolved once, now. */
static void parse_listen_address(struct parser *p, int line, const char *value,
                                 struct listener_conf *l)
{
    char *host = NULL;
    uint16_t port;
    if (config_parse_host_port(value, &host, &port) != 0) {
        conf_error(p, line, "address: expected host:port or [v6]:port, not '%s'", value);
        return;
    }
    set_string(&l->address, value);
    if (config_parse_listen_address(value, &l->addr, &l->addrlen) != 0) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int rc = value[0] == '[' ? EAI_NONAME : getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0 || !res) {
            conf_error(p, line, "address: cannot resolve '%s': %s", host, gai_strerror(rc));
        } else {
            memset(&l->addr, 0, sizeof l->addr);
            memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
            l->addrlen = res->ai_addrlen;
            if (l->addr.ss_family == AF_INET)
                ((struct sockaddr_in *)&l->addr)->sin_port = htons(port);
            else
                ((struct sockaddr_in6 *)&l->addr)->sin6_port = htons(port);
        }
        if (res)
            freeaddrinfo(res);
    }
    free(host);
}

static void parse_server(struct parser *p, int line, const char *key, const char *value,
                         struct server_addr *srv)
{
    char *host;
    uint16_t port;
    if (config_parse_host_port(value, &host, &port) != 0) {
        conf_error(p, line, "%s: expected host:port or [v6]:port, not '%s'", key, value);
        return;
    }
    free(srv->host);
    srv->host = host;
    srv->port = port;
}

bool config_private_file(struct parser *p, int line, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        conf_error(p, line, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    if (st.st_mode & 077) {
        conf_error(p, line,
                   "%s is accessible by group or others (mode %03o); run chmod 600 on it "
                   "(and give it to the gateway's user)",
                   path, (unsigned)(st.st_mode & 0777));
        return false;
    }
    return true;
}

/* Checked in both modes (a worker must fail like the broker would), read only with secrets. */
static void parse_secret_file(struct parser *p, int line, const char *value, char **field)
{
    long long size = check_readable_file(p, line, value);
    if (size == 0)
        conf_error(p, line, "client_secret_file %s is empty", value);
    if (size > 0 && config_private_file(p, line, value))
        set_string(field, value);
}

/* ---- words: type =, flow =, sasl = ---- */

static const char *const provider_type_names[] = {
    [MG_PROVIDER_MICROSOFT] = "microsoft",
    [MG_PROVIDER_GOOGLE] = "google",
    [MG_PROVIDER_GENERIC] = "generic",
};
static const char *const flow_names[] = {
    [MG_FLOW_CLIENT_CREDENTIALS] = "client_credentials",
    [MG_FLOW_DELEGATED] = "delegated",
    [MG_FLOW_PASSWORD] = "password",
    [MG_FLOW_SERVICE_ACCOUNT] = "service_account",
};
static const char *const tls_version_names[] = {
    [MG_TLS_VERSION_1_2] = "TLSv1.2",
    [MG_TLS_VERSION_1_3] = "TLSv1.3",
};

static const char *const login_type_names[] = {
    [MG_LOGIN_SECURE] = "secure",
    [MG_LOGIN_PLAINTEXT] = "plaintext",
};

static const char *const switch_words[] = {"off", "on"};
static const char *const sasl_words[] = {
    [MG_SASL_XOAUTH2] = "xoauth2", [MG_SASL_OAUTHBEARER] = "oauthbearer"};
static const char *const sasl_mechanisms[] = {
    [MG_SASL_XOAUTH2] = "XOAUTH2", [MG_SASL_OAUTHBEARER] = "OAUTHBEARER"};

#define NAME_OF(table, i) ((size_t)(i) < MG_ARRAY_LEN(table) ? (table)[i] : "?")

const char *mg_provider_type_name(enum mg_provider_type t)
{
    return NAME_OF(provider_type_names, t);
}

const char *mg_flow_name(enum mg_flow f)
{
    return NAME_OF(flow_names, f);
}

const char *mg_sasl_name(enum mg_sasl m)
{
    return NAME_OF(sasl_mechanisms, m);
}

/* Stores the index of `value` in words[] (an enum) or reports the words allowed. */
static void parse_word(struct parser *p, int line, const char *key, const char *value,
                       const char *const words[], size_t n, int *field)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(value, words[i]) == 0) {
            *field = (int)i;
            return;
        }
    }
    char allowed[128] = "";
    for (size_t i = 0; i < n; i++)
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                 i == 0       ? ""
                 : i + 1 == n ? " or "
                              : ", ",
                 words[i]);
    conf_error(p, line, "%s: unknown value '%s' (use %s)", key, value, allowed);
}

#define PARSE_WORD(p, line, key, value, table, field)                                              \
    parse_word(p, line, key, value, table, MG_ARRAY_LEN(table), (int *)(field))

static void parse_ident(struct parser *p, int line, const char *key, const char *value,
                        char **field)
{
    if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
        strlen(value))
        conf_error(p, line, "%s: only letters, digits, '.', '-' and '_' are allowed", key);
    else
        set_string(field, value);
}

/* none only for a listener: every upstream is reached over TLS. */
static void parse_tls_mode(struct parser *p, int line, const struct key_def *key, const char *value,
                           enum mg_tls_mode *field)
{
    enum mg_tls_mode mode;
    int listener = key->kind == V_LISTEN_TLS;
    if (mg_tls_mode_parse(value, &mode) != 0 || (!listener && mode == MG_TLS_NONE))
        conf_error(p, line, "%s: expected implicit%s, not '%s'", key->name,
                   listener ? ", starttls or none" : " or starttls", value);
    else
        *field = mode;
}

static void parse_allow(struct parser *p, int line, const char *key, const char *value,
                        struct cidr_list *field)
{
    struct cidr_list list;
    char why[160];
    if (cidr_list_parse(value, &list, why, sizeof why) != 0) {
        conf_error(p, line, "%s: %s (expected ranges like 10.0.0.0/8, 2001:db8::/32)", key, why);
        return;
    }
    cidr_list_free(field);
    *field = list;
}

/* The gateway's own address as browsers reach it: the base of the sign-in page's redirect URI,
 * which must equal the one registered at the provider, so it is kept exactly as written, less
 * a final '/' (the path appended starts with one). */
static void parse_public_url(struct parser *p, int line, const char *key, const char *value,
                             void *field)
{
    size_t scheme = strncmp(value, "https://", 8) == 0  ? 8
                    : strncmp(value, "http://", 7) == 0 ? 7
                                                        : 0;
    size_t len = strlen(value);
    while (len > scheme && value[len - 1] == '/')
        len--;
    if (!scheme || len == scheme || strpbrk(value, "?# \"\\<>") || value[scheme] == '/') {
        conf_error(p, line,
                   "%s: expected http(s)://HOST[:PORT][/PATH] without a query or fragment, as "
                   "browsers reach the gateway, not '%s'",
                   key, value);
        return;
    }
    char *copy = mg_strndup(value, len);
    set_string(field, copy);
    free(copy);
}

void config_set_value(struct parser *p, int line, const struct key_def *key, void *base,
                      const char *value, enum config_secrets secrets)
{
    void *field = (char *)base + key->offset;
    switch (key->kind) {
    case V_STRING:
        set_string(field, value);
        break;
    case V_PATH:
        if (check_readable_file(p, line, value) >= 0)
            set_string(field, value);
        break;
    case V_IDENT:
        parse_ident(p, line, key->name, value, field);
        break;
    case V_PUBLIC_URL:
        parse_public_url(p, line, key->name, value, field);
        break;
    case V_URL:
        if (strncmp(value, "https://", 8) != 0 || !value[8])
            conf_error(p, line, "%s: must be an https:// URL", key->name);
        else
            set_string(field, value);
        break;
    case V_DURATION:
    case V_DURATION0:
        parse_duration(p, line, key->name, value, key->kind == V_DURATION0, field);
        break;
    case V_LOG_LEVEL:
        if (log_level_parse(value, field) != 0)
            conf_error(p, line, "log_level: expected error, warn, info or debug, not '%s'", value);
        break;
    case V_WORKERS:
        parse_workers(p, line, value, field);
        break;
    case V_COUNT:
        parse_count(p, line, key->name, value, field);
        break;
    case V_TLS_MODE:
    case V_LISTEN_TLS:
        parse_tls_mode(p, line, key, value, field);
        break;
    case V_LOGIN_TYPE:
        PARSE_WORD(p, line, key->name, value, login_type_names, field);
        break;
    case V_CIDR_LIST:
        parse_allow(p, line, key->name, value, field);
        break;
    case V_PROTOCOL:
        parse_protocol(p, line, value, field);
        break;
    case V_LISTEN_ADDR:
        parse_listen_address(p, line, value, base);
        break;
    case V_SERVER:
        parse_server(p, line, key->name, value, field);
        break;
    case V_PROVIDER:
        PARSE_WORD(p, line, key->name, value, provider_type_names, field);
        break;
    case V_FLOW:
        PARSE_WORD(p, line, key->name, value, flow_names, field);
        break;
    case V_SASL:
        PARSE_WORD(p, line, key->name, value, sasl_words, field);
        break;
    case V_SECRET:
        if (secrets == CONFIG_LOAD_SECRETS)
            set_string(field, value);
        break;
    case V_SECRET_FILE:
        parse_secret_file(p, line, value, field);
        break;
    case V_TLS_CIPHERS:
        if (!tls_policy_ciphers_valid(value))
            conf_error(p, line, "%s: '%s' selects no TLS 1.2 cipher suite (see `openssl ciphers`)",
                       key->name, value);
        else
            set_string(field, value);
        break;
    case V_SWITCH:
        PARSE_WORD(p, line, key->name, value, switch_words, field);
        break;
    case V_SIZE:
        parse_size(p, line, key->name, value, field);
        break;
    case V_RESOLVER:
        config_set_resolver(p, line, key->name, value, field);
        break;
    case V_TLS_VERSION:
        PARSE_WORD(p, line, key->name, value, tls_version_names, field);
        break;
    case V_ON_OFF:
    case V_MTA_STS_MODE:
    case V_MX_LIST:
    case V_MAX_AGE:
    case V_RUA_LIST:
        config_set_domain_value(p, line, key, field, value);
        break;
    case V_JWT_ALG:
        if (strcmp(value, "RS256") == 0)
            *(enum jwt_alg *)field = JWT_RS256;
        else if (strcmp(value, "PS256") == 0)
            *(enum jwt_alg *)field = JWT_PS256;
        else
            conf_error(p, line, "%s: expected RS256 or PS256, not '%s'", key->name, value);
        break;
    }
}

void config_check_tls(struct parser *p, const struct section *tls, const struct tls_conf *conf)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        conf_error(p, conf_section_line(tls), "cannot create a TLS context: %s",
                   tls_openssl_reason());
        return;
    }
    struct tls_policy_failure why;
    if (tls_policy_apply(ctx, conf, &why) != 0)
        conf_error(p, why.key ? conf_key_line(tls, why.key) : conf_section_line(tls), "%s",
                   why.message);
    SSL_CTX_free(ctx);
}

/* ---- certificate credentials ---- */

#define CLIENT_KEY_FILE_MAX (64 * 1024)
#define CLIENT_KEY_MIN_BITS 2048 /* Entra ID refuses smaller keys */

/* NULL (reported) unless the public key is RSA of at least CLIENT_KEY_MIN_BITS bits. */
static const char *rsa_key_problem(const EVP_PKEY *key)
{
    if (!EVP_PKEY_is_a(key, "RSA"))
        return "is not an RSA key (RS256/PS256 need one)";
    if (EVP_PKEY_get_bits(key) < CLIENT_KEY_MIN_BITS)
        return "is an RSA key shorter than 2048 bits";
    return NULL;
}

/* The first certificate of a PEM file, as DER; NULL (reported) on failure. */
static X509 *read_client_certificate(struct parser *p, int line, const char *path)
{
    FILE *f = fopen(path, "re");
    X509 *x = f ? PEM_read_X509(f, NULL, tls_no_passphrase, NULL) : NULL;
    if (f)
        fclose(f);
    if (!x) {
        conf_error(p, line, "cannot load the certificate %s: %s", path,
                   f ? tls_openssl_reason() : strerror(errno));
        ERR_clear_error();
        return NULL;
    }
    const char *problem = rsa_key_problem(X509_get0_pubkey(x));
    if (problem) {
        conf_error(p, line, "the certificate %s %s", path, problem);
        X509_free(x);
        return NULL;
    }
    return x;
}

EVP_PKEY *config_parse_rsa_key(struct parser *p, int line, const char *what, const char *pem,
                               size_t len)
{
    BIO *bio = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, NULL) : NULL;
    BIO_free(bio);
    if (!key) {
        conf_error(p, line, "cannot load %s (PEM, not encrypted): %s", what, tls_openssl_reason());
        ERR_clear_error();
        return NULL;
    }
    const char *problem = rsa_key_problem(key);
    if (problem) {
        conf_error(p, line, "%s %s", what, problem);
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

/* Read through our own buffer (wiped), not stdio's, so no copy of the key lingers. */
static EVP_PKEY *read_client_key(struct parser *p, int line, const char *path)
{
    size_t len = 0;
    char *pem = mg_read_file(path, CLIENT_KEY_FILE_MAX, 0, &len);
    if (!pem) {
        conf_error(p, line, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char *what = mg_printf("the private key %s", path);
    EVP_PKEY *key = config_parse_rsa_key(p, line, what, pem, len);
    free(what);
    mg_wipe(pem, len);
    free(pem);
    return key;
}

void config_load_client_certificate(struct parser *p, struct provider_conf *pr, int cert_line,
                                    int key_line, bool load_key)
{
    X509 *x = read_client_certificate(p, cert_line, pr->client_certificate);
    if (!x)
        return;
    unsigned char *der = NULL;
    int der_len = i2d_X509(x, &der);
    if (der_len <= 0) {
        conf_error(p, cert_line, "cannot encode the certificate %s", pr->client_certificate);
    } else {
        pr->client_cert_der = mg_malloc((size_t)der_len);
        memcpy(pr->client_cert_der, der, (size_t)der_len);
        pr->client_cert_der_len = (size_t)der_len;
    }
    OPENSSL_free(der);
    EVP_PKEY *key = load_key ? read_client_key(p, key_line, pr->client_private_key) : NULL;
    if (key && EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1) {
        conf_error(p, key_line, "the private key %s does not match the certificate %s",
                   pr->client_private_key, pr->client_certificate);
        EVP_PKEY_free(key);
        key = NULL;
    }
    pr->client_key = key;
    X509_free(x);
    ERR_clear_error();
}

/* ---- addresses ---- */

static int parse_port(const char *s, uint16_t *port)
{
    size_t len = strlen(s);
    if (len == 0 || len > 5 || strspn(s, "0123456789") != len)
        return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int config_parse_host_port(const char *s, char **host, uint16_t *port)
{
    const char *host_start = s, *host_end, *colon;
    if (s[0] == '[') {
        host_start = s + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            return -1;
        colon = host_end + 1;
    } else {
        colon = strrchr(s, ':');
        host_end = colon;
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* a bare IPv6 address needs brackets */
    }
    size_t host_len = (size_t)(host_end - host_start);
    if (host_len == 0 || host_len > 253 || memchr(host_start, '[', host_len) ||
        memchr(host_start, ']', host_len) || memchr(host_start, ' ', host_len))
        return -1;
    if (parse_port(colon + 1, port) != 0)
        return -1;
    *host = mg_strndup(host_start, host_len);
    return 0;
}

int config_parse_listen_address(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char *host;
    uint16_t port;
    if (config_parse_host_port(s, &host, &port) != 0)
        return -1;
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
    hints.ai_family = s[0] == '[' ? AF_INET6 : AF_INET;
    struct addrinfo *res = NULL;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, service, &hints, &res);
    free(host);
    if (rc != 0 || !res)
        return -1;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
