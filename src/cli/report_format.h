/* Report output (`mailgate report`): one table of text cells printed as an aligned table, a
 * JSON array of objects, or CSV (RFC 4180). Pure formatting: the callers fill the rows. */
#ifndef MG_REPORT_FORMAT_H
#define MG_REPORT_FORMAT_H

#include <stdio.h>

enum report_format { REPORT_TABLE, REPORT_JSON, REPORT_CSV };

/* Columns whose name is listed in numeric become JSON numbers (an empty cell: null). */
struct report_table {
    const char *const *columns;
    size_t ncols;
    const char *numeric; /* one char per column: 'n' numeric, anything else text */
    char **cells;        /* nrows * ncols, owned */
    size_t hide_last;    /* the table format leaves out this many columns at the end */
    size_t nrows, cap;
};

/* 0, or -1 for an unknown word ("table", "json", "csv"). */
int report_format_parse(const char *word, enum report_format *out);
void report_table_init(struct report_table *t, const char *const *columns, size_t ncols,
                       const char *numeric);
/* Adds a row of ncols cells (copied; NULL is ""). */
void report_table_add(struct report_table *t, const char *const *cells);
const char *report_cell(const struct report_table *t, size_t row, size_t col);
void report_table_free(struct report_table *t);
/* Prints the table. JSON: an array of objects (the caller may wrap it: report_table_json). */
int report_print(FILE *out, const struct report_table *t, enum report_format f);
/* The rows as a jansson array (json_t *), for callers that combine several tables. */
void *report_table_json(const struct report_table *t);
/* One CSV cell: quoted when it holds a comma, quote, CR or LF; a text cell that a spreadsheet
 * would run as a formula (= + - @ first) gets a leading apostrophe. */
void report_csv_cell(FILE *out, const char *cell, int numeric);

#endif
