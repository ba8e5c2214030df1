/* size_hints.c - a bounded, direct-mapped table of file sizes learnt from earlier transfers. */
/* SPDX-License-Identifier: MIT */
#include "size_hints.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct hint {
    uint64_t key; /* hash of the path; 0: empty (a path hashing to 0 is stored as 1) */
    uint64_t size;
};

struct size_hints {
    pthread_mutex_t lock;
    unsigned mask;
    struct hint *b; /* mask + 1 buckets; guarded by lock */
};

/* FNV-1a, 64 bits. */
static uint64_t hash_path(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h ? h : 1;
}

int size_hints_new(struct size_hints **out, unsigned capacity)
{
    struct size_hints *h;
    unsigned n = 1;

    if (capacity < 1 || capacity > SIZE_HINTS_MAX)
        return -EINVAL;
    while (n < capacity)
        n <<= 1;
    h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    h->b = calloc(n, sizeof *h->b);
    if (h->b == NULL) {
        free(h);
        return -ENOMEM;
    }
    h->mask = n - 1;
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

void size_hints_free(struct size_hints *h)
{
    if (h == NULL)
        return;
    pthread_mutex_destroy(&h->lock);
    free(h->b);
    free(h);
}

void size_hints_put(struct size_hints *h, const char *path, size_t len, uint64_t size)
{
    uint64_t k = hash_path(path, len);

    pthread_mutex_lock(&h->lock);
    h->b[k & h->mask] = (struct hint){k, size};
    pthread_mutex_unlock(&h->lock);
}

void size_hints_forget(struct size_hints *h, const char *path, size_t len)
{
    uint64_t k = hash_path(path, len);

    pthread_mutex_lock(&h->lock);
    if (h->b[k & h->mask].key == k)
        h->b[k & h->mask] = (struct hint){0, 0};
    pthread_mutex_unlock(&h->lock);
}

int size_hints_get(struct size_hints *h, const char *path, size_t len, uint64_t *size)
{
    uint64_t k = hash_path(path, len);
    int found = 0;

    pthread_mutex_lock(&h->lock);
    if (h->b[k & h->mask].key == k) {
        *size = h->b[k & h->mask].size;
        found = 1;
    }
    pthread_mutex_unlock(&h->lock);
    return found;
}
