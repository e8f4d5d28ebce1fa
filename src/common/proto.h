/* Protocol and TLS-mode enums shared by config, IPC, broker and workers. */
#ifndef MG_PROTO_H
#define MG_PROTO_H

/* MG_PROTO_HTTP: listeners only (autoconfig, MTA-STS: src/http); never a login protocol, so
 * IPC refuses it. */
enum mg_proto { MG_PROTO_IMAP = 0, MG_PROTO_POP3 = 1, MG_PROTO_SMTP = 2, MG_PROTO_HTTP = 3 };
/* MG_TLS_NONE: a listener without TLS: plain HTTP (Thunderbird asks http://autoconfig.<domain>)
 * or a mail listener with login_type = plaintext; never an upstream's. */
enum mg_tls_mode { MG_TLS_IMPLICIT = 0, MG_TLS_STARTTLS = 1, MG_TLS_NONE = 2 };

const char *mg_proto_name(enum mg_proto p);            /* "imap", "pop3", "smtp", "http" */
int mg_proto_parse(const char *s, enum mg_proto *out); /* 0 ok, -1 unknown */
const char *mg_tls_mode_name(enum mg_tls_mode m);      /* "implicit", "starttls", "none" */
/* implicit, starttls or none ("none" is a listener's word: config_values.c refuses it for an
 * upstream, config.c checks it per protocol and login_type). */
int mg_tls_mode_parse(const char *s, enum mg_tls_mode *out);

#endif
