/* The MTA-STS policy as a sender reads it (sts_policy.h). Strict where RFC 8461 3.2's grammar
 * is: a policy a sender refuses must fail the check, even if a lenient sender would take it. */
#include "sts_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define FIELD_NAME_MAX 32

struct policy_parse {
    struct sts_policy *out;
    int seen_version, seen_mode, seen_max_age;
};

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
static int field_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > FIELD_NAME_MAX || !is_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_alnum(s[i]) && !strchr("_-.", s[i]))
            return 0;
    return 1;
}

/* sts-policy-vchar *(*WSP sts-policy-vchar): VCHAR or UTF-8 bytes, blanks only inside. */
static int field_value_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < ' ' && *s != '\t')
            return 0;
    return 1;
}

static const char *parse_mode(const char *value, enum mg_mta_sts_mode *out)
{
    static const struct {
        const char *word;
        enum mg_mta_sts_mode mode;
    } modes[] = {{"enforce", MG_MTA_STS_ENFORCE},
                 {"testing", MG_MTA_STS_TESTING},
                 {"none", MG_MTA_STS_NONE}};
    for (size_t i = 0; i < MG_ARRAY_LEN(modes); i++) {
        if (strcmp(value, modes[i].word) == 0) {
            *out = modes[i].mode;
            return NULL;
        }
    }
    return "mode must be enforce, testing or none";
}

static const char *parse_max_age(const char *value, uint32_t *out)
{
    size_t n = strlen(value);
    if (n == 0 || n > 10 || strspn(value, "0123456789") != n)
        return "max_age must be 1 to 10 digits";
    unsigned long long v = strtoull(value, NULL, 10);
    if (v > MTA_STS_MAX_AGE_MAX)
        return "max_age is over 31557600 (RFC 8461 3.2)";
    *out = (uint32_t)v;
    return NULL;
}

static const char *add_mx(const char *value, struct mg_strlist *mx)
{
    const char *why = mta_sts_mx_problem(value);
    if (why)
        return why;
    char *pattern = mg_strdup(value);
    for (char *c = pattern; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    mx->v = mg_realloc(mx->v, (mx->n + 1) * sizeof *mx->v);
    mx->v[mx->n++] = pattern;
    return NULL;
}

static const char *policy_field(struct policy_parse *st, const char *name, const char *value)
{
    if (!field_value_ok(value))
        return "a value contains a control character";
    if (strcmp(name, "version") == 0) {
        if (st->seen_version++)
            return "version appears twice";
        return strcmp(value, "STSv1") == 0 ? NULL : "version must be STSv1";
    }
    if (strcmp(name, "mode") == 0)
        return st->seen_mode++ ? "mode appears twice" : parse_mode(value, &st->out->mode);
    if (strcmp(name, "max_age") == 0)
        return st->seen_max_age++ ? "max_age appears twice"
                                  : parse_max_age(value, &st->out->max_age);
    if (strcmp(name, "mx") == 0)
        return add_mx(value, &st->out->mx);
    return NULL; /* an extension: ignored, its syntax was checked with the line */
}

/* name ":" *WSP value *WSP; value NUL-terminated in place of the line's copy. */
static const char *policy_line(struct policy_parse *st, char *line)
{
    char *colon = strchr(line, ':');
    if (!colon)
        return "not \"name: value\"";
    if (!field_name_ok(line, (size_t)(colon - line)))
        return "a field name must be 1 to 32 letters, digits, '_', '-' or '.'";
    *colon = '\0';
    char *value = colon + 1 + strspn(colon + 1, " \t");
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
        value[--n] = '\0';
    if (n == 0)
        return "a field has no value";
    return policy_field(st, line, value);
}

static const char *missing_field(const struct policy_parse *st)
{
    if (!st->seen_version)
        return "no version field";
    if (!st->seen_mode)
        return "no mode field";
    if (!st->seen_max_age)
        return "no max_age field";
    if (st->out->mode != MG_MTA_STS_NONE && st->out->mx.n == 0)
        return "no mx field (required unless mode is none)";
    return NULL;
}

int sts_policy_parse(const char *text, size_t len, struct sts_policy *out, char *why,
                     size_t why_size)
{
    memset(out, 0, sizeof *out);
    struct policy_parse st = {.out = out};
    size_t line_no = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, next = nl ? end + 1 : len;
        if (end > pos && text[end - 1] == '\r' && nl)
            end--;
        line_no++;
        char *line = mg_strndup(text + pos, end - pos);
        const char *problem = strlen(line) != end - pos ? "a line contains a NUL byte"
                              : end == pos              ? "an empty line"
                                                        : policy_line(&st, line);
        free(line);
        if (problem) {
            snprintf(why, why_size, "line %zu: %s", line_no, problem);
            return -1;
        }
        pos = next;
    }
    const char *problem = missing_field(&st);
    if (problem) {
        snprintf(why, why_size, "%s", problem);
        return -1;
    }
    return 0;
}

void sts_policy_free(struct sts_policy *p)
{
    for (size_t i = 0; i < p->mx.n; i++)
        free(p->mx.v[i]);
    free(p->mx.v);
    memset(p, 0, sizeof *p);
}

int sts_mx_matches(const char *pattern, const char *host)
{
    size_t hl = strlen(host), pl = strlen(pattern);
    if (hl && host[hl - 1] == '.')
        hl--;
    if (pl && pattern[pl - 1] == '.')
        pl--;
    if (pl > 2 && pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = memchr(host, '.', hl);
        if (!dot || dot == host)
            return 0;
        size_t rest = hl - (size_t)(dot + 1 - host);
        return rest == pl - 2 && mg_ascii_ncasecmp(dot + 1, pattern + 2, rest) == 0;
    }
    return hl == pl && mg_ascii_ncasecmp(host, pattern, hl) == 0;
}
