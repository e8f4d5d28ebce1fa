/* The MTA-STS and TLS-RPT items of `mailgate check` (check.h). The policy is judged as a
 * sender judges it: the one _mta-sts record starting "v=STSv1;", the policy fetched over HTTPS
 * from the address the resolver gave, parsed strictly, its id and mx patterns against the TXT
 * record, the configuration and the domain's real MX hosts. */
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "cli.h"
#include "dns_txt.h"
#include "log.h"
#include "policy_fetch.h"
#include "sts_policy.h"
#include "util.h"

#define POLICY_FETCH_TIMEOUT_MS 5000
#define CERT_WARN_DAYS 14
#define QUOTED_MAX 200

/* The one record starting prefix, or NULL after a FAIL saying why there is none. */
static const struct dns_txt *one_record(struct check *c, const char *item, const char *prefix,
                                        const struct dns_answer *a, const char *fix)
{
    if (a->status != ARES_SUCCESS) {
        check_dns_failure(c, item, a, fix);
        return NULL;
    }
    int idx = dns_txt_select(a->txt, a->n_txt, prefix);
    if (idx == -1)
        check_report(c, CHECK_FAIL, item, "%s: no record starts with \"%s\"; publish: %s", a->name,
                     prefix, fix);
    else if (idx == -2)
        check_report(c, CHECK_FAIL, item,
                     "%s: several records start with \"%s\", so senders use none; keep one: %s",
                     a->name, prefix, fix);
    return idx >= 0 ? &a->txt[idx] : NULL;
}

/* 1 with the record's id in id when _mta-sts holds one valid record. */
static int check_sts_txt(struct check *c, const char *fix, char id[STS_RECORD_ID_MAX + 1])
{
    const struct dns_txt *r = one_record(c, "_mta-sts TXT", "v=STSv1;", &c->sts_txt, fix);
    if (!r)
        return 0;
    char quoted[QUOTED_MAX];
    log_quote(quoted, sizeof quoted, r->data, r->len);
    const char *why = sts_record_parse(r->data, r->len, id);
    if (why)
        check_report(c, CHECK_FAIL, "_mta-sts TXT", "%s: %s; publish: %s", quoted, why, fix);
    else
        check_report(c, CHECK_PASS, "_mta-sts TXT", "%s", quoted);
    return why == NULL;
}

static int is_text_plain(const char *content_type)
{
    if (!content_type)
        return 0;
    size_t n = strcspn(content_type, ";");
    while (n && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    return n == 10 && mg_ascii_ncasecmp(content_type, "text/plain", n) == 0;
}

/* 1 when the body is a policy (parsed into pol); a FAIL line otherwise. */
static int judge_answer(struct check *c, const char *url, const struct policy_fetch *f,
                        struct sts_policy *pol)
{
    char why[160];
    char quoted[QUOTED_MAX];
    if (f->status != 200) {
        check_report(c, CHECK_FAIL, "policy fetch",
                     "%s: HTTP %ld; senders take only 200, and follow no redirect (RFC 8461 3.3)",
                     url, f->status);
    } else if (!is_text_plain(f->content_type)) {
        log_quote(quoted, sizeof quoted, f->content_type ? f->content_type : "", (size_t)-1);
        check_report(c, CHECK_FAIL, "policy fetch", "%s: Content-Type %s, must be text/plain", url,
                     quoted);
    } else if (sts_policy_parse(f->body, f->len, pol, why, sizeof why) != 0) {
        check_report(c, CHECK_FAIL, "policy fetch", "%s: not a valid policy: %s", url, why);
    } else {
        check_report(c, CHECK_PASS, "policy fetch", "%s: mode %s, %zu mx, max_age %u", url,
                     mg_mta_sts_mode_name(pol->mode), pol->mx.n, (unsigned)pol->max_age);
        return 1;
    }
    return 0;
}

static int fetch_policy(struct check *c, struct policy_fetch *f, struct sts_policy *pol)
{
    char *host = mg_printf("mta-sts.%s", c->d->name);
    char *url = c->https_port == 443
                    ? mg_printf("https://%s/.well-known/mta-sts.txt", host)
                    : mg_printf("https://%s:%u/.well-known/mta-sts.txt", host, c->https_port);
    int ok = 0;
    if (c->mta_sts_addr.status != ARES_SUCCESS)
        check_report(c, CHECK_FAIL, "policy fetch", "%s: not fetched, %s has no address", url,
                     host);
    else if (policy_fetch(host, c->https_port, &c->mta_sts_addr.addrs, c->ca_file,
                          POLICY_FETCH_TIMEOUT_MS, f) != 0)
        check_report(c, CHECK_FAIL, "policy fetch", "%s: %s", url,
                     f->cert_failed ? "the certificate was refused" : f->error);
    else
        ok = judge_answer(c, url, f, pol);
    free(url);
    free(host);
    return ok;
}

static void check_certificate(struct check *c, const struct policy_fetch *f)
{
    const char *host = c->mta_sts_addr.name;
    if (f->cert_failed) {
        check_report(c, CHECK_FAIL, "certificate", "%s: %s", host, f->error);
        return;
    }
    if (!f->transfer_ok)
        return; /* not reached: the fetch's line says why */
    if (!f->not_after) {
        check_report(c, CHECK_WARN, "certificate", "%s: verified, its expiry date is unknown",
                     host);
        return;
    }
    char until[32];
    cli_iso8601_utc(f->not_after, until, sizeof until);
    long long days = ((long long)f->not_after - (long long)time(NULL)) / 86400;
    if (days < CERT_WARN_DAYS)
        check_report(c, CHECK_WARN, "certificate",
                     "%s: expires %s, in %lld days: renew it, then reload the gateway", host, until,
                     days);
    else
        check_report(c, CHECK_PASS, "certificate", "%s: verified, valid until %s (%lld days)", host,
                     until, days);
}

/* RFC 8461 8.1: the id must change exactly when the policy does, and be published only once
 * the new policy is live; the config's id is what the gateway serves after a reload. */
static void check_policy_id(struct check *c, const char *txt_id, const char *served,
                            const char *config_id, const char *config_fix)
{
    char served_id[MTA_STS_ID_LEN + 1];
    if (served && mta_sts_policy_id(served, served_id) != 0)
        served = NULL;
    if (served && strcmp(served_id, config_id) != 0)
        check_report(c, CHECK_FAIL, "policy id",
                     "the served policy (id %s) is not [domain %s]'s (id %s): reload the "
                     "gateway, then publish: %s",
                     served_id, c->d->name, config_id, config_fix);
    else if (strcmp(txt_id, config_id) != 0)
        check_report(c, CHECK_FAIL, "policy id", "TXT id=%s, the policy's id is %s; publish: %s%s",
                     txt_id, config_id, config_fix,
                     served ? " (the policy is live: the new id may go out now)"
                            : " once the policy is served");
    else
        check_report(c, CHECK_PASS, "policy id", "id=%s: the %s policy of [domain %s]", txt_id,
                     served ? "served" : "configured", c->d->name);
}

static const char *covering_pattern(const struct mg_strlist *patterns, const char *host)
{
    for (size_t i = 0; i < patterns->n; i++)
        if (sts_mx_matches(patterns->v[i], host))
            return patterns->v[i];
    return NULL;
}

static void report_mx_cover(struct check *c, const struct mg_strlist *patterns, const char *whose)
{
    struct mg_strlist uncovered = {0}, covered = {0};
    for (size_t i = 0; i < c->mx.hosts.n; i++) {
        const char *p = covering_pattern(patterns, c->mx.hosts.v[i]);
        char *entry = p ? mg_printf("%s (%s)", c->mx.hosts.v[i], p) : mg_strdup(c->mx.hosts.v[i]);
        struct mg_strlist *l = p ? &covered : &uncovered;
        l->v = mg_realloc(l->v, (l->n + 1) * sizeof *l->v);
        l->v[l->n++] = entry;
    }
    char *list = check_join(uncovered.n ? &uncovered : &covered, ", ");
    if (uncovered.n)
        check_report(c, CHECK_FAIL, "policy mx",
                     "MX hosts the %s patterns do not cover: %s; add them to mta_sts_mx (a "
                     "wildcard covers one label), reload, then publish the new id",
                     whose, list);
    else
        check_report(c, CHECK_PASS, "policy mx", "every MX host is covered: %s", list);
    free(list);
    dns_strlist_free(&uncovered);
    dns_strlist_free(&covered);
}

/* The served policy's patterns when it was fetched, else the configuration's. */
static void check_policy_mx(struct check *c, const struct sts_policy *served)
{
    enum mg_mta_sts_mode mode = served ? served->mode : c->d->mta_sts_mode;
    if (c->mx.status != ARES_SUCCESS)
        check_report(c, dns_answer_missing(&c->mx) ? CHECK_WARN : CHECK_FAIL, "policy mx",
                     "%s MX: %s (MTA-STS applies to the hosts of MX records)", c->mx.name,
                     dns_answer_error(&c->mx));
    else if (mode == MG_MTA_STS_NONE)
        check_report(c, CHECK_PASS, "policy mx", "mode none: no MX host needs a pattern");
    else
        report_mx_cover(c, served ? &served->mx : &c->d->mta_sts_mx,
                        served ? "served policy's" : "configured");
}

void check_mta_sts(struct check *c)
{
    if (c->d->mta_sts_mode == MG_MTA_STS_OFF) {
        if (dns_txt_select(c->sts_txt.txt, c->sts_txt.n_txt, "v=STSv1;") != -1)
            check_report(c, CHECK_FAIL, "_mta-sts TXT",
                         "%s is published, but [domain %s] has no mta_sts_mode: senders find no "
                         "policy; remove the record or set mta_sts_mode",
                         c->sts_txt.name, c->d->name);
        return;
    }
    char config_id[MTA_STS_ID_LEN + 1], txt_id[STS_RECORD_ID_MAX + 1];
    if (dns_config_policy_id(c->d, config_id) != 0)
        return;
    char *fix = dns_sts_record(c->d, config_id);
    int have_txt = check_sts_txt(c, fix, txt_id);
    char *cname = check_cname_record(c->mta_sts_addr.name, c->gw);
    check_same_addresses(c, "mta-sts address", &c->mta_sts_addr, cname);
    free(cname);
    struct policy_fetch f = {0};
    struct sts_policy pol = {0};
    int served = fetch_policy(c, &f, &pol);
    check_certificate(c, &f);
    if (have_txt)
        check_policy_id(c, txt_id, served ? f.body : NULL, config_id, fix);
    check_policy_mx(c, served ? &pol : NULL);
    sts_policy_free(&pol);
    policy_fetch_free(&f);
    free(fix);
}

static int same_uris(const struct mg_strlist *a, const struct mg_strlist *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return 0;
    return 1;
}

void check_tls_rpt(struct check *c)
{
    char *fix = dns_tlsrpt_record(c->d);
    if (!fix && dns_answer_missing(&c->tlsrpt_txt)) {
        check_report(c, CHECK_WARN, "_smtp._tls TXT",
                     "no TLS-RPT record and no tls_rpt in [domain %s]: nobody hears of failed "
                     "TLS deliveries",
                     c->d->name);
        return;
    }
    if (!fix)
        fix = mg_printf("(set tls_rpt in [domain %s], then run mailgate dns)", c->d->name);
    const struct dns_txt *r = one_record(c, "_smtp._tls TXT", "v=TLSRPTv1;", &c->tlsrpt_txt, fix);
    struct mg_strlist rua = {0};
    const char *why = r ? tlsrpt_record_parse(r->data, r->len, &rua) : NULL;
    char quoted[QUOTED_MAX];
    if (r)
        log_quote(quoted, sizeof quoted, r->data, r->len);
    if (r && why)
        check_report(c, CHECK_FAIL, "_smtp._tls TXT", "%s: %s; publish: %s", quoted, why, fix);
    else if (r && !same_uris(&rua, &c->d->tls_rpt))
        check_report(c, CHECK_WARN, "_smtp._tls TXT",
                     "%s: valid, but not the tls_rpt of [domain %s]; publish: %s", quoted,
                     c->d->name, fix);
    else if (r)
        check_report(c, CHECK_PASS, "_smtp._tls TXT", "%s", quoted);
    dns_strlist_free(&rua);
    free(fix);
}
