/* Report output in three formats (report_format.h). */
#include "report_format.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "util.h"

int report_format_parse(const char *word, enum report_format *out)
{
    static const char *const names[] = {
        [REPORT_TABLE] = "table", [REPORT_JSON] = "json", [REPORT_CSV] = "csv"};
    for (size_t i = 0; i < MG_ARRAY_LEN(names); i++) {
        if (strcmp(word, names[i]) == 0) {
            *out = (enum report_format)i;
            return 0;
        }
    }
    return -1;
}

void report_table_init(struct report_table *t, const char *const *columns, size_t ncols,
                       const char *numeric)
{
    memset(t, 0, sizeof *t);
    t->columns = columns;
    t->ncols = ncols;
    t->numeric = numeric;
}

void report_table_add(struct report_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = mg_realloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = mg_strdup(cells[c] ? cells[c] : "");
    t->nrows++;
}

const char *report_cell(const struct report_table *t, size_t row, size_t col)
{
    return t->cells[row * t->ncols + col];
}

void report_table_free(struct report_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

static int is_numeric(const struct report_table *t, size_t col)
{
    return t->numeric && col < strlen(t->numeric) && t->numeric[col] == 'n';
}

static void print_table(FILE *out, const struct report_table *t)
{
    size_t width[32] = {0};
    size_t ncols = t->ncols - (t->hide_last < t->ncols ? t->hide_last : 0);
    ncols = ncols < MG_ARRAY_LEN(width) ? ncols : MG_ARRAY_LEN(width);
    for (size_t c = 0; c < ncols; c++) {
        width[c] = strlen(t->columns[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = strlen(report_cell(t, r, c));
            width[c] = n > width[c] ? n : width[c];
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *cell = r == 0 ? t->columns[c] : report_cell(t, r - 1, c);
            /* the last column is not padded: no trailing blanks */
            fprintf(out, "%s%-*s", c ? "  " : "", c + 1 < ncols ? (int)width[c] : 0, cell);
        }
        fputc('\n', out);
    }
}

void *report_table_json(const struct report_table *t)
{
    json_t *rows = json_array();
    for (size_t r = 0; r < t->nrows; r++) {
        json_t *o = json_object();
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = report_cell(t, r, c);
            json_t *v = !is_numeric(t, c) ? json_string(cell)
                        : *cell           ? json_integer(strtoll(cell, NULL, 10))
                                          : json_null();
            json_object_set_new(o, t->columns[c], v ? v : json_string("?"));
        }
        json_array_append_new(rows, o);
    }
    return rows;
}

void report_csv_cell(FILE *out, const char *cell, int numeric)
{
    int formula = !numeric && strchr("=+-@", cell[0]) && cell[0];
    if (!strpbrk(cell, ",\"\r\n") && !formula) {
        fputs(cell, out);
        return;
    }
    fputc('"', out);
    if (formula)
        fputc('\'', out);
    for (const char *p = cell; *p; p++) {
        if (*p == '"')
            fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void print_csv(FILE *out, const struct report_table *t)
{
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            if (c)
                fputc(',', out);
            report_csv_cell(out, r == 0 ? t->columns[c] : report_cell(t, r - 1, c),
                            r > 0 && is_numeric(t, c));
        }
        fputs("\r\n", out);
    }
}

int report_print(FILE *out, const struct report_table *t, enum report_format f)
{
    if (f == REPORT_TABLE) {
        print_table(out, t);
    } else if (f == REPORT_CSV) {
        print_csv(out, t);
    } else {
        json_t *rows = report_table_json(t);
        json_dumpf(rows, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(rows);
    }
    return ferror(out) ? -1 : 0;
}
