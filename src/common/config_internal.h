/* What config.c (the file reader: lines, sections, keys, checks across sections) shares with
 * config_values.c (one key's value: its syntax, files it names, addresses, the TLS key pair)
 * and config_provider.c (a [provider] section's rules and defaults, per type and flow).
 * Only config*.c include this; the public interface is config.h. */
#ifndef MG_CONFIG_INTERNAL_H
#define MG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct parser;  /* config.c's reader state; value checks only report through conf_error() */
struct section; /* config.c: one [section] as read, with the line of each key */

/* Records a problem at `line` (0: not tied to a line); all are printed, sorted, at the end. */
void conf_error(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A problem was recorded at that line (e.g. a bad value: rules depending on it are skipped). */
bool conf_error_at(const struct parser *p, int line);
enum config_secrets conf_secrets(const struct parser *p);

/* Line where the key was set in the section, 0 when it was not. */
int conf_key_line(const struct section *s, const char *name);
int conf_section_line(const struct section *s);
const char *conf_section_title(const struct section *s); /* "provider NAME" */
/* Any byte below 0x20, or DEL. */
bool conf_has_control_char(const char *s);

enum value_kind {
    V_STRING,      /* char * */
    V_PATH,        /* char *, the file must exist and be readable */
    V_IDENT,       /* char *, letters, digits, '.', '-', '_' (goes into URLs and requests) */
    V_URL,         /* char *, https:// only */
    V_PUBLIC_URL,  /* char *, http:// or https:// host[:port][/path], no '?', '#' or final '/' */
    V_DURATION,    /* uint64_t ms, > 0 */
    V_DURATION0,   /* uint64_t ms, may be 0 */
    V_LOG_LEVEL,   /* enum mg_log_level */
    V_WORKERS,     /* int */
    V_COUNT,       /* uint32_t, 0 to COUNT_MAX (0: off, where the key says so) */
    V_TLS_MODE,    /* enum mg_tls_mode, implicit or starttls (an upstream's) */
    V_LISTEN_TLS,  /* enum mg_tls_mode, also none (a listener's) */
    V_LOGIN_TYPE,  /* enum mg_login_type */
    V_CIDR_LIST,   /* struct cidr_list */
    V_PROTOCOL,    /* enum mg_proto */
    V_LISTEN_ADDR, /* listener address + sockaddr */
    V_SERVER,      /* struct server_addr host + port */
    V_PROVIDER,    /* enum mg_provider_type */
    V_SECRET,      /* client_secret: kept only with CONFIG_LOAD_SECRETS */
    V_SECRET_FILE, /* client_secret_file: must be readable and non-empty */
    V_JWT_ALG,     /* enum jwt_alg: RS256 or PS256 */
    V_FLOW,        /* enum mg_flow */
    V_SASL,        /* enum mg_sasl */
    V_TLS_CIPHERS, /* char *, an OpenSSL cipher list selecting at least one TLS 1.2 suite */
    V_TLS_VERSION, /* enum mg_tls_version: TLSv1.2 or TLSv1.3 */
    V_SWITCH,      /* int: off 0, on 1 */
    V_SIZE,        /* uint64_t bytes: "4096", "512K", "100M", "1G"; SIZE_MIN to SIZE_MAX_BYTES */
    V_RESOLVER,    /* struct mg_strlist of nameserver addresses (config_resolver.c) */
    /* [domain] values (config_domain.c) */
    V_ON_OFF,       /* int: on or off */
    V_MTA_STS_MODE, /* enum mg_mta_sts_mode */
    V_MX_LIST,      /* struct mg_strlist of MTA-STS mx patterns */
    V_MAX_AGE,      /* uint32_t seconds, 0 to MTA_STS_MAX_AGE_MAX */
    V_RUA_LIST,     /* struct mg_strlist of mailto: and https: URIs (TLS-RPT rua) */
};

struct key_def {
    const char *name;
    enum value_kind kind;
    size_t offset; /* of the field in the section's struct */
    bool required;
};

/* Checks `value` for `key` and stores it in the key's field of `base` (the section's struct),
 * or reports what is wrong with it. client_secret is kept only with CONFIG_LOAD_SECRETS. */
void config_set_value(struct parser *p, int line, const struct key_def *key, void *base,
                      const char *value, enum config_secrets secrets);

/* A file holding a secret (client_secret_file, service_account_file), like secret.key: false
 * (reported at line, with the chmod 600 fix) when it cannot be read or group or others may
 * access it. */
bool config_private_file(struct parser *p, int line, const char *path);
/* Like conf_error, but loading goes on; printed only with CONFIG_LOAD_SECRETS (the broker and
 * the CLI), not again by every worker parsing the broker's copy. */
void conf_warning(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The [domain] kinds of value above (config_domain.c); field as in config_set_value. */
void config_set_domain_value(struct parser *p, int line, const struct key_def *key, void *field,
                             const char *value);
/* Once the whole file is read: a [domain] section's names and servers (ports and TLS from the
 * listeners of cfg) and its certificate, checked with [tls]'s policy. */
void config_finish_domain(struct parser *p, const struct section *s, const struct config *cfg,
                          struct domain_conf *d);
void config_free_domain(struct domain_conf *d);
void config_free_strlist(struct mg_strlist *l);

/* [gateway] resolver: nameserver addresses, IP[:PORT] ([IPv6]:PORT), blanks or commas between
 * them (config_resolver.c). */
void config_set_resolver(struct parser *p, int line, const char *key, const char *value,
                         struct mg_strlist *out);

/* workers = auto: the number of online CPUs, within the allowed range. */
int config_online_cpus(void);

/* Applies [tls] to a throwaway context the way the workers will (tls_policy.c), so a bad or
 * mismatched key is reported at the line of the key concerned (the section's line when TLS
 * itself fails). */
void config_check_tls(struct parser *p, const struct section *tls, const struct tls_conf *conf);

/* Loads the client certificate (DER kept in pr, both modes) and, with load_key, the private
 * key (kept in pr->client_key); checks both are RSA, at least 2048 bits, and that they match. */
void config_load_client_certificate(struct parser *p, struct provider_conf *pr, int cert_line,
                                    int key_line, bool load_key);

/* The PEM private key in pem[0..len) (wiped by the caller): RSA of at least 2048 bits, or NULL
 * after reporting "<what> ..." at line. */
EVP_PKEY *config_parse_rsa_key(struct parser *p, int line, const char *what, const char *pem,
                               size_t len);

/* Once the whole file is read: a [provider] section's rules and defaults (config_provider.c). */
void config_finish_provider(struct parser *p, const struct section *s, struct provider_conf *pr);
void config_free_provider(struct provider_conf *pr);

#endif
