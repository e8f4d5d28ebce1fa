/* libFuzzer target: login names (login_name.c). The first byte picks whether a default domain
 * is configured; a valid result is checked against the name table's invariants. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "login_name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const char *input, const struct login_name *n)
{
    size_t seps = 0;
    for (const char *p = input; *p; p++)
        seps += *p == '\\' || *p == '/';
    if (seps > 2 || strlen(n->user) == 0 || strlen(n->user) >= LOGIN_NAME_MAX ||
        strlen(n->alias) >= LOGIN_NAME_MAX)
        abort();
    /* an alias exactly when a separator follows the user part */
    int has_alias = n->form == LOGIN_UPN_ALIAS || n->form == LOGIN_DOMAIN_USER_ALIAS;
    if (has_alias != (n->alias[0] != '\0'))
        abort();
    if (strpbrk(n->user, "\\/ \t\r\n") || strpbrk(n->alias, "\\/ \t\r\n"))
        abort();
    char address[LOGIN_NAME_MAX * 2];
    if (has_alias)
        (void)login_name_alias_address(n->alias, n->user, "owner@example.com", address,
                                       sizeof address);
    (void)login_name_reserved(n->user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* A NUL-terminated copy of exactly the name, so ASan sees any read past its end. */
    size_t len = size - 1;
    char *input = malloc(len + 1);
    memcpy(input, data + 1, len);
    input[len] = '\0';
    const char *domain = data[0] & 1 ? "contoso.com" : NULL;
    struct login_name n;
    if (login_name_parse(input, domain, &n) == 0)
        check_parsed(input, &n);
    else if (n.user[0] || n.alias[0])
        abort(); /* a refused name leaves nothing behind */
    char out[LOGIN_NAME_MAX];
    if (login_name_canonical(input, domain, out, sizeof out) == 0 && strlen(out) < strlen(input))
        abort();
    (void)login_name_short_form(input, domain, out, sizeof out);
    free(input);
    return 0;
}
