/* Counters and histograms of struct metrics_counters (metrics.h). */
#include "metrics.h"

#include <string.h>

#include "util.h"

/* Upstream connects and logins take 10-500 ms; 10 s is past every timeout that matters. */
const uint32_t metrics_bucket_ms[METRICS_BUCKETS] = {5,   10,   25,   50,   100,  250,
                                                     500, 1000, 2500, 5000, 10000};

static const char *const login_results[METRICS_LOGIN_RESULTS] = {"ok", "fail", "tempfail", "error",
                                                                 "refused"};
static const char *const token_results[METRICS_TOKEN_RESULTS] = {"ok", "tempfail", "permfail",
                                                                 "needs_auth", "denied"};

void metrics_observe(struct metrics_histogram *h, uint64_t ms)
{
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        if (ms <= metrics_bucket_ms[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum_ms += ms;
}

static void histogram_add(struct metrics_histogram *sum, const struct metrics_histogram *add)
{
    for (size_t i = 0; i < METRICS_BUCKETS; i++)
        sum->buckets[i] += add->buckets[i];
    sum->count += add->count;
    sum->sum_ms += add->sum_ms;
}

void metrics_counters_add(struct metrics_counters *sum, const struct metrics_counters *add)
{
    for (size_t p = 0; p < METRICS_PROTOCOLS; p++)
        for (size_t r = 0; r < METRICS_LOGIN_RESULTS; r++)
            sum->logins[p][r] += add->logins[p][r];
    sum->bytes_to_upstream += add->bytes_to_upstream;
    sum->bytes_to_client += add->bytes_to_client;
    histogram_add(&sum->upstream_connect, &add->upstream_connect);
    histogram_add(&sum->upstream_login, &add->upstream_login);
    sum->http_refused += add->http_refused;
    sum->dns_cache_hits += add->dns_cache_hits;
    sum->dns_cache_misses += add->dns_cache_misses;
}

const char *metrics_login_result_name(unsigned r)
{
    return r < METRICS_LOGIN_RESULTS ? login_results[r] : NULL;
}

enum metrics_login_result metrics_login_result_of(const char *word)
{
    for (unsigned r = 0; r < METRICS_LOGIN_RESULTS; r++)
        if (strcmp(word, login_results[r]) == 0)
            return (enum metrics_login_result)r;
    return METRICS_LOGIN_ERROR;
}

const char *metrics_token_result_name(unsigned r)
{
    return r < METRICS_TOKEN_RESULTS ? token_results[r] : NULL;
}
