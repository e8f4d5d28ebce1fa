/* The one INI configuration file (parsed with inih). Every error names file:line. */
#ifndef MG_CONFIG_H
#define MG_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <openssl/types.h> /* EVP_PKEY: certificate credentials, loaded only with secrets */

#include "cidr.h"
#include "log.h"
#include "proto.h"

#define MG_DEFAULT_CONFIG "/etc/mailgate/mailgate.conf"

/* A value that is a list. */
struct mg_strlist {
    char **v;
    size_t n;
};

/* client_assertion_alg: how a certificate credential's JWT is signed (token/jwt.c signs it). */
enum jwt_alg {
    JWT_RS256 = 0, /* RSASSA-PKCS1-v1_5 with SHA-256 */
    JWT_PS256 = 1  /* RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32 (RFC 7518 3.5) */
};

/* login_type =: whether a password may travel before TLS (Exchange's LoginType). */
enum mg_login_type {
    MG_LOGIN_SECURE = 0,   /* default: LOGIN/USER/PASS/AUTH only once TLS is on */
    MG_LOGIN_PLAINTEXT = 1 /* also without TLS: a legacy device on a trusted segment */
};

struct gateway_conf {
    char *state_dir;       /* default /var/lib/mailgate */
    char *secret_key_file; /* default state_dir/secret.key (AES-256-GCM, secretbox.h) */
    /* default mailgate: workers started as root become this user (worker/sandbox.h) */
    char *user;
    enum mg_log_level log_level;    /* default info */
    int workers;                    /* "auto" -> number of online CPUs (>= 1) */
    uint64_t login_timeout_ms;      /* default 60 s: time allowed before a successful login */
    uint64_t idle_timeout_ms;       /* default 30 min: after login, no byte in either direction */
    uint64_t auth_cache_ttl_ms;     /* default 10 min: remembered password verifications */
    uint64_t auth_failure_delay_ms; /* default 2 s: delay before answering a failed login */
    uint64_t token_timeout_ms;      /* default 15 s: one HTTP request to a token endpoint */
    /* Login throttling (broker, throttle.c): after lockout_threshold failures of one (user,
     * client address) within lockout_window, that pair is refused for lockout_duration. 0
     * threshold: no lockout. */
    uint32_t lockout_threshold;      /* default 10 */
    uint64_t lockout_window_ms;      /* default 15 min */
    uint64_t lockout_duration_ms;    /* default 15 min */
    uint64_t max_failure_delay_ms;   /* default 5 s: the growing failure delay's ceiling */
    uint32_t max_connections_per_ip; /* default 50, per worker; 0: no limit */
    uint32_t max_logins_per_ip;      /* default 20: logins in flight in the broker; 0: no limit */
    /* A short login or CLI name ("alice") means alice@default_domain; NULL: short names stay as
     * they are (login_name.h). */
    char *default_domain;
    /* The login audit (issue 11): rows older than this are pruned (0: kept forever); audit_log
     * (NULL: none) also gets each record as one JSON line, appended by the broker after it
     * dropped root, so the file must be writable by the gateway user. */
    uint64_t audit_retention_ms; /* default 90 days */
    char *audit_log;
    /* The gateway's address as browsers reach it (no final '/'): the sign-in page's redirect
     * URI is PUBLIC_URL/oauth/callback. NULL: no sign-in page. */
    char *public_url;
    /* The protocol log (README, "Protocol log"): state_dir/protocol-log/protocol.log is
     * rotated when it would pass protocol_log_max bytes (default 100M). */
    uint64_t protocol_log_max;
    /* Defaults of the listeners' keys of the same names. */
    int protocol_log;              /* default off */
    enum mg_login_type login_type; /* default secure */
    struct cidr_list allow;        /* default empty: every address */
    /* Who may GET /metrics and /healthz on any http listener (others get 403). */
    struct cidr_list metrics_allow; /* default 127.0.0.0/8, ::1 */
    /* The workers' nameservers for the upstream servers' names, each "IP", "IP:PORT" or
     * "[IPv6]:PORT" as written (config_resolver.c checked it); empty: /etc/resolv.conf. */
    struct mg_strlist resolver;
};

/* [defaults]: the protocol switches a new user gets at `mailgate user add` (1 on, 0 off), like
 * an Exchange mailbox plan. Existing users keep theirs. */
struct defaults_conf {
    int imap; /* default on */
    int pop3; /* default off */
    int smtp; /* default off */
};

/* [tls] min_version: the oldest protocol version offered to clients. */
enum mg_tls_version { MG_TLS_VERSION_1_2 = 0, MG_TLS_VERSION_1_3 = 1 };

/* The TLS policy towards clients (tls_policy.h applies it). */
struct tls_conf {
    char *certificate; /* PEM chain for clients: RSA, or ECDSA when it is the only one */
    char *private_key;
    char *ecdsa_certificate; /* optional second chain, ECDSA, beside an RSA certificate */
    char *ecdsa_private_key;
    char *ciphers;                   /* TLS 1.2 suites, OpenSSL syntax; NULL: TLS_DEFAULT_CIPHERS */
    enum mg_tls_version min_version; /* default TLSv1.2 */
    /* Clients' TLS session tickets: how long one is valid, 0 = no tickets. The keys come from
     * the broker (ticket_keys.c) and rotate every lifetime. */
    uint64_t session_ticket_lifetime_ms;
};
#define TLS_TICKET_LIFETIME_DEFAULT_MS (3600ull * 1000)
#define TLS_TICKET_LIFETIME_MAX_MS (7ull * 24 * 3600 * 1000)

struct listener_conf {
    char *name; /* from [listen NAME] */
    enum mg_proto protocol;
    char *address; /* as written, "0.0.0.0:993" or "[::1]:993" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    enum mg_tls_mode tls;
    char *banner;   /* default per protocol, e.g. "The mailgate IMAP4 service is ready." */
    char *hostname; /* default: the machine's name (SMTP greeting, later) */
    uint64_t login_timeout_ms; /* inherited from [gateway] unless set in the section */
    uint64_t idle_timeout_ms;
    enum mg_login_type login_type; /* inherited from [gateway] unless set in the section */
    struct cidr_list allow;        /* the same; a client outside hears the refusal greeting */
    int protocol_log;              /* the same: log this listener's sessions' command lines */
    int line;                      /* line of the section header, for messages */
};

/* [domain NAME] mta_sts_mode: MG_MTA_STS_OFF when the key is not set (no policy is served). */
enum mg_mta_sts_mode {
    MG_MTA_STS_OFF = 0,
    MG_MTA_STS_ENFORCE = 1,
    MG_MTA_STS_TESTING = 2,
    MG_MTA_STS_NONE = 3
};

#define MTA_STS_MAX_AGE_MAX 31557600u /* RFC 8461 3.2: about one year */
#define MTA_STS_MAX_AGE_DEFAULT 604800u

/* One mail service of a domain as clients are told to reach it (autoconfig, SRV records). */
struct domain_server {
    char *host;           /* NULL: not offered for this domain */
    uint16_t port;        /* as written, else the port of a [listen] of that protocol */
    enum mg_tls_mode tls; /* implicit or starttls: by the listener with that port, else by the
                             port's well-known use, else the protocol's first listener */
    int port_set;         /* the value named its port ("host:port") */
};

/* [domain NAME]: what the web side tells clients and MTAs about the domain (src/http). */
struct domain_conf {
    char *name;                              /* from [domain NAME], lower case */
    char *imap_host, *pop3_host, *smtp_host; /* as written; parsed into the servers below */
    struct domain_server imap, pop3, smtp;
    char *display_name; /* default: the domain's name */
    enum mg_mta_sts_mode mta_sts_mode;
    struct mg_strlist mta_sts_mx; /* patterns, lower case, "*." allowed at the front */
    uint32_t mta_sts_max_age;     /* seconds, default MTA_STS_MAX_AGE_DEFAULT */
    struct mg_strlist tls_rpt;    /* rua URIs: mailto: or https: */
    int autodiscover;  /* answer Outlook's Autodiscover (default off: Microsoft 365 answers) */
    char *certificate; /* optional chain for mta-sts.NAME (and NAME's other web names) by SNI */
    char *private_key;
    int line;
};

enum mg_provider_type {
    MG_PROVIDER_MICROSOFT = 0,
    MG_PROVIDER_GOOGLE = 1,
    MG_PROVIDER_GENERIC = 2
};

/* How the broker obtains a provider's tokens (flow =). */
enum mg_flow {
    MG_FLOW_CLIENT_CREDENTIALS = 0, /* app-only: one token per app */
    MG_FLOW_DELEGATED = 1,          /* a refresh token per user (mailgate user authorize) */
    MG_FLOW_PASSWORD = 2,           /* ROPC: the client's password is the user's IdP password */
    MG_FLOW_SERVICE_ACCOUNT = 3     /* Google: domain-wide delegation, one token per mailbox */
};

/* The upstream SASL mechanism (sasl =). */
enum mg_sasl { MG_SASL_XOAUTH2 = 0, MG_SASL_OAUTHBEARER = 1 };

struct server_addr {
    /* Defaults are filled in for type = microsoft and google. NULL only for a type = generic
     * provider's pop3_server or smtp_server that the file does not set (no such service). */
    char *host;
    uint16_t port;
    enum mg_tls_mode tls; /* imap_tls= etc., else by port: IMAP/POP3 implicit unless 143/110, SMTP
                             starttls unless 465 */
};

struct provider_conf {
    char *name; /* from [provider NAME] */
    enum mg_provider_type type;
    char *tenant;    /* type = microsoft only (required there) */
    char *client_id; /* NULL only for flow = service_account */
    /* The client secret. Only loaded with CONFIG_LOAD_SECRETS (the broker); workers load the
     * config with CONFIG_SKIP_SECRETS and never see it (NULL). Read from client_secret_file
     * when that is set. */
    char *client_secret;
    char *client_secret_file;
    /* Certificate credentials instead of a secret: a JWT client assertion signed with the
     * private key. The certificate (its DER, for the thumbprints) is loaded in both modes, the
     * key only with CONFIG_LOAD_SECRETS (NULL otherwise); the pair is checked to match then. */
    char *client_certificate;          /* path */
    char *client_private_key;          /* path */
    enum jwt_alg client_assertion_alg; /* default RS256 */
    unsigned char *client_cert_der;
    size_t client_cert_der_len;
    EVP_PKEY *client_key;
    enum mg_flow flow;
    enum mg_sasl sasl;
    /* RFC 8628 device authorization, for flow = delegated; "{tenant}" already replaced.
     * Defaults for microsoft and google; NULL for a generic provider that does not set it. */
    char *device_authorization_endpoint;
    /* The authorization code flow's authorize page (the sign-in page, flow = delegated);
     * "{tenant}" already replaced. Defaults for microsoft and google. */
    char *authorization_endpoint;
    /* Google service account (flow = service_account): Google's JSON key file. The e-mail and
     * key id are loaded in both modes, the private key only with CONFIG_LOAD_SECRETS. */
    char *service_account_file;
    char *sa_client_email; /* client_email, both modes */
    char *sa_key_id;       /* private_key_id, both modes */
    EVP_PKEY *sa_key;      /* RSA >= 2048, only with CONFIG_LOAD_SECRETS, else NULL */
    char *token_endpoint;  /* "{tenant}" already replaced */
    char *scope;
    struct server_addr imap, pop3, smtp;
    char *ca_file; /* NULL: system trust store. Used for upstream servers and token endpoint. */
    int line;
};

struct config {
    char *path;
    struct gateway_conf gateway;
    struct defaults_conf defaults;
    struct tls_conf tls;
    struct listener_conf *listeners;
    size_t n_listeners;
    struct provider_conf *providers;
    size_t n_providers;
    struct domain_conf *domains;
    size_t n_domains;
};

enum config_secrets { CONFIG_LOAD_SECRETS, CONFIG_SKIP_SECRETS };

/* Loads and validates the whole file. On any error writes one line per problem to `errors` as
 * "PATH:LINE: message" (LINE 0 when the problem is not tied to a line, e.g. a missing
 * required section) and returns NULL. Checks: unknown sections and keys, bad values, duplicate
 * names, files that must exist (tls certificate/key, client_secret_file, client_certificate and
 * client_private_key, service_account_file, ca_file), at least one listener and one provider,
 * listener addresses that parse, each provider's keys for its type and flow (config_provider.c).
 */
struct config *config_load(const char *path, enum config_secrets secrets, FILE *errors);
/* The same for admin commands that serve no listener (user, token, audit, ...): [tls]'s
 * certificate and key are not opened, so they work before the gateway's certificate exists. */
struct config *config_load_admin(const char *path, enum config_secrets secrets, FILE *errors);
/* The same from the file's bytes, read earlier (the broker's copy, handed to the workers):
 * path only names the file in messages. data need not be NUL-terminated. */
struct config *config_load_bytes(const char *path, const char *data, size_t len,
                                 enum config_secrets secrets, FILE *errors);
void config_free(struct config **cfg); /* wipes client secrets, frees client keys */

const struct provider_conf *config_provider(const struct config *cfg, const char *name);
const struct listener_conf *config_listener(const struct config *cfg, const char *name);
/* The [domain] of that name, compared without regard to case; NULL when there is none. */
const struct domain_conf *config_domain(const struct config *cfg, const char *name);
/* The server of a domain for a protocol; NULL when the domain does not offer it. */
const struct domain_server *domain_server(const struct domain_conf *d, enum mg_proto proto);
/* [tls]'s policy with the domain's own certificate and key (no ECDSA pair): what a web listener
 * serves under the domain's names (SNI). */
struct tls_conf domain_tls_conf(const struct config *cfg, const struct domain_conf *d);
/* The port a listener is bound to (host byte order). */
uint16_t listener_port(const struct listener_conf *l);
/* "enforce", "testing", "none" ("off" for MG_MTA_STS_OFF). */
const char *mg_mta_sts_mode_name(enum mg_mta_sts_mode m);
/* An MTA-STS mx pattern (RFC 8461 4.1): a host name of LDH labels, optionally "*." in front (a
 * wildcard covers exactly one label). NULL when valid, else why not. */
const char *mta_sts_mx_problem(const char *pattern);
/* A TLS-RPT report URI (RFC 8460 3): mailto:ADDRESS or https://..., with ',', ';', '!' and
 * spaces percent-encoded. NULL when valid, else why not (the config's tls_rpt and the DNS
 * record `mailgate check` reads). */
const char *tls_rpt_uri_problem(const char *uri);
/* A DNS host name of LDH labels (ASCII, A-labels), at least two labels. */
int mg_valid_host_name(const char *name);
/* The upstream server of a provider for a protocol; NULL when the provider has none for that
 * protocol (a type = generic provider without pop3_server or smtp_server): such logins must be
 * refused, and a session never connects anywhere for them. */
const struct server_addr *provider_server(const struct provider_conf *p, enum mg_proto proto);

/* Names as written in the file. */
const char *mg_flow_name(enum mg_flow f);                   /* "client_credentials", ... */
const char *mg_provider_type_name(enum mg_provider_type t); /* "microsoft", "google", "generic" */
const char *mg_sasl_name(enum mg_sasl m);                   /* "XOAUTH2", "OAUTHBEARER" */

/* "host:port", "[v6]:port" -> sockaddr. Returns 0 or -1. Numeric hosts only ("*" = 0.0.0.0). */
int config_parse_listen_address(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "host:port" / "[v6]:port" -> host (allocated) and port. Returns 0 or -1. */
int config_parse_host_port(const char *s, char **host, uint16_t *port);

#endif
