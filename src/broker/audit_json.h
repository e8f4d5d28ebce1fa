/* One login audit record as one JSON line for a SIEM ([gateway] audit_log). */
#ifndef MG_AUDIT_JSON_H
#define MG_AUDIT_JSON_H

#include "store_logins.h"

/* A malloc'd line ending in '\n', or NULL (out of memory, or a text that is not UTF-8). The
 * record never holds a password or token: only the fields of struct login_event. */
char *audit_json_line(const struct login_event *e);
/* "2026-11-25T03:04:05Z" into out[21]. */
void audit_time_iso(int64_t at, char out[21]);

#endif
