/* The POX Autodiscover request (autodiscover_request.h), parsed with expat. Elements are
 * matched by local name whatever their namespace: clients differ in the namespace they put on
 * the request, and only the three names below are read. */
#include "autodiscover_request.h"

#include <stdint.h>
#include <string.h>

#include <expat.h>

#include "util.h"

#define MAX_DEPTH 8 /* Autodiscover/Request/EMailAddress is 3 deep */

enum field { FIELD_NONE, FIELD_EMAIL, FIELD_SCHEMA };

struct reader {
    XML_Parser parser;
    struct autodiscover_request *out;
    int depth;
    int other_root; /* the root is not <Autodiscover>: nothing below it is read */
    int in_request; /* depth of <Request> inside the root <Autodiscover>, 0 outside */
    enum field field;
    int too_long, refused;
    int seen_email;
};

/* "namespace\x01local" (XML_ParserCreateNS) or a plain name -> the local name. */
static const char *local_name(const XML_Char *name)
{
    const char *sep = strrchr(name, '\x01');
    return sep ? sep + 1 : name;
}

static void refuse(struct reader *r)
{
    r->refused = 1;
    XML_StopParser(r->parser, XML_FALSE);
}

static void XMLCALL on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
    MG_UNUSED(attrs);
    struct reader *r = arg;
    const char *local = local_name(name);
    if (++r->depth > MAX_DEPTH) {
        refuse(r);
        return;
    }
    r->field = FIELD_NONE;
    if (r->depth == 1)
        r->other_root = strcmp(local, "Autodiscover") != 0;
    else if (r->depth == 2 && !r->other_root && strcmp(local, "Request") == 0)
        r->in_request = 1;
    else if (r->depth == 3 && r->in_request && strcmp(local, "EMailAddress") == 0)
        r->field = FIELD_EMAIL;
    else if (r->depth == 3 && r->in_request && strcmp(local, "AcceptableResponseSchema") == 0)
        r->field = FIELD_SCHEMA;
    if (r->field == FIELD_EMAIL) {
        r->out->email[0] = '\0'; /* the last one counts */
        r->seen_email = 1;
    } else if (r->field == FIELD_SCHEMA) {
        r->out->schema[0] = '\0';
    }
}

static void XMLCALL on_end(void *arg, const XML_Char *name)
{
    MG_UNUSED(name);
    struct reader *r = arg;
    if (r->depth == 2)
        r->in_request = 0;
    r->depth--;
    r->field = FIELD_NONE;
}

static void XMLCALL on_text(void *arg, const XML_Char *s, int len)
{
    struct reader *r = arg;
    char *buf = r->field == FIELD_EMAIL    ? r->out->email
                : r->field == FIELD_SCHEMA ? r->out->schema
                                           : NULL;
    size_t cap = r->field == FIELD_EMAIL ? AUTODISCOVER_EMAIL_MAX : AUTODISCOVER_SCHEMA_MAX;
    if (!buf)
        return;
    size_t used = strlen(buf);
    if ((size_t)len > cap - used) {
        r->too_long = 1;
        refuse(r);
        return;
    }
    memcpy(buf + used, s, (size_t)len);
    buf[used + (size_t)len] = '\0';
}

/* A DOCTYPE is the door to entities (billion laughs, external ones): a request has none. */
static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    MG_UNUSED(name), MG_UNUSED(sysid), MG_UNUSED(pubid), MG_UNUSED(has_internal_subset);
    refuse(arg);
}

/* Surrounding white space (the element's indentation inside its text) is not part of it. */
static void trim(char *s)
{
    size_t start = strspn(s, " \t\r\n"), len = strlen(s);
    while (len > start && strchr(" \t\r\n", s[len - 1]))
        len--;
    memmove(s, s + start, len - start);
    s[len - start] = '\0';
}

enum autodiscover_parse autodiscover_request_parse(const char *body, size_t len,
                                                   struct autodiscover_request *out)
{
    memset(out, 0, sizeof *out);
    if (len > (size_t)INT32_MAX)
        return AUTODISCOVER_BAD_XML;
    XML_Parser parser = XML_ParserCreateNS(NULL, '\x01');
    if (!parser)
        return AUTODISCOVER_BAD_XML;
    struct reader r = {.parser = parser, .out = out};
    XML_SetUserData(parser, &r);
    XML_SetElementHandler(parser, on_start, on_end);
    XML_SetCharacterDataHandler(parser, on_text);
    XML_SetStartDoctypeDeclHandler(parser, on_doctype);
    enum XML_Status st = XML_Parse(parser, body, (int)len, XML_TRUE);
    XML_ParserFree(parser);
    if (st != XML_STATUS_OK || r.refused)
        return AUTODISCOVER_BAD_XML;
    trim(out->email);
    trim(out->schema);
    if (!r.seen_email || !out->email[0])
        return AUTODISCOVER_NOT_REQUEST;
    if (out->schema[0] && strcmp(out->schema, AUTODISCOVER_OUTLOOK_SCHEMA) != 0)
        return AUTODISCOVER_OTHER_SCHEMA;
    return AUTODISCOVER_OK;
}
