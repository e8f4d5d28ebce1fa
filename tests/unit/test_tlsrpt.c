/* Tests for TLS reports (tlsrpt.c, tlsrpt_gzip.c): RFC 8460's example verbatim, the tolerant
 * variants real senders produce, the strict refusals, the caps, the normalised form's round
 * trip and gzip with its output limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "tlsrpt.h"
#include "util.h"

static char *read_example(size_t *len)
{
    const char *dir = getenv("MG_TEST_SRCDIR");
    char *path = mg_printf("%s/tests/data/rfc8460-example.json", dir ? dir : ".");
    char *data = mg_read_file(path, 1 << 20, 0, len);
    free(path);
    assert_non_null(data);
    return data;
}

static enum tlsrpt_status parse(const char *json, struct tlsrpt_report *r)
{
    char why[256];
    return tlsrpt_parse(json, strlen(json), r, why, sizeof why);
}

static void test_rfc_example(void **state)
{
    (void)state;
    size_t len;
    char *data = read_example(&len);
    struct tlsrpt_report r;
    assert_int_equal(tlsrpt_parse(data, len, &r, NULL, 0), TLSRPT_OK);
    assert_string_equal(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    assert_string_equal(r.organization, "Company-X");
    assert_string_equal(r.contact, "sts-reporting@company-x.example");
    assert_int_equal(r.start, 1459468800); /* 2016-04-01T00:00:00Z */
    assert_int_equal(r.end, 1459468800 + 86399);
    assert_int_equal(r.n_policies, 1);
    const struct tlsrpt_policy *p = &r.policies[0];
    assert_string_equal(p->policy_type, "sts");
    assert_string_equal(p->policy_domain, "company-y.example");
    assert_int_equal(p->n_policy_string, 4);
    assert_string_equal(p->policy_string[2], "mx: *.mail.company-y.example");
    assert_int_equal(p->n_mx_host, 1);
    assert_int_equal(p->successful, 5326);
    assert_int_equal(p->failed, 303);
    assert_int_equal(p->n_failures, 3);
    assert_string_equal(p->failures[0].result_type, "certificate-expired");
    assert_string_equal(p->failures[0].receiving_mx_hostname, "mx1.mail.company-y.example");
    assert_int_equal(p->failures[0].failed_sessions, 100);
    assert_string_equal(p->failures[1].receiving_ip, "203.0.113.56");
    assert_string_equal(p->failures[2].failure_reason_code,
                        "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
    assert_int_equal(r.dropped, 0);
    tlsrpt_free(&r);
    free(data);
}

/* The normalised form parses back into the same report (the broker stores what it parses). */
static void test_round_trip(void **state)
{
    (void)state;
    size_t len;
    char *data = read_example(&len);
    struct tlsrpt_report r, again;
    assert_int_equal(tlsrpt_parse(data, len, &r, NULL, 0), TLSRPT_OK);
    char *json = tlsrpt_to_json(&r);
    assert_int_equal(parse(json, &again), TLSRPT_OK);
    char *json2 = tlsrpt_to_json(&again);
    assert_string_equal(json, json2);
    assert_non_null(strstr(json, "\"failed-session-count\":200"));
    free(json);
    free(json2);
    tlsrpt_free(&r);
    tlsrpt_free(&again);
    free(data);
}

static void test_tolerant(void **state)
{
    (void)state;
    struct tlsrpt_report r;
    /* mx-host as a string, no policy-string, a date without a zone, counts as text, unknown
     * keys, a failure without receiving-mx-hostname */
    assert_int_equal(
        parse("{\"report-id\":\"a\",\"x-vendor\":{\"k\":[1,2]},\"date-range\":{\"start-datetime\":"
              "\"2024-05-01T00:00:00\",\"end-datetime\":\"2024-05-01 23:59:59+02:00\"},"
              "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"mx-host\":\"mx.example.com\","
              "\"policy-domain\":\"example.com\",\"extra\":true},\"summary\":{"
              "\"total-successful-session-count\":\"12\",\"total-failure-session-count\":2.0},"
              "\"failure-details\":[{\"result-type\":\"sts-policy-fetch-error\","
              "\"failed-session-count\":2}]}]}",
              &r),
        TLSRPT_OK);
    assert_int_equal(r.start, 1714521600);
    assert_int_equal(r.end, 1714521600 + 86399 - 7200);
    assert_int_equal(r.policies[0].n_mx_host, 1);
    assert_string_equal(r.policies[0].mx_host[0], "mx.example.com");
    assert_int_equal(r.policies[0].n_policy_string, 0);
    assert_int_equal(r.policies[0].successful, 12);
    assert_int_equal(r.policies[0].failed, 2);
    assert_string_equal(r.policies[0].failures[0].receiving_mx_hostname, "");
    tlsrpt_free(&r);
    /* no mx-host, no summary, no failure-details, a numeric report-id, no organisation */
    assert_int_equal(parse("{\"report-id\":42,\"policies\":[{\"policy\":{\"policy-type\":"
                           "\"no-policy-found\"}}]}",
                           &r),
                     TLSRPT_OK);
    assert_string_equal(r.report_id, "42");
    assert_string_equal(r.organization, "");
    assert_int_equal(r.policies[0].n_mx_host, 0);
    assert_int_equal(r.policies[0].n_failures, 0);
    assert_int_equal(r.start, 0);
    tlsrpt_free(&r);
}

static void test_refused(void **state)
{
    (void)state;
    struct tlsrpt_report r;
    char why[256];
    const char *bad_json[] = {"", "{", "[1]", "\"x\"", "{\"report-id\":\"a\",}", "nul\0"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad_json); i++) {
        assert_int_equal(
            tlsrpt_parse(bad_json[i], strlen(bad_json[i]) + (i == 5), &r, why, sizeof why),
            TLSRPT_BAD_JSON);
        tlsrpt_free(&r);
    }
    assert_int_equal(tlsrpt_parse("{\"policies\":[]}", 15, &r, why, sizeof why), TLSRPT_INVALID);
    assert_string_equal(why, "the report has no report-id");
    tlsrpt_free(&r);
    assert_int_equal(parse("{\"report-id\":\"\",\"policies\":[]}", &r), TLSRPT_INVALID);
    tlsrpt_free(&r);
    assert_int_equal(parse("{\"report-id\":\"a\",\"policies\":{}}", &r), TLSRPT_INVALID);
    tlsrpt_free(&r);
    assert_int_equal(parse("{\"report-id\":\"a\"}", &r), TLSRPT_INVALID);
    tlsrpt_free(&r);
    /* nested beyond any report */
    char deep[200];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    assert_int_equal(parse(deep, &r), TLSRPT_BAD_JSON);
    tlsrpt_free(&r);
}

/* A report of json text: 40 policies, each with 10 failure details. */
static char *big_report(void)
{
    size_t cap = 1 << 20, len = 0;
    char *s = mg_malloc(cap);
    len += (size_t)snprintf(s + len, cap - len, "{\"report-id\":\"big\",\"policies\":[");
    for (int p = 0; p < 40; p++) {
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"policy\":{\"policy-type\":\"sts\"},\"summary\":{"
                                "\"total-failure-session-count\":10},\"failure-details\":[",
                                p ? "," : "");
        for (int f = 0; f < 10; f++)
            len += (size_t)snprintf(s + len, cap - len,
                                    "%s{\"result-type\":\"certificate-expired\","
                                    "\"failed-session-count\":1}",
                                    f ? "," : "");
        len += (size_t)snprintf(s + len, cap - len, "]}");
    }
    snprintf(s + len, cap - len, "]}");
    return s;
}

static void test_caps(void **state)
{
    (void)state;
    struct tlsrpt_report r;
    char *s = big_report();
    assert_int_equal(parse(s, &r), TLSRPT_OK);
    assert_int_equal(r.n_policies, TLSRPT_MAX_POLICIES);
    size_t kept = 0;
    for (size_t i = 0; i < r.n_policies; i++) {
        kept += r.policies[i].n_failures;
        assert_int_equal(r.policies[i].failed, 10); /* totals stay exact */
    }
    assert_int_equal(kept, TLSRPT_MAX_FAILURES);
    /* 8 policies and 320 - 256 failure details of the kept ones */
    assert_int_equal(r.dropped, 8 + (TLSRPT_MAX_POLICIES * 10 - TLSRPT_MAX_FAILURES));
    char *json = tlsrpt_to_json(&r);
    assert_true(strlen(json) < TLSRPT_MAX_NORMALISED);
    struct tlsrpt_report again;
    assert_int_equal(parse(json, &again), TLSRPT_OK);
    assert_int_equal(again.dropped, r.dropped);
    tlsrpt_free(&again);
    free(json);
    tlsrpt_free(&r);
    free(s);
    /* a long text is cut, control bytes become '?' */
    char *long_org = mg_malloc(2000);
    memset(long_org, 'o', 1999);
    long_org[1999] = '\0';
    char *doc = mg_printf("{\"report-id\":\"a\\u0007b\",\"organization-name\":\"%s\","
                          "\"policies\":[]}",
                          long_org);
    assert_int_equal(parse(doc, &r), TLSRPT_OK);
    assert_string_equal(r.report_id, "a?b");
    assert_int_equal(strlen(r.organization), TLSRPT_MAX_TEXT);
    tlsrpt_free(&r);
    free(doc);
    free(long_org);
}

static void test_time(void **state)
{
    (void)state;
    /* every form is 2016-04-01T00:00:00Z */
    const char *same[] = {"2016-04-01T00:00:00Z",     "2016-04-01T00:00:00.123Z",
                          "2016-04-01T02:00:00+0200", "2016-03-31T19:00:00-05:00",
                          "2016-04-01t00:00:00z",     "2016-04-01"};
    for (size_t i = 0; i < MG_ARRAY_LEN(same); i++) {
        int64_t t = 0;
        assert_int_equal(tlsrpt_parse_time(same[i], &t), 0);
        assert_int_equal(t, 1459468800);
    }
    const char *bad[] = {"2016-04-01T00:00:00 junk", "yesterday", "2016-04-01T00:00:00+2"};
    for (size_t i = 0; i < MG_ARRAY_LEN(bad); i++) {
        int64_t t;
        assert_int_equal(tlsrpt_parse_time(bad[i], &t), -1);
    }
}

/* gzip of len bytes of data, as one member. */
static unsigned char *gzip(const char *data, size_t len, size_t *out_len)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len);
    unsigned char *out = mg_malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

static void test_gunzip(void **state)
{
    (void)state;
    size_t len, zlen, n;
    char *data = read_example(&len);
    unsigned char *z = gzip(data, len, &zlen);
    char *out;
    assert_int_equal(tlsrpt_gunzip(z, zlen, TLSRPT_MAX_JSON, &out, &n), TLSRPT_INFLATE_OK);
    assert_int_equal(n, len);
    assert_memory_equal(out, data, len);
    free(out);
    /* exactly at the limit passes, one byte less refuses */
    assert_int_equal(tlsrpt_gunzip(z, zlen, len, &out, &n), TLSRPT_INFLATE_OK);
    free(out);
    assert_int_equal(tlsrpt_gunzip(z, zlen, len - 1, &out, &n), TLSRPT_INFLATE_TOO_LARGE);
    assert_null(out);
    /* truncated, damaged, not gzip */
    assert_int_equal(tlsrpt_gunzip(z, zlen - 4, len, &out, &n), TLSRPT_INFLATE_CORRUPT);
    z[zlen / 2] ^= 0xff;
    assert_int_equal(tlsrpt_gunzip(z, zlen, len, &out, &n), TLSRPT_INFLATE_CORRUPT);
    assert_int_equal(tlsrpt_gunzip(data, len, len, &out, &n), TLSRPT_INFLATE_CORRUPT);
    assert_int_equal(tlsrpt_gunzip("", 0, len, &out, &n), TLSRPT_INFLATE_CORRUPT);
    free(z);
    free(data);
}

/* 64 MiB of zeros compress to ~64 KiB: refused after the limit, without inflating it all. */
static void test_gunzip_bomb(void **state)
{
    (void)state;
    size_t big = 64u << 20, zlen, n;
    char *zeros = mg_calloc(1, big);
    unsigned char *z = gzip(zeros, big, &zlen);
    free(zeros);
    assert_true(zlen < 128 * 1024);
    char *out;
    assert_int_equal(tlsrpt_gunzip(z, zlen, TLSRPT_MAX_JSON, &out, &n), TLSRPT_INFLATE_TOO_LARGE);
    assert_null(out);
    /* two members are one stream */
    unsigned char *two = mg_malloc(2 * zlen);
    size_t alen;
    unsigned char *a = gzip("{\"report-id\":", 13, &alen);
    unsigned char *b;
    size_t blen;
    b = gzip("\"x\",\"policies\":[]}", 18, &blen);
    memcpy(two, a, alen);
    memcpy(two + alen, b, blen);
    assert_int_equal(tlsrpt_gunzip(two, alen + blen, 100, &out, &n), TLSRPT_INFLATE_OK);
    assert_string_equal(out, "{\"report-id\":\"x\",\"policies\":[]}");
    free(out);
    free(a);
    free(b);
    free(two);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_example), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tolerant),    cmocka_unit_test(test_refused),
        cmocka_unit_test(test_caps),        cmocka_unit_test(test_time),
        cmocka_unit_test(test_gunzip),      cmocka_unit_test(test_gunzip_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
