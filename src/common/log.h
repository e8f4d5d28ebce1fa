/* Logging: one line per event, key=value, to stderr (systemd/journald picks it up).
 * Secrets never go through here: callers log reasons, never passwords or tokens. */
#ifndef MG_LOG_H
#define MG_LOG_H

#include <stddef.h>

enum mg_log_level { MG_LOG_ERROR = 0, MG_LOG_WARN, MG_LOG_INFO, MG_LOG_DEBUG };

/* role is "broker", "worker", "cli"; shown on every line with the pid. */
void log_init(const char *role, enum mg_log_level level);
void log_set_level(enum mg_log_level level);
enum mg_log_level log_get_level(void);
int log_level_parse(const char *s, enum mg_log_level *out);
const char *log_level_name(enum mg_log_level level);

void log_msg(enum mg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(MG_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(MG_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(MG_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(MG_LOG_DEBUG, __VA_ARGS__)

/* The log's timestamp, "2026-11-25T02:00:00.123Z" (UTC); returns its length. */
size_t log_format_time(char *buf, size_t size);

/* Renders untrusted text for a key=value log: wraps it in double quotes, escapes '"', '\\' and
 * every byte outside printable ASCII as \xNN, and truncates to fit (ending in "..."). Always
 * NUL-terminates buf and returns it. len may be (size_t)-1 for a NUL-terminated s. */
const char *log_quote(char *buf, size_t size, const char *s, size_t len);

#endif
