/* stats.c - the daemons' live figures in shared memory: seqlocked writer and reader. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* gettid */
#include "stats.h"
#include "ipc_names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

const uint64_t stats_latency_bounds_us[STATS_LAT_BUCKETS - 1] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,    25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

/* 1 KiB to 1 GiB, by fours. */
const uint64_t stats_size_bounds[STATS_SIZE_BUCKETS - 1] = {
    1u << 10, 1u << 12, 1u << 14, 1u << 16, 1u << 18, 1u << 20,
    1u << 22, 1u << 24, 1u << 26, 1u << 28, 1u << 30,
};

/* Per slot, the writer's own seq and whether a begin is not yet ended (for STATS_G_ACTIVE). */
struct slot_priv {
    uint64_t seq;
    int active;
};

struct stats_region {
    void *map;
    size_t size;
    const struct stats_shm_hdr *hdr; /* a reader reads the private copy below, never this */
    struct stats_shm_hdr h;          /* the header, copied and checked once */
    uint64_t *gblock;                /* seq, then STATS_GLOBAL_WORDS words */
    unsigned char *slots;            /* slot records, h.slot_stride bytes each */
    int writer;
    /* Writer only: */
    char name[IPC_NAME_MAX];
    dev_t dev;
    ino_t ino;
    pthread_mutex_t lock;            /* serialises global block writers */
    uint64_t gseq;                   /* guarded by lock */
    uint64_t gw[STATS_GLOBAL_WORDS]; /* guarded by lock: the words as last stored */
    struct slot_priv *sp;            /* each used by the slot's owner only */
};

static uint64_t now_ms(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The calling thread's id, asked of the kernel once per thread (a system call costs
 * microseconds on some machines; a request's stats calls must not). */
static pid_t my_tid(void)
{
    static _Thread_local pid_t tid;

    if (tid == 0)
        tid = gettid();
    return tid;
}

static size_t global_bytes(void)
{
    return (1u + STATS_GLOBAL_WORDS) * sizeof(uint64_t);
}

static size_t slot_bytes(void)
{
    return (1u + STATS_SLOT_WORDS) * sizeof(uint64_t);
}

static uint64_t *slot_rec(const struct stats_region *r, unsigned slot)
{
    return (uint64_t *)(void *)(r->slots + (size_t)slot * r->h.slot_stride);
}

/* --- seqlock primitives ------------------------------------------------------------------- */

/* Fence-free (TSan checks it): the odd seq is stored before every word, each word is a
 * release store, so a reader whose acquire load sees a word of this update also sees seq odd
 * (or later) when it loads seq again; the closing even seq is a release store too. */
static void seq_open(uint64_t *shm_seq, uint64_t *priv_seq)
{
    ++*priv_seq; /* odd: an update is in progress */
    __atomic_store_n(shm_seq, *priv_seq, __ATOMIC_RELAXED);
}

static void seq_close(uint64_t *shm_seq, uint64_t *priv_seq)
{
    ++*priv_seq; /* even: consistent */
    __atomic_store_n(shm_seq, *priv_seq, __ATOMIC_RELEASE);
}

static void put_word(uint64_t *w, uint64_t v)
{
    __atomic_store_n(w, v, __ATOMIC_RELEASE);
}

/* Copies n words from a seqlocked block into out. Returns 0 or -EAGAIN. The acquire loads keep
 * the second seq load after every word load. */
static int seq_read(const uint64_t *shm_seq, const uint64_t *words, unsigned n, uint64_t *out)
{
    for (unsigned t = 0; t < STATS_READ_TRIES; t++) {
        uint64_t s1 = __atomic_load_n(shm_seq, __ATOMIC_ACQUIRE);
        if ((s1 & 1u) == 0) {
            for (unsigned i = 0; i < n; i++)
                out[i] = __atomic_load_n(&words[i], __ATOMIC_ACQUIRE);
            if (__atomic_load_n(shm_seq, __ATOMIC_ACQUIRE) == s1)
                return 0;
        }
        if (t % 16 == 15)
            sched_yield(); /* let a writer on this CPU finish */
    }
    return -EAGAIN;
}

/* --- writer ------------------------------------------------------------------------------- */

static void fill_header(struct stats_shm_hdr *h, enum stats_role role, unsigned nslots, size_t size,
                        const struct stats_config *cfg)
{
    h->version = STATS_VERSION;
    h->role = (uint32_t)role;
    h->pid = (uint32_t)getpid();
    h->uid = (uint32_t)geteuid();
    h->nslots = nslots;
    h->size = size;
    h->start_unix_ms = now_ms(CLOCK_REALTIME);
    h->start_mono_ms = now_ms(CLOCK_MONOTONIC);
    h->global_off = sizeof(struct stats_shm_hdr);
    h->slots_off = h->global_off + global_bytes();
    h->slot_stride = slot_bytes();
    strncpy(h->instance, ipc_instance(), sizeof h->instance - 1); /* zero-padded */
    if (cfg != NULL) {
        h->cfg_threads = cfg->threads;
        h->cfg_segments = cfg->segments;
        h->cfg_segment_size = cfg->segment_size;
        h->cfg_port = cfg->port;
        h->cfg_delay_us = cfg->delay_us;
        memcpy(h->cfg_text, cfg->text, sizeof h->cfg_text);
        h->cfg_text[sizeof h->cfg_text - 1] = '\0';
    }
}

/* The object's name with this serial (0: the plain one; ipc_names.h). */
static int stats_name(char *buf, pid_t pid, uint32_t serial)
{
    return ipc_name_format(buf, IPC_KIND_STATS, geteuid(), pid, serial);
}

/* 1 when the /dev/shm entry name (no '/') is a regular object of this euid (its mode is for
 * stats_attach to judge). */
static int entry_is_ours(int dfd, const char *entry)
{
    struct stat st;

    return fstatat(dfd, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           st.st_uid == geteuid();
}

/* Finds the stats object of pid: the name (any serial) of an object of ours. Another user may
 * have taken the plain name first, so the name is found by listing and owner, not by pid alone.
 * Returns 0 and the name in buf, -ENOENT or -errno. */
static int find_name(pid_t pid, char *buf)
{
    char name[IPC_NAME_MAX];
    struct dirent *de;
    DIR *d = opendir(SHM_DIR);
    int rc = -ENOENT;

    if (d == NULL)
        return -errno;
    while (rc == -ENOENT && (de = readdir(d)) != NULL) {
        size_t len = strnlen(de->d_name, sizeof de->d_name);
        pid_t found;

        if (len + 2 > sizeof name)
            continue;
        name[0] = '/';
        memcpy(name + 1, de->d_name, len + 1);
        if (ipc_name_parse(name, IPC_KIND_STATS, geteuid(), &found, NULL) == 0 && found == pid &&
            entry_is_ours(dirfd(d), de->d_name)) {
            memcpy(buf, name, sizeof name);
            rc = 0;
        }
    }
    closedir(d);
    return rc;
}

int stats_create(struct stats_region **out, enum stats_role role, unsigned nslots,
                 const struct stats_config *cfg)
{
    _Static_assert(sizeof(struct stats_shm_hdr) % 8 == 0, "8-byte aligned blocks");
    struct stats_region *r;
    struct stats_shm_hdr h;
    struct stat st;
    size_t size;
    uint32_t serial = 0;
    void *mem;
    int fd, rc;

    if ((role != STATS_ROLE_CACHE && role != STATS_ROLE_PROXY) || nslots > STATS_SLOTS_MAX)
        return -EINVAL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->sp = calloc(nslots ? nslots : 1, sizeof *r->sp);
    if (r->sp == NULL) {
        free(r);
        return -ENOMEM;
    }
    (void)ipc_sweep_dead(geteuid(), 1u << IPC_KIND_STATS); /* leftovers of killed daemons */
    size = sizeof h + global_bytes() + (size_t)nslots * slot_bytes();
    rc = find_name(getpid(), r->name);
    if (rc != -ENOENT) {
        rc = rc == 0 ? -EEXIST : rc; /* one per pid */
        goto err_free;
    }
    /* Another user can take any name in /dev/shm first: never open one that exists, try a
     * random serial instead (readers find the object by listing, by owner). */
    for (int attempt = 0;; attempt++) {
        rc = stats_name(r->name, getpid(), serial);
        if (rc < 0)
            goto err_free;
        fd = shm_open(r->name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            break;
        rc = -errno;
        if (rc != -EEXIST || attempt == STATS_CREATE_ATTEMPTS - 1)
            goto err_free;
        rc = ipc_random_serial(&serial);
        if (rc < 0)
            goto err_free;
    }
    /* Exactly 0600 whatever the umask; the memory reserved now, so no store can SIGBUS. */
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0 || fstat(fd, &st) < 0) {
        rc = -errno;
        goto err_unlink;
    }
    do {
        rc = posix_fallocate(fd, 0, (off_t)size);
    } while (rc == EINTR);
    if (rc != 0) {
        rc = -rc;
        goto err_unlink;
    }
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto err_unlink;
    }
    close(fd);
    memset(&h, 0, sizeof h);
    fill_header(&h, role, nslots, size, cfg);
    memcpy(mem, &h, sizeof h); /* magic still 0: readers wait */
    r->map = mem;
    r->size = size;
    r->hdr = mem;
    r->h = h;
    r->h.magic = STATS_MAGIC;
    r->gblock = (uint64_t *)(void *)((unsigned char *)mem + h.global_off);
    r->slots = (unsigned char *)mem + h.slots_off;
    r->writer = 1;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    pthread_mutex_init(&r->lock, NULL);
    __atomic_store_n(&((struct stats_shm_hdr *)mem)->magic, STATS_MAGIC, __ATOMIC_RELEASE);
    *out = r;
    return 0;

err_unlink:
    shm_unlink(r->name);
    close(fd);
err_free:
    free(r->sp);
    free(r);
    return rc;
}

/* Stores the words [first, first + n) of the private copy under the global seqlock. Caller
 * holds the lock and has already changed them in r->gw. */
static void global_publish_locked(struct stats_region *r, const unsigned *idx, unsigned n)
{
    seq_open(&r->gblock[0], &r->gseq);
    for (unsigned i = 0; i < n; i++)
        put_word(&r->gblock[1 + idx[i]], r->gw[idx[i]]);
    seq_close(&r->gblock[0], &r->gseq);
}

static unsigned latency_bucket(uint64_t us)
{
    unsigned i = 0;

    while (i < STATS_LAT_BUCKETS - 1 && us > stats_latency_bounds_us[i])
        i++;
    return i;
}

static unsigned size_bucket(uint64_t bytes)
{
    unsigned i = 0;

    while (i < STATS_SIZE_BUCKETS - 1 && bytes > stats_size_bounds[i])
        i++;
    return i;
}

void stats_request_done(struct stats_region *r, enum stats_outcome outcome, uint64_t bytes,
                        uint64_t latency_us)
{
    if (r == NULL || (unsigned)outcome >= STATS_OUTCOMES)
        return;
    unsigned idx[6] = {outcome,
                       STATS_C_BYTES,
                       STATS_W_LAT_BUCKET + latency_bucket(latency_us),
                       STATS_W_LAT_SUM_US,
                       STATS_W_LAT_COUNT,
                       STATS_W_SIZE_BUCKET + size_bucket(bytes)};
    pthread_mutex_lock(&r->lock);
    r->gw[idx[0]]++;
    r->gw[idx[1]] += bytes;
    r->gw[idx[2]]++;
    r->gw[idx[3]] += latency_us;
    r->gw[idx[4]]++;
    r->gw[idx[5]]++;
    global_publish_locked(r, idx, 6);
    pthread_mutex_unlock(&r->lock);
}

void stats_add(struct stats_region *r, unsigned counter, uint64_t n)
{
    if (r == NULL || counter >= STATS_COUNTERS_END)
        return;
    pthread_mutex_lock(&r->lock);
    r->gw[counter] += n;
    global_publish_locked(r, &counter, 1);
    pthread_mutex_unlock(&r->lock);
}

void stats_set(struct stats_region *r, unsigned gauge, uint64_t v)
{
    if (r == NULL || gauge < STATS_COUNTERS_END || gauge >= STATS_GAUGES_END)
        return;
    pthread_mutex_lock(&r->lock);
    if (r->gw[gauge] != v) {
        r->gw[gauge] = v;
        global_publish_locked(r, &gauge, 1);
    }
    pthread_mutex_unlock(&r->lock);
}

/* STATS_G_ACTIVE += delta (+1 or -1). */
static void active_add(struct stats_region *r, int delta)
{
    unsigned g = STATS_G_ACTIVE;

    pthread_mutex_lock(&r->lock);
    r->gw[g] = delta > 0 ? r->gw[g] + 1 : (r->gw[g] > 0 ? r->gw[g] - 1 : 0);
    global_publish_locked(r, &g, 1);
    pthread_mutex_unlock(&r->lock);
}

void stats_slot_begin(struct stats_region *r, unsigned slot, pid_t peer, uint32_t serial,
                      const char *path, size_t path_len)
{
    uint64_t pw[STATS_PATH_WORDS] = {0};

    if (r == NULL || slot >= r->h.nslots)
        return;
    if (path_len > STATS_PATH_MAX - 1)
        path_len = STATS_PATH_MAX - 1;
    if (path != NULL)
        memcpy(pw, path, path_len);
    uint64_t *rec = slot_rec(r, slot);
    struct slot_priv *sp = &r->sp[slot];
    seq_open(&rec[0], &sp->seq);
    put_word(&rec[1 + STATS_S_STATE], STATS_SLOT_IN_USE);
    put_word(&rec[1 + STATS_S_WORKER], (uint64_t)my_tid());
    put_word(&rec[1 + STATS_S_PEER], (uint64_t)(peer > 0 ? peer : 0));
    put_word(&rec[1 + STATS_S_SERIAL], serial);
    put_word(&rec[1 + STATS_S_DONE], 0);
    put_word(&rec[1 + STATS_S_TOTAL], 0);
    put_word(&rec[1 + STATS_S_START_MS], now_ms(CLOCK_MONOTONIC));
    for (unsigned i = 0; i < STATS_PATH_WORDS; i++)
        put_word(&rec[1 + STATS_S_PATH + i], pw[i]);
    seq_close(&rec[0], &sp->seq);
    if (!sp->active) {
        sp->active = 1;
        active_add(r, 1);
    }
}

void stats_slot_progress(struct stats_region *r, unsigned slot, uint64_t done, uint64_t total)
{
    if (r == NULL || slot >= r->h.nslots)
        return;
    uint64_t *rec = slot_rec(r, slot);
    seq_open(&rec[0], &r->sp[slot].seq);
    put_word(&rec[1 + STATS_S_DONE], done);
    put_word(&rec[1 + STATS_S_TOTAL], total);
    seq_close(&rec[0], &r->sp[slot].seq);
}

void stats_slot_end(struct stats_region *r, unsigned slot, enum stats_slot_state state)
{
    if (r == NULL || slot >= r->h.nslots)
        return;
    uint64_t *rec = slot_rec(r, slot);
    struct slot_priv *sp = &r->sp[slot];
    seq_open(&rec[0], &sp->seq);
    put_word(&rec[1 + STATS_S_STATE], (uint64_t)state);
    put_word(&rec[1 + STATS_S_WORKER], 0);
    seq_close(&rec[0], &sp->seq);
    if (sp->active) {
        sp->active = 0;
        active_add(r, -1);
    }
}

void stats_slot_size(struct stats_region *r, unsigned slot, uint64_t size)
{
    if (r == NULL || slot >= r->h.nslots)
        return;
    uint64_t *rec = slot_rec(r, slot);
    seq_open(&rec[0], &r->sp[slot].seq);
    put_word(&rec[1 + STATS_S_SEG_SIZE], size);
    seq_close(&rec[0], &r->sp[slot].seq);
}

void stats_slot_state(struct stats_region *r, unsigned slot, enum stats_slot_state state,
                      uint32_t serial)
{
    if (r == NULL || slot >= r->h.nslots)
        return;
    uint64_t *rec = slot_rec(r, slot);
    seq_open(&rec[0], &r->sp[slot].seq);
    put_word(&rec[1 + STATS_S_STATE], (uint64_t)state);
    put_word(&rec[1 + STATS_S_SERIAL], serial);
    seq_close(&rec[0], &r->sp[slot].seq);
}

void stats_close(struct stats_region *r)
{
    struct stat st;

    if (r == NULL)
        return;
    if (r->writer) {
        /* Unlink only our own object: the name may have been removed and taken since. A
         * path lookup, not shm_open: with no descriptor left (EMFILE) it still cleans up. */
        char path[sizeof SHM_DIR + sizeof r->name];
        snprintf(path, sizeof path, "%s%s", SHM_DIR, r->name);
        if (lstat(path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
            shm_unlink(r->name);
        pthread_mutex_destroy(&r->lock);
    }
    munmap(r->map, r->size);
    free(r->sp);
    free(r);
}

/* --- reader ------------------------------------------------------------------------------- */

/* Checks a header copied from an object of st_size bytes. Returns 0 or -errno. */
static int check_header(const struct stats_shm_hdr *h, size_t st_size, pid_t pid)
{
    if (h->magic != STATS_MAGIC)
        return -EAGAIN;
    if (h->version != STATS_VERSION)
        return -EPROTO;
    if ((h->role != STATS_ROLE_CACHE && h->role != STATS_ROLE_PROXY) || h->pid != (uint32_t)pid ||
        h->uid != (uint32_t)geteuid() || h->size != st_size || h->nslots > STATS_SLOTS_MAX ||
        h->global_off < sizeof *h || h->global_off % 8 || h->slots_off % 8 || h->slot_stride % 8 ||
        h->slot_stride < slot_bytes() || h->global_off > st_size ||
        st_size - h->global_off < global_bytes() || h->slots_off < h->global_off + global_bytes() ||
        h->slots_off > st_size || (st_size - h->slots_off) / h->slot_stride < h->nslots)
        return -EBADMSG;
    return 0;
}

int stats_attach(struct stats_region **out, pid_t pid)
{
    char name[IPC_NAME_MAX];
    struct stats_region *r;
    struct stat st;
    void *mem;
    int fd, rc;

    rc = find_name(pid, name);
    if (rc < 0)
        return rc;
    fd = shm_open(name, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 07777) != 0600) {
        rc = -EPERM;
        goto err_close;
    }
    if (st.st_size < (off_t)sizeof(struct stats_shm_hdr)) {
        rc = st.st_size == 0 ? -EAGAIN : -EBADMSG; /* 0: created, not yet sized */
        goto err_close;
    }
    mem = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto err_close;
    }
    close(fd);
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        munmap(mem, (size_t)st.st_size);
        return -ENOMEM;
    }
    r->map = mem;
    r->size = (size_t)st.st_size;
    r->hdr = mem;
    if (__atomic_load_n(&r->hdr->magic, __ATOMIC_ACQUIRE) == STATS_MAGIC)
        memcpy(&r->h, mem, sizeof r->h); /* written once, before magic */
    rc = check_header(&r->h, r->size, pid);
    if (rc < 0) {
        munmap(mem, r->size);
        free(r);
        return rc;
    }
    r->h.cfg_text[sizeof r->h.cfg_text - 1] = '\0';
    r->h.instance[sizeof r->h.instance - 1] = '\0';
    r->gblock = (uint64_t *)(void *)((unsigned char *)mem + r->h.global_off);
    r->slots = (unsigned char *)mem + r->h.slots_off;
    *out = r;
    return 0;

err_close:
    close(fd);
    return rc;
}

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

    return (x > y) - (x < y);
}

int stats_list(pid_t *pids, unsigned max)
{
    char name[IPC_NAME_MAX];
    struct dirent *de;
    unsigned n = 0;
    DIR *d = opendir(SHM_DIR);

    if (d == NULL)
        return -errno;
    while ((de = readdir(d)) != NULL) {
        size_t len = strnlen(de->d_name, sizeof de->d_name);
        pid_t pid;

        if (len + 2 > sizeof name)
            continue;
        name[0] = '/';
        memcpy(name + 1, de->d_name, len + 1);
        if (ipc_name_parse(name, IPC_KIND_STATS, geteuid(), &pid, NULL) < 0 ||
            !entry_is_ours(dirfd(d), de->d_name))
            continue; /* another user's object under our name is not a daemon of ours */
        if (n < max)
            pids[n] = pid;
        n++;
    }
    closedir(d);
    qsort(pids, n < max ? n : max, sizeof *pids, cmp_pid);
    return (int)n;
}

int stats_snapshot(const struct stats_region *r, struct stats_snapshot *out)
{
    const struct stats_shm_hdr *h = &r->h;
    uint64_t now = now_ms(CLOCK_MONOTONIC);
    int rc;

    memset(out, 0, sizeof *out);
    rc = seq_read(&r->gblock[0], &r->gblock[1], STATS_GLOBAL_WORDS, out->w);
    if (rc < 0)
        return rc;
    out->role = (enum stats_role)h->role;
    out->pid = (pid_t)h->pid;
    out->uid = (uid_t)h->uid;
    out->nslots = h->nslots;
    out->start_unix_ms = h->start_unix_ms;
    out->uptime_ms = now > h->start_mono_ms ? now - h->start_mono_ms : 0;
    out->config.threads = h->cfg_threads;
    out->config.segments = h->cfg_segments;
    out->config.segment_size = h->cfg_segment_size;
    out->config.port = h->cfg_port;
    out->config.delay_us = h->cfg_delay_us;
    memcpy(out->config.text, h->cfg_text, sizeof out->config.text);
    out->config.text[sizeof out->config.text - 1] = '\0';
    memcpy(out->instance, h->instance, sizeof out->instance - 1);
    out->instance[sizeof out->instance - 1] = '\0';
    return 0;
}

int stats_slot_read(const struct stats_region *r, unsigned slot, struct stats_slot *out)
{
    uint64_t w[STATS_SLOT_WORDS];
    const uint64_t *rec;
    int rc;

    if (slot >= r->h.nslots)
        return -EINVAL;
    rec = slot_rec(r, slot);
    rc = seq_read(&rec[0], &rec[1], STATS_SLOT_WORDS, w);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof *out);
    out->state = w[STATS_S_STATE] <= STATS_SLOT_ABANDONED ? (enum stats_slot_state)w[STATS_S_STATE]
                                                          : STATS_SLOT_FREE;
    out->worker = (pid_t)w[STATS_S_WORKER];
    out->peer = (pid_t)w[STATS_S_PEER];
    out->serial = (uint32_t)w[STATS_S_SERIAL];
    out->done = w[STATS_S_DONE];
    out->total = w[STATS_S_TOTAL];
    out->start_mono_ms = w[STATS_S_START_MS];
    out->seg_size = w[STATS_S_SEG_SIZE];
    memcpy(out->path, &w[STATS_S_PATH], STATS_PATH_MAX);
    out->path[STATS_PATH_MAX - 1] = '\0';
    return 0;
}

const char *stats_role_name(enum stats_role role)
{
    switch (role) {
    case STATS_ROLE_CACHE:
        return "cache";
    case STATS_ROLE_PROXY:
        return "proxy";
    }
    return NULL;
}

const char *stats_slot_state_name(enum stats_slot_state state)
{
    switch (state) {
    case STATS_SLOT_FREE:
        return "FREE";
    case STATS_SLOT_IN_USE:
        return "IN_USE";
    case STATS_SLOT_ABANDONED:
        return "ABANDONED";
    }
    return NULL;
}

const char *stats_word_name(unsigned word)
{
    static const char *const names[STATS_GAUGES_END] = {
        [STATS_HIT] = "hit",
        [STATS_MISS] = "miss",
        [STATS_FILL] = "fill",
        [STATS_STALE] = "stale",
        [STATS_ORIGIN] = "origin",
        [STATS_NOT_FOUND] = "not_found",
        [STATS_ERROR] = "error",
        [STATS_CANCELLED] = "cancelled",
        [STATS_C_BYTES] = "bytes",
        [STATS_C_MESSAGES] = "messages",
        [STATS_C_REJECTED] = "rejected",
        [STATS_C_EVICTIONS] = "evictions",
        [STATS_C_PURGES] = "purges",
        [STATS_C_ORIGIN_FETCHES] = "origin_fetches",
        [STATS_C_RETRIES] = "retries",
        [STATS_C_NOT_MODIFIED] = "not_modified",
        [STATS_G_QUEUE_DEPTH] = "queue_depth",
        [STATS_G_QUEUE_CAP] = "queue_capacity",
        [STATS_G_STORE_ENTRIES] = "store_entries",
        [STATS_G_STORE_BYTES] = "store_bytes",
        [STATS_G_ACTIVE] = "active",
    };

    return word < STATS_GAUGES_END ? names[word] : NULL;
}
