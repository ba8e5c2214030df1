/* prom_text.c - the Prometheus text exposition format, written into a bounded buffer. */
/* SPDX-License-Identifier: MIT */
#include "prom_text.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROM_GROW_MIN 4096

void prom_buf_init(struct prom_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max_ = max;
}

void prom_buf_release(struct prom_buf *b)
{
    free(b->data_);
    b->data_ = NULL;
    b->len_ = 0;
    b->cap_ = 0;
}

int prom_buf_error(const struct prom_buf *b)
{
    return b->err_;
}

const char *prom_buf_text(const struct prom_buf *b, size_t *len)
{
    *len = b->len_;
    return b->data_ != NULL ? b->data_ : "";
}

char *prom_buf_take(struct prom_buf *b, size_t *len)
{
    char *t = b->err_ == 0 ? b->data_ : NULL;

    *len = t != NULL ? b->len_ : 0;
    if (t == NULL)
        free(b->data_);
    b->data_ = NULL;
    b->len_ = 0;
    b->cap_ = 0;
    return t;
}

/* Makes room for n more bytes and the NUL, within the bound. Returns 0 or the (sticky) error. */
static int reserve(struct prom_buf *b, size_t n)
{
    size_t want, cap;
    char *p;

    if (b->err_ != 0)
        return b->err_;
    if (n > b->max_ - b->len_ || b->len_ > b->max_) {
        b->err_ = -E2BIG;
        return b->err_;
    }
    want = b->len_ + n + 1;
    if (want <= b->cap_)
        return 0;
    cap = b->cap_ < PROM_GROW_MIN ? PROM_GROW_MIN : b->cap_;
    while (cap < want)
        cap *= 2;
    if (cap > b->max_ + 1)
        cap = b->max_ + 1;
    p = realloc(b->data_, cap);
    if (p == NULL) {
        b->err_ = -ENOMEM;
        return b->err_;
    }
    b->data_ = p;
    b->cap_ = cap;
    return 0;
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) != 0)
        return;
    memcpy(b->data_ + b->len_, s, n);
    b->len_ += n;
    b->data_[b->len_] = '\0';
}

static void puts_(struct prom_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* Writes s with backslash and newline escaped, and double quotes too when quotes is set (label
 * values; HELP text keeps them). */
static void put_escaped(struct prom_buf *b, const char *s, int quotes)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *esc = NULL;

        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quotes)
            esc = "\\\"";
        if (esc == NULL)
            continue;
        put(b, run, (size_t)(s - run));
        puts_(b, esc);
        run = s + 1;
    }
    put(b, run, (size_t)(s - run));
}

static int name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (c == ':' && colon)
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int valid_name(const char *s, int colon)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!name_char(*p, p == s, colon))
            return 0;
    return 1;
}

static int fail(struct prom_buf *b, int err)
{
    if (b->err_ == 0)
        b->err_ = err;
    return b->err_;
}

static int check_labels(struct prom_buf *b, const struct prom_label *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!valid_name(labels[i].name, 0) || strncmp(labels[i].name, "__", 2) == 0 ||
            labels[i].value == NULL)
            return fail(b, -EINVAL);
    }
    return b->err_;
}

size_t prom_format_double(char *out, size_t cap, double v)
{
    int n;

    if (isnan(v))
        n = snprintf(out, cap, "NaN");
    else if (isinf(v))
        n = snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest of %.15g..%.17g that reads back exactly. */
        for (int prec = 15;; prec++) {
            n = snprintf(out, cap, "%.*g", prec, v);
            if (prec == 17 || strtod(out, NULL) == v)
                break;
        }
    }
    return n < 0 ? 0 : (size_t)n;
}

/* name{l1="v1",...,extra="extra_value"} value\n; extra may be NULL. */
static int sample(struct prom_buf *b, const char *name, const char *suffix,
                  const struct prom_label *labels, size_t nlabels, const char *extra,
                  const char *extra_value, const char *value)
{
    if (b->err_ != 0)
        return b->err_;
    if (!valid_name(name, 1) || (nlabels > 0 && labels == NULL))
        return fail(b, -EINVAL);
    if (check_labels(b, labels, nlabels) != 0)
        return b->err_;
    puts_(b, name);
    puts_(b, suffix);
    if (nlabels > 0 || extra != NULL) {
        puts_(b, "{");
        for (size_t i = 0; i < nlabels; i++) {
            if (i > 0)
                puts_(b, ",");
            puts_(b, labels[i].name);
            puts_(b, "=\"");
            put_escaped(b, labels[i].value, 1);
            puts_(b, "\"");
        }
        if (extra != NULL) {
            if (nlabels > 0)
                puts_(b, ",");
            puts_(b, extra);
            puts_(b, "=\"");
            put_escaped(b, extra_value, 1);
            puts_(b, "\"");
        }
        puts_(b, "}");
    }
    puts_(b, " ");
    puts_(b, value);
    puts_(b, "\n");
    return b->err_;
}

int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};

    if (b->err_ != 0)
        return b->err_;
    if (!valid_name(name, 1) || (unsigned)type > PROM_HISTOGRAM || help == NULL)
        return fail(b, -EINVAL);
    puts_(b, "# HELP ");
    puts_(b, name);
    puts_(b, " ");
    put_escaped(b, help, 0);
    puts_(b, "\n# TYPE ");
    puts_(b, name);
    puts_(b, " ");
    puts_(b, types[type]);
    puts_(b, "\n");
    return b->err_;
}

int prom_sample_u64(struct prom_buf *b, const char *name, const struct prom_label *labels,
                    size_t nlabels, uint64_t value)
{
    char v[24];

    snprintf(v, sizeof v, "%" PRIu64, value);
    return sample(b, name, "", labels, nlabels, NULL, NULL, v);
}

int prom_sample_double(struct prom_buf *b, const char *name, const struct prom_label *labels,
                       size_t nlabels, double value)
{
    char v[32];

    prom_format_double(v, sizeof v, value);
    return sample(b, name, "", labels, nlabels, NULL, NULL, v);
}

int prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t value)
{
    prom_family(b, name, PROM_COUNTER, help);
    return prom_sample_u64(b, name, NULL, 0, value);
}

int prom_gauge(struct prom_buf *b, const char *name, const char *help, double value)
{
    prom_family(b, name, PROM_GAUGE, help);
    return prom_sample_double(b, name, NULL, 0, value);
}

int prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
                   size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
                   double sum)
{
    char le[32], v[32];
    uint64_t cum = 0;

    if (b->err_ != 0)
        return b->err_;
    if (counts == NULL || (nbounds > 0 && bounds == NULL))
        return fail(b, -EINVAL);
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return fail(b, -EINVAL);
    }
    for (size_t i = 0; i < nbounds; i++) {
        cum += counts[i];
        prom_format_double(le, sizeof le, bounds[i]);
        snprintf(v, sizeof v, "%" PRIu64, cum);
        sample(b, name, "_bucket", labels, nlabels, "le", le, v);
    }
    cum += counts[nbounds];
    snprintf(v, sizeof v, "%" PRIu64, cum);
    sample(b, name, "_bucket", labels, nlabels, "le", "+Inf", v);
    prom_format_double(le, sizeof le, sum);
    sample(b, name, "_sum", labels, nlabels, NULL, NULL, le);
    return sample(b, name, "_count", labels, nlabels, NULL, NULL, v);
}
