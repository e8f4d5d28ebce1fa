/* Logging: one line per event to stderr, "TIME LEVEL ROLE[PID] message". Lines are written with
 * a single write(2) so that lines of several processes sharing stderr never interleave. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_role = "mailgate";
static enum mg_log_level log_threshold = MG_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_init(const char *role, enum mg_log_level level)
{
    log_role = role;
    log_threshold = level;
}

void log_set_level(enum mg_log_level level)
{
    log_threshold = level;
}

enum mg_log_level log_get_level(void)
{
    return log_threshold;
}

int log_level_parse(const char *s, enum mg_log_level *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum mg_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = MG_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(enum mg_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "?";
}

size_t log_format_time(char *buf, size_t size)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, size - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    return n + (m > 0 ? (size_t)m : 0);
}

void log_msg(enum mg_log_level level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    char line[LOG_LINE_MAX];
    size_t n = log_format_time(line, sizeof line);
    int m = snprintf(line + n, sizeof line - n, " %s %s[%ld] ", log_level_name(level), log_role,
                     (long)getpid());
    n += m > 0 ? (size_t)m : 0;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    /* Keep it one line whatever the message held. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

const char *log_quote(char *buf, size_t size, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    if (!s)
        s = "";
    if (len == (size_t)-1)
        len = strlen(s);
    size_t o = 0, limit = size - 5; /* room for '..."' + NUL */
    buf[o++] = '"';
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[4];
        size_t elen;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, elen = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], elen = 4;
        } else {
            esc[0] = (char)c, elen = 1;
        }
        if (o + elen > limit)
            break;
        memcpy(buf + o, esc, elen);
        o += elen;
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}
