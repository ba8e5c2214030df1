/* map_keep.c - whole-file mappings kept across requests (map_keep.h). */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* MAP_POPULATE */
#include "map_keep.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

struct map_entry {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
    unsigned char *base; /* NULL: a free slot */
    unsigned refs;
    uint64_t used; /* the keeper's tick at the last get */
};

struct map_keep {
    pthread_mutex_t lock;
    uint64_t max_bytes, bytes, tick;
    unsigned n;
    struct map_entry e[]; /* n slots */
};

int map_keep_new(struct map_keep **out, uint64_t max_bytes, unsigned max_entries)
{
    struct map_keep *mk;

    if (max_bytes == 0 || max_entries == 0)
        return -EINVAL;
    mk = calloc(1, sizeof *mk + (size_t)max_entries * sizeof mk->e[0]);
    if (mk == NULL)
        return -ENOMEM;
    pthread_mutex_init(&mk->lock, NULL);
    mk->max_bytes = max_bytes;
    mk->n = max_entries;
    *out = mk;
    return 0;
}

static int same_file(const struct map_entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtim.tv_sec == st->st_mtim.tv_sec && e->mtim.tv_nsec == st->st_mtim.tv_nsec &&
           e->ctim.tv_sec == st->st_ctim.tv_sec && e->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

static void drop(struct map_keep *mk, struct map_entry *e)
{
    munmap(e->base, (size_t)e->size);
    mk->bytes -= (uint64_t)e->size;
    e->base = NULL;
}

/* A free slot with room for size more bytes, dropping unheld entries least recently used
 * first; NULL when the held ones leave no room. Caller holds the lock. */
static struct map_entry *make_room(struct map_keep *mk, uint64_t size)
{
    for (;;) {
        struct map_entry *slot = NULL, *lru = NULL;
        for (unsigned i = 0; i < mk->n; i++) {
            struct map_entry *e = &mk->e[i];
            if (e->base == NULL)
                slot = slot != NULL ? slot : e;
            else if (e->refs == 0 && (lru == NULL || e->used < lru->used))
                lru = e;
        }
        if (slot != NULL && mk->bytes + size <= mk->max_bytes)
            return slot;
        if (lru == NULL)
            return NULL;
        drop(mk, lru);
    }
}

struct map_entry *map_keep_get(struct map_keep *mk, int fd, const struct stat *st,
                               const unsigned char **base)
{
    struct map_entry *e = NULL;

    if (!S_ISREG(st->st_mode) || st->st_size <= 0 || (uint64_t)st->st_size > mk->max_bytes ||
        (uintmax_t)st->st_size > (uintmax_t)(SIZE_MAX >> 1))
        return NULL;
    pthread_mutex_lock(&mk->lock);
    for (unsigned i = 0; i < mk->n && e == NULL; i++)
        if (mk->e[i].base != NULL && same_file(&mk->e[i], st))
            e = &mk->e[i];
    if (e == NULL) {
        e = make_room(mk, (uint64_t)st->st_size);
        if (e != NULL) {
            void *p = mmap(NULL, (size_t)st->st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
            if (p == MAP_FAILED) {
                e = NULL;
            } else {
                *e = (struct map_entry){.dev = st->st_dev,
                                        .ino = st->st_ino,
                                        .size = st->st_size,
                                        .mtim = st->st_mtim,
                                        .ctim = st->st_ctim,
                                        .base = p};
                mk->bytes += (uint64_t)st->st_size;
            }
        }
    }
    if (e != NULL) {
        e->refs++;
        e->used = ++mk->tick;
        *base = e->base;
    }
    pthread_mutex_unlock(&mk->lock);
    return e;
}

void map_keep_put(struct map_keep *mk, struct map_entry *e)
{
    pthread_mutex_lock(&mk->lock);
    e->refs--;
    pthread_mutex_unlock(&mk->lock);
}

void map_keep_free(struct map_keep *mk)
{
    if (mk == NULL)
        return;
    for (unsigned i = 0; i < mk->n; i++)
        if (mk->e[i].base != NULL)
            drop(mk, &mk->e[i]);
    pthread_mutex_destroy(&mk->lock);
    free(mk);
}
