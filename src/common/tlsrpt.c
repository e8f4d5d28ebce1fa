/* RFC 8460 reports: parsing (tolerant, bounded) and the normalised JSON (see tlsrpt.h). */
#include "tlsrpt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "audit_rec.h"
#include "util.h"

/* RFC 8460 is a few levels deep; a deeper document is not a report (and costs stack). */
#define JSON_DEPTH_MAX 32

static void say(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t size, const char *fmt, ...)
{
    if (!why || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
}

/* ---- values ---- */

/* A text kept: at most TLSRPT_MAX_TEXT bytes, control bytes and a cut character as '?'. */
static char *text_of(const char *s)
{
    char *t = mg_strndup(s ? s : "", TLSRPT_MAX_TEXT);
    audit_text_clean(t);
    return t;
}

/* A string member, or a number written as text (some senders do that with report-id). */
static char *member_text(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return text_of(json_string_value(v));
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return text_of(buf);
    }
    return text_of("");
}

/* A count: an integer, a real or a string of digits; anything else (or negative) is 0. */
static int64_t member_count(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    double d = 0;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v))
        d = json_real_value(v);
    else if (json_is_string(v) &&
             strspn(json_string_value(v), "0123456789") == strlen(json_string_value(v)))
        d = strtod(json_string_value(v), NULL);
    if (!(d > 0))
        return 0;
    return d >= 9007199254740992.0 ? INT64_C(9007199254740992) : (int64_t)d; /* 2^53 */
}

/* A string or an array of strings (mx-host, policy-string); at most TLSRPT_MAX_LINES kept. */
static char **member_lines(const json_t *obj, const char *key, size_t *n)
{
    const json_t *v = json_object_get(obj, key);
    *n = 0;
    size_t count = json_is_string(v) ? 1 : json_is_array(v) ? json_array_size(v) : 0;
    if (count > TLSRPT_MAX_LINES)
        count = TLSRPT_MAX_LINES;
    char **lines = mg_calloc(count + 1, sizeof *lines);
    for (size_t i = 0; i < count; i++) {
        const json_t *line = json_is_string(v) ? v : json_array_get(v, i);
        if (json_is_string(line))
            lines[(*n)++] = text_of(json_string_value(line));
    }
    return lines;
}

int tlsrpt_parse_time(const char *s, int64_t *t)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    if (!p)
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (!p)
            return -1;
        if (*p == '.')
            p += 1 + strspn(p + 1, "0123456789");
    }
    long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0, used = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 &&
            sscanf(p + 1, "%2d%2d%n", &hh, &mm, &used) != 2)
            return -1;
        offset = (hh * 60L + mm) * 60 * (*p == '-' ? -1 : 1);
        p += 1 + used;
    }
    if (*p)
        return -1;
    *t = (int64_t)timegm(&tm) - offset;
    return 0;
}

static int64_t member_time(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    int64_t t = 0;
    if (!json_is_string(v) || tlsrpt_parse_time(json_string_value(v), &t) != 0)
        return 0;
    return t;
}

/* ---- the report ---- */

static void parse_failure(const json_t *f, struct tlsrpt_failure *out)
{
    out->result_type = member_text(f, "result-type");
    out->sending_mta_ip = member_text(f, "sending-mta-ip");
    out->receiving_mx_hostname = member_text(f, "receiving-mx-hostname");
    out->receiving_mx_helo = member_text(f, "receiving-mx-helo");
    out->receiving_ip = member_text(f, "receiving-ip");
    out->additional_information = member_text(f, "additional-information");
    out->failure_reason_code = member_text(f, "failure-reason-code");
    out->failed_sessions = member_count(f, "failed-session-count");
}

/* *budget: failure details the report may still keep. */
static void parse_policy(const json_t *entry, struct tlsrpt_policy *out, size_t *budget,
                         int64_t *dropped)
{
    const json_t *policy = json_object_get(entry, "policy");
    const json_t *summary = json_object_get(entry, "summary");
    const json_t *details = json_object_get(entry, "failure-details");
    out->policy_type = member_text(policy, "policy-type");
    out->policy_domain = member_text(policy, "policy-domain");
    out->policy_string = member_lines(policy, "policy-string", &out->n_policy_string);
    out->mx_host = member_lines(policy, "mx-host", &out->n_mx_host);
    out->successful = member_count(summary, "total-successful-session-count");
    out->failed = member_count(summary, "total-failure-session-count");
    size_t n = json_is_array(details) ? json_array_size(details) : 0;
    out->failures = mg_calloc(n < *budget ? n + 1 : *budget + 1, sizeof *out->failures);
    for (size_t i = 0; i < n; i++) {
        const json_t *f = json_array_get(details, i);
        if (!json_is_object(f) || *budget == 0) {
            (*dropped)++;
            continue;
        }
        parse_failure(f, &out->failures[out->n_failures++]);
        (*budget)--;
    }
}

static enum tlsrpt_status parse_root(const json_t *root, struct tlsrpt_report *out, char *why,
                                     size_t why_size)
{
    if (!json_is_object(root)) {
        say(why, why_size, "the report is not a JSON object");
        return TLSRPT_BAD_JSON;
    }
    const json_t *policies = json_object_get(root, "policies");
    out->report_id = member_text(root, "report-id");
    if (!out->report_id[0]) {
        say(why, why_size, "the report has no report-id");
        return TLSRPT_INVALID;
    }
    if (!json_is_array(policies)) {
        say(why, why_size, "the report has no policies array");
        return TLSRPT_INVALID;
    }
    out->organization = member_text(root, "organization-name");
    out->contact = member_text(root, "contact-info");
    const json_t *range = json_object_get(root, "date-range");
    out->start = member_time(range, "start-datetime");
    out->end = member_time(range, "end-datetime");
    out->dropped = member_count(root, "mailgate-dropped");
    size_t n = json_array_size(policies), budget = TLSRPT_MAX_FAILURES;
    out->policies =
        mg_calloc(n < TLSRPT_MAX_POLICIES ? n + 1 : TLSRPT_MAX_POLICIES + 1, sizeof *out->policies);
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(policies, i);
        if (!json_is_object(p) || out->n_policies == TLSRPT_MAX_POLICIES) {
            out->dropped++;
            continue;
        }
        parse_policy(p, &out->policies[out->n_policies++], &budget, &out->dropped);
    }
    return TLSRPT_OK;
}

/* jansson refuses deep nesting itself only at 2048 levels: count before building the tree. */
static int too_deep(const char *data, size_t len)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if ((c == '{' || c == '[') && ++depth > JSON_DEPTH_MAX) {
            return 1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

enum tlsrpt_status tlsrpt_parse(const char *data, size_t len, struct tlsrpt_report *out, char *why,
                                size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (len > TLSRPT_MAX_JSON) {
        say(why, why_size, "the report is larger than %d bytes", TLSRPT_MAX_JSON);
        return TLSRPT_TOO_LARGE;
    }
    if (too_deep(data, len)) {
        say(why, why_size, "the report is nested too deeply");
        return TLSRPT_BAD_JSON;
    }
    json_error_t err;
    json_t *root = json_loadb(data, len, 0, &err);
    if (!root) {
        say(why, why_size, "not valid JSON (line %d: %s)", err.line, err.text);
        return TLSRPT_BAD_JSON;
    }
    enum tlsrpt_status rc = parse_root(root, out, why, why_size);
    json_decref(root);
    return rc;
}

/* ---- the normalised form ---- */

static json_t *lines_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void set_text(json_t *obj, const char *key, const char *value)
{
    if (value && value[0])
        json_object_set_new(obj, key, json_string(value));
}

static json_t *failure_json(const struct tlsrpt_failure *f)
{
    json_t *o = json_object();
    set_text(o, "result-type", f->result_type);
    set_text(o, "sending-mta-ip", f->sending_mta_ip);
    set_text(o, "receiving-mx-hostname", f->receiving_mx_hostname);
    set_text(o, "receiving-mx-helo", f->receiving_mx_helo);
    set_text(o, "receiving-ip", f->receiving_ip);
    set_text(o, "additional-information", f->additional_information);
    set_text(o, "failure-reason-code", f->failure_reason_code);
    json_object_set_new(o, "failed-session-count", json_integer(f->failed_sessions));
    return o;
}

static json_t *policy_json(const struct tlsrpt_policy *p)
{
    json_t *policy = json_object(), *failures = json_array();
    set_text(policy, "policy-type", p->policy_type);
    json_object_set_new(policy, "policy-string", lines_json(p->policy_string, p->n_policy_string));
    set_text(policy, "policy-domain", p->policy_domain);
    json_object_set_new(policy, "mx-host", lines_json(p->mx_host, p->n_mx_host));
    for (size_t i = 0; i < p->n_failures; i++)
        json_array_append_new(failures, failure_json(&p->failures[i]));
    return json_pack("{s:o, s:{s:I, s:I}, s:o}", "policy", policy, "summary",
                     "total-successful-session-count", (json_int_t)p->successful,
                     "total-failure-session-count", (json_int_t)p->failed, "failure-details",
                     failures);
}

static void set_time(json_t *obj, const char *key, int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    if (t && gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        json_object_set_new(obj, key, json_string(buf));
}

char *tlsrpt_to_json(const struct tlsrpt_report *r)
{
    json_t *root = json_object(), *range = json_object(), *policies = json_array();
    set_text(root, "organization-name", r->organization);
    set_time(range, "start-datetime", r->start);
    set_time(range, "end-datetime", r->end);
    json_object_set_new(root, "date-range", range);
    set_text(root, "contact-info", r->contact);
    set_text(root, "report-id", r->report_id);
    for (size_t i = 0; i < r->n_policies; i++)
        json_array_append_new(policies, policy_json(&r->policies[i]));
    json_object_set_new(root, "policies", policies);
    if (r->dropped)
        json_object_set_new(root, "mailgate-dropped", json_integer(r->dropped));
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s)
        abort(); /* out of memory, as mg_malloc */
    return s;
}

static void free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void free_failure(struct tlsrpt_failure *f)
{
    char *texts[] = {f->result_type,        f->sending_mta_ip, f->receiving_mx_hostname,
                     f->receiving_mx_helo,  f->receiving_ip,   f->additional_information,
                     f->failure_reason_code};
    for (size_t i = 0; i < MG_ARRAY_LEN(texts); i++)
        free(texts[i]);
}

static void free_policy(struct tlsrpt_policy *p)
{
    free(p->policy_type);
    free(p->policy_domain);
    free_lines(p->policy_string, p->n_policy_string);
    free_lines(p->mx_host, p->n_mx_host);
    for (size_t i = 0; i < p->n_failures; i++)
        free_failure(&p->failures[i]);
    free(p->failures);
}

void tlsrpt_free(struct tlsrpt_report *r)
{
    free(r->report_id);
    free(r->organization);
    free(r->contact);
    for (size_t i = 0; i < r->n_policies; i++)
        free_policy(&r->policies[i]);
    free(r->policies);
    memset(r, 0, sizeof *r);
}
