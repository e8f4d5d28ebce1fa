/* Claims of a JWT access token for display (see jwt_claims.h). */
#include "jwt_claims.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "util.h"

#define CLAIMS_MAX (64 * 1024)       /* a payload larger than this is not an access token */
#define EXP_LIMIT 1000000000000000LL /* seconds; far beyond any real date */

unsigned char *jwt_b64url_decode(const char *s, size_t len, size_t *out_len)
{
    /* Map base64url onto standard base64 with padding and let sasl.c's strict decoder do the
     * work: one base64 implementation in the project. */
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return NULL; /* one leftover character carries fewer than 8 bits */
    size_t padded = (len + 3) / 4 * 4;
    char *std = mg_malloc(padded + 1);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+' || c == '/' || c == '=')
            goto invalid; /* the standard alphabet is not base64url */
        std[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    memset(std + len, '=', padded - len);
    unsigned char *out = mg_malloc(padded / 4 * 3 + 1);
    long n = b64_decode(std, padded, out, padded / 4 * 3);
    free(std);
    if (n < 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = (size_t)n;
    return out;
invalid:
    free(std);
    return NULL;
}

json_t *jwt_claims_decode(const char *token, size_t len)
{
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return NULL;
    const char *payload = dot1 + 1;
    size_t rest = len - (size_t)(payload - token);
    const char *dot2 = memchr(payload, '.', rest);
    if (!dot2 || dot2 == payload || memchr(dot2 + 1, '.', rest - (size_t)(dot2 + 1 - payload)))
        return NULL;
    size_t plen = (size_t)(dot2 - payload);
    if (plen > CLAIMS_MAX)
        return NULL;
    size_t n;
    unsigned char *json = jwt_b64url_decode(payload, plen, &n);
    if (!json)
        return NULL;
    json_t *root = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, NULL);
    free(json);
    if (root && !json_is_object(root)) {
        json_decref(root);
        root = NULL;
    }
    return root;
}

/* Appends s (with a separating space) to a growing string. */
static void append_word(char **buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    *buf = mg_realloc(*buf, *len + n + 2);
    if (*len)
        (*buf)[(*len)++] = ' ';
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *jwt_claims_permissions(const json_t *claims, const char **kind)
{
    const json_t *roles = json_object_get(claims, "roles");
    const json_t *scp = json_object_get(claims, "scp");
    if (json_is_array(roles)) {
        char *buf = NULL;
        size_t len = 0;
        for (size_t i = 0; i < json_array_size(roles); i++) {
            const json_t *r = json_array_get(roles, i);
            if (json_is_string(r))
                append_word(&buf, &len, json_string_value(r));
        }
        *kind = "roles";
        return buf ? buf : mg_strdup("");
    }
    if (json_is_string(scp)) {
        *kind = "scp";
        return mg_strdup(json_string_value(scp));
    }
    *kind = NULL;
    return NULL;
}

static int word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n) {
        int starts = p == list || p[-1] == ' ';
        int ends = p[n] == '\0' || p[n] == ' ';
        if (starts && ends)
            return 1;
    }
    return 0;
}

int jwt_claims_has_permission(const json_t *claims, const char *perm)
{
    const json_t *roles = json_object_get(claims, "roles");
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        if (json_is_string(r) && strcmp(json_string_value(r), perm) == 0)
            return 1;
    }
    const json_t *scp = json_object_get(claims, "scp");
    return json_is_string(scp) && *perm && word_in(json_string_value(scp), perm);
}

const char *jwt_required_permission(enum mg_proto proto, int delegated)
{
    switch (proto) {
    case MG_PROTO_IMAP:
        return delegated ? "IMAP.AccessAsUser.All" : "IMAP.AccessAsApp";
    case MG_PROTO_POP3:
        return delegated ? "POP.AccessAsUser.All" : "POP.AccessAsApp";
    case MG_PROTO_SMTP:
        return delegated ? "SMTP.Send" : "SMTP.SendAsApp";
    case MG_PROTO_HTTP: /* no upstream login */
        break;
    }
    return "";
}

int jwt_claims_time(const json_t *claims, const char *name, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= -9e15 && json_real_value(v) <= 9e15) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    return -1;
}

/* "59 min", "2 h 5 min", "3 d 4 h", "40 s" */
static void format_span(int64_t secs, char *buf, size_t size)
{
    if (secs < 60)
        snprintf(buf, size, "%lld s", (long long)secs);
    else if (secs < 3600)
        snprintf(buf, size, "%lld min", (long long)(secs / 60));
    else if (secs < 86400)
        snprintf(buf, size, "%lld h %lld min", (long long)(secs / 3600),
                 (long long)(secs % 3600 / 60));
    else
        snprintf(buf, size, "%lld d %lld h", (long long)(secs / 86400),
                 (long long)(secs % 86400 / 3600));
}

void jwt_format_expiry(int64_t exp, time_t now, char *buf, size_t size)
{
    char when[32] = "?", span[48];
    if (exp > EXP_LIMIT)
        exp = EXP_LIMIT; /* keeps exp - now and its negation in range */
    if (exp < -EXP_LIMIT)
        exp = -EXP_LIMIT;
    time_t t = (time_t)exp;
    struct tm tm;
    if (exp >= 0 && exp < 253402300800LL && gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int64_t left = exp - (int64_t)now;
    if (left >= 0) {
        format_span(left, span, sizeof span);
        snprintf(buf, size, "%s (in %s)", when, span);
    } else {
        format_span(-left, span, sizeof span);
        snprintf(buf, size, "%s (expired %s ago)", when, span);
    }
}
