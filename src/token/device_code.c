/* RFC 8628 device authorization: request bodies and the answer (see device_code.h). */
#include "device_code.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config.h"
#include "form.h"
#include "util.h"

#define EXPIRES_DIGITS_MAX 9

/* The provider's client_secret is sent only when it has one: public clients have none. */
static char *encode_with_secret(const struct provider_conf *p, struct form_field *fields, size_t n)
{
    if (p->client_secret)
        fields[n++] = (struct form_field){"client_secret", p->client_secret};
    return form_encode(fields, n);
}

char *device_code_request_body(const struct provider_conf *p)
{
    struct form_field fields[3] = {{"client_id", p->client_id}, {"scope", p->scope}};
    return encode_with_secret(p, fields, 2);
}

char *device_code_poll_body(const struct provider_conf *p, const char *device_code)
{
    struct form_field fields[4] = {{"grant_type", DEVICE_GRANT_TYPE},
                                   {"client_id", p->client_id},
                                   {"device_code", device_code}};
    return encode_with_secret(p, fields, 3);
}

/* Visible ASCII only (codes, URIs). */
static bool visible_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

/* Text for a terminal: no control characters (UTF-8 bytes pass; jansson checked the UTF-8). */
static bool terminal_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* Copies a string member into dst; false when it is absent, not a string, empty, too long or
 * has characters `ok` refuses. */
static bool copy_member(const json_t *root, const char *name, bool (*ok)(const char *), char *dst,
                        size_t size)
{
    const json_t *v = json_object_get(root, name);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size ||
        strlen(json_string_value(v)) != json_string_length(v) || !ok(json_string_value(v)))
        return false;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return true;
}

/* A positive whole number of seconds: a JSON integer or a string of digits. -1 otherwise,
 * 0 when absent. */
static int64_t seconds_member(const json_t *root, const char *name)
{
    const json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (json_is_integer(v))
        return json_integer_value(v) >= 1 ? json_integer_value(v) : -1;
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > EXPIRES_DIGITS_MAX || s[n] != '\0')
        return -1;
    int64_t secs = strtoll(s, NULL, 10);
    return secs >= 1 ? secs : -1;
}

static bool web_uri(const char *s)
{
    return visible_ascii(s) && (strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0);
}

static const char *parse_success(const json_t *root, struct device_authorization *out)
{
    if (!copy_member(root, "device_code", visible_ascii, out->device_code, sizeof out->device_code))
        return "no usable device_code";
    if (!copy_member(root, "user_code", visible_ascii, out->user_code, sizeof out->user_code))
        return "no usable user_code";
    if (!copy_member(root, "verification_uri", web_uri, out->verification_uri,
                     sizeof out->verification_uri) &&
        !copy_member(root, "verification_url", web_uri, out->verification_uri,
                     sizeof out->verification_uri))
        return "no usable verification_uri";
    /* Optional: a bad one is left out rather than shown. */
    if (!copy_member(root, "verification_uri_complete", web_uri, out->verification_uri_complete,
                     sizeof out->verification_uri_complete))
        out->verification_uri_complete[0] = '\0';
    if (!copy_member(root, "message", terminal_text, out->message, sizeof out->message))
        out->message[0] = '\0';
    out->expires_in = seconds_member(root, "expires_in");
    if (out->expires_in <= 0)
        return "no usable expires_in";
    if (out->expires_in > DEVICE_EXPIRES_MAX)
        out->expires_in = DEVICE_EXPIRES_MAX;
    int64_t interval = seconds_member(root, "interval");
    if (interval < 0)
        return "bad interval";
    out->interval = interval == 0                    ? DEVICE_INTERVAL_DEFAULT
                    : interval > DEVICE_INTERVAL_MAX ? DEVICE_INTERVAL_MAX
                                                     : interval;
    return NULL;
}

/* A failed answer: the OAuth error, read the way token answers are. */
static void parse_failure(long status, const char *body, size_t len,
                          struct device_authorization *out)
{
    struct token_response tr;
    token_parse_response(status, body, len, NULL, &tr);
    out->status = tr.status == TOKEN_OK ? TOKEN_TEMPFAIL : tr.status;
    mg_strlcpy(out->error, tr.error, sizeof out->error);
    if (tr.status == TOKEN_OK)
        snprintf(out->reason, sizeof out->reason, "HTTP %ld from the device authorization endpoint",
                 status);
    else
        mg_strlcpy(out->reason, tr.reason, sizeof out->reason);
    token_response_clear(&tr);
}

int device_code_parse(long status, const char *body, size_t len, struct device_authorization *out)
{
    memset(out, 0, sizeof *out);
    if (status != 200) {
        parse_failure(status, body, len, out);
        return -1;
    }
    json_t *root = body && len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *problem = json_is_object(root) ? parse_success(root, out) : "not a JSON object";
    json_decref(root);
    if (!problem)
        return 0;
    device_authorization_clear(out);
    out->status = TOKEN_TEMPFAIL;
    snprintf(out->reason, sizeof out->reason, "malformed device authorization answer: %s", problem);
    return -1;
}

void device_authorization_clear(struct device_authorization *d)
{
    mg_wipe(d, sizeof *d);
}
