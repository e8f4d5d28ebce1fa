/* Local passwords: Argon2id hashes (libargon2) and generated passwords. */
#include "password.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <argon2.h>

#include "util.h"

#define ARGON2_T_COST 3
#define ARGON2_M_COST_KIB 65536
#define ARGON2_PARALLELISM 1
#define ARGON2_SALT_LEN 16
#define ARGON2_TAG_LEN 32

/* Upper bounds for the parameters of a stored hash. The hashes come from our own store, but a
 * corrupted or hand-edited row must not make the broker allocate gigabytes or spin for minutes:
 * such a hash is "unusable" (-1), not a reason to hang. */
#define VERIFY_MAX_M_COST_KIB (1024u * 1024u)
#define VERIFY_MAX_T_COST 64u
#define VERIFY_MAX_PARALLELISM 16u

/* Characters that cannot be confused with each other when read aloud or from a screen:
 * no 0/O/o, 1/l/I/i. 55 symbols: 24 characters carry about 139 bits. */
static const char password_alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ"
                                        "abcdefghjkmnpqrstuvwxyz"
                                        "23456789";
#define GENERATED_PASSWORD_LEN 24

int password_hash(const char *pw, size_t len, char *out, size_t outlen)
{
    uint8_t salt[ARGON2_SALT_LEN];
    mg_random_bytes(salt, sizeof salt);
    int rc = argon2id_hash_encoded(ARGON2_T_COST, ARGON2_M_COST_KIB, ARGON2_PARALLELISM, pw, len,
                                   salt, sizeof salt, ARGON2_TAG_LEN, out, outlen);
    return rc == ARGON2_OK ? 0 : -1;
}

/* Reads "NAME=NUMBER" at *p (then an optional ','), advancing *p. */
static int parse_param(const char **p, const char *name, unsigned long *value)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || (*p)[n] != '=')
        return -1;
    const char *digits = *p + n + 1;
    if (*digits < '0' || *digits > '9')
        return -1;
    char *end;
    *value = strtoul(digits, &end, 10);
    if (end - digits > 10)
        return -1;
    *p = *end == ',' ? end + 1 : end;
    return 0;
}

/* Accepts only "$argon2id$v=19$m=M,t=T,p=P$..." with sane M, T and P. */
static int encoded_params_acceptable(const char *encoded)
{
    static const char prefix[] = "$argon2id$v=19$";
    if (strncmp(encoded, prefix, sizeof prefix - 1) != 0)
        return 0;
    const char *p = encoded + sizeof prefix - 1;
    unsigned long m, t, par;
    if (parse_param(&p, "m", &m) || parse_param(&p, "t", &t) || parse_param(&p, "p", &par))
        return 0;
    return *p == '$' && m <= VERIFY_MAX_M_COST_KIB && t <= VERIFY_MAX_T_COST &&
           par <= VERIFY_MAX_PARALLELISM;
}

int password_verify(const char *encoded, const char *pw, size_t len)
{
    if (!encoded || !encoded_params_acceptable(encoded))
        return -1;
    int rc = argon2id_verify(encoded, pw, len);
    if (rc == ARGON2_OK)
        return 1;
    return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
}

void password_generate(char *out, size_t outlen)
{
    const unsigned alphabet_len = sizeof password_alphabet - 1;
    /* Bytes at or above the largest multiple of the alphabet size are thrown away, so that
     * every symbol is exactly equally likely (no modulo bias). */
    const unsigned limit = 256 - 256 % alphabet_len;
    if (outlen == 0)
        return;
    size_t want = outlen - 1 < GENERATED_PASSWORD_LEN ? outlen - 1 : GENERATED_PASSWORD_LEN;
    size_t have = 0;
    uint8_t pool[64];
    while (have < want) {
        mg_random_bytes(pool, sizeof pool);
        for (size_t i = 0; i < sizeof pool && have < want; i++) {
            if (pool[i] < limit)
                out[have++] = password_alphabet[pool[i] % alphabet_len];
        }
    }
    out[have] = '\0';
    mg_wipe(pool, sizeof pool);
}
