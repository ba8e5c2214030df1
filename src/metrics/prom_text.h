/* prom_text.h - a writer of the Prometheus text exposition format (version 0.0.4): metric
 * families with HELP and TYPE lines, counter, gauge and histogram samples, escaped labels.
 *
 * The text goes into a buffer bounded at creation. Errors are sticky: after the first one
 * (-ENOMEM, -E2BIG over the bound, -EINVAL for a bad name) every call returns it and writes
 * nothing, so a caller may write a whole page and check once, with prom_buf_error. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PROM_TEXT_H
#define GF_PROM_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The Content-Type of the format. */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct prom_buf {
    char *data_; /* private: NUL-terminated text, len_ bytes */
    size_t len_; /* private */
    size_t cap_; /* private: bytes allocated */
    size_t max_; /* private: bound on len_ */
    int err_;    /* private: first error, or 0 */
};

/* One label of a sample. Both strings are borrowed for the call. */
struct prom_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value; /* any UTF-8; backslash, double quote and newline are escaped */
};

enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

/* Starts an empty buffer that will hold at most max bytes of text. Allocates nothing yet. */
void prom_buf_init(struct prom_buf *b, size_t max);

/* Frees the text. The buffer may be initialised again. */
void prom_buf_release(struct prom_buf *b);

/* The first error of any call so far (-ENOMEM, -E2BIG, -EINVAL), or 0. */
int prom_buf_error(const struct prom_buf *b);

/* The text written so far (NUL-terminated, "" when nothing was), borrowed until the next call
 * on b; *len gets its length. */
const char *prom_buf_text(const struct prom_buf *b, size_t *len);

/* Hands the text over: returns it (the caller frees it with free()), or NULL when nothing was
 * written or after an error; b is left empty either way. */
char *prom_buf_take(struct prom_buf *b, size_t *len);

/* Writes the "# HELP name help" and "# TYPE name type" lines that open a family. name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*; help may hold any text (backslash and newline are escaped). */
int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help);

/* Writes one sample line "name{labels} value" (no braces without labels); nlabels may be 0
 * with labels NULL. The _u64 form prints an integer; the _double form prints the shortest
 * decimal that reads back as the same double, or NaN, +Inf, -Inf. */
int prom_sample_u64(struct prom_buf *b, const char *name, const struct prom_label *labels,
                    size_t nlabels, uint64_t value);
int prom_sample_double(struct prom_buf *b, const char *name, const struct prom_label *labels,
                       size_t nlabels, double value);

/* A family of one sample without labels: HELP, TYPE and the value. */
int prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t value);
int prom_gauge(struct prom_buf *b, const char *name, const char *help, double value);

/* Writes the samples of one histogram (after its prom_family, PROM_HISTOGRAM): one
 * name_bucket line per bound, in ascending order, with the label le="bound" after the given
 * labels, then le="+Inf", name_sum and name_count. counts holds nbounds + 1 entries, each the
 * observations of one bucket alone: counts[i] those <= bounds[i] and > bounds[i - 1], the last
 * those above every bound. The writer makes the buckets cumulative; _count is the sum of all of
 * counts, the +Inf bucket's value. bounds must be finite and strictly ascending (-EINVAL). */
int prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
                   size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
                   double sum);

/* Formats v as prom_sample_double does into out (cap >= 32 bytes). Returns the length. */
size_t prom_format_double(char *out, size_t cap, double v);

#endif
