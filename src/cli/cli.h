/* Admin commands of the one binary. */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct store;
struct user_record;

/* argv starts after the global options, at the subcommand word ("user", "check-config" ...).
 * Each returns the exit code: 0 ok, 1 failure, 2 usage error. */
int cli_check_config(const char *config_path);
int cli_user(const char *config_path, int argc, char **argv);
int cli_token(const char *config_path, int argc, char **argv);
int cli_secrets(const char *config_path, int argc, char **argv);
/* "user authorize NAME ..." and "user deauthorize NAME" (cli_authorize.c); argv[0] is the
 * subcommand word. */
int cli_user_authorize(const char *config_path, int argc, char **argv);
int cli_user_deauthorize(const char *config_path, int argc, char **argv);
/* "audit [--user NAME] [--limit N]" (cli_audit.c); argv[0] is "audit". */
int cli_audit(const char *config_path, int argc, char **argv);
/* "report logins|usage ..." (cli_report.c); argv[0] is "report". */
int cli_report(const char *config_path, int argc, char **argv);
/* "user set", "user show" (cli_user_access.c) and "grant add|list|del" (cli_grant.c); argv[0]
 * is the subcommand word ("set", "show", "grant"). */
int cli_user_set(const char *config_path, int argc, char **argv);
int cli_user_show(const char *config_path, int argc, char **argv);
int cli_grant(const char *config_path, int argc, char **argv);
/* "dns DOMAIN" (cli_dns.c): the DNS records to publish for a [domain]; argv[0] is "dns". */
int cli_dns(const char *config_path, int argc, char **argv);
/* "check DOMAIN [--resolver IP[:PORT]] [--ca-file FILE] [--https-port N]" (cli_check.c): the
 * published records and the served MTA-STS policy against the [domain]; argv[0] is "check". */
int cli_check(const char *config_path, int argc, char **argv);
/* "tlsrpt import FILE..." (cli_tlsrpt.c): TLS reports into the store; argv[0] is "tlsrpt". */
int cli_tlsrpt(const char *config_path, int argc, char **argv);
void cli_usage(void);
/* check-config: one line per provider whose credential changed since a cached token was
 * obtained (cli_credentials.c). cfg loaded with secrets. */
void cli_print_changed_credentials(const struct config *cfg);

/* Loads the configuration for a command that serves no listener (config_load_admin: the
 * gateway's certificate need not exist yet) and prints its errors to stderr. Returns NULL when
 * it has errors. */
struct config *cli_load_config(const char *config_path, enum config_secrets secrets);

/* Opens the store in cfg's state_dir; prints why not to stderr and returns NULL on failure. */
struct store *cli_open_store(const struct config *cfg);
/* For commands that need the store and no secret: loads the configuration without secrets,
 * opens the store, returns run's exit code (1 when either cannot be opened) and closes both. */
int cli_run_with_store(const char *config_path,
                       int (*run)(const struct config *cfg, struct store *st, void *arg),
                       void *arg);
/* The user NAME stands for (account.h: with default_domain, "alice" and "alice@DOMAIN" are
 * one user) into out; prints why not on stderr. 0, or 1 (no such user, store error). */
int cli_find_user(const struct config *cfg, struct store *st, const char *name,
                  struct user_record *out);
/* The name the broker's throttle and the lockouts table know the user by: its canonical login
 * name (login_name.h). 0, or -1 when it does not fit. */
int cli_lockout_key(const struct config *cfg, const char *name, char *out, size_t size);
/* An argument that is no known option: the command's one NAME (into *name, which must start
 * NULL), else a usage error (unknown option, a second name). 0 or the usage-error code. */
int cli_take_name(const char *arg, const char **name);
/* "on" 1, "off" 0, else -1. */
int cli_parse_switch(const char *value);
/* Prints "mailgate: <message>" and a pointer to the help on stderr; returns 2 (usage error). */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The value of "--opt VALUE" or "--opt=VALUE" at argv[*i] (advancing *i past VALUE); NULL when
 * argv[*i] is not --opt, or with *missing set when the value is missing. */
const char *cli_option_value(int argc, char **argv, int *i, const char *opt, bool *missing);
/* A password as one line from stdin (one trailing "\n" or "\r\n" removed) into pw (size
 * bytes, NUL-terminated), its length in *len; empty, over-long (PASSWORD_MAX) or NUL-containing
 * input is refused with a message on stderr (and pw wiped). 0 or -1. */
int cli_read_password_stdin(char *pw, size_t size, size_t *len);
/* t (unix seconds) as "2026-11-25T03:04:05Z"; "?" when it cannot be shown. */
void cli_iso8601_utc(int64_t t, char *buf, size_t size);

#endif
