/* Secrets at rest: AES-256-GCM under a 32-byte key file (state_dir/secret.key by default).
 *
 * Sealed format: version (1 byte, SECRETBOX_VERSION) | key id (4 bytes: the first bytes of
 * SHA-256 of the key) | nonce (12 random bytes) | ciphertext | tag (16 bytes). The associated
 * data is a caller-given context string (e.g. "token:PROVIDER:PRINCIPAL:SCOPE"), so a sealed
 * value cannot be moved to another row. */
#ifndef MG_SECRETBOX_H
#define MG_SECRETBOX_H

#include <stddef.h>
#include <stdint.h>

#define SECRETBOX_KEY_LEN 32
#define SECRETBOX_VERSION 1
#define SECRETBOX_KEYID_LEN 4
#define SECRETBOX_NONCE_LEN 12
#define SECRETBOX_TAG_LEN 16
#define SECRETBOX_OVERHEAD (1 + SECRETBOX_KEYID_LEN + SECRETBOX_NONCE_LEN + SECRETBOX_TAG_LEN)

struct secretbox;

/* Loads the key file, or creates it (O_EXCL, 0600, random) when it does not exist. Refuses a
 * key file readable or writable by group/other, not a regular file, or not exactly 32 bytes.
 * On error returns NULL with a message in err (never key material). */
struct secretbox *secretbox_open(const char *key_file, char *err, size_t errlen);
/* `mailgate secrets rotate-key` replaces the key file while a gateway may run. Before using
 * the box for the store, the broker calls this: when the key file changed (device, inode or
 * modification time), its key becomes the current one (sealing) and the one before stays
 * usable for opening what was sealed with it. Returns 1 (new key loaded), 0 (unchanged, or a
 * box without a file) or -1 with a message in err (the key in use stays). */
int secretbox_follow_key_file(struct secretbox *box, char *err, size_t errlen);

/* A box over the given key (for rotation and tests). */
struct secretbox *secretbox_from_key(const uint8_t key[SECRETBOX_KEY_LEN]);
void secretbox_free(struct secretbox **box); /* wipes the key */

/* Generates a fresh key and writes it to path atomically: path.tmp (0600), fsync, rename. */
int secretbox_write_key_file(const char *path, const uint8_t key[SECRETBOX_KEY_LEN], char *err,
                             size_t errlen);

/* Seals plain (len bytes) bound to ad; returns a malloc'd blob of len + SECRETBOX_OVERHEAD bytes
 * (length in *out_len), or NULL on an OpenSSL failure. */
uint8_t *secretbox_seal(const struct secretbox *box, const char *ad, const void *plain, size_t len,
                        size_t *out_len);
/* Opens a sealed blob; returns a malloc'd NUL-terminated plaintext (length in *out_len; wipe it
 * after use) or NULL when the blob is malformed, sealed under another key, bound to another ad,
 * or tampered with. */
char *secretbox_open_blob(const struct secretbox *box, const char *ad, const uint8_t *blob,
                          size_t len, size_t *out_len);

/* The 4-byte key id of this box's key. */
void secretbox_key_id(const struct secretbox *box, uint8_t id[SECRETBOX_KEYID_LEN]);

#endif
