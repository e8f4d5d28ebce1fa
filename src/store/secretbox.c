/* AES-256-GCM secrets at rest (see secretbox.h). */
#include "secretbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util.h"

struct key {
    uint8_t bytes[SECRETBOX_KEY_LEN];
    uint8_t id[SECRETBOX_KEYID_LEN];
};

struct secretbox {
    struct key current;  /* seals, and opens what it sealed */
    struct key previous; /* opens only: the key before the key file changed (rotate-key) */
    int has_previous;
    /* The key file as loaded (NULL for secretbox_from_key), to notice a rotation. */
    char *path;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
};

struct secretbox *secretbox_from_key(const uint8_t key[SECRETBOX_KEY_LEN])
{
    struct secretbox *box = mg_calloc(1, sizeof *box);
    mg_protect_secret(box, sizeof *box); /* both keys: current and previous */
    memcpy(box->current.bytes, key, SECRETBOX_KEY_LEN);
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256(key, SECRETBOX_KEY_LEN, digest);
    memcpy(box->current.id, digest, SECRETBOX_KEYID_LEN);
    return box;
}

void secretbox_free(struct secretbox **box)
{
    if (!box || !*box)
        return;
    free((*box)->path);
    mg_wipe(*box, sizeof **box);
    free(*box);
    *box = NULL;
}

void secretbox_key_id(const struct secretbox *box, uint8_t id[SECRETBOX_KEYID_LEN])
{
    memcpy(id, box->current.id, SECRETBOX_KEYID_LEN);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int create_key_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0; /* created concurrently: load it */
        snprintf(err, errlen, "cannot create the key file %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t key[SECRETBOX_KEY_LEN];
    mg_random_bytes(key, sizeof key);
    int rc =
        mg_chown_like_dir(fd, path) == 0 && write_all(fd, key, sizeof key) == 0 && fsync(fd) == 0
            ? 0
            : -1;
    mg_wipe(key, sizeof key);
    if (rc != 0) {
        snprintf(err, errlen, "cannot write the key file %s: %s", path, strerror(errno));
        unlink(path);
    }
    close(fd);
    return rc;
}

static struct secretbox *load_key_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC); /* a mounted secret may be a symlink */
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the key file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    struct secretbox *box = NULL;
    uint8_t key[SECRETBOX_KEY_LEN + 1];
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat the key file %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the key file %s is not a regular file", path);
    } else if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "the key file %s is accessible by group or others (mode %03o); "
                 "run chmod 600 on it",
                 path, (unsigned)(st.st_mode & 0777));
    } else {
        ssize_t n = read(fd, key, sizeof key);
        if (n != SECRETBOX_KEY_LEN)
            snprintf(err, errlen, "the key file %s must hold exactly %d bytes", path,
                     SECRETBOX_KEY_LEN);
        else
            box = secretbox_from_key(key);
    }
    if (box) {
        box->path = mg_strdup(path);
        box->dev = st.st_dev;
        box->ino = st.st_ino;
        box->mtime = st.st_mtim;
    }
    mg_wipe(key, sizeof key);
    close(fd);
    return box;
}

struct secretbox *secretbox_open(const char *key_file, char *err, size_t errlen)
{
    if (!key_file || !*key_file) {
        snprintf(err, errlen, "no secret key file configured");
        return NULL;
    }
    if (access(key_file, F_OK) != 0 && errno == ENOENT &&
        create_key_file(key_file, err, errlen) != 0)
        return NULL;
    return load_key_file(key_file, err, errlen);
}

int secretbox_follow_key_file(struct secretbox *box, char *err, size_t errlen)
{
    struct stat st;
    if (!box->path)
        return 0;
    if (stat(box->path, &st) != 0) {
        snprintf(err, errlen, "cannot stat the key file %s: %s", box->path, strerror(errno));
        return -1;
    }
    if (st.st_dev == box->dev && st.st_ino == box->ino && st.st_mtim.tv_sec == box->mtime.tv_sec &&
        st.st_mtim.tv_nsec == box->mtime.tv_nsec)
        return 0;
    struct secretbox *fresh = load_key_file(box->path, err, errlen);
    if (!fresh)
        return -1;
    int changed = memcmp(fresh->current.id, box->current.id, SECRETBOX_KEYID_LEN) != 0;
    if (changed) {
        box->previous = box->current;
        box->has_previous = 1;
        box->current = fresh->current;
    }
    box->dev = fresh->dev;
    box->ino = fresh->ino;
    box->mtime = fresh->mtime;
    secretbox_free(&fresh);
    return changed;
}

int secretbox_write_key_file(const char *path, const uint8_t key[SECRETBOX_KEY_LEN], char *err,
                             size_t errlen)
{
    char *tmp = mg_printf("%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    int rc = -1;
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
    } else if (mg_chown_like_dir(fd, path) != 0 || write_all(fd, key, SECRETBOX_KEY_LEN) != 0 ||
               fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    } else if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    } else {
        rc = 0;
    }
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

uint8_t *secretbox_seal(const struct secretbox *box, const char *ad, const void *plain, size_t len,
                        size_t *out_len)
{
    if (len > (size_t)INT32_MAX)
        return NULL;
    size_t total = len + SECRETBOX_OVERHEAD;
    uint8_t *out = mg_malloc(total);
    uint8_t *p = out;
    *p++ = SECRETBOX_VERSION;
    memcpy(p, box->current.id, SECRETBOX_KEYID_LEN);
    p += SECRETBOX_KEYID_LEN;
    uint8_t *nonce = p;
    mg_random_bytes(nonce, SECRETBOX_NONCE_LEN);
    p += SECRETBOX_NONCE_LEN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = ctx != NULL;
    ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETBOX_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_EncryptInit_ex(ctx, NULL, NULL, box->current.bytes, nonce) == 1;
    if (ok && ad && *ad)
        ok = EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)ad, (int)strlen(ad)) == 1;
    n = 0;
    if (ok && len > 0)
        ok = EVP_EncryptUpdate(ctx, p, &n, plain, (int)len) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, p + n, &fin) == 1;
    ok = ok && (size_t)(n + fin) == len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETBOX_TAG_LEN, p + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        mg_wipe(out, total);
        free(out);
        return NULL;
    }
    *out_len = total;
    return out;
}

/* The key a blob was sealed with, by its key id: the current one or, after the key file
 * changed, the previous one (rows not re-sealed yet). */
static const struct key *key_for(const struct secretbox *box, const uint8_t *id)
{
    if (memcmp(id, box->current.id, SECRETBOX_KEYID_LEN) == 0)
        return &box->current;
    if (box->has_previous && memcmp(id, box->previous.id, SECRETBOX_KEYID_LEN) == 0)
        return &box->previous;
    return NULL;
}

char *secretbox_open_blob(const struct secretbox *box, const char *ad, const uint8_t *blob,
                          size_t len, size_t *out_len)
{
    if (!blob || len < SECRETBOX_OVERHEAD || len - SECRETBOX_OVERHEAD > (size_t)INT32_MAX ||
        blob[0] != SECRETBOX_VERSION)
        return NULL;
    const struct key *key = key_for(box, blob + 1);
    if (!key)
        return NULL;
    const uint8_t *nonce = blob + 1 + SECRETBOX_KEYID_LEN;
    const uint8_t *ct = nonce + SECRETBOX_NONCE_LEN;
    size_t ct_len = len - SECRETBOX_OVERHEAD;
    uint8_t tag[SECRETBOX_TAG_LEN];
    memcpy(tag, ct + ct_len, SECRETBOX_TAG_LEN);
    char *out = mg_malloc(ct_len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0, ok = ctx != NULL;
    ok = ok && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETBOX_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_DecryptInit_ex(ctx, NULL, NULL, key->bytes, nonce) == 1;
    if (ok && ad && *ad)
        ok = EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)ad, (int)strlen(ad)) == 1;
    n = 0;
    if (ok && ct_len > 0)
        ok = EVP_DecryptUpdate(ctx, (uint8_t *)out, &n, ct, (int)ct_len) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETBOX_TAG_LEN, tag) == 1;
    ok = ok && EVP_DecryptFinal_ex(ctx, (uint8_t *)out + n, &fin) == 1;
    ok = ok && (size_t)(n + fin) == ct_len;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        mg_wipe(out, ct_len + 1);
        free(out);
        return NULL;
    }
    out[ct_len] = '\0';
    if (out_len)
        *out_len = ct_len;
    return out;
}
