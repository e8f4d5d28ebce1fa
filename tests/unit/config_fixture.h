/* Shared by the config unit tests (config_fixture.c). */
#ifndef MG_TEST_CONFIG_FIXTURE_H
#define MG_TEST_CONFIG_FIXTURE_H

#include <stddef.h>

#include <openssl/evp.h>

#include "config.h"

/* The temporary directory and the files every test can refer to (setup_files). */
extern char tmpdir[64];
extern char *cert_path, *key_path, *other_key_path, *secret_path, *empty_path;
extern char *ec_key_path, *ec_cert_path; /* certificate credentials need RSA */

void write_file(const char *path, const char *text);
EVP_PKEY *write_key(const char *path); /* RSA 2048, PEM */
void write_self_signed_cert(const char *path, EVP_PKEY *key);
int setup_files(void **state);    /* cmocka group setup */
int teardown_files(void **state); /* removes the directory */

/* A loaded test file: the config (or NULL) and everything written to the errors stream. */
struct loaded {
    struct config *cfg;
    char *path;
    char *errors;
};

struct loaded load_text(const char *text, enum config_secrets secrets);
/* The same through config_load_admin() (commands that serve no listener). */
struct loaded load_text_admin(const char *text, enum config_secrets secrets);
/* load_text of a printf-formatted text. */
struct loaded load_textf(enum config_secrets secrets, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void loaded_free(struct loaded *l);
/* Fails unless the errors contain a line "PATH:LINE: ..." that contains `text`. */
void assert_error(const struct loaded *l, int line, const char *text);
/* Errors come sorted by line, those not tied to a line (0) last. */
void assert_sorted_by_line(const struct loaded *l);
size_t count_lines(const char *s);

#endif
