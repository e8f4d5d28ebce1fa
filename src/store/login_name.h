/* Login names and what they open (README, "Login names"). A client logs in as
 *   alice                    short name: alice@[gateway] default_domain, her own mailbox
 *   alice@contoso.com        UPN: the user, her own mailbox
 *   contoso\alice            domain\user: the same user (a NetBIOS-style domain matches the
 *                            first label of default_domain)
 *   alice@contoso.com\shared upn\alias: the mailbox "shared" opened as alice
 *   contoso\alice\shared     domain\user\alias: the same
 * '/' is the same separator as '\'. Only the '@' before the first separator count; any other
 * shape is invalid (an authentication failure). The password is always the user's.
 *
 * Pure string functions (no store, no I/O): the broker parses, the worker only forwards the
 * name; the CLI canonicalizes the names an admin types with the same rules. */
#ifndef MG_LOGIN_NAME_H
#define MG_LOGIN_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define LOGIN_NAME_MAX 256 /* as IPC_USER_MAX: a name the worker forwards, with its NUL */

enum login_form {
    LOGIN_SHORT,
    LOGIN_UPN,
    LOGIN_DOMAIN_USER,
    LOGIN_UPN_ALIAS,
    LOGIN_DOMAIN_USER_ALIAS,
};

struct login_name {
    enum login_form form;
    /* The user, canonical (login_name_canonical): a UPN, or a short name when no default domain
     * is configured. */
    char user[LOGIN_NAME_MAX];
    /* The mailbox to open as typed: "" for the user's own, else an address or a local part in
     * the user's domain (login_name_alias_address). */
    char alias[LOGIN_NAME_MAX];
};

/* 0, or -1 when the name has none of the valid shapes (out is then zeroed). default_domain may
 * be NULL or "". */
int login_name_parse(const char *input, const char *default_domain, struct login_name *out);

/* The user name as the store and the logs know it: a short name gets "@default_domain" when one
 * is configured; anything else is copied. -1 when it does not fit size. */
int login_name_canonical(const char *name, const char *default_domain, char *out, size_t size);

/* The short form of name when its domain is default_domain ("alice@contoso.com" -> "alice"):
 * users added before default_domain was set are stored that way. -1 when there is none. */
int login_name_short_form(const char *name, const char *default_domain, char *out, size_t size);

/* "anonymous" or "guest", with any domain or none (ASCII case-insensitive): never a user. */
bool login_name_reserved(const char *name);

/* The address of the mailbox an alias names: the alias itself when it is an address, else the
 * local part in the user's domain: the domain of the user name (a UPN), or of the user's own
 * mailbox for a short name. -1 when the alias is not a local part or an address, or the result
 * does not fit size. */
int login_name_alias_address(const char *alias, const char *user, const char *own_mailbox,
                             char *out, size_t size);

#endif
