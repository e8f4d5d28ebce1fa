/* libFuzzer target: Outlook's POX Autodiscover request body (autodiscover_request.c, expat),
 * then the address check and the response document built from what was parsed
 * (autoconfig.c), as the HTTP listener does with a POST body. expat is not instrumented, so
 * the fuzzer could not find well-formed XML by itself: the first byte picks whether the rest
 * is the whole body, the inside of <Autodiscover>, or the text of <EMailAddress>. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "autodiscover_request.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len > max)
        abort();
    /* trimmed: no white space at either end */
    if (len && (strchr(" \t\r\n", s[0]) || strchr(" \t\r\n", s[len - 1])))
        abort();
}

/* The response must carry no unescaped markup from the address. */
static void check_response(const char *email)
{
    struct domain_conf d = {0};
    d.name = "example.com";
    d.display_name = "Example";
    d.imap = (struct domain_server){"imap.example.com", 993, MG_TLS_IMPLICIT, 0};
    char *doc = autoconfig_autodiscover(&d, email);
    if (!doc)
        abort();
    const char *login = strstr(doc, "<LoginName>");
    const char *end = login ? strstr(login, "</LoginName>") : NULL;
    if (!login || !end || memchr(login + 11, '<', (size_t)(end - login - 11)))
        abort();
    free(doc);
}

static const char *const wrappers[][2] = {
    {"", ""},
    {"<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/"
     "requestschema/2006\">",
     "</Autodiscover>"},
    {"<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover><Request><EMailAddress>",
     "</EMailAddress><AcceptableResponseSchema>" AUTODISCOVER_OUTLOOK_SCHEMA
     "</AcceptableResponseSchema></Request></Autodiscover>"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *const *wrap = wrappers[data[0] % 3];
    size_t pre = strlen(wrap[0]), post = strlen(wrap[1]), len = pre + size - 1 + post;
    char *body = malloc(len ? len : 1);
    if (!body)
        return 0;
    memcpy(body, wrap[0], pre);
    memcpy(body + pre, data + 1, size - 1);
    memcpy(body + pre + size - 1, wrap[1], post);
    struct autodiscover_request req;
    enum autodiscover_parse st = autodiscover_request_parse(body, len, &req);
    free(body);
    if (st != AUTODISCOVER_OK && st != AUTODISCOVER_OTHER_SCHEMA)
        return 0;
    check_text(req.email, AUTODISCOVER_EMAIL_MAX);
    check_text(req.schema, AUTODISCOVER_SCHEMA_MAX);
    if (!req.email[0])
        abort();
    if (st == AUTODISCOVER_OK && autoconfig_address_domain(req.email))
        check_response(req.email);
    return 0;
}
