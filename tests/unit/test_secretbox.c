/* Unit tests of secretbox.c: AES-256-GCM sealing and the key file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secretbox.h"
#include "util.h"

static const char secret[] = "eyJhbGciOiJSUzI1NiJ9.token-body.signature";
static const char ad[] = "token:ms:app:https://outlook.office365.com/.default";

static struct secretbox *random_box(void)
{
    uint8_t key[SECRETBOX_KEY_LEN];
    mg_random_bytes(key, sizeof key);
    return secretbox_from_key(key);
}

static void test_round_trip(void **state)
{
    (void)state;
    struct secretbox *box = random_box();
    size_t len = 0, plen = 0;
    uint8_t *blob = secretbox_seal(box, ad, secret, strlen(secret), &len);
    assert_non_null(blob);
    assert_int_equal(len, strlen(secret) + SECRETBOX_OVERHEAD);
    assert_int_equal(blob[0], SECRETBOX_VERSION);
    assert_null(memmem(blob, len, "token-body", 10));
    char *plain = secretbox_open_blob(box, ad, blob, len, &plen);
    assert_non_null(plain);
    assert_int_equal(plen, strlen(secret));
    assert_string_equal(plain, secret);
    /* Two seals of the same plaintext differ (random nonce). */
    size_t len2 = 0;
    uint8_t *blob2 = secretbox_seal(box, ad, secret, strlen(secret), &len2);
    assert_non_null(blob2);
    assert_memory_not_equal(blob, blob2, len);
    /* Empty plaintext. */
    size_t elen = 0;
    uint8_t *empty = secretbox_seal(box, ad, "", 0, &elen);
    assert_non_null(empty);
    char *eplain = secretbox_open_blob(box, ad, empty, elen, &plen);
    assert_non_null(eplain);
    assert_int_equal(plen, 0);
    free(eplain);
    free(empty);
    free(plain);
    free(blob);
    free(blob2);
    secretbox_free(&box);
    assert_null(box);
}

static void test_tamper_fails(void **state)
{
    (void)state;
    struct secretbox *box = random_box();
    size_t len = 0;
    uint8_t *blob = secretbox_seal(box, ad, secret, strlen(secret), &len);
    for (size_t i = 0; i < len; i++) {
        blob[i] ^= 0x01;
        assert_null(secretbox_open_blob(box, ad, blob, len, NULL));
        blob[i] ^= 0x01;
    }
    assert_null(secretbox_open_blob(box, ad, blob, len - 1, NULL));
    assert_null(secretbox_open_blob(box, ad, blob, SECRETBOX_OVERHEAD - 1, NULL));
    assert_null(secretbox_open_blob(box, ad, NULL, 0, NULL));
    char *plain = secretbox_open_blob(box, ad, blob, len, NULL);
    assert_non_null(plain);
    free(plain);
    free(blob);
    secretbox_free(&box);
}

static void test_wrong_ad_fails(void **state)
{
    (void)state;
    struct secretbox *box = random_box();
    size_t len = 0;
    uint8_t *blob = secretbox_seal(box, ad, secret, strlen(secret), &len);
    assert_null(secretbox_open_blob(box, "token:ms:other:scope", blob, len, NULL));
    assert_null(secretbox_open_blob(box, "", blob, len, NULL));
    free(blob);
    secretbox_free(&box);
}

static void test_wrong_key_fails(void **state)
{
    (void)state;
    struct secretbox *a = random_box(), *b = random_box();
    size_t len = 0;
    uint8_t *blob = secretbox_seal(a, ad, secret, strlen(secret), &len);
    assert_null(secretbox_open_blob(b, ad, blob, len, NULL));
    /* Even with the key id forged to b's, the tag does not verify. */
    secretbox_key_id(b, blob + 1);
    assert_null(secretbox_open_blob(b, ad, blob, len, NULL));
    free(blob);
    secretbox_free(&a);
    secretbox_free(&b);
}

static char *temp_dir(void)
{
    char *dir = mg_strdup("/tmp/mg-test-secretbox-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_dir(char *dir)
{
    char *cmd = mg_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(dir);
}

/* What `secrets rotate-key` does to the file: a new random key, written atomically. */
static void write_new_key(const char *path)
{
    char err[256] = "";
    uint8_t key[SECRETBOX_KEY_LEN];
    mg_random_bytes(key, sizeof key);
    assert_int_equal(secretbox_write_key_file(path, key, err, sizeof err), 0);
}

/* The box of a new key file in a new temporary directory. */
static struct secretbox *temp_box(char **dir, char **path)
{
    char err[256] = "";
    *dir = temp_dir();
    *path = mg_printf("%s/secret.key", *dir);
    struct secretbox *box = secretbox_open(*path, err, sizeof err);
    assert_non_null(box);
    return box;
}

static void test_key_file_created_and_reused(void **state)
{
    (void)state;
    char *dir, *path, err[256] = "";
    struct secretbox *a = temp_box(&dir, &path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, SECRETBOX_KEY_LEN);
    size_t len = 0;
    uint8_t *blob = secretbox_seal(a, ad, secret, strlen(secret), &len);
    struct secretbox *b = secretbox_open(path, err, sizeof err);
    assert_non_null(b);
    char *plain = secretbox_open_blob(b, ad, blob, len, NULL);
    assert_non_null(plain);
    assert_string_equal(plain, secret);
    free(plain);

    /* A new key written atomically replaces it; old blobs no longer open. */
    write_new_key(path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct secretbox *c = secretbox_open(path, err, sizeof err);
    assert_non_null(c);
    assert_null(secretbox_open_blob(c, ad, blob, len, NULL));
    free(blob);
    secretbox_free(&a);
    secretbox_free(&b);
    secretbox_free(&c);
    free(path);
    remove_dir(dir);
}

/* A gateway running while `secrets rotate-key` replaces the key file takes up the new key and
 * still opens what the old one sealed. */
static void test_follow_key_file(void **state)
{
    (void)state;
    char *dir, *path, err[256] = "";
    struct secretbox *box = temp_box(&dir, &path);
    assert_int_equal(secretbox_follow_key_file(box, err, sizeof err), 0); /* unchanged */
    size_t old_len = 0, new_len = 0;
    uint8_t *old_blob = secretbox_seal(box, ad, secret, strlen(secret), &old_len);
    write_new_key(path);
    assert_int_equal(secretbox_follow_key_file(box, err, sizeof err), 1);
    assert_int_equal(secretbox_follow_key_file(box, err, sizeof err), 0);
    uint8_t *new_blob = secretbox_seal(box, ad, secret, strlen(secret), &new_len);
    struct secretbox *fresh = secretbox_open(path, err, sizeof err); /* a restarted gateway */
    uint8_t id[SECRETBOX_KEYID_LEN], fresh_id[SECRETBOX_KEYID_LEN];
    secretbox_key_id(box, id);
    secretbox_key_id(fresh, fresh_id);
    assert_memory_equal(id, fresh_id, sizeof id); /* sealing with the new key */
    char *a = secretbox_open_blob(box, ad, old_blob, old_len, NULL);
    char *b = secretbox_open_blob(box, ad, new_blob, new_len, NULL);
    char *c = secretbox_open_blob(fresh, ad, new_blob, new_len, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_null(secretbox_open_blob(fresh, ad, old_blob, old_len, NULL));
    free(a), free(b), free(c);
    /* A broken key file: the key in use stays. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("short", f);
    fclose(f);
    chmod(path, 0600);
    assert_int_equal(secretbox_follow_key_file(box, err, sizeof err), -1);
    assert_non_null(strstr(err, "exactly"));
    char *d = secretbox_open_blob(box, ad, new_blob, new_len, NULL);
    assert_non_null(d);
    free(d);
    free(old_blob);
    free(new_blob);
    secretbox_free(&box);
    secretbox_free(&fresh);
    free(path);
    remove_dir(dir);
}

static void test_key_file_refused(void **state)
{
    (void)state;
    char *dir, *path, err[256] = "";
    struct secretbox *box = temp_box(&dir, &path);
    secretbox_free(&box);
    assert_int_equal(chmod(path, 0640), 0);
    assert_null(secretbox_open(path, err, sizeof err));
    assert_non_null(strstr(err, "group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(truncate(path, 16), 0);
    assert_null(secretbox_open(path, err, sizeof err));
    assert_non_null(strstr(err, "exactly 32 bytes"));
    /* No such directory: a clear error. */
    char *bad = mg_printf("%s/missing/secret.key", dir);
    assert_null(secretbox_open(bad, err, sizeof err));
    assert_non_null(strstr(err, "cannot create"));
    assert_null(secretbox_open("", err, sizeof err));
    free(bad);
    free(path);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tamper_fails),
        cmocka_unit_test(test_wrong_ad_fails),
        cmocka_unit_test(test_wrong_key_fails),
        cmocka_unit_test(test_key_file_created_and_reused),
        cmocka_unit_test(test_key_file_refused),
        cmocka_unit_test(test_follow_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
