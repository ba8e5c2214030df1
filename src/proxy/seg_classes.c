/* seg_classes.c - parsing segment size classes and picking one for a transfer. */
/* SPDX-License-Identifier: MIT */
#include "seg_classes.h"
#include "seg_pool.h"
#include "shm_chan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int seg_size_parse(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    size_t i = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
        i++;
    }
    if (i == 0)
        return -EINVAL;
    if (i < len) {
        switch (s[i]) {
        case 'k':
        case 'K':
            mul = 1ull << 10;
            break;
        case 'm':
        case 'M':
            mul = 1ull << 20;
            break;
        case 'g':
        case 'G':
            mul = 1ull << 30;
            break;
        default:
            return -EINVAL;
        }
        i++;
        const char *rest = s + i;
        size_t rlen = len - i;
        if (!(rlen == 0 || (rlen == 1 && (rest[0] == 'B' || rest[0] == 'b')) ||
              (rlen == 2 && (rest[0] == 'i' || rest[0] == 'I') &&
               (rest[1] == 'B' || rest[1] == 'b'))))
            return -EINVAL;
    }
    if (v > UINT64_MAX / mul)
        return -EINVAL;
    *out = v * mul;
    return 0;
}

static int parse_count(const char *s, size_t len, unsigned *out)
{
    unsigned v = 0;

    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
        if (v > SEG_POOL_MAX)
            return -EINVAL;
    }
    *out = v;
    return 0;
}

int seg_classes_parse(const char *spec, struct seg_classes *out, const char **why)
{
    struct seg_classes cl = {0};
    const char *p = spec;
    unsigned total = 0;

    *why = "";
    if (*p == '\0') {
        *why = "empty";
        return -EINVAL;
    }
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        struct seg_class c;
        if (colon == NULL) {
            *why = "each class is SIZE:COUNT";
            return -EINVAL;
        }
        if (seg_size_parse(p, (size_t)(colon - p), &c.size) < 0 || c.size < SHM_SEG_MIN ||
            c.size > SHM_SEG_MAX) {
            *why = "a SIZE must be 512..1G (suffixes K, M, G)";
            return -EINVAL;
        }
        if (parse_count(colon + 1, len - (size_t)(colon + 1 - p), &c.count) < 0 || c.count < 1) {
            *why = "a COUNT must be 1..1024";
            return -EINVAL;
        }
        if (cl.n == SEG_CLASSES_MAX) {
            *why = "at most 8 classes";
            return -EINVAL;
        }
        /* Insert sorted; a size given twice is refused. */
        unsigned at = 0;
        while (at < cl.n && cl.c[at].size < c.size)
            at++;
        if (at < cl.n && cl.c[at].size == c.size) {
            *why = "a SIZE appears twice";
            return -EINVAL;
        }
        memmove(&cl.c[at + 1], &cl.c[at], (cl.n - at) * sizeof cl.c[0]);
        cl.c[at] = c;
        cl.n++;
        total += c.count;
        if (total > SEG_POOL_MAX) {
            *why = "at most 1024 segments in all";
            return -EINVAL;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    *out = cl;
    return 0;
}

void seg_classes_single(struct seg_classes *out, unsigned count, uint64_t size)
{
    memset(out, 0, sizeof *out);
    out->n = 1;
    out->c[0].size = size;
    out->c[0].count = count;
}

unsigned seg_classes_count(const struct seg_classes *cl)
{
    unsigned n = 0;

    for (unsigned i = 0; i < cl->n; i++)
        n += cl->c[i].count;
    return n;
}

uint64_t seg_classes_bytes(const struct seg_classes *cl)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < cl->n; i++)
        n += cl->c[i].size * cl->c[i].count;
    return n;
}

uint64_t seg_class_capacity(uint64_t size)
{
    uint32_t nslots, slot_cap;

    if (shm_geometry(size, &nslots, &slot_cap) < 0)
        return 0;
    return (uint64_t)nslots * slot_cap;
}

unsigned seg_classes_pick(const struct seg_classes *cl, int known, uint64_t file_size)
{
    if (cl->n == 0)
        return 0;
    if (known)
        for (unsigned i = 0; i < cl->n; i++)
            if (file_size <= seg_class_capacity(cl->c[i].size))
                return i;
    return cl->n - 1;
}

static void size_text(char *buf, size_t cap, uint64_t v)
{
    if (v >= (1ull << 30) && v % (1ull << 30) == 0)
        snprintf(buf, cap, "%lluG", (unsigned long long)(v >> 30));
    else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
        snprintf(buf, cap, "%lluM", (unsigned long long)(v >> 20));
    else if (v >= (1ull << 10) && v % (1ull << 10) == 0)
        snprintf(buf, cap, "%lluK", (unsigned long long)(v >> 10));
    else
        snprintf(buf, cap, "%llu", (unsigned long long)v);
}

int seg_classes_format(const struct seg_classes *cl, char *buf, size_t cap)
{
    int used = 0;

    if (cap > 0)
        buf[0] = '\0';
    for (unsigned i = 0; i < cl->n; i++) {
        char s[32];
        size_text(s, sizeof s, cl->c[i].size);
        size_t off = (size_t)used < cap ? (size_t)used : cap;
        int w = snprintf(buf + off, cap - off, "%s%s:%u", i ? "," : "", s, cl->c[i].count);
        if (w < 0)
            return w;
        used += w;
    }
    return used;
}
