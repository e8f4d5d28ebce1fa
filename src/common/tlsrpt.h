/* SMTP TLS reports (RFC 8460): untrusted JSON (and gzip) in, a bounded normalised report out.
 * Pure functions, no I/O: the worker parses what a sender POSTs (inside its sandbox), the broker
 * parses the worker's normalised copy again before storing it, and `mailgate tlsrpt import`
 * parses files, all with the same rules.
 *
 * Tolerant where real senders deviate: mx-host as a string or an array, policy-string as a
 * string or an array, dates without a time zone (taken as UTC), missing mx-host,
 * policy-string, summary or failure-details, counts as numeric strings, unknown keys. Strict
 * only where RFC 8460 must be: the report is a JSON object with a report-id and a policies
 * array. */
#ifndef MG_TLSRPT_H
#define MG_TLSRPT_H

#include <stddef.h>
#include <stdint.h>

/* A report may be this large after decompression (issue 12); larger: refused (HTTP 413). */
#define TLSRPT_MAX_JSON (10 * 1024 * 1024)
/* Caps of what is kept of one report, so that its normalised form stays small (it travels to
 * the broker in IPC frames and lands in the store). Beyond them the report is kept truncated:
 * the totals of every policy kept stay exact, `dropped` counts what was left out. */
#define TLSRPT_MAX_POLICIES 32
#define TLSRPT_MAX_FAILURES 256 /* failure-details of the whole report */
#define TLSRPT_MAX_LINES 16     /* policy-string lines and mx-host entries of a policy */
#define TLSRPT_MAX_TEXT 256     /* bytes of any text (cut at a character boundary) */
/* The normalised JSON of a report within these caps is smaller than this. */
#define TLSRPT_MAX_NORMALISED (1024 * 1024)

struct tlsrpt_failure {
    char *result_type; /* e.g. "certificate-expired"; "" when absent */
    char *sending_mta_ip, *receiving_mx_hostname, *receiving_mx_helo, *receiving_ip;
    char *additional_information, *failure_reason_code;
    int64_t failed_sessions;
};

struct tlsrpt_policy {
    char *policy_type;   /* "sts", "tlsa", "no-policy-found", ...; "" when absent */
    char *policy_domain; /* "" when absent */
    char **policy_string;
    size_t n_policy_string;
    char **mx_host;
    size_t n_mx_host;
    int64_t successful, failed; /* the summary's session counts */
    struct tlsrpt_failure *failures;
    size_t n_failures;
};

struct tlsrpt_report {
    char *report_id;    /* never empty */
    char *organization; /* organization-name; "" when absent */
    char *contact;      /* contact-info */
    int64_t start, end; /* date-range, unix seconds; 0 when absent or unreadable */
    struct tlsrpt_policy *policies;
    size_t n_policies;
    int64_t dropped; /* policies and failure details over the caps, not kept */
};

enum tlsrpt_status {
    TLSRPT_OK = 0,
    TLSRPT_BAD_JSON = 1, /* not JSON, or not an object */
    TLSRPT_INVALID = 2,  /* JSON, but no report-id or no policies */
    TLSRPT_TOO_LARGE = 3 /* more than TLSRPT_MAX_JSON bytes (after decompression) */
};

/* Parses len bytes (NUL bytes included: refused) into *out (zeroed first; free with
 * tlsrpt_free, also after a failure). On failure why gets one sentence for the sender. */
enum tlsrpt_status tlsrpt_parse(const char *data, size_t len, struct tlsrpt_report *out, char *why,
                                size_t why_size);
/* The report as compact RFC 8460 JSON (keys in the RFC's names, plus "mailgate-dropped" when
 * something was dropped); tlsrpt_parse of it gives the same report. Caller frees. */
char *tlsrpt_to_json(const struct tlsrpt_report *r);
void tlsrpt_free(struct tlsrpt_report *r);

/* "2016-04-01T00:00:00Z", with fractions, an offset (+02:00, -0500) or no zone at all (UTC),
 * 't'/' ' for 'T', or a date alone. Returns 0 and *t, or -1. */
int tlsrpt_parse_time(const char *s, int64_t *t);

enum tlsrpt_inflate_status {
    TLSRPT_INFLATE_OK = 0,
    TLSRPT_INFLATE_CORRUPT = 1,   /* not gzip, or damaged */
    TLSRPT_INFLATE_TOO_LARGE = 2, /* more than max bytes after decompression */
};

/* Decompresses gzip data (one or more members) into *out (NUL-terminated, *out_len without
 * it), stopping as soon as the output would exceed max: a small bomb costs at most max bytes.
 * On failure *out is NULL. */
enum tlsrpt_inflate_status tlsrpt_gunzip(const void *data, size_t len, size_t max, char **out,
                                         size_t *out_len);

/* A report as delivered: gzip (application/tlsrpt+gzip, .json.gz) when gzipped, else JSON.
 * Decompresses at most TLSRPT_MAX_JSON bytes, then tlsrpt_parse. A damaged gzip stream is
 * TLSRPT_BAD_JSON. */
enum tlsrpt_status tlsrpt_parse_body(const void *data, size_t len, int gzipped,
                                     struct tlsrpt_report *out, char *why, size_t why_size);
/* 1 when data starts with the gzip magic bytes. */
int tlsrpt_is_gzip(const void *data, size_t len);

#endif
