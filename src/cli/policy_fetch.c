/* The policy fetch of `mailgate check` (policy_fetch.h), with libcurl like the token client:
 * one blocking easy handle, since the CLI does one request. */
#include "policy_fetch.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct policy_fetch *f = arg;
    size_t len = size * n;
    if (len > POLICY_FETCH_MAX_BODY - f->len)
        return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
    f->body = mg_realloc(f->body, f->len + len + 1);
    memcpy(f->body + f->len, data, len);
    f->len += len;
    f->body[f->len] = '\0';
    return len;
}

static int fetch_index(void)
{
    static int idx = -1;
    if (idx < 0)
        idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    return idx;
}

/* OpenSSL's verification calls this per certificate of the chain: the leaf's notAfter is
 * noted, the verdict left as OpenSSL (and then curl's host name check) made it. */
static int note_expiry(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct policy_fetch *f = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), fetch_index()) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    struct tm tm;
    if (f && cert && X509_STORE_CTX_get_error_depth(store) == 0 &&
        ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
        f->not_after = (int64_t)timegm(&tm);
    return preverify_ok;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *arg)
{
    MG_UNUSED(curl);
    SSL_CTX *ctx = ssl_ctx;
    SSL_CTX_set_ex_data(ctx, fetch_index(), arg);
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), note_expiry);
    return CURLE_OK;
}

/* "host:port:addr,[v6addr]": curl connects to these and to nothing else. */
static struct curl_slist *pinned_addresses(const char *host, uint16_t port,
                                           const struct mg_strlist *addrs)
{
    char *entry = mg_printf("%s:%u:", host, (unsigned)port);
    for (size_t i = 0; i < addrs->n; i++) {
        int v6 = strchr(addrs->v[i], ':') != NULL;
        char *more =
            mg_printf("%s%s%s%s%s", entry, i ? "," : "", v6 ? "[" : "", addrs->v[i], v6 ? "]" : "");
        free(entry);
        entry = more;
    }
    struct curl_slist *list = curl_slist_append(NULL, entry);
    free(entry);
    return list;
}

static int set_options(CURL *e, const char *url, struct curl_slist *resolve, const char *ca_file,
                       long timeout_ms, struct policy_fetch *out, char *errbuf)
{
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_RESOLVE, resolve) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK; /* RFC 8461 3.3 */
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    if (ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, ca_file) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK; /* senders use no proxy */
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "mailgate/" MAILGATE_VERSION) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, out) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    /* Without OpenSSL underneath (not Debian's libcurl4-openssl) the expiry is just unknown. */
    if (curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK)
        curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, out);
    return bad ? -1 : 0;
}

static void note_result(CURL *e, CURLcode rc, const char *errbuf, struct policy_fetch *out)
{
    if (rc != CURLE_OK) {
        out->cert_failed = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE;
        snprintf(out->error, sizeof out->error, "%s",
                 rc == CURLE_WRITE_ERROR ? "the body is larger than 64 KiB"
                 : errbuf[0]             ? errbuf
                                         : curl_easy_strerror(rc));
        return;
    }
    out->transfer_ok = 1;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    char *type = NULL;
    if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type)
        out->content_type = mg_strdup(type);
    if (!out->body)
        out->body = mg_strdup("");
}

int policy_fetch(const char *host, uint16_t port, const struct mg_strlist *addrs,
                 const char *ca_file, long timeout_ms, struct policy_fetch *out)
{
    memset(out, 0, sizeof *out);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        mg_strlcpy(out->error, "cannot initialise libcurl", sizeof out->error);
        return -1;
    }
    char *url = mg_printf("https://%s:%u/.well-known/mta-sts.txt", host, (unsigned)port);
    struct curl_slist *resolve = pinned_addresses(host, port, addrs);
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *e = curl_easy_init();
    if (!e || set_options(e, url, resolve, ca_file, timeout_ms, out, errbuf) != 0)
        mg_strlcpy(out->error, "cannot set up libcurl", sizeof out->error);
    else
        note_result(e, curl_easy_perform(e), errbuf, out);
    curl_easy_cleanup(e);
    curl_slist_free_all(resolve);
    free(url);
    curl_global_cleanup();
    return out->transfer_ok ? 0 : -1;
}

void policy_fetch_free(struct policy_fetch *f)
{
    free(f->content_type);
    free(f->body);
    memset(f, 0, sizeof *f);
}
