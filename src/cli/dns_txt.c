/* The _mta-sts and _smtp._tls TXT records (dns_txt.h). Both RFCs share one grammar: a version
 * tag, then fields "name=value" separated by *WSP ";" *WSP, an optional ';' at the end, and
 * extension fields that senders ignore but whose syntax is fixed; so one tokenizer serves both
 * and each record only judges its own fields. */
#include "dns_txt.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define EXT_NAME_MAX 32

typedef const char *(*field_fn)(const char *name, size_t name_len, const char *value,
                                size_t value_len, void *arg);

static int is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int field_is(const char *name, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(name, word, len) == 0;
}

/* ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") and
 * ext-value = 1*(%x21-3A / %x3C / %x3E-7E): no space, ';' or '='. */
static const char *extension_problem(const char *name, size_t name_len, const char *value,
                                     size_t value_len)
{
    if (name_len == 0 || name_len > EXT_NAME_MAX || !is_alnum(name[0]))
        return "a field name must be 1 to 32 letters, digits, '_', '-' or '.'";
    for (size_t i = 1; i < name_len; i++)
        if (!is_alnum(name[i]) && !strchr("_-.", name[i]))
            return "a field name must be 1 to 32 letters, digits, '_', '-' or '.'";
    if (value_len == 0)
        return "a field has an empty value";
    for (size_t i = 0; i < value_len; i++)
        if (value[i] <= ' ' || value[i] == '=' || value[i] > '~')
            return "a field's value contains a space or '='";
    return NULL;
}

/* Records are ASCII text: a control character or an 8-bit byte (a NUL from a broken zone
 * editor, a UTF-8 quote pasted from a web page) makes the record invalid. */
static const char *bytes_problem(const char *rec, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((rec[i] < ' ' && rec[i] != '\t') || (unsigned char)rec[i] > '~')
            return "contains a control character or a non-ASCII byte";
    return NULL;
}

static size_t skip_wsp(const char *rec, size_t len, size_t pos)
{
    while (pos < len && is_wsp(rec[pos]))
        pos++;
    return pos;
}

/* version 1*(field-delim field) [field-delim]; calls fn for each field, value without the
 * blanks before the next ';'. */
static const char *parse_fields(const char *rec, size_t len, const char *version, field_fn fn,
                                void *arg)
{
    size_t vlen = strlen(version);
    const char *why = bytes_problem(rec, len);
    if (why)
        return why;
    if (len < vlen || memcmp(rec, version, vlen) != 0)
        return "does not start with the version tag";
    size_t fields = 0;
    for (size_t pos = skip_wsp(rec, len, vlen); pos < len; pos = skip_wsp(rec, len, pos)) {
        if (rec[pos] != ';')
            return "fields must be separated by ';'";
        pos = skip_wsp(rec, len, pos + 1);
        if (pos == len)
            break; /* a trailing ';' */
        size_t name = pos;
        while (pos < len && rec[pos] != '=' && rec[pos] != ';')
            pos++;
        if (pos == len || rec[pos] != '=')
            return "a field is not name=value";
        size_t value = ++pos;
        while (pos < len && rec[pos] != ';')
            pos++;
        size_t end = pos;
        while (end > value && is_wsp(rec[end - 1]))
            end--;
        why = fn(rec + name, value - 1 - name, rec + value, end - value, arg);
        if (why)
            return why;
        fields++;
    }
    return fields ? NULL : "has no field after the version tag";
}

int dns_txt_select(const struct dns_txt *recs, size_t n, const char *prefix)
{
    size_t plen = strlen(prefix);
    int found = -1;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len < plen || memcmp(recs[i].data, prefix, plen) != 0)
            continue;
        if (found >= 0)
            return -2;
        found = (int)i;
    }
    return found;
}

/* ---- _mta-sts ---- */

static const char *sts_field(const char *name, size_t name_len, const char *value, size_t value_len,
                             void *arg)
{
    char *id = arg;
    if (!field_is(name, name_len, "id"))
        return extension_problem(name, name_len, value, value_len);
    if (id[0])
        return "two id= fields";
    if (value_len == 0 || value_len > STS_RECORD_ID_MAX)
        return "id= must be 1 to 32 letters and digits";
    for (size_t i = 0; i < value_len; i++)
        if (!is_alnum(value[i]))
            return "id= must be 1 to 32 letters and digits";
    memcpy(id, value, value_len);
    id[value_len] = '\0';
    return NULL;
}

const char *sts_record_parse(const char *rec, size_t len, char out_id[STS_RECORD_ID_MAX + 1])
{
    out_id[0] = '\0';
    const char *why = parse_fields(rec, len, "v=STSv1", sts_field, out_id);
    if (!why && !out_id[0])
        why = "no id= field";
    if (why)
        out_id[0] = '\0';
    return why;
}

/* ---- _smtp._tls ---- */

struct tlsrpt_parse {
    struct mg_strlist *rua;
    int seen_rua;
};

/* tlsrpt-rua = "rua=" uri *(*WSP "," *WSP uri) */
static const char *rua_field(const char *value, size_t len, struct mg_strlist *rua)
{
    for (size_t pos = 0;;) {
        pos = skip_wsp(value, len, pos);
        size_t start = pos;
        while (pos < len && value[pos] != ',' && !is_wsp(value[pos]))
            pos++;
        if (pos == start)
            return "an empty URI in rua=";
        char *uri = mg_strndup(value + start, pos - start);
        const char *why = tls_rpt_uri_problem(uri);
        if (why) {
            free(uri);
            return why;
        }
        rua->v = mg_realloc(rua->v, (rua->n + 1) * sizeof *rua->v);
        rua->v[rua->n++] = uri;
        pos = skip_wsp(value, len, pos);
        if (pos == len)
            return NULL;
        if (value[pos] != ',')
            return "the URIs of rua= must be separated by ','";
        pos++;
    }
}

static const char *tlsrpt_field(const char *name, size_t name_len, const char *value,
                                size_t value_len, void *arg)
{
    struct tlsrpt_parse *st = arg;
    if (!field_is(name, name_len, "rua"))
        return extension_problem(name, name_len, value, value_len);
    if (st->seen_rua)
        return "two rua= fields";
    st->seen_rua = 1;
    return rua_field(value, value_len, st->rua);
}

const char *tlsrpt_record_parse(const char *rec, size_t len, struct mg_strlist *rua)
{
    struct tlsrpt_parse st = {.rua = rua};
    const char *why = parse_fields(rec, len, "v=TLSRPTv1", tlsrpt_field, &st);
    return why ? why : st.seen_rua ? NULL : "no rua= field";
}

void dns_strlist_free(struct mg_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
