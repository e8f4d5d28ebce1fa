/* What the config unit tests share: a temporary directory with throwaway certificates, keys
 * and secret files, and loading a config text while capturing its errors. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config_fixture.h"
#include "cert_fixture.h"
#include "util.h"

/* The temporary directory and the files every test can refer to. */
char tmpdir[64];
char *cert_path, *key_path, *other_key_path, *secret_path, *empty_path;
char *ec_key_path, *ec_cert_path; /* certificate credentials need RSA */

void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

EVP_PKEY *write_key(const char *path)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    assert_non_null(key);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return key;
}

void write_self_signed_cert(const char *path, EVP_PKEY *key)
{
    X509 *x = test_self_signed_cert(key, "localhost", NULL);
    assert_non_null(x);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    X509_free(x);
}

int setup_files(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/mg-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    cert_path = mg_printf("%s/cert.pem", tmpdir);
    key_path = mg_printf("%s/key.pem", tmpdir);
    other_key_path = mg_printf("%s/other-key.pem", tmpdir);
    secret_path = mg_printf("%s/client-secret", tmpdir);
    empty_path = mg_printf("%s/empty", tmpdir);
    EVP_PKEY *key = write_key(key_path);
    write_self_signed_cert(cert_path, key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(write_key(other_key_path));
    write_file(secret_path, "s3cret-from-file\n");
    write_file(empty_path, "");
    chmod(secret_path, 0600); /* client_secret_file must be private */
    chmod(empty_path, 0600);
    ec_key_path = mg_printf("%s/ec-key.pem", tmpdir);
    ec_cert_path = mg_printf("%s/ec-cert.pem", tmpdir);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    FILE *f = fopen(ec_key_path, "w");
    PEM_write_PrivateKey(f, ec, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    write_self_signed_cert(ec_cert_path, ec);
    EVP_PKEY_free(ec);
    return 0;
}

int teardown_files(void **state)
{
    (void)state;
    char *cmd = mg_printf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    free(cert_path);
    free(key_path);
    free(other_key_path);
    free(secret_path);
    free(empty_path);
    free(ec_key_path);
    free(ec_cert_path);
    return rc == 0 ? 0 : -1;
}

static struct loaded load_with(const char *text, enum config_secrets secrets, bool admin)
{
    struct loaded l = {0};
    l.path = mg_printf("%s/conf-XXXXXX", tmpdir);
    int fd = mkstemp(l.path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    size_t len;
    FILE *errors = open_memstream(&l.errors, &len);
    l.cfg =
        admin ? config_load_admin(l.path, secrets, errors) : config_load(l.path, secrets, errors);
    fclose(errors);
    return l;
}

struct loaded load_text(const char *text, enum config_secrets secrets)
{
    return load_with(text, secrets, false);
}

struct loaded load_text_admin(const char *text, enum config_secrets secrets)
{
    return load_with(text, secrets, true);
}

struct loaded load_textf(enum config_secrets secrets, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    assert_true(vasprintf(&text, fmt, ap) >= 0);
    va_end(ap);
    struct loaded l = load_text(text, secrets);
    free(text);
    return l;
}

void loaded_free(struct loaded *l)
{
    config_free(&l->cfg);
    unlink(l->path);
    free(l->path);
    free(l->errors);
}

/* Fails unless the errors contain a line "PATH:LINE: ..." that contains `text`. */
void assert_error(const struct loaded *l, int line, const char *text)
{
    char *prefix = mg_printf("%s:%d: ", l->path, line);
    int found = 0;
    for (const char *p = l->errors; p && *p && !found;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char *one = mg_strndup(p, n);
        found = strncmp(one, prefix, strlen(prefix)) == 0 && strstr(one, text) != NULL;
        free(one);
        p += n + (eol ? 1 : 0);
    }
    if (!found)
        fail_msg("no error '%s' at line %d in:\n%s", text, line, l->errors);
    free(prefix);
}

/* Errors come sorted by line, those not tied to a line (0) last. */
void assert_sorted_by_line(const struct loaded *l)
{
    size_t prefix_len = strlen(l->path) + 1;
    unsigned previous = 0;
    for (const char *p = l->errors; p && *p; p = strchr(p, '\n') + 1) {
        assert_int_equal(strncmp(p, l->path, strlen(l->path)), 0);
        unsigned line = (unsigned)atoi(p + prefix_len) - 1; /* 0 wraps around: sorts last */
        assert_true(line >= previous);
        previous = line;
    }
}

size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}
