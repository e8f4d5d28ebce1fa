/* The Prometheus text exposition format (version 0.0.4) of a struct metrics_report: HELP and
 * TYPE lines, mailgate_ names, _total counters, _seconds histograms with cumulative buckets,
 * _sum and _count. Pure: the metric list is in README, "Operations: /metrics and /healthz". */
#ifndef MG_METRICS_TEXT_H
#define MG_METRICS_TEXT_H

#include <stddef.h>

#include "metrics.h"

struct evbuffer;

#define METRICS_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the exposition of r to out. Returns 0, or -1 when out of memory. */
int metrics_text_render(struct evbuffer *out, const struct metrics_report *r);
/* A label value as the format wants it: backslash, double quote and line feed escaped.
 * Writes at most size-1 bytes and always terminates; returns -1 when it did not fit. */
int metrics_text_escape(const char *value, char *out, size_t size);

#endif
