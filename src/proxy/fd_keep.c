/* fd_keep.c - the proxy's kept descriptors (fd_keep.h): a hash table with an LRU list, and
 * the cache's generation object mapped read-only. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* F_GET_SEALS */
#include "fd_keep.h"
#include "clock.h"
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define GEN_SIZE 4096 /* the generation object: one page, the word at its start */

struct entry {
    struct fd_kept pub;
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list, most recently used first */
    pid_t pid;                 /* the cache that answered */
    int64_t expires_ms;        /* clock_mono_ms */
    unsigned refs;             /* requests holding it */
    int in_table;              /* 0 once dropped: freed by the last release */
    uint64_t hash;
    size_t path_len;
    char path[];
};

struct fd_keep {
    pthread_mutex_t lock; /* guards everything below */
    unsigned max, n;
    size_t nbuckets; /* a power of two */
    struct entry **buckets;
    struct entry *head, *tail;
    pid_t gen_pid; /* the cache whose generation object is mapped; 0: none */
    int pidfd;     /* that cache's pidfd (or /proc directory: pid_proc) */
    int pid_proc;
    const _Atomic uint32_t *gen;
    void *gen_map;
    uint64_t hits, kept, dropped;
};

static uint64_t hash_path(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

unsigned fd_keep_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < FD_KEEP_MAX)
        return (unsigned)(rl.rlim_cur / 4);
    return FD_KEEP_MAX;
}

int fd_keep_new(struct fd_keep **out, unsigned max)
{
    struct fd_keep *k = calloc(1, sizeof *k);

    if (k == NULL)
        return -ENOMEM;
    k->max = max;
    k->nbuckets = 16;
    while (k->nbuckets < 2 * (size_t)max)
        k->nbuckets *= 2;
    k->buckets = calloc(k->nbuckets, sizeof *k->buckets);
    if (k->buckets == NULL) {
        free(k);
        return -ENOMEM;
    }
    k->pidfd = -1;
    pthread_mutex_init(&k->lock, NULL);
    *out = k;
    return 0;
}

static void destroy(struct entry *e)
{
    close(e->pub.fd);
    free(e);
}

/* Takes e out of the table; frees it when no request holds it. Lock held. */
static void unlink_entry(struct fd_keep *k, struct entry *e)
{
    struct entry **pp = &k->buckets[e->hash & (k->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        k->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        k->tail = e->prev;
    e->in_table = 0;
    k->n--;
    if (e->refs == 0)
        destroy(e);
}

static void drop_all(struct fd_keep *k)
{
    while (k->head != NULL) {
        unlink_entry(k, k->head);
        k->dropped++;
    }
}

/* Forgets the generation object. Lock held. */
static void gen_forget(struct fd_keep *k)
{
    if (k->gen_map != NULL)
        munmap(k->gen_map, GEN_SIZE);
    if (k->pidfd >= 0)
        close(k->pidfd);
    k->gen_map = NULL;
    k->gen = NULL;
    k->pidfd = -1;
    k->gen_pid = 0;
}

void fd_keep_free(struct fd_keep *k)
{
    if (k == NULL)
        return;
    drop_all(k);
    gen_forget(k);
    free(k->buckets);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

int fd_keep_has_gen(struct fd_keep *k, pid_t pid)
{
    pthread_mutex_lock(&k->lock);
    int has = k->gen_pid == pid && pid > 0;
    pthread_mutex_unlock(&k->lock);
    return has;
}

int fd_keep_set_gen(struct fd_keep *k, pid_t pid, int memfd)
{
    const int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE;
    struct stat st;
    int seals = fcntl(memfd, F_GET_SEALS), pidfd, proc = 0;
    void *map;

    /* Sealed: the cache alone writes it (through the mapping it made before sealing), and it
     * cannot shrink under our mapping. */
    if (seals < 0 || (seals & need) != need || fstat(memfd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size != GEN_SIZE) {
        close(memfd);
        return -EBADMSG;
    }
    map = mmap(NULL, GEN_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
    close(memfd);
    if (map == MAP_FAILED)
        return -errno;
    pidfd = peer_open(pid);
    if (pidfd < 0) {
        munmap(map, GEN_SIZE);
        return pidfd;
    }
    if (fstat(pidfd, &st) == 0 && S_ISDIR(st.st_mode))
        proc = 1; /* the /proc fallback (peer.h) */
    pthread_mutex_lock(&k->lock);
    drop_all(k);
    gen_forget(k);
    k->gen_map = map;
    k->gen = (const _Atomic uint32_t *)map;
    k->pidfd = pidfd;
    k->pid_proc = proc;
    k->gen_pid = pid;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

void fd_keep_put(struct fd_keep *k, const char *path, size_t path_len, int fd,
                 const struct sock_resp *r, pid_t pid)
{
    struct entry *e, *old;
    uint64_t h = hash_path(path, path_len);

    if (k->max == 0 || r->keep_ms == 0 || (e = malloc(sizeof *e + path_len + 1)) == NULL) {
        close(fd);
        return;
    }
    e->pub.fd = fd;
    e->pub.r = *r;
    e->pid = pid;
    e->expires_ms = clock_mono_ms() + r->keep_ms;
    e->refs = 0;
    e->in_table = 1;
    e->hash = h;
    e->path_len = path_len;
    memcpy(e->path, path, path_len);
    e->path[path_len] = '\0';
    pthread_mutex_lock(&k->lock);
    if (k->gen_pid != pid || pid <= 0) {
        /* No generation object of this cache: nothing could tell us of a change. */
        pthread_mutex_unlock(&k->lock);
        destroy(e);
        return;
    }
    for (old = k->buckets[h & (k->nbuckets - 1)]; old != NULL; old = old->hnext)
        if (old->hash == h && old->path_len == path_len && memcmp(old->path, path, path_len) == 0)
            break;
    if (old != NULL)
        unlink_entry(k, old);
    while (k->n >= k->max && k->tail != NULL)
        unlink_entry(k, k->tail);
    e->hnext = k->buckets[h & (k->nbuckets - 1)];
    k->buckets[h & (k->nbuckets - 1)] = e;
    e->prev = NULL;
    e->next = k->head;
    if (k->head != NULL)
        k->head->prev = e;
    else
        k->tail = e;
    k->head = e;
    k->n++;
    k->kept++;
    pthread_mutex_unlock(&k->lock);
}

/* 1 while the cache of the generation object runs. Lock held. */
static int cache_alive(struct fd_keep *k)
{
    if (k->pid_proc)
        return peer_alive(k->pidfd) == 1;
    struct pollfd p = {.fd = k->pidfd, .events = POLLIN};
    return poll(&p, 1, 0) == 0; /* a pidfd polls readable once its process has exited */
}

/* 0 when the file behind e still is what the cache saw, and still linked. */
static int file_same(const struct fd_kept *e)
{
    struct stat st;

    return fstat(e->fd, &st) == 0 && st.st_nlink > 0 && (uint64_t)st.st_size == e->r.file_size &&
                   (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == e->r.mtime_ns &&
                   (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec == e->r.ctime_ns
               ? 0
               : -ESTALE;
}

struct fd_kept *fd_keep_get(struct fd_keep *k, const char *path, size_t path_len)
{
    uint64_t h = hash_path(path, path_len);
    struct entry *e;

    if (k->max == 0)
        return NULL;
    pthread_mutex_lock(&k->lock);
    for (e = k->buckets[h & (k->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->path_len == path_len && memcmp(e->path, path, path_len) == 0)
            break;
    if (e == NULL) {
        pthread_mutex_unlock(&k->lock);
        return NULL;
    }
    if (k->gen_pid != e->pid || clock_mono_ms() >= e->expires_ms ||
        atomic_load_explicit(k->gen, memory_order_acquire) != e->pub.r.gen) {
        unlink_entry(k, e);
        k->dropped++;
        pthread_mutex_unlock(&k->lock);
        return NULL;
    }
    if (!cache_alive(k)) {
        /* Its answers no longer hold: the proxy must see the death as it would without us. */
        drop_all(k);
        gen_forget(k);
        pthread_mutex_unlock(&k->lock);
        return NULL;
    }
    e->refs++;
    if (e != k->head) {
        e->prev->next = e->next;
        if (e->next != NULL)
            e->next->prev = e->prev;
        else
            k->tail = e->prev;
        e->prev = NULL;
        e->next = k->head;
        k->head->prev = e;
        k->head = e;
    }
    pthread_mutex_unlock(&k->lock);
    if (file_same(&e->pub) < 0) {
        fd_keep_release(k, &e->pub, 1);
        return NULL;
    }
    return &e->pub;
}

void fd_keep_release(struct fd_keep *k, struct fd_kept *pub, int bad)
{
    struct entry *e = (struct entry *)pub;

    pthread_mutex_lock(&k->lock);
    e->refs--;
    if (bad) {
        k->dropped++;
        if (e->in_table)
            unlink_entry(k, e); /* frees it when refs is 0 */
        else if (e->refs == 0)
            destroy(e);
    } else {
        k->hits++;
        if (!e->in_table && e->refs == 0)
            destroy(e);
    }
    pthread_mutex_unlock(&k->lock);
}

void fd_keep_stats(struct fd_keep *k, struct fd_keep_stats *out)
{
    pthread_mutex_lock(&k->lock);
    out->hits = k->hits;
    out->kept = k->kept;
    out->dropped = k->dropped;
    out->entries = k->n;
    pthread_mutex_unlock(&k->lock);
}
