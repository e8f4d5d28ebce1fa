/* The worker's side of the login audit: the session knows the facts (who, from where, with
 * which client, how it ended, bytes each way) and sends them to the broker as IPC_AUDIT
 * records, at each login's outcome and at the end of a logged-in session. */
#ifndef MG_SESSION_AUDIT_H
#define MG_SESSION_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct session;

/* The client's own name for itself (IMAP ID "name/version", SMTP EHLO argument); kept cleaned
 * and cut to IPC_CLIENT_ID_MAX - 1 bytes. */
void session_set_client_id(struct session *s, const char *id, size_t len);
/* A login attempt's outcome; cause is the fixed word ("ok" for success), reason the details
 * of the log line (only an AADSTS code of it is audited: audit_detail_of). */
void session_audit_login(struct session *s, const char *cause, const char *reason,
                         uint64_t duration_ms);
/* A logged-in session ended after duration_ms with these bytes each way. */
void session_audit_end(struct session *s, uint64_t bytes_in, uint64_t bytes_out,
                       uint64_t duration_ms);

#endif
