/* The SIEM line of a login audit record: compact JSON, keys in a fixed order (jansson). */
#include "audit_json.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

void audit_time_iso(int64_t at, char out[21])
{
    time_t t = (time_t)at;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        strcpy(out, "1970-01-01T00:00:00Z");
}

/* Adds a string; 0, or -1 when it is not UTF-8 (json_string refuses it). */
static int add_str(json_t *o, const char *key, const char *value)
{
    return json_object_set_new(o, key, json_string(value ? value : ""));
}

static int add_int(json_t *o, const char *key, int64_t value)
{
    return json_object_set_new(o, key, json_integer((json_int_t)value));
}

static int fill(json_t *o, const struct login_event *e)
{
    char when[21];
    audit_time_iso(e->at, when);
    int rc = add_str(o, "time", when) | add_str(o, "event", e->event) |
             add_str(o, "session", e->session) | add_str(o, "protocol", e->protocol) |
             add_str(o, "listener", e->listener) | add_str(o, "client_addr", e->client_addr) |
             add_int(o, "client_port", e->client_port) | add_str(o, "client_id", e->client_id) |
             add_str(o, "login", e->login) | add_str(o, "user", e->user) |
             add_str(o, "mailbox", e->mailbox) | add_str(o, "result", e->result) |
             add_str(o, "reason", e->reason) | add_str(o, "detail", e->detail) |
             add_int(o, "duration_ms", e->duration_ms) | add_int(o, "bytes_in", e->bytes_in) |
             add_int(o, "bytes_out", e->bytes_out);
    return rc;
}

char *audit_json_line(const struct login_event *e)
{
    json_t *o = json_object();
    char *text = NULL;
    if (o && fill(o, e) == 0)
        text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text)
        return NULL;
    /* jansson's memory may come from other allocators (json_wipe.c): copy, free its way. */
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, text, n);
        line[n] = '\n';
        line[n + 1] = '\0';
    }
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    f(text);
    return line;
}
