/* Small helpers shared by every part of mailgate. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

static void out_of_memory(size_t size)
{
    fprintf(stderr, "mailgate: out of memory (allocating %zu bytes)\n", size);
    abort();
}

void *mg_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *mg_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *mg_realloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        out_of_memory(size);
    return q;
}

char *mg_strdup(const char *s)
{
    return mg_strndup(s, strlen(s));
}

char *mg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = mg_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *mg_printf(const char *fmt, ...)
{
    /* vasprintf, not vsnprintf(NULL, 0, ...) to measure first: GCC 12 with -fPIC and the
     * sanitizers reports a "null format string" there (-Wformat-truncation, a false positive). */
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    return p;
}

void mg_wipe(void *p, size_t len)
{
    if (p && len)
        explicit_bzero(p, len);
}

void mg_protect_secret(const void *p, size_t len)
{
    if (!p || len == 0)
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(page - 1);
    size_t span = (size_t)((uintptr_t)p + len - start);
    (void)madvise((void *)start, span, MADV_DONTDUMP);
    (void)mlock((void *)start, span);
}

void mg_free_secret(char **s)
{
    if (!s || !*s)
        return;
    mg_wipe(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

size_t mg_strlcpy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

void mg_random_bytes(void *buf, size_t len)
{
    if (RAND_bytes(buf, (int)len) != 1) {
        fprintf(stderr, "mailgate: the random number generator failed\n");
        abort();
    }
}

int mg_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int mg_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1000}};
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < MG_ARRAY_LEN(units); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > UINT64_MAX / units[i].ms)
            return -1;
        *out_ms = v * units[i].ms;
        return 0;
    }
    return -1;
}

uint64_t mg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int mg_ascii_ncasecmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ca = ascii_lower((unsigned char)a[i]), cb = ascii_lower((unsigned char)b[i]);
        if (ca != cb)
            return ca - cb;
        if (ca == 0)
            return 0;
    }
    return 0;
}

int mg_ascii_casecmp(const char *a, const char *b)
{
    return mg_ascii_ncasecmp(a, b, SIZE_MAX);
}

/* pread from offset 0: a memfd shared by several workers has one file offset for all. */
char *mg_read_fd(int fd, size_t max, int strip, size_t *out_len)
{
    char *buf = mg_malloc(max + 1);
    size_t len = 0;
    for (;;) {
        /* pread: workers share one memfd offset; a pipe or terminal (stdin) cannot seek. */
        ssize_t n = pread(fd, buf + len, max + 1 - len, (off_t)len);
        if (n < 0 && errno == ESPIPE)
            n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && len + (size_t)n > max)) {
            int saved = n < 0 ? errno : EFBIG;
            mg_wipe(buf, len);
            free(buf);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    while (strip && len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        buf[--len] = '\0';
    buf[len] = '\0';
    if (out_len)
        *out_len = len;
    return buf;
}

char *mg_read_file(const char *path, size_t max, int strip, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = mg_read_fd(fd, max, strip, out_len);
    int saved = errno;
    close(fd);
    errno = saved;
    return buf;
}

void mg_addr_host(const char *client_addr, char *out, size_t size)
{
    const char *start = client_addr, *end;
    if (client_addr[0] == '[') {
        start = client_addr + 1;
        end = strchr(start, ']');
    } else {
        end = strrchr(client_addr, ':');
        /* A bare IPv6 address has several colons and no port. */
        if (end && strchr(client_addr, ':') != end)
            end = NULL;
    }
    size_t len = end ? (size_t)(end - start) : strlen(start);
    if (size == 0)
        return;
    if (len >= size)
        len = size - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

int mg_chown_like_dir(int fd, const char *path)
{
    if (geteuid() != 0)
        return 0;
    const char *slash = strrchr(path, '/');
    char *dir =
        slash ? mg_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : mg_strdup(".");
    struct stat st;
    int rc = stat(dir, &st);
    free(dir);
    if (rc != 0 || st.st_uid == 0)
        return rc;
    return fchown(fd, st.st_uid, st.st_gid);
}
