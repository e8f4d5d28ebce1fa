/* The configuration file. inih tokenises; a line reader of our own sits in front of it because
 * inih alone would not do: it does not report section headers (we need their line for "missing
 * key" errors and to notice empty sections), it silently splits over-long lines (shifting every
 * later line number) and Debian builds it with multi-line values, where an indented line
 * continues the previous value. We switch multi-line values off (Debian's libinih exposes its
 * options at run time) so an indented line is an ordinary line, and report any line inih skipped
 * as a syntax error. Comments: a line starting with ';' or '#', and " ;" after a value (inih
 * needs whitespace before the ';'; '#' after a value is part of the value). Each value is
 * checked and stored by config_values.c. */
#define INI_HANDLER_LINENO 1 /* Debian's libinih passes the line number; its header says 0 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"
#include "util.h"

#define CONFIG_LINE_MAX 4096 /* longer lines are an error, not silently split */
#define CONFIG_NAME_MAX 63   /* listener/provider names travel in IPC (IPC_NAME_MAX - 1) */

enum section_kind {
    SEC_INVALID,
    SEC_GATEWAY,
    SEC_DEFAULTS,
    SEC_TLS,
    SEC_LISTEN,
    SEC_PROVIDER,
    SEC_DOMAIN,
    SEC_KINDS
};

#define KEY(st, name, kind, field, req)                                                            \
    {                                                                                              \
        name, kind, offsetof(struct st, field), req                                                \
    }
#define MAX_KEYS 32 /* per section kind; see the _Static_assert below the tables */

static const struct key_def gateway_keys[] = {
    KEY(gateway_conf, "state_dir", V_STRING, state_dir, false),
    KEY(gateway_conf, "secret_key_file", V_STRING, secret_key_file, false),
    KEY(gateway_conf, "user", V_STRING, user, false),
    KEY(gateway_conf, "log_level", V_LOG_LEVEL, log_level, false),
    KEY(gateway_conf, "workers", V_WORKERS, workers, false),
    KEY(gateway_conf, "login_timeout", V_DURATION, login_timeout_ms, false),
    KEY(gateway_conf, "idle_timeout", V_DURATION, idle_timeout_ms, false),
    KEY(gateway_conf, "auth_cache_ttl", V_DURATION0, auth_cache_ttl_ms, false),
    KEY(gateway_conf, "auth_failure_delay", V_DURATION0, auth_failure_delay_ms, false),
    KEY(gateway_conf, "token_timeout", V_DURATION, token_timeout_ms, false),
    KEY(gateway_conf, "lockout_threshold", V_COUNT, lockout_threshold, false),
    KEY(gateway_conf, "lockout_window", V_DURATION, lockout_window_ms, false),
    KEY(gateway_conf, "lockout_duration", V_DURATION, lockout_duration_ms, false),
    KEY(gateway_conf, "max_failure_delay", V_DURATION0, max_failure_delay_ms, false),
    KEY(gateway_conf, "max_connections_per_ip", V_COUNT, max_connections_per_ip, false),
    KEY(gateway_conf, "max_logins_per_ip", V_COUNT, max_logins_per_ip, false),
    KEY(gateway_conf, "login_type", V_LOGIN_TYPE, login_type, false),
    KEY(gateway_conf, "allow", V_CIDR_LIST, allow, false),
    KEY(gateway_conf, "metrics_allow", V_CIDR_LIST, metrics_allow, false),
    KEY(gateway_conf, "default_domain", V_IDENT, default_domain, false),
    KEY(gateway_conf, "audit_retention", V_DURATION0, audit_retention_ms, false),
    KEY(gateway_conf, "audit_log", V_STRING, audit_log, false),
    KEY(gateway_conf, "public_url", V_PUBLIC_URL, public_url, false),
    KEY(gateway_conf, "protocol_log", V_SWITCH, protocol_log, false),
    KEY(gateway_conf, "protocol_log_max", V_SIZE, protocol_log_max, false),
    KEY(gateway_conf, "resolver", V_RESOLVER, resolver, false),
    {NULL, 0, 0, false}};

static const struct key_def defaults_keys[] = {KEY(defaults_conf, "imap", V_SWITCH, imap, false),
                                               KEY(defaults_conf, "pop3", V_SWITCH, pop3, false),
                                               KEY(defaults_conf, "smtp", V_SWITCH, smtp, false),
                                               {NULL, 0, 0, false}};

static const struct key_def tls_keys[] = {
    KEY(tls_conf, "certificate", V_PATH, certificate, false),
    KEY(tls_conf, "private_key", V_PATH, private_key, false),
    KEY(tls_conf, "ecdsa_certificate", V_PATH, ecdsa_certificate, false),
    KEY(tls_conf, "ecdsa_private_key", V_PATH, ecdsa_private_key, false),
    KEY(tls_conf, "ciphers", V_TLS_CIPHERS, ciphers, false),
    KEY(tls_conf, "min_version", V_TLS_VERSION, min_version, false),
    KEY(tls_conf, "session_tickets", V_DURATION0, session_ticket_lifetime_ms, false),
    {NULL, 0, 0, false}};

static const struct key_def listen_keys[] = {
    KEY(listener_conf, "protocol", V_PROTOCOL, protocol, true),
    KEY(listener_conf, "address", V_LISTEN_ADDR, address, true),
    KEY(listener_conf, "tls", V_LISTEN_TLS, tls, false),
    KEY(listener_conf, "banner", V_STRING, banner, false),
    KEY(listener_conf, "hostname", V_STRING, hostname, false),
    KEY(listener_conf, "login_timeout", V_DURATION, login_timeout_ms, false),
    KEY(listener_conf, "idle_timeout", V_DURATION, idle_timeout_ms, false),
    KEY(listener_conf, "login_type", V_LOGIN_TYPE, login_type, false),
    KEY(listener_conf, "allow", V_CIDR_LIST, allow, false),
    KEY(listener_conf, "protocol_log", V_SWITCH, protocol_log, false),
    {NULL, 0, 0, false}};

static const struct key_def provider_keys[] = {
    KEY(provider_conf, "type", V_PROVIDER, type, true),
    KEY(provider_conf, "flow", V_FLOW, flow, false),
    KEY(provider_conf, "sasl", V_SASL, sasl, false),
    /* Required or refused by type and flow: config_provider.c. */
    KEY(provider_conf, "tenant", V_IDENT, tenant, false),
    KEY(provider_conf, "client_id", V_IDENT, client_id, false),
    KEY(provider_conf, "client_secret", V_SECRET, client_secret, false),
    KEY(provider_conf, "client_secret_file", V_SECRET_FILE, client_secret_file, false),
    KEY(provider_conf, "client_certificate", V_PATH, client_certificate, false),
    KEY(provider_conf, "client_private_key", V_PATH, client_private_key, false),
    KEY(provider_conf, "client_assertion_alg", V_JWT_ALG, client_assertion_alg, false),
    KEY(provider_conf, "token_endpoint", V_URL, token_endpoint, false),
    KEY(provider_conf, "device_authorization_endpoint", V_URL, device_authorization_endpoint,
        false),
    KEY(provider_conf, "authorization_endpoint", V_URL, authorization_endpoint, false),
    KEY(provider_conf, "service_account_file", V_PATH, service_account_file, false),
    KEY(provider_conf, "scope", V_STRING, scope, false),
    KEY(provider_conf, "imap_server", V_SERVER, imap, false),
    KEY(provider_conf, "pop3_server", V_SERVER, pop3, false),
    KEY(provider_conf, "smtp_server", V_SERVER, smtp, false),
    KEY(provider_conf, "imap_tls", V_TLS_MODE, imap.tls, false),
    KEY(provider_conf, "pop3_tls", V_TLS_MODE, pop3.tls, false),
    KEY(provider_conf, "smtp_tls", V_TLS_MODE, smtp.tls, false),
    KEY(provider_conf, "ca_file", V_PATH, ca_file, false),
    {NULL, 0, 0, false}};

/* Host names are parsed once the listeners are known (config_domain.c). */
static const struct key_def domain_keys[] = {
    KEY(domain_conf, "imap_host", V_STRING, imap_host, false),
    KEY(domain_conf, "pop3_host", V_STRING, pop3_host, false),
    KEY(domain_conf, "smtp_host", V_STRING, smtp_host, false),
    KEY(domain_conf, "display_name", V_STRING, display_name, false),
    KEY(domain_conf, "mta_sts_mode", V_MTA_STS_MODE, mta_sts_mode, false),
    KEY(domain_conf, "mta_sts_mx", V_MX_LIST, mta_sts_mx, false),
    KEY(domain_conf, "mta_sts_max_age", V_MAX_AGE, mta_sts_max_age, false),
    KEY(domain_conf, "tls_rpt", V_RUA_LIST, tls_rpt, false),
    KEY(domain_conf, "autodiscover", V_ON_OFF, autodiscover, false),
    KEY(domain_conf, "certificate", V_PATH, certificate, false),
    KEY(domain_conf, "private_key", V_PATH, private_key, false),
    {NULL, 0, 0, false}};

_Static_assert(MG_ARRAY_LEN(provider_keys) <= MAX_KEYS + 1, "raise MAX_KEYS");
_Static_assert(MG_ARRAY_LEN(gateway_keys) <= MAX_KEYS + 1, "raise MAX_KEYS");

static const struct {
    const char *word;
    const struct key_def *keys;
    bool named;
} section_kinds[SEC_KINDS] = {
    [SEC_GATEWAY] = {"gateway", gateway_keys, false},
    [SEC_DEFAULTS] = {"defaults", defaults_keys, false},
    [SEC_TLS] = {"tls", tls_keys, false},
    [SEC_LISTEN] = {"listen", listen_keys, true},
    [SEC_PROVIDER] = {"provider", provider_keys, true},
    [SEC_DOMAIN] = {"domain", domain_keys, true},
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
    bool warning; /* does not fail the load */
    size_t seq;   /* keeps messages of one line in the order they were found */
    char *text;
};

struct parser {
    struct config *cfg;
    enum config_secrets secrets;
    bool listeners_unused; /* config_load_admin(): [tls]'s files are named, not opened */
    FILE *in;
    struct conf_message *errors; /* printed sorted by line once the whole file is checked */
    size_t n_errors;             /* messages, warnings included */
    size_t n_warnings;
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

static void add_message(struct parser *p, int line, bool warning, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void add_message(struct parser *p, int line, bool warning, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = mg_strdup("out of memory");
    struct conf_message *m = grow_array((void **)&p->errors, &p->n_errors, sizeof *m);
    m->line = line;
    m->warning = warning;
    m->seq = p->n_errors;
    m->text = text;
    p->n_warnings += warning;
}

void conf_error(struct parser *p, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_message(p, line, false, fmt, ap);
    va_end(ap);
}

void conf_warning(struct parser *p, int line, const char *fmt, ...)
{
    if (p->secrets != CONFIG_LOAD_SECRETS)
        return;
    va_list ap;
    va_start(ap, fmt);
    add_message(p, line, true, fmt, ap);
    va_end(ap);
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
            fprintf(out, "%s:%d: %s%s\n", p->cfg->path, p->errors[i].line,
                    p->errors[i].warning ? "warning: " : "", p->errors[i].text);
        free(p->errors[i].text);
    }
    free(p->errors);
}

bool conf_error_at(const struct parser *p, int line)
{
    for (size_t i = 0; i < p->n_errors; i++) {
        if (p->errors[i].line == line && !p->errors[i].warning)
            return true;
    }
    return false;
}

enum config_secrets conf_secrets(const struct parser *p)
{
    return p->secrets;
}

int conf_section_line(const struct section *s)
{
    return s->line;
}

const char *conf_section_title(const struct section *s)
{
    return s->title;
}

int conf_key_line(const struct section *s, const char *name)
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
    } else if (kind == SEC_DOMAIN) {
        struct domain_conf *d = grow_array((void **)&cfg->domains, &cfg->n_domains, sizeof *d);
        s->index = cfg->n_domains - 1;
        d->name = mg_strdup(name);
        d->mta_sts_max_age = MTA_STS_MAX_AGE_DEFAULT;
        d->line = s->line;
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

/* ---- keys (their values: config_values.c) ---- */

bool conf_has_control_char(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

static void *section_struct(struct parser *p, const struct section *s)
{
    switch (s->kind) {
    case SEC_GATEWAY:
        return &p->cfg->gateway;
    case SEC_DEFAULTS:
        return &p->cfg->defaults;
    case SEC_TLS:
        return &p->cfg->tls;
    case SEC_LISTEN:
        return &p->cfg->listeners[s->index];
    case SEC_PROVIDER:
        return &p->cfg->providers[s->index];
    case SEC_DOMAIN:
        return &p->cfg->domains[s->index];
    default:
        return NULL;
    }
}

/* A [tls] file for a command that serves no listener: the name is kept, the file not opened
 * (a first `user add` runs before the certificate exists). */
static const struct key_def unchecked_path = {"path", V_STRING, 0, false};

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
    else if (conf_has_control_char(value))
        conf_error(p, line, "'%s' contains a control character", name);
    else if (p->listeners_unused && s->kind == SEC_TLS && keys[k].kind == V_PATH)
        config_set_value(p, line, &unchecked_path, (char *)section_struct(p, s) + keys[k].offset,
                         value, p->secrets);
    else
        config_set_value(p, line, &keys[k], section_struct(p, s), value, p->secrets);
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

/* A password in the clear is the admin's explicit choice, never a default. */
static void check_listener_tls(struct parser *p, const struct section *s,
                               const struct listener_conf *l)
{
    int tls_line = conf_key_line(s, "tls");
    if (l->tls != MG_TLS_NONE || conf_error_at(p, tls_line) ||
        l->login_type == MG_LOGIN_PLAINTEXT ||
        l->protocol == MG_PROTO_HTTP) /* no password is ever sent to an http listener */
        return;
    conf_error(p, tls_line,
               "tls = none needs login_type = plaintext in [%s] or [gateway] (passwords would "
               "travel unencrypted; without it no login could succeed)",
               s->title);
}

static void finish_listener(struct parser *p, const struct section *s)
{
    struct config *cfg = p->cfg;
    struct listener_conf *l = &cfg->listeners[s->index];
    static const char *const default_banner[] = {
        [MG_PROTO_IMAP] = "The mailgate IMAP4 service is ready.",
        [MG_PROTO_POP3] = "The mailgate POP3 service is ready.",
        [MG_PROTO_SMTP] = "ESMTP The mailgate SMTP service is ready.",
    };
    /* A mail listener's tls = none: check_listener_tls (login_type = plaintext only). */
    if (l->protocol == MG_PROTO_HTTP && l->tls == MG_TLS_STARTTLS)
        conf_error(p, conf_key_line(s, "tls"),
                   "tls = starttls is not for protocol = http (use implicit or none)");
    if (!l->banner && l->protocol < MG_ARRAY_LEN(default_banner))
        l->banner = mg_strdup(default_banner[l->protocol]);
    if (!l->hostname) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0 || !host[0])
            mg_strlcpy(host, "localhost", sizeof host);
        l->hostname = mg_strdup(host);
    }
    if (!conf_key_line(s, "login_timeout"))
        l->login_timeout_ms = cfg->gateway.login_timeout_ms;
    if (!conf_key_line(s, "idle_timeout"))
        l->idle_timeout_ms = cfg->gateway.idle_timeout_ms;
    if (!conf_key_line(s, "login_type"))
        l->login_type = cfg->gateway.login_type;
    if (!conf_key_line(s, "allow"))
        cidr_list_copy(&l->allow, &cfg->gateway.allow);
    if (!conf_key_line(s, "protocol_log"))
        l->protocol_log = cfg->gateway.protocol_log;
    check_listener_tls(p, s, l);
    for (size_t i = 0; l->addrlen && i < s->index; i++) {
        const struct listener_conf *o = &cfg->listeners[i];
        if (o->addrlen == l->addrlen && memcmp(&o->addr, &l->addr, l->addrlen) == 0)
            conf_error(p, conf_key_line(s, "address"),
                       "address %s is already used by [listen %s] (line %d)", l->address, o->name,
                       o->line);
    }
}

/* No key of the section had a bad value (checks that combine them would only add noise). */
static bool section_values_ok(const struct parser *p, const struct section *s)
{
    const struct key_def *keys = section_kinds[s->kind].keys;
    for (size_t k = 0; keys[k].name; k++)
        if (s->key_line[k] && conf_error_at(p, s->key_line[k]))
            return false;
    return true;
}

/* Listeners with tls = none alone need no certificate. */
static bool tls_needed(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg->listeners[i].tls != MG_TLS_NONE)
            return true;
    }
    return false;
}

static void finish_tls(struct parser *p)
{
    const struct section *tls = find_section(p, "tls");
    if (!tls_needed(p->cfg))
        return;
    if (!tls) {
        conf_error(p, 0, "missing section [tls] (the listeners need a certificate)");
        return;
    }
    /* Required only when there is a listener, so not marked required in the key table. */
    if (!conf_key_line(tls, "certificate"))
        conf_error(p, tls->line, "[tls] needs 'certificate'");
    if (!conf_key_line(tls, "private_key"))
        conf_error(p, tls->line, "[tls] needs 'private_key'");
    if (p->cfg->tls.session_ticket_lifetime_ms > TLS_TICKET_LIFETIME_MAX_MS)
        conf_error(p, conf_key_line(tls, "session_tickets"),
                   "session_tickets: at most 7d (RFC 8446 4.6.1), or 0 for none");
    if (!conf_key_line(tls, "ecdsa_certificate") != !conf_key_line(tls, "ecdsa_private_key"))
        conf_error(p, tls->line, "[tls] needs both 'ecdsa_certificate' and 'ecdsa_private_key'");
    else if (!p->listeners_unused && section_values_ok(p, tls) && p->cfg->tls.certificate &&
             p->cfg->tls.private_key)
        config_check_tls(p, tls, &p->cfg->tls);
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
            config_finish_provider(p, s, &p->cfg->providers[s->index]);
    }
    finish_tls(p);
    /* After [tls] and every listener: a domain's ports come from the listeners, and its
     * certificate is checked with [tls]'s policy. */
    for (size_t i = 0; i < p->n_sections; i++)
        if (p->sections[i].kind == SEC_DOMAIN)
            config_finish_domain(p, &p->sections[i], p->cfg,
                                 &p->cfg->domains[p->sections[i].index]);
    struct gateway_conf *g = &p->cfg->gateway;
    if (!g->secret_key_file)
        g->secret_key_file = mg_printf("%s/secret.key", g->state_dir);
    if (p->cfg->n_providers == 0)
        conf_error(p, 0, "no [provider NAME] section: at least one is needed");
}

static void set_defaults(struct gateway_conf *g)
{
    g->state_dir = mg_strdup("/var/lib/mailgate");
    g->user = mg_strdup("mailgate");
    g->log_level = MG_LOG_INFO;
    g->workers = config_online_cpus();
    g->login_timeout_ms = 60 * 1000;
    g->idle_timeout_ms = 30 * 60 * 1000;
    g->auth_cache_ttl_ms = 10 * 60 * 1000;
    g->auth_failure_delay_ms = 2 * 1000;
    g->token_timeout_ms = 15 * 1000;
    g->lockout_threshold = 10;
    g->lockout_window_ms = 15 * 60 * 1000;
    g->lockout_duration_ms = 15 * 60 * 1000;
    g->max_failure_delay_ms = 5 * 1000;
    g->max_connections_per_ip = 50;
    g->max_logins_per_ip = 20;
    g->audit_retention_ms = 90ull * 24 * 3600 * 1000;
    g->protocol_log_max = 100ull << 20;
    char err[64];
    if (cidr_list_parse("127.0.0.0/8, ::1", &g->metrics_allow, err, sizeof err) != 0)
        abort(); /* a constant that parses */
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

/* in: the open text, NULL when it could not be opened (open_errno says why). */
static struct config *load_stream(const char *path, FILE *in, int open_errno,
                                  enum config_secrets secrets, bool listeners_unused, FILE *errors)
{
    struct config *cfg = mg_calloc(1, sizeof *cfg);
    cfg->path = mg_strdup(path);
    set_defaults(&cfg->gateway);
    cfg->tls.session_ticket_lifetime_ms = TLS_TICKET_LIFETIME_DEFAULT_MS;
    cfg->defaults = (struct defaults_conf){.imap = 1, .pop3 = 0, .smtp = 0};
    struct parser p = {
        .cfg = cfg, .secrets = secrets, .listeners_unused = listeners_unused, .in = in};
    if (!p.in) {
        conf_error(&p, 0, "cannot open: %s", strerror(open_errno));
    } else {
        parse_file(&p);
        finish(&p);
    }
    for (size_t i = 0; i < p.n_sections; i++)
        free(p.sections[i].title);
    free(p.sections);
    size_t n_errors = p.n_errors - p.n_warnings;
    print_errors(&p, errors);
    if (n_errors)
        config_free(&cfg);
    return cfg;
}

struct config *config_load(const char *path, enum config_secrets secrets, FILE *errors)
{
    FILE *in = fopen(path, "re");
    return load_stream(path, in, errno, secrets, false, errors);
}

struct config *config_load_admin(const char *path, enum config_secrets secrets, FILE *errors)
{
    FILE *in = fopen(path, "re");
    return load_stream(path, in, errno, secrets, true, errors);
}

struct config *config_load_bytes(const char *path, const char *data, size_t len,
                                 enum config_secrets secrets, FILE *errors)
{
    /* fmemopen refuses a zero size; an empty file is an empty text all the same. */
    static const char empty[1] = "";
    FILE *in = len ? fmemopen((void *)data, len, "r") : fmemopen((void *)empty, 1, "r");
    if (in && !len)
        fseek(in, 1, SEEK_SET);
    return load_stream(path, in, errno, secrets, false, errors);
}
