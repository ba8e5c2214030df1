/* attach_cache.c - kept segment attachments for simplecached: lookup, re-validation, LRU, sweep. */
/* SPDX-License-Identifier: MIT */
#include "attach_cache.h"
#include "peer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct attach_entry {
    int used;           /* guarded by lock */
    int doomed;         /* guarded by lock: unmap once refs drops to 0; never handed out again */
    unsigned refs;      /* guarded by lock: leases (and sweep checks) in progress */
    uint64_t tick;      /* guarded by lock: last put, for LRU */
    pid_t pid;          /* the fields below are set while used == 0 and fixed until it is again */
    int pidfd;          /* the owner's */
    struct shm_seg seg; /* the mapping; its seq is unused (each lease has its own) */
    struct shm_seg_id id;
};

struct attach_cache {
    pthread_mutex_t lock;
    unsigned cap;
    uint64_t clock; /* guarded by lock */
    struct attach_entry *e;
    struct {
        _Atomic uint64_t attaches, reuses, evictions, uncached;
    } st; /* read out by attach_cache_stats */
};

/* A mapping taken out of the table under the lock, unmapped after it is released. */
struct victim {
    struct shm_seg seg;
    int pidfd;
};

static void stat_add(_Atomic uint64_t *field)
{
    atomic_fetch_add_explicit(field, 1, memory_order_relaxed);
}

static void victim_release(struct victim *v)
{
    if (v->seg.hdr != NULL)
        shm_seg_detach(&v->seg);
    if (v->pidfd >= 0)
        close(v->pidfd);
    v->pidfd = -1;
}

static void entry_remove_locked(struct attach_cache *c, struct attach_entry *e, struct victim *v)
{
    v->seg = e->seg;
    v->pidfd = e->pidfd;
    memset(e, 0, sizeof *e);
    e->pidfd = -1;
    stat_add(&c->st.evictions);
}

/* Drops one reference; a doomed entry whose last reference this was goes to *v. Returns 1 if
 * it did. */
static int unref_locked(struct attach_cache *c, struct attach_entry *e, struct victim *v)
{
    if (--e->refs == 0 && e->doomed) {
        entry_remove_locked(c, e, v);
        return 1;
    }
    return 0;
}

static struct attach_entry *find_locked(struct attach_cache *c, const char *name)
{
    for (unsigned i = 0; i < c->cap; i++) {
        struct attach_entry *e = &c->e[i];
        if (e->used && !e->doomed && strcmp(e->seg.name, name) == 0)
            return e;
    }
    return NULL;
}

/* A free entry, or the least recently used idle one emptied into *v; NULL when all are busy. */
static struct attach_entry *slot_locked(struct attach_cache *c, struct victim *v)
{
    struct attach_entry *lru = NULL;

    for (unsigned i = 0; i < c->cap; i++) {
        struct attach_entry *e = &c->e[i];
        if (!e->used)
            return e;
        if (e->refs == 0 && (lru == NULL || e->tick < lru->tick))
            lru = e;
    }
    if (lru != NULL)
        entry_remove_locked(c, lru, v);
    return lru;
}

static void lease_from(struct attach_lease *l, struct attach_entry *e)
{
    l->seg = e->seg;
    l->seg.seq = 0;
    l->pidfd = e->pidfd;
    l->e_ = e;
}

int attach_cache_new(struct attach_cache **out, unsigned capacity)
{
    struct attach_cache *c;

    if (capacity < 1 || capacity > ATTACH_CACHE_MAX)
        return -EINVAL;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->e = calloc(capacity, sizeof *c->e);
    if (c->e == NULL) {
        free(c);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < capacity; i++)
        c->e[i].pidfd = -1;
    c->cap = capacity;
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return 0;
}

void attach_cache_free(struct attach_cache *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < c->cap; i++) {
        struct attach_entry *e = &c->e[i];
        if (e->used) {
            shm_seg_detach(&e->seg);
            close(e->pidfd);
        }
    }
    pthread_mutex_destroy(&c->lock);
    free(c->e);
    free(c);
}

/* A new attachment, kept when there is room. */
static int attach_new(struct attach_cache *c, const char *name, uint64_t claimed_size, pid_t pid,
                      struct attach_lease *lease)
{
    struct victim v = {.pidfd = -1};
    struct attach_entry *e = NULL;
    struct shm_seg seg;
    struct shm_seg_id id;
    int pidfd, rc;

    pidfd = peer_open(pid);
    if (pidfd < 0)
        return pidfd;
    rc = shm_seg_attach_id(&seg, name, claimed_size, ATTACH_CACHE_POPULATE_MAX, &id);
    if (rc < 0) {
        close(pidfd);
        return rc;
    }
    stat_add(&c->st.attaches);
    pthread_mutex_lock(&c->lock);
    /* Another worker may have kept the same name meanwhile (a duplicate request): keep one. */
    if (find_locked(c, name) == NULL)
        e = slot_locked(c, &v);
    if (e != NULL) {
        e->used = 1;
        e->refs = 1;
        e->tick = ++c->clock;
        e->pid = pid;
        e->pidfd = pidfd;
        e->seg = seg;
        e->id = id;
        lease_from(lease, e);
    }
    pthread_mutex_unlock(&c->lock);
    victim_release(&v);
    if (e == NULL) {
        stat_add(&c->st.uncached);
        lease->seg = seg;
        lease->pidfd = pidfd;
        lease->e_ = NULL;
    }
    return 0;
}

/* Drops every idle entry (each holds a pidfd): room for a process out of descriptors. */
static void trim_idle(struct attach_cache *c)
{
    for (unsigned i = 0; i < c->cap; i++) {
        struct victim v = {.pidfd = -1};
        struct attach_entry *e = &c->e[i];

        pthread_mutex_lock(&c->lock);
        if (e->used && e->refs == 0)
            entry_remove_locked(c, e, &v);
        pthread_mutex_unlock(&c->lock);
        victim_release(&v);
    }
}

int attach_cache_get(struct attach_cache *c, const char *name, uint64_t claimed_size, pid_t pid,
                     struct attach_lease *lease)
{
    struct victim v = {.pidfd = -1};
    struct attach_entry *e;
    int rc;

    memset(lease, 0, sizeof *lease);
    lease->pidfd = -1;
    pthread_mutex_lock(&c->lock);
    e = find_locked(c, name);
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&c->lock);
    if (e != NULL) {
        /* The name carries the pid (checked by cmdq_request_decode), so e->pid == pid; a new
         * process with a reused pid has created a new object, which revalidate tells apart. */
        if (e->pid == pid && peer_alive(e->pidfd) == 1 &&
            shm_seg_revalidate(&e->seg, &e->id, claimed_size) == 0) {
            lease_from(lease, e);
            stat_add(&c->st.reuses);
            return 0;
        }
        pthread_mutex_lock(&c->lock);
        e->doomed = 1;
        unref_locked(c, e, &v);
        pthread_mutex_unlock(&c->lock);
        victim_release(&v);
    }
    rc = attach_new(c, name, claimed_size, pid, lease);
    if (rc == -EMFILE || rc == -ENFILE) {
        /* Our kept pidfds may be what fills the table of descriptors. */
        trim_idle(c);
        rc = attach_new(c, name, claimed_size, pid, lease);
    }
    return rc;
}

void attach_cache_put(struct attach_cache *c, struct attach_lease *lease, int drop)
{
    struct victim v = {.pidfd = -1};
    struct attach_entry *e = lease->e_;

    if (e == NULL) {
        shm_seg_detach(&lease->seg);
        if (lease->pidfd >= 0)
            close(lease->pidfd);
    } else {
        pthread_mutex_lock(&c->lock);
        if (drop)
            e->doomed = 1;
        e->tick = ++c->clock;
        unref_locked(c, e, &v);
        pthread_mutex_unlock(&c->lock);
        victim_release(&v);
    }
    memset(lease, 0, sizeof *lease);
    lease->pidfd = -1;
}

unsigned attach_cache_sweep(struct attach_cache *c)
{
    unsigned dropped = 0;

    for (unsigned i = 0; i < c->cap; i++) {
        struct victim v = {.pidfd = -1};
        struct attach_entry *e = &c->e[i];
        int bad;

        pthread_mutex_lock(&c->lock);
        if (!e->used || e->doomed || e->refs > 0) {
            pthread_mutex_unlock(&c->lock);
            continue;
        }
        e->refs++; /* pinned while checked without the lock; the tick stays */
        pthread_mutex_unlock(&c->lock);
        bad = peer_alive(e->pidfd) != 1 || shm_seg_revalidate(&e->seg, &e->id, 0) != 0;
        pthread_mutex_lock(&c->lock);
        if (bad)
            e->doomed = 1;
        dropped += (unsigned)unref_locked(c, e, &v);
        pthread_mutex_unlock(&c->lock);
        victim_release(&v);
    }
    return dropped;
}

unsigned attach_cache_size(struct attach_cache *c)
{
    unsigned n = 0;

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->cap; i++)
        n += c->e[i].used ? 1u : 0u;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void attach_cache_stats(struct attach_cache *c, struct attach_cache_stats *out)
{
    out->attaches = atomic_load_explicit(&c->st.attaches, memory_order_relaxed);
    out->reuses = atomic_load_explicit(&c->st.reuses, memory_order_relaxed);
    out->evictions = atomic_load_explicit(&c->st.evictions, memory_order_relaxed);
    out->uncached = atomic_load_explicit(&c->st.uncached, memory_order_relaxed);
}
