/* The configuration file. inih tokenises; a line reader of our own sits in front of it because
 * inih alone would not do: it does not report section headers (we need their line for "missing
 * key" errors and to notice empty sections), it silently splits over-long lines (shifting every
 * later line number) and Debian builds it with multi-line values, where an indented line
 * continues the previous value. We switch multi-line values off (Debian's libinih exposes its
 * options at run time) so an indented line is an ordinary line, and report any line inih skipped
 * as a syntax error. Comments: a line starting with ';' or '#', and " ;" after a value (inih
 * needs whitespace before the ';'; '#' after a value is part of the value). */
#define INI_HANDLER_LINENO 1 /* Debian's libinih passes the line number; its header says 0 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util.h"

#define CONFIG_LINE_MAX 4096 /* longer lines are an error, not silently split */
#define CONFIG_NAME_MAX 63   /* listener/provider names travel in IPC (IPC_NAME_MAX - 1) */
#define CLIENT_SECRET_MAX 4096
#define MAX_DURATION_MS (365ull * 24 * 3600 * 1000)
#define WORKERS_MAX 256

enum section_kind { SEC_INVALID, SEC_GATEWAY, SEC_TLS, SEC_LISTEN, SEC_PROVIDER, SEC_KINDS };

enum value_kind {
    V_STRING,      /* char * */
    V_PATH,        /* char *, the file must exist and be readable */
    V_IDENT,       /* char *, letters, digits, '.', '-', '_' (goes into URLs and requests) */
    V_URL,         /* char *, https:// only */
    V_DURATION,    /* uint64_t ms, > 0 */
    V_DURATION0,   /* uint64_t ms, may be 0 */
    V_LOG_LEVEL,   /* enum mg_log_level */
    V_WORKERS,     /* int */
    V_TLS_MODE,    /* enum mg_tls_mode */
    V_PROTOCOL,    /* enum mg_proto */
    V_LISTEN_ADDR, /* listener address + sockaddr */
    V_SERVER,      /* struct server_addr host + port */
    V_PROVIDER,    /* enum mg_provider_type */
    V_SECRET,      /* client_secret: kept only with CONFIG_LOAD_SECRETS */
    V_SECRET_FILE, /* client_secret_file: must be readable and non-empty */
};

struct key_def {
    const char *name;
    enum value_kind kind;
    size_t offset; /* of the field in the section's struct */
    bool required;
};

#define KEY(st, name, kind, field, req)                                                            \
    {                                                                                              \
        name, kind, offsetof(struct st, field), req                                                \
    }
#define MAX_KEYS 16 /* per section kind; see the _Static_assert below the tables */

static const struct key_def gateway_keys[] = {
    KEY(gateway_conf, "state_dir", V_STRING, state_dir, false),
    KEY(gateway_conf, "log_level", V_LOG_LEVEL, log_level, false),
    KEY(gateway_conf, "workers", V_WORKERS, workers, false),
    KEY(gateway_conf, "login_timeout", V_DURATION, login_timeout_ms, false),
    KEY(gateway_conf, "idle_timeout", V_DURATION, idle_timeout_ms, false),
    KEY(gateway_conf, "auth_cache_ttl", V_DURATION0, auth_cache_ttl_ms, false),
    KEY(gateway_conf, "auth_failure_delay", V_DURATION0, auth_failure_delay_ms, false),
    KEY(gateway_conf, "token_timeout", V_DURATION, token_timeout_ms, false),
    {NULL, 0, 0, false}};

static const struct key_def tls_keys[] = {KEY(tls_conf, "certificate", V_PATH, certificate, false),
                                          KEY(tls_conf, "private_key", V_PATH, private_key, false),
                                          {NULL, 0, 0, false}};

static const struct key_def listen_keys[] = {
    KEY(listener_conf, "protocol", V_PROTOCOL, protocol, true),
    KEY(listener_conf, "address", V_LISTEN_ADDR, address, true),
    KEY(listener_conf, "tls", V_TLS_MODE, tls, false),
    KEY(listener_conf, "banner", V_STRING, banner, false),
    KEY(listener_conf, "hostname", V_STRING, hostname, false),
    KEY(listener_conf, "login_timeout", V_DURATION, login_timeout_ms, false),
    KEY(listener_conf, "idle_timeout", V_DURATION, idle_timeout_ms, false),
    {NULL, 0, 0, false}};

static const struct key_def provider_keys[] = {
    KEY(provider_conf, "type", V_PROVIDER, type, true),
    KEY(provider_conf, "tenant", V_IDENT, tenant, true),
    KEY(provider_conf, "client_id", V_IDENT, client_id, true),
    KEY(provider_conf, "client_secret", V_SECRET, client_secret, false),
    KEY(provider_conf, "client_secret_file", V_SECRET_FILE, client_secret_file, false),
    KEY(provider_conf, "token_endpoint", V_URL, token_endpoint, false),
    KEY(provider_conf, "scope", V_STRING, scope, false),
    KEY(provider_conf, "imap_server", V_SERVER, imap, false),
    KEY(provider_conf, "pop3_server", V_SERVER, pop3, false),
    KEY(provider_conf, "smtp_server", V_SERVER, smtp, false),
    KEY(provider_conf, "imap_tls", V_TLS_MODE, imap.tls, false),
    KEY(provider_conf, "pop3_tls", V_TLS_MODE, pop3.tls, false),
    KEY(provider_conf, "smtp_tls", V_TLS_MODE, smtp.tls, false),
    KEY(provider_conf, "ca_file", V_PATH, ca_file, false),
    {NULL, 0, 0, false}};

_Static_assert(MG_ARRAY_LEN(provider_keys) <= MAX_KEYS + 1, "raise MAX_KEYS");

static const struct {
    const char *word;
    const struct key_def *keys;
    bool named;
} section_kinds[SEC_KINDS] = {
    [SEC_GATEWAY] = {"gateway", gateway_keys, false},
    [SEC_TLS] = {"tls", tls_keys, false},
    [SEC_LISTEN] = {"listen", listen_keys, true},
    [SEC_PROVIDER] = {"provider", provider_keys, true},
};

/* One [section] of the file, in order of appearance. */
struct section {
    enum section_kind kind;
    char *title; /* as written between the brackets, e.g. "listen imaps" */
    int line;
    size_t index;           /* into cfg->listeners / cfg->providers */
    int key_line[MAX_KEYS]; /* line of each key of the kind's table; 0 = not set */
};

struct conf_message {
    int line;
    size_t seq; /* keeps messages of one line in the order they were found */
    char *text;
};

struct parser {
    struct config *cfg;
    enum config_secrets secrets;
    FILE *in;
    struct conf_message *errors; /* printed sorted by line once the whole file is checked */
    size_t n_errors;
    int lineno;          /* physical line last handed to inih */
    int expect_key_line; /* that line looked like "key = value": inih must call the handler */
    bool expect_indented;
    int handled_line; /* last line inih called the handler for */
    struct section *sections;
    size_t n_sections;
};

/* Appends a zeroed element to a growing array and returns it. */
static void *grow_array(void **array, size_t *n, size_t size)
{
    *array = mg_realloc(*array, (*n + 1) * size);
    void *element = (char *)*array + *n * size;
    memset(element, 0, size);
    (*n)++;
    return element;
}

static void conf_error(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conf_error(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = mg_strdup("out of memory");
    va_end(ap);
    struct conf_message *m = grow_array((void **)&p->errors, &p->n_errors, sizeof *m);
    m->line = line;
    m->seq = p->n_errors;
    m->text = text;
}

/* Line 0 (not tied to a line) goes last. */
static int message_order(const void *a, const void *b)
{
    const struct conf_message *x = a, *y = b;
    unsigned lx = (unsigned)x->line - 1, ly = (unsigned)y->line - 1;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_errors(struct parser *p, FILE *out)
{
    if (p->n_errors)
        qsort(p->errors, p->n_errors, sizeof *p->errors, message_order);
    for (size_t i = 0; i < p->n_errors; i++) {
        if (out)
            fprintf(out, "%s:%d: %s\n", p->cfg->path, p->errors[i].line, p->errors[i].text);
        free(p->errors[i].text);
    }
    free(p->errors);
}

/* Line where the key was set in that section, 0 when it was not. */
static int key_line(const struct section *s, const char *name)
{
    const struct key_def *keys = section_kinds[s->kind].keys;
    for (size_t k = 0; keys && keys[k].name; k++) {
        if (strcmp(keys[k].name, name) == 0)
            return s->key_line[k];
    }
    return 0;
}

/* ---- section headers (seen by the line reader) ---- */

static bool valid_section_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CONFIG_NAME_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* Returns the earlier section with the same title, if any. */
static const struct section *find_section(const struct parser *p, const char *title)
{
    for (size_t i = 0; i < p->n_sections; i++) {
        if (strcmp(p->sections[i].title, title) == 0)
            return &p->sections[i];
    }
    return NULL;
}

static enum section_kind classify_section(struct parser *p, char *title, const char **name)
{
    size_t word_len = strcspn(title, " \t");
    *name = title + word_len + strspn(title + word_len, " \t");
    for (int k = SEC_GATEWAY; k < SEC_KINDS; k++) {
        const char *word = section_kinds[k].word;
        if (strlen(word) != word_len || strncmp(title, word, word_len) != 0)
            continue;
        if (!section_kinds[k].named && **name) {
            conf_error(p, p->lineno, "section [%s] takes no name", word);
            return SEC_INVALID;
        }
        if (section_kinds[k].named && !valid_section_name(*name)) {
            conf_error(p, p->lineno,
                       "[%s NAME] needs a NAME of 1-%d letters, digits, '.', '_' or '-'", word,
                       CONFIG_NAME_MAX);
            return SEC_INVALID;
        }
        return (enum section_kind)k;
    }
    conf_error(p, p->lineno, "unknown section [%s]", title);
    return SEC_INVALID;
}

static void begin_section(struct parser *p, char *title)
{
    const char *name;
    enum section_kind kind = classify_section(p, title, &name);
    const struct section *earlier = find_section(p, title);
    if (kind != SEC_INVALID && earlier) {
        conf_error(p, p->lineno, "duplicate section [%s] (first at line %d)", title, earlier->line);
        kind = SEC_INVALID;
    }
    struct section *s = grow_array((void **)&p->sections, &p->n_sections, sizeof *s);
    s->kind = kind;
    s->title = mg_strdup(title);
    s->line = p->lineno;
    struct config *cfg = p->cfg;
    if (kind == SEC_LISTEN) {
        struct listener_conf *l =
            grow_array((void **)&cfg->listeners, &cfg->n_listeners, sizeof *l);
        s->index = cfg->n_listeners - 1;
        l->name = mg_strdup(name);
        l->line = s->line;
    } else if (kind == SEC_PROVIDER) {
        struct provider_conf *pr =
            grow_array((void **)&cfg->providers, &cfg->n_providers, sizeof *pr);
        s->index = cfg->n_providers - 1;
        pr->name = mg_strdup(name);
        pr->line = s->line;
    }
}

/* "[title]" with an optional comment after it. */
static void parse_section_header(struct parser *p, char *line)
{
    char *end = strchr(line, ']');
    if (!end) {
        conf_error(p, p->lineno, "section header without ']'");
        return;
    }
    const char *rest = end + 1 + strspn(end + 1, " \t");
    if (*rest && *rest != ';' && *rest != '#') {
        conf_error(p, p->lineno, "unexpected text after the section header");
        return;
    }
    *end = '\0';
    char *title = line + 1 + strspn(line + 1, " \t");
    size_t len = strlen(title);
    while (len && (title[len - 1] == ' ' || title[len - 1] == '\t'))
        title[--len] = '\0';
    begin_section(p, title);
    *end = ']';
}

/* ---- the line reader in front of inih ---- */

/* A line that should have reached the handler but did not is a syntax error. */
static void check_previous_line(struct parser *p)
{
    if (!p->expect_key_line || p->handled_line == p->expect_key_line)
        return;
    if (p->expect_indented)
        conf_error(p, p->expect_key_line,
                   "indented line without '=': values cannot continue on a second line");
    else
        conf_error(p, p->expect_key_line,
                   "expected 'key = value', '[section]' or a comment (';' or '#')");
}

static void classify_line(struct parser *p, char *buf)
{
    char *s = buf;
    if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 byte order mark, as inih skips it */
    char *start = s + strspn(s, " \t\r\f\v");
    p->expect_key_line = 0;
    if (*start == '\0' || *start == ';' || *start == '#')
        return;
    if (*start == '[') {
        parse_section_header(p, start);
        return;
    }
    p->expect_key_line = p->lineno;
    p->expect_indented = start > s;
}

/* fgets() for inih that never splits a line: a line that does not fit, or holds a NUL byte, is
 * reported and handed over as an empty line, so line numbers stay exact. */
static char *read_line(char *buf, int size, void *arg)
{
    struct parser *p = arg;
    check_previous_line(p);
    p->expect_key_line = 0;
    size_t len = 0;
    bool too_long = false, has_nul = false;
    int c;
    while ((c = getc(p->in)) != EOF && c != '\n') {
        if (c == '\0')
            has_nul = true;
        if (len + 1 < (size_t)size)
            buf[len++] = (char)c;
        else
            too_long = true;
    }
    if (c == EOF && len == 0)
        return NULL;
    buf[len] = '\0';
    p->lineno++;
    if (too_long || has_nul) {
        conf_error(p, p->lineno, too_long ? "line longer than %d characters" : "NUL byte in line",
                   CONFIG_LINE_MAX - 1);
        mg_wipe(buf, len); /* it may hold a secret */
        return buf;
    }
    classify_line(p, buf);
    return buf;
}

/* ---- values ---- */

static bool has_control_char(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

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

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (int)n;
}

static void parse_workers(struct parser *p, int line, const char *value, int *out)
{
    if (strcmp(value, "auto") == 0) {
        *out = online_cpus();
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

static void parse_protocol(struct parser *p, int line, const char *value, enum mg_proto *out)
{
    enum mg_proto proto;
    if (mg_proto_parse(value, &proto) != 0)
        conf_error(p, line, "protocol: unknown protocol '%s' (use imap)", value);
    else if (proto != MG_PROTO_IMAP)
        conf_error(p, line, "protocol %s is not supported yet", value);
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

/* Checked in both modes (a worker must fail like the broker would), read only with secrets. */
static void parse_secret_file(struct parser *p, int line, const char *value, char **field)
{
    long long size = check_readable_file(p, line, value);
    if (size == 0)
        conf_error(p, line, "client_secret_file %s is empty", value);
    if (size > 0)
        set_string(field, value);
}

static void parse_ident(struct parser *p, int line, const char *key, const char *value,
                        char **field)
{
    if (strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") !=
        strlen(value))
        conf_error(p, line, "%s: only letters, digits, '.', '-' and '_' are allowed", key);
    else
        set_string(field, value);
}

static void set_value(struct parser *p, int line, const struct key_def *key, void *base,
                      const char *value)
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
    case V_TLS_MODE:
        if (mg_tls_mode_parse(value, field) != 0)
            conf_error(p, line, "%s: expected implicit or starttls, not '%s'", key->name, value);
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
        if (strcmp(value, "microsoft") != 0)
            conf_error(p, line, "type: unknown provider type '%s' (use microsoft)", value);
        else
            *(enum mg_provider_type *)field = MG_PROVIDER_MICROSOFT;
        break;
    case V_SECRET:
        if (p->secrets == CONFIG_LOAD_SECRETS)
            set_string(field, value);
        break;
    case V_SECRET_FILE:
        parse_secret_file(p, line, value, field);
        break;
    }
}

static void *section_struct(struct parser *p, const struct section *s)
{
    switch (s->kind) {
    case SEC_GATEWAY:
        return &p->cfg->gateway;
    case SEC_TLS:
        return &p->cfg->tls;
    case SEC_LISTEN:
        return &p->cfg->listeners[s->index];
    case SEC_PROVIDER:
        return &p->cfg->providers[s->index];
    default:
        return NULL;
    }
}

static void handle_key(struct parser *p, const char *name, const char *value, int line)
{
    struct section *s = p->n_sections ? &p->sections[p->n_sections - 1] : NULL;
    if (!s) {
        conf_error(p, line, "'%s' is outside of any section", name);
        return;
    }
    if (s->kind == SEC_INVALID)
        return; /* the section header has been reported */
    const struct key_def *keys = section_kinds[s->kind].keys;
    size_t k = 0;
    while (keys[k].name && strcmp(keys[k].name, name) != 0)
        k++;
    if (!keys[k].name) {
        conf_error(p, line, "unknown key '%s' in [%s]", name, s->title);
        return;
    }
    if (s->key_line[k]) {
        conf_error(p, line, "duplicate key '%s' (first at line %d)", name, s->key_line[k]);
        return;
    }
    s->key_line[k] = line;
    if (*value == '\0')
        conf_error(p, line, "'%s' needs a value", name);
    else if (has_control_char(value))
        conf_error(p, line, "'%s' contains a control character", name);
    else
        set_value(p, line, &keys[k], section_struct(p, s), value);
}

static int ini_callback(void *user, const char *section, const char *name, const char *value,
                        int line)
{
    MG_UNUSED(section); /* the reader tracks sections itself, with their full names */
    struct parser *p = user;
    p->handled_line = line;
    handle_key(p, name, value, line);
    /* inih's line buffer: a client_secret must not linger in it (nor anywhere else). */
    mg_wipe((char *)value, strlen(value));
    return 1;
}

/* ---- checks and defaults once the whole file is read ---- */

static void require_keys(struct parser *p, const struct section *s)
{
    const struct key_def *keys = section_kinds[s->kind].keys;
    for (size_t k = 0; keys[k].name; k++) {
        if (keys[k].required && !s->key_line[k])
            conf_error(p, s->line, "[%s] needs '%s'", s->title, keys[k].name);
    }
}

static void finish_listener(struct parser *p, const struct section *s)
{
    struct config *cfg = p->cfg;
    struct listener_conf *l = &cfg->listeners[s->index];
    if (!l->banner)
        l->banner = mg_strdup("The mailgate IMAP4 service is ready.");
    if (!l->hostname) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            mg_strlcpy(host, "localhost", sizeof host);
        l->hostname = mg_strdup(host);
    }
    if (!key_line(s, "login_timeout"))
        l->login_timeout_ms = cfg->gateway.login_timeout_ms;
    if (!key_line(s, "idle_timeout"))
        l->idle_timeout_ms = cfg->gateway.idle_timeout_ms;
    for (size_t i = 0; l->addrlen && i < s->index; i++) {
        const struct listener_conf *o = &cfg->listeners[i];
        if (o->addrlen == l->addrlen && memcmp(&o->addr, &l->addr, l->addrlen) == 0)
            conf_error(p, key_line(s, "address"),
                       "address %s is already used by [listen %s] (line %d)", l->address, o->name,
                       o->line);
    }
}

static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t from_len = strlen(from), to_len = strlen(to), n = 0;
    for (const char *q = strstr(s, from); q; q = strstr(q + from_len, from))
        n++;
    char *out = mg_malloc(strlen(s) + n * to_len + 1), *w = out;
    for (const char *q; (q = strstr(s, from)); s = q + from_len) {
        memcpy(w, s, (size_t)(q - s));
        w += q - s;
        memcpy(w, to, to_len);
        w += to_len;
    }
    strcpy(w, s);
    return out;
}

/* How an upstream server is reached when the file does not say: its Microsoft default, and
 * its TLS mode guessed from the port (one well-known port has the other mode). */
struct server_default {
    const char *host;
    uint16_t port;
    enum mg_tls_mode usual_tls;
    uint16_t exception_port; /* e.g. 143 for IMAP: STARTTLS */
};

static void finish_server(struct server_addr *srv, int tls_line, const struct server_default *d)
{
    if (!srv->host) {
        srv->host = mg_strdup(d->host);
        srv->port = d->port;
    }
    if (!tls_line) {
        enum mg_tls_mode other =
            d->usual_tls == MG_TLS_IMPLICIT ? MG_TLS_STARTTLS : MG_TLS_IMPLICIT;
        srv->tls = srv->port == d->exception_port ? other : d->usual_tls;
    }
}

static void load_client_secret(struct parser *p, const struct section *s, struct provider_conf *pr)
{
    size_t len = 0;
    char *secret = mg_read_file(pr->client_secret_file, CLIENT_SECRET_MAX, 1, &len);
    if (!secret)
        conf_error(p, key_line(s, "client_secret_file"), "cannot read %s: %s",
                   pr->client_secret_file, strerror(errno));
    else if (len == 0 || strlen(secret) != len || has_control_char(secret))
        conf_error(p, key_line(s, "client_secret_file"),
                   "%s must hold the secret on one line (and nothing else)",
                   pr->client_secret_file);
    else
        pr->client_secret = secret;
    if (secret && pr->client_secret != secret)
        mg_free_secret(&secret);
}

static void finish_provider(struct parser *p, const struct section *s)
{
    struct provider_conf *pr = &p->cfg->providers[s->index];
    bool inline_secret = key_line(s, "client_secret"),
         secret_file = key_line(s, "client_secret_file");
    if (inline_secret == secret_file)
        conf_error(p, s->line, "[%s] needs exactly one of 'client_secret' and 'client_secret_file'",
                   s->title);
    else if (secret_file && pr->client_secret_file && p->secrets == CONFIG_LOAD_SECRETS)
        load_client_secret(p, s, pr);
    const char *endpoint = pr->token_endpoint
                               ? pr->token_endpoint
                               : "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token";
    char *expanded = replace_all(endpoint, "{tenant}", pr->tenant ? pr->tenant : "");
    free(pr->token_endpoint);
    pr->token_endpoint = expanded;
    if (!pr->scope)
        pr->scope = mg_strdup("https://outlook.office365.com/.default");
    static const struct server_default imap = {"outlook.office365.com", 993, MG_TLS_IMPLICIT, 143};
    static const struct server_default pop3 = {"outlook.office365.com", 995, MG_TLS_IMPLICIT, 110};
    static const struct server_default smtp = {"smtp.office365.com", 587, MG_TLS_STARTTLS, 465};
    finish_server(&pr->imap, key_line(s, "imap_tls"), &imap);
    finish_server(&pr->pop3, key_line(s, "pop3_tls"), &pop3);
    finish_server(&pr->smtp, key_line(s, "smtp_tls"), &smtp);
    if (pr->imap.tls == MG_TLS_STARTTLS)
        conf_error(p, key_line(s, "imap_tls") ? key_line(s, "imap_tls") : s->line,
                   "STARTTLS to an IMAP upstream is not supported yet");
}

static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    MG_UNUSED(buf), MG_UNUSED(size), MG_UNUSED(rwflag), MG_UNUSED(userdata);
    return 0; /* an encrypted key fails to load instead of prompting on a terminal */
}

static const char *openssl_reason(void)
{
    const char *reason = ERR_reason_error_string(ERR_peek_error());
    return reason ? reason : "unknown error";
}

/* Loads the pair the way the workers will, so a bad or mismatched key is reported here. */
static void check_tls_pair(struct parser *p, const struct section *s)
{
    const struct tls_conf *tls = &p->cfg->tls;
    int cert_line = key_line(s, "certificate"), pkey_line = key_line(s, "private_key");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        conf_error(p, s->line, "cannot create a TLS context: %s", openssl_reason());
        return;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1)
        conf_error(p, cert_line, "cannot load the certificate chain %s: %s", tls->certificate,
                   openssl_reason());
    else if (SSL_CTX_use_PrivateKey_file(ctx, tls->private_key, SSL_FILETYPE_PEM) != 1 &&
             ERR_GET_REASON(ERR_peek_error()) != X509_R_KEY_VALUES_MISMATCH)
        conf_error(p, pkey_line, "cannot use the private key %s: %s", tls->private_key,
                   openssl_reason());
    else if (SSL_CTX_check_private_key(ctx) != 1)
        conf_error(p, pkey_line, "the private key %s does not match the certificate %s",
                   tls->private_key, tls->certificate);
    ERR_clear_error();
    SSL_CTX_free(ctx);
}

static void finish_tls(struct parser *p)
{
    const struct section *tls = find_section(p, "tls");
    if (p->cfg->n_listeners == 0)
        return;
    if (!tls) {
        conf_error(p, 0, "missing section [tls] (the listeners need a certificate)");
        return;
    }
    /* Required only when there is a listener, so not marked required in the key table. */
    if (!key_line(tls, "certificate"))
        conf_error(p, tls->line, "[tls] needs 'certificate'");
    if (!key_line(tls, "private_key"))
        conf_error(p, tls->line, "[tls] needs 'private_key'");
    if (p->cfg->tls.certificate && p->cfg->tls.private_key)
        check_tls_pair(p, tls);
}

static void finish(struct parser *p)
{
    check_previous_line(p);
    for (size_t i = 0; i < p->n_sections; i++) {
        const struct section *s = &p->sections[i];
        if (s->kind == SEC_LISTEN || s->kind == SEC_PROVIDER)
            require_keys(p, s);
        if (s->kind == SEC_LISTEN)
            finish_listener(p, s);
        else if (s->kind == SEC_PROVIDER)
            finish_provider(p, s);
    }
    finish_tls(p);
    if (p->cfg->n_providers == 0)
        conf_error(p, 0, "no [provider NAME] section: at least one is needed");
}

static void set_defaults(struct gateway_conf *g)
{
    g->state_dir = mg_strdup("/var/lib/mailgate");
    g->log_level = MG_LOG_INFO;
    g->workers = online_cpus();
    g->login_timeout_ms = 60 * 1000;
    g->idle_timeout_ms = 30 * 60 * 1000;
    g->auth_cache_ttl_ms = 10 * 60 * 1000;
    g->auth_failure_delay_ms = 2 * 1000;
    g->token_timeout_ms = 15 * 1000;
}

static void set_inih_options(void)
{
    ini_allow_multiline = false;
    ini_allow_bom = true;
    ini_allow_inline_comments = true;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    ini_use_stack = true;
    ini_max_line = CONFIG_LINE_MAX;
}

static void parse_file(struct parser *p)
{
    /* Our own stdio buffer so the file's bytes (a client_secret) can be wiped afterwards. */
    char iobuf[8192];
    setvbuf(p->in, iobuf, _IOFBF, sizeof iobuf);
    set_inih_options();
    int rc = ini_parse_stream(read_line, p, ini_callback, p);
    if (rc == -2)
        conf_error(p, 0, "out of memory");
    fclose(p->in);
    mg_wipe(iobuf, sizeof iobuf);
}

struct config *config_load(const char *path, enum config_secrets secrets, FILE *errors)
{
    struct config *cfg = mg_calloc(1, sizeof *cfg);
    cfg->path = mg_strdup(path);
    set_defaults(&cfg->gateway);
    struct parser p = {.cfg = cfg, .secrets = secrets};
    p.in = fopen(path, "re");
    if (!p.in) {
        conf_error(&p, 0, "cannot open: %s", strerror(errno));
    } else {
        parse_file(&p);
        finish(&p);
    }
    for (size_t i = 0; i < p.n_sections; i++)
        free(p.sections[i].title);
    free(p.sections);
    size_t n_errors = p.n_errors;
    print_errors(&p, errors);
    if (n_errors)
        config_free(&cfg);
    return cfg;
}

static void free_server(struct server_addr *srv)
{
    free(srv->host);
}

void config_free(struct config **cfgp)
{
    struct config *cfg = cfgp ? *cfgp : NULL;
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_conf *l = &cfg->listeners[i];
        free(l->name);
        free(l->address);
        free(l->banner);
        free(l->hostname);
    }
    for (size_t i = 0; i < cfg->n_providers; i++) {
        struct provider_conf *pr = &cfg->providers[i];
        free(pr->name);
        free(pr->tenant);
        free(pr->client_id);
        mg_free_secret(&pr->client_secret);
        free(pr->client_secret_file);
        free(pr->token_endpoint);
        free(pr->scope);
        free_server(&pr->imap);
        free_server(&pr->pop3);
        free_server(&pr->smtp);
        free(pr->ca_file);
    }
    free(cfg->listeners);
    free(cfg->providers);
    free(cfg->gateway.state_dir);
    free(cfg->tls.certificate);
    free(cfg->tls.private_key);
    free(cfg->path);
    free(cfg);
    *cfgp = NULL;
}

const struct provider_conf *config_provider(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_providers; i++) {
        if (strcmp(cfg->providers[i].name, name) == 0)
            return &cfg->providers[i];
    }
    return NULL;
}

const struct listener_conf *config_listener(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->n_listeners; i++) {
        if (strcmp(cfg->listeners[i].name, name) == 0)
            return &cfg->listeners[i];
    }
    return NULL;
}

const struct server_addr *provider_server(const struct provider_conf *p, enum mg_proto proto)
{
    switch (proto) {
    case MG_PROTO_IMAP:
        return &p->imap;
    case MG_PROTO_POP3:
        return &p->pop3;
    case MG_PROTO_SMTP:
        return &p->smtp;
    }
    return NULL;
}

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
