/* store.c - entries filled from the origin, kept as files; LRU bound; fills read as they grow. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* O_CLOEXEC with openat, dirfd */
#include "store.h"
#include "clock.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC        "GFSTORE4"
#define MAGIC_OLD    "GFSTORE" /* any earlier version: discarded at open */
#define VALID_MAX    128u      /* longest ETag or Last-Modified kept (origin_fetch passes less) */
#define ENTRY_PREFIX "e-"
#define TMP_PREFIX   ".tmp-"
#define NAME_CAP     64
#define NBUCKETS     4096u        /* hash buckets of the entry table (chained) */
#define MEM_FILL_MAX (64u << 20)  /* largest body a fill keeps in memory when the disk refuses */
#define MEM_ALL_MAX  (256u << 20) /* all such bodies at once */

struct entry {
    char *path; /* NUL-terminated, path_len bytes */
    size_t path_len;
    uint64_t hash;
    uint64_t size;        /* the file's bytes */
    uint64_t expires_ms;  /* Unix ms after which it is stale; 0: never */
    char *etag, *lastmod; /* the origin's validators, or NULL */
    uint64_t vlen;        /* bytes of validators after the body in the file */
    uint32_t crc;         /* CRC-32 of the body */
    /* The file was last known to match crc with this inode and change time (a write, a
     * truncate, a rename changes it); verified 0: a hit checks it. */
    int verified;
    ino_t vino;
    struct timespec vctime;
    struct entry *hnext;       /* bucket chain */
    struct entry *prev, *next; /* LRU list: head is the least recently used */
};

struct fill {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* monotonic clock */
    char *path;
    size_t path_len;
    uint64_t hash;
    char tmp[NAME_CAP]; /* temporary name in the store directory */
    int fd;             /* the temporary file, read and written with pread/pwrite; -1: none */
    /* The disk refused the fill (full, read-only, unwritable): the body is kept in memory
     * instead, served and never kept; mem_cap bytes (0: not yet, or no room). */
    unsigned char *mem;
    uint64_t mem_cap;
    int disk_err; /* why there is no temporary file (-errno), 0 when there is one */
    uint32_t crc; /* CRC-32 of the body written so far (only the fetch writes) */
    struct store *st;
    int dirfd;         /* the store's directory (borrowed) */
    uint64_t offset;   /* header + path: where the body starts */
    unsigned refs;     /* guarded by the store's lock */
    struct fill *next; /* the store's fills in progress; guarded by the store's lock */
    int purged;        /* a purge or ban matched it: not joined, not kept (the store's lock) */
    /* guarded by lock: */
    int header, failed, done;
    int keep;             /* the origin allows keeping it */
    uint64_t expires_ms;  /* as the entry's */
    char *etag, *lastmod; /* the response's validators (kept after the body), or NULL */
    /* A revalidation of an expired entry: its validators (sent with the fetch) and body; a
     * 304 copies that body into this fill. */
    char *old_etag, *old_lastmod;
    uint64_t old_offset, old_length;
    uint64_t old_expires_ms; /* when the old entry went stale */
    uint32_t old_crc;        /* its body's CRC-32 */
    int has_old;             /* a stale entry stands behind this fill */
    int revalidated;         /* answered 304 */
    int stale;               /* the origin failed: the old entry was served (stale-if-error) */
    uint64_t stale_ms;       /* the store's window */
    enum gf_status status;
    uint64_t length, written;
};

struct store {
    pthread_mutex_t lock; /* guards everything below */
    int dirfd;
    char *dir;
    uint64_t max_bytes;
    uint64_t ttl_ms;   /* freshness of responses that say nothing; 0: forever */
    uint64_t stale_ms; /* --stale-if-error window; 0: none */
    struct entry *buckets[NBUCKETS];
    struct entry *lru_head, *lru_tail;
    struct fill *fills; /* in progress */
    unsigned nfills;
    unsigned serial;    /* temporary names */
    uint64_t mem_bytes; /* bodies of fills held in memory */
    struct store_stats st;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts); /* expiry times survive a restart: wall clock */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t hash_path(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void entry_name(char *out, uint64_t hash)
{
    snprintf(out, NAME_CAP, ENTRY_PREFIX "%016llx", (unsigned long long)hash);
}

static void lru_unlink(struct store *st, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        st->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        st->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(struct store *st, struct entry *e) /* as the most recently used */
{
    e->prev = st->lru_tail;
    e->next = NULL;
    if (st->lru_tail)
        st->lru_tail->next = e;
    else
        st->lru_head = e;
    st->lru_tail = e;
}

/* The entry whose file name this hash gives (one at most: a later path with the same hash
 * replaces it). */
static struct entry **bucket_slot(struct store *st, uint64_t hash)
{
    struct entry **pp = &st->buckets[hash % NBUCKETS];

    while (*pp != NULL && (*pp)->hash != hash)
        pp = &(*pp)->hnext;
    return pp;
}

/* Forgets e (and unlinks its file when unlink_file). */
static void entry_drop(struct store *st, struct entry *e, int unlink_file)
{
    struct entry **pp = bucket_slot(st, e->hash);
    char name[NAME_CAP];

    if (*pp == e)
        *pp = e->hnext;
    lru_unlink(st, e);
    st->st.entries--;
    st->st.bytes -= e->size;
    if (unlink_file) {
        entry_name(name, e->hash);
        if (unlinkat(st->dirfd, name, 0) < 0 && errno != ENOENT)
            log_warn(errno, "store: cannot remove '%s/%s'", st->dir, name);
    }
    free(e->path);
    free(e->etag);
    free(e->lastmod);
    free(e);
}

/* Evicts the least recently used entries until need more bytes fit under the bound. */
static void evict_for(struct store *st, uint64_t need)
{
    while (st->lru_head != NULL && st->st.bytes + need > st->max_bytes) {
        struct entry *e = st->lru_head;
        log_info("store: evicted '%s' (%llu bytes, least recently used)", e->path,
                 (unsigned long long)e->size);
        st->st.evictions++;
        entry_drop(st, e, 1);
    }
}

/* Adds an entry as the most recently used, replacing one of the same hash. */
static int entry_add(struct store *st, const char *path, size_t path_len, uint64_t hash,
                     uint64_t size, uint64_t expires_ms, const char *etag, const char *lastmod,
                     uint32_t crc)
{
    struct entry **pp = bucket_slot(st, hash);
    struct entry *e;

    if (*pp != NULL)
        entry_drop(st, *pp, 0); /* its file was just replaced by the rename */
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    e->path = strndup(path, path_len);
    if (e->path == NULL) {
        free(e);
        return -ENOMEM;
    }
    e->etag = etag != NULL ? strdup(etag) : NULL;
    e->lastmod = lastmod != NULL ? strdup(lastmod) : NULL; /* NULL on ENOMEM: no validator */
    e->vlen = (etag ? strlen(etag) : 0) + (lastmod ? strlen(lastmod) : 0);
    e->path_len = path_len;
    e->hash = hash;
    e->size = size;
    e->expires_ms = expires_ms;
    e->crc = crc;
    pp = bucket_slot(st, hash);
    e->hnext = *pp;
    *pp = e;
    lru_push(st, e);
    st->st.entries++;
    st->st.bytes += size;
    return 0;
}

static struct entry *entry_find(struct store *st, const char *path, size_t path_len, uint64_t hash)
{
    struct entry *e = *bucket_slot(st, hash);

    if (e != NULL && e->path_len == path_len && memcmp(e->path, path, path_len) == 0)
        return e;
    return NULL;
}

/* ---- the header ------------------------------------------------------------------------ */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static uint64_t get_u64(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    const unsigned char *p = buf;

    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    unsigned char *p = buf;
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Reads and checks an entry file's header: the magic, a path of GF_PATH_MAX bytes at most that
 * hashes to hash, and a file size of exactly header + path + body. Stores the path (malloc'ed)
 * and the body's length. Returns 0 or -EBADMSG (damaged), -errno. */
static char *read_validator(int fd, uint64_t off, uint64_t len)
{
    char *v;

    if (len == 0)
        return NULL;
    v = malloc(len + 1);
    if (v == NULL)
        return NULL;
    if (pread_full(fd, v, len, off) != (ssize_t)len || memchr(v, '\0', len) != NULL) {
        free(v);
        return NULL;
    }
    v[len] = '\0';
    return v;
}

static int header_read(int fd, uint64_t hash, char **path, size_t *path_len, uint64_t *body,
                       uint64_t *expires_ms, uint32_t *crc, char **etag, char **lastmod)
{
    unsigned char h[STORE_HEADER_SIZE];
    struct stat sb;
    uint64_t plen, blen, elen, llen;
    char *p;

    if (fstat(fd, &sb) < 0)
        return -errno;
    /* The magic first: an older format's header may be shorter. */
    if (pread_full(fd, h, 8, 0) != 8)
        return -EBADMSG;
    if (memcmp(h, MAGIC, 8) != 0)
        return memcmp(h, MAGIC_OLD, 7) == 0 ? -EPROTO : -EBADMSG;
    if (pread_full(fd, h, sizeof h, 0) != (ssize_t)sizeof h)
        return -EBADMSG;
    plen = get_u64(h + 8, 4);
    elen = get_u64(h + 12, 2);
    llen = get_u64(h + 14, 2);
    blen = get_u64(h + 16, 8);
    if (plen == 0 || plen > GF_PATH_MAX || blen > UINT64_MAX / 2 || elen >= VALID_MAX ||
        llen >= VALID_MAX || (uint64_t)sb.st_size != STORE_HEADER_SIZE + plen + blen + elen + llen)
        return -EBADMSG;
    p = malloc(plen + 1);
    if (p == NULL)
        return -ENOMEM;
    if (pread_full(fd, p, plen, STORE_HEADER_SIZE) != (ssize_t)plen || p[0] != '/' ||
        memchr(p, '\0', plen) != NULL || hash_path(p, plen) != hash) {
        free(p);
        return -EBADMSG;
    }
    p[plen] = '\0';
    *path = p;
    *path_len = plen;
    *body = blen;
    *expires_ms = get_u64(h + 24, 8);
    *crc = (uint32_t)get_u64(h + 32, 4);
    *etag = read_validator(fd, STORE_HEADER_SIZE + plen + blen, elen);
    *lastmod = read_validator(fd, STORE_HEADER_SIZE + plen + blen + elen, llen);
    return 0;
}

/* ---- open: find the entries again -------------------------------------------------------- */

struct found {
    char *path;
    size_t path_len;
    uint64_t hash, size, expires_ms;
    uint32_t crc;
    char *etag, *lastmod;
    struct timespec mtime;
};

static int found_cmp(const void *a, const void *b)
{
    const struct found *x = a, *y = b;

    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

static void discard(struct store *st, const char *name, const char *why)
{
    log_warn(0, "store: removed '%s/%s': %s", st->dir, name, why);
    if (unlinkat(st->dirfd, name, 0) < 0 && errno != ENOENT)
        log_warn(errno, "store: cannot remove '%s/%s'", st->dir, name);
    st->st.discarded++;
}

/* Checks one directory entry; a good entry file is appended to *found. */
static int scan_one(struct store *st, const char *name, struct found **found, size_t *n,
                    size_t *cap)
{
    unsigned long long hash;
    char canon[NAME_CAP];
    struct stat sb;
    int fd, rc;

    if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
        discard(st, name, "a fill that did not complete (partial entry)");
        return 0;
    }
    if (strncmp(name, ENTRY_PREFIX, strlen(ENTRY_PREFIX)) != 0 ||
        sscanf(name + strlen(ENTRY_PREFIX), "%16llx", &hash) != 1)
        return 0; /* not ours: left alone */
    entry_name(canon, hash);
    if (strcmp(canon, name) != 0)
        return 0;
    fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        discard(st, name, strerror(errno));
        return 0;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        discard(st, name, "not a regular file");
        return 0;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? 2 * *cap : 64;
        struct found *nf = realloc(*found, ncap * sizeof *nf);
        if (nf == NULL) {
            close(fd);
            return -ENOMEM;
        }
        *found = nf;
        *cap = ncap;
    }
    struct found *f = &(*found)[*n];
    uint64_t body = 0;
    rc = header_read(fd, hash, &f->path, &f->path_len, &body, &f->expires_ms, &f->crc, &f->etag,
                     &f->lastmod);
    close(fd);
    if (rc == -ENOMEM)
        return rc;
    if (rc == -EPROTO) {
        discard(st, name, "an entry of an older format");
        return 0;
    }
    if (rc < 0) {
        discard(st, name, "damaged (bad header, or size not matching it)");
        return 0;
    }
    f->hash = hash;
    f->size = (uint64_t)sb.st_size;
    f->mtime = sb.st_mtim;
    (*n)++;
    return 0;
}

static int scan(struct store *st)
{
    struct found *found = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    int rc = 0, fd = dup(st->dirfd);
    DIR *d;

    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (d == NULL) {
        rc = -errno;
        close(fd);
        return rc;
    }
    while (rc == 0 && (de = readdir(d)) != NULL)
        rc = scan_one(st, de->d_name, &found, &n, &cap);
    closedir(d);
    if (rc == 0) {
        if (n > 1)
            qsort(found, n, sizeof *found, found_cmp);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = entry_add(st, found[i].path, found[i].path_len, found[i].hash, found[i].size,
                           found[i].expires_ms, found[i].etag, found[i].lastmod, found[i].crc);
    }
    for (size_t i = 0; i < n; i++) {
        free(found[i].path);
        free(found[i].etag);
        free(found[i].lastmod);
    }
    free(found);
    if (rc == 0)
        evict_for(st, 0); /* the bound may be lower than last time */
    return rc;
}

int store_open(struct store **out, const char *dir, uint64_t max_bytes, unsigned ttl_s)
{
    struct store *st;
    int rc;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return -ENOMEM;
    st->dir = strdup(dir);
    st->max_bytes = max_bytes;
    st->ttl_ms = (uint64_t)ttl_s * 1000u;
    st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->dirfd < 0 || st->dir == NULL) {
        rc = st->dir == NULL ? -ENOMEM : -errno;
        goto err;
    }
    if (faccessat(st->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        rc = -errno;
        goto err;
    }
    pthread_mutex_init(&st->lock, NULL);
    rc = scan(st);
    if (rc < 0) {
        store_close(st);
        return rc;
    }
    *out = st;
    return 0;
err:
    if (st->dirfd >= 0)
        close(st->dirfd);
    free(st->dir);
    free(st);
    return rc;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    while (st->lru_head != NULL)
        entry_drop(st, st->lru_head, 0);
    pthread_mutex_destroy(&st->lock);
    close(st->dirfd);
    free(st->dir);
    free(st);
}

/* ---- lookups and fills ------------------------------------------------------------------- */

/* Opens e's file for a request. Returns 0, or -errno (the file went away or was damaged
 * under us: the caller drops the entry). */
static int entry_open(struct store *st, struct entry *e, struct store_hit *hit)
{
    char name[NAME_CAP];
    struct stat sb;
    int fd;

    entry_name(name, e->hash);
    fd = openat(st->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != e->size) {
        close(fd);
        return -EBADMSG;
    }
    hit->fd = fd;
    hit->offset = STORE_HEADER_SIZE + e->path_len;
    hit->length = e->size - hit->offset - e->vlen;
    hit->crc = e->crc;
    hit->expires_ms = e->expires_ms;
    hit->verify = !(e->verified && sb.st_ino == e->vino && sb.st_ctim.tv_sec == e->vctime.tv_sec &&
                    sb.st_ctim.tv_nsec == e->vctime.tv_nsec);
    return 0;
}

/* Errors of the disk or the directory, not of the fill: the body can still be served. */
static int disk_refuses(int err)
{
    return err == -ENOSPC || err == -EDQUOT || err == -EROFS || err == -EACCES || err == -EPERM ||
           err == -EIO;
}

static struct fill *fill_new(struct store *st, const char *path, size_t path_len, uint64_t hash,
                             int *err)
{
    struct fill *f = calloc(1, sizeof *f);
    pthread_condattr_t ca;

    *err = -ENOMEM;
    if (f == NULL)
        return NULL;
    f->path = strndup(path, path_len);
    if (f->path == NULL) {
        free(f);
        return NULL;
    }
    f->path_len = path_len;
    f->hash = hash;
    f->offset = STORE_HEADER_SIZE + path_len;
    f->dirfd = st->dirfd;
    snprintf(f->tmp, sizeof f->tmp, TMP_PREFIX "%016llx-%ld-%u", (unsigned long long)hash,
             (long)getpid(), ++st->serial);
    f->st = st;
    f->fd = openat(st->dirfd, f->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        *err = -errno;
        if (!disk_refuses(*err)) {
            free(f->path);
            free(f);
            return NULL;
        }
        /* Served from memory if its length allows (fill_header); never kept. */
        log_warn(-*err,
                 "store: cannot create a file for '%s' in '%s'; serving it from memory, "
                 "not keeping it",
                 f->path, st->dir);
        f->disk_err = *err;
        f->keep = 0;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->changed, &ca);
    pthread_condattr_destroy(&ca);
    return f;
}

int store_get(struct store *st, const char *path, size_t path_len, unsigned max_fills,
              struct store_hit *hit, struct fill **fill)
{
    uint64_t hash = hash_path(path, path_len);
    struct entry *e, *old = NULL;
    struct fill *f;
    int rc;

    pthread_mutex_lock(&st->lock);
    e = entry_find(st, path, path_len, hash);
    if (e != NULL && e->expires_ms != 0 && now_ms() >= e->expires_ms) {
        if (e->etag != NULL || e->lastmod != NULL || st->stale_ms > 0) {
            old = e; /* kept until the revalidation replaces it */
        } else {
            log_debug("store: '%s' expired; fetching it again", e->path);
            st->st.expired++;
            entry_drop(st, e, 1);
        }
        e = NULL;
    }
    if (e != NULL) {
        rc = entry_open(st, e, hit);
        if (rc == 0) {
            lru_unlink(st, e);
            lru_push(st, e);
            st->st.hits++;
            pthread_mutex_unlock(&st->lock);
            return STORE_HIT;
        }
        log_warn(rc == -EBADMSG ? 0 : -rc, "store: the entry of '%s' is %s; fetching it again",
                 e->path, rc == -EBADMSG ? "damaged" : "gone");
        entry_drop(st, e, rc == -EBADMSG);
    }
    for (f = st->fills; f != NULL; f = f->next) {
        if (!f->purged && f->hash == hash && f->path_len == path_len &&
            memcmp(f->path, path, path_len) == 0) {
            f->refs++;
            st->st.coalesced++;
            pthread_mutex_unlock(&st->lock);
            *fill = f;
            return STORE_JOIN;
        }
    }
    if (st->nfills >= max_fills) {
        pthread_mutex_unlock(&st->lock);
        return -EBUSY;
    }
    f = fill_new(st, path, path_len, hash, &rc);
    if (f == NULL) {
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    f->expires_ms = st->ttl_ms; /* turned into a time by fill_header */
    f->stale_ms = st->stale_ms;
    if (old != NULL) {
        log_debug("store: '%s' expired; %s", old->path,
                  old->etag || old->lastmod ? "revalidating it" : "fetching it again");
        f->has_old = 1;
        f->old_expires_ms = old->expires_ms;
        st->st.expired++;
        f->old_etag = old->etag != NULL ? strdup(old->etag) : NULL;
        f->old_lastmod = old->lastmod != NULL ? strdup(old->lastmod) : NULL;
        f->old_offset = STORE_HEADER_SIZE + old->path_len;
        f->old_length = old->size - f->old_offset - old->vlen;
        f->old_crc = old->crc;
    }
    f->refs = 2; /* the caller's and the fetch's */
    f->next = st->fills;
    st->fills = f;
    st->nfills++;
    st->st.fills++;
    pthread_mutex_unlock(&st->lock);
    *fill = f;
    return STORE_LEAD;
}

void fill_wait(struct fill *f, int have_header, uint64_t have, int ms, struct fill_state *out)
{
    struct timespec ts = clock_mono_in(ms);

    pthread_mutex_lock(&f->lock);
    while (!f->done && (!f->header || (have_header && f->written <= have)))
        if (pthread_cond_timedwait(&f->changed, &f->lock, &ts) == ETIMEDOUT)
            break;
    out->header = f->header;
    out->status = f->status;
    out->length = f->length;
    out->written = f->written;
    out->failed = f->failed;
    out->done = f->done;
    pthread_mutex_unlock(&f->lock);
}

ssize_t fill_read(struct fill *f, void *buf, size_t n, uint64_t off)
{
    if (f->disk_err != 0) { /* only bytes fill_wait reported: written, never moved */
        if (f->mem == NULL || off + n > f->mem_cap)
            return -EIO;
        memcpy(buf, f->mem + off, n);
        return (ssize_t)n;
    }
    ssize_t got = pread_full(f->fd, buf, n, f->offset + off);

    return got >= 0 && (size_t)got != n ? -EIO : got;
}

const char *fill_path(const struct fill *f)
{
    return f->path;
}

int fill_validators(const struct fill *f, const char **etag, const char **last_modified)
{
    *etag = f->old_etag;
    *last_modified = f->old_lastmod;
    return f->old_etag != NULL || f->old_lastmod != NULL;
}

int fill_revalidated(const struct fill *f)
{
    return f->revalidated;
}

int fill_stale(const struct fill *f)
{
    return f->stale;
}

void store_set_stale_if_error(struct store *st, unsigned seconds)
{
    pthread_mutex_lock(&st->lock);
    st->stale_ms = (uint64_t)seconds * 1000u;
    pthread_mutex_unlock(&st->lock);
}

/* The origin failed: may the stale entry behind the fill be served instead? */
static int stale_usable(const struct fill *f)
{
    return f->has_old && f->stale_ms > 0 && now_ms() < f->old_expires_ms + f->stale_ms;
}

static void fill_free(struct fill *f)
{
    if (f->mem != NULL) {
        pthread_mutex_lock(&f->st->lock);
        f->st->mem_bytes -= f->mem_cap;
        pthread_mutex_unlock(&f->st->lock);
        free(f->mem);
    }
    if (f->fd >= 0)
        close(f->fd);
    pthread_cond_destroy(&f->changed);
    pthread_mutex_destroy(&f->lock);
    free(f->path);
    free(f->etag);
    free(f->lastmod);
    free(f->old_etag);
    free(f->old_lastmod);
    free(f);
}

void fill_put(struct store *st, struct fill *f)
{
    unsigned left;

    if (f == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    left = --f->refs;
    pthread_mutex_unlock(&st->lock);
    if (left == 0)
        fill_free(f);
}

static int fill_copy_old(struct fill *f, const struct origin_meta *meta, int stale);

/* The body of length bytes goes to memory instead of the disk (which refused it: f->disk_err),
 * if it is small enough and there is room. Returns 0 or the disk's error. */
static int fill_to_memory(struct fill *f, uint64_t length)
{
    struct store *st = f->st;
    int ok = 0;

    pthread_mutex_lock(&st->lock);
    if (length <= MEM_FILL_MAX && st->mem_bytes + length <= MEM_ALL_MAX) {
        f->mem = malloc(length > 0 ? (size_t)length : 1);
        ok = f->mem != NULL;
        if (ok) {
            f->mem_cap = length;
            st->mem_bytes += length;
        }
    }
    pthread_mutex_unlock(&st->lock);
    if (!ok) {
        log_warn(-f->disk_err, "store: '%s' (%llu bytes) can be neither written nor held in memory",
                 f->path, (unsigned long long)length);
        return f->disk_err;
    }
    return 0;
}

/* Evicts least recently used entries until at least need bytes of their files are gone (the
 * disk is full below the store's bound). Returns non-zero when something was evicted. */
static int evict_for_disk(struct store *st, uint64_t need)
{
    uint64_t freed = 0;

    pthread_mutex_lock(&st->lock);
    while (st->lru_head != NULL && freed < need) {
        struct entry *e = st->lru_head;
        log_info("store: evicted '%s' (%llu bytes): the disk is full", e->path,
                 (unsigned long long)e->size);
        st->st.evictions++;
        freed += e->size;
        entry_drop(st, e, 1);
    }
    pthread_mutex_unlock(&st->lock);
    return freed > 0;
}

/* Reserves the whole file of an OK fill, so that a full disk is found before the first byte
 * is promised to a reader. When the disk is full even after evicting, or refuses otherwise,
 * the fill goes on in memory (fill_to_memory). Returns 0 or -errno. */
static int fill_reserve(struct fill *f, uint64_t size)
{
    int err = posix_fallocate(f->fd, 0, (off_t)size);
    struct statvfs vfs;

    /* Evicting helps only a body the file system can hold at all. */
    if ((err == ENOSPC || err == EDQUOT) && fstatvfs(f->fd, &vfs) == 0 &&
        size <= (uint64_t)vfs.f_blocks * vfs.f_frsize && evict_for_disk(f->st, size))
        err = posix_fallocate(f->fd, 0, (off_t)size);
    if (err == 0 || err == EOPNOTSUPP || err == EINVAL) /* no reservation: found at the write */
        return 0;
    if (!disk_refuses(-err))
        return -err;
    log_warn(err,
             "store: no room for '%s' (%llu bytes) in '%s'; serving it from memory, not "
             "keeping it",
             f->path, (unsigned long long)size, f->st->dir);
    close(f->fd);
    f->fd = -1;
    if (unlinkat(f->dirfd, f->tmp, 0) < 0 && errno != ENOENT)
        log_warn(errno, "store: cannot remove '%s/%s'", f->st->dir, f->tmp);
    f->disk_err = -err;
    return 0;
}

int fill_header(struct fill *f, enum gf_status status, uint64_t length,
                const struct origin_meta *meta)
{
    unsigned char h[STORE_HEADER_SIZE];
    uint64_t ttl_ms = f->expires_ms;
    int rc = 0;

    if (meta->not_modified) /* only a revalidation asks a conditional question */
        return fill_copy_old(f, meta, 0);
    if (status == GF_ERROR && !f->stale && stale_usable(f)) {
        const struct origin_meta none = {.max_age = 0};
        log_warn(0, "store: the origin failed for '%s'; serving the stale entry", f->path);
        return fill_copy_old(f, &none, 1);
    }
    /* Kept unless the origin forbids it or makes it stale at once; fresh for what it said,
     * else for --ttl (0: forever). */
    f->keep = !meta->no_store && meta->max_age != 0 && f->disk_err == 0;
    free(f->etag);
    free(f->lastmod);
    f->etag = meta->etag != NULL && strlen(meta->etag) < VALID_MAX ? strdup(meta->etag) : NULL;
    f->lastmod = meta->last_modified != NULL && strlen(meta->last_modified) < VALID_MAX
                     ? strdup(meta->last_modified)
                     : NULL;
    if (meta->max_age > 0)
        f->expires_ms = now_ms() + (uint64_t)meta->max_age * 1000u;
    else
        f->expires_ms = ttl_ms ? now_ms() + ttl_ms : 0;
    if (status == GF_OK && f->disk_err == 0) {
        memset(h, 0, sizeof h);
        memcpy(h, MAGIC, 8);
        put_u32(h + 8, (uint32_t)f->path_len);
        put_u16(h + 12, f->etag ? strlen(f->etag) : 0);
        put_u16(h + 14, f->lastmod ? strlen(f->lastmod) : 0);
        put_u64(h + 16, length);
        put_u64(h + 24, f->expires_ms);
        /* h + 32: the body's CRC-32, written by fill_done */
        rc = fill_reserve(f, f->offset + length);
        if (rc == 0 && f->disk_err == 0)
            rc = pwrite_full(f->fd, h, sizeof h, 0);
        if (rc == 0 && f->disk_err == 0)
            rc = pwrite_full(f->fd, f->path, f->path_len, STORE_HEADER_SIZE);
        if (rc < 0)
            return rc;
    }
    if (status == GF_OK && f->disk_err != 0) {
        f->keep = 0;
        rc = fill_to_memory(f, length);
        if (rc < 0)
            return rc;
    }
    pthread_mutex_lock(&f->lock);
    f->header = 1;
    f->status = status;
    f->length = status == GF_OK ? length : 0;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int fill_data(struct fill *f, const void *buf, size_t n)
{
    uint64_t at;
    int rc;

    pthread_mutex_lock(&f->lock);
    at = f->written; /* only the fetch writes: stable while it runs */
    pthread_mutex_unlock(&f->lock);
    if (f->disk_err != 0) {
        if (f->mem == NULL || at + n > f->mem_cap)
            return -EBADMSG; /* more than the length announced (origin_fetch checks it too) */
        memcpy(f->mem + at, buf, n);
        rc = 0;
    } else {
        rc = pwrite_full(f->fd, buf, n, f->offset + at);
    }
    if (rc < 0) {
        log_warn(-rc, "store: writing '%s' failed", f->path);
        return rc;
    }
    f->crc = (uint32_t)crc32_z(f->crc, buf, n);
    pthread_mutex_lock(&f->lock);
    f->written += n;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

/* A 304 to a revalidation: the kept body, copied from the old entry's file into this fill,
 * with the freshness and validators the 304 gave (else the old ones, and --ttl). stale: the
 * origin failed; the old body is served (meta says not to keep the copy: the entry stays). */
static int fill_copy_old(struct fill *f, const struct origin_meta *meta, int stale)
{
    struct origin_meta m = *meta;
    unsigned char buf[65536];
    char name[NAME_CAP];
    uint64_t off = 0;
    int fd, rc;

    if (!stale && f->old_etag == NULL && f->old_lastmod == NULL)
        return -EPROTO; /* a 304 to a question not asked */
    /* A 304 naming another ETag does not vouch for the kept body (RFC 9111, 4.3.4). */
    if (!stale && meta->etag != NULL && f->old_etag != NULL &&
        strcmp(meta->etag, f->old_etag) != 0) {
        log_warn(0,
                 "store: the origin's 304 for '%s' names ETag %s, the kept entry has %s: not "
                 "using the kept body",
                 f->path, meta->etag, f->old_etag);
        return -ESTALE;
    }
    entry_name(name, f->hash);
    fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size < f->old_offset + f->old_length) {
        close(fd);
        return -EBADMSG;
    }
    /* Checked whole before a byte of it is passed on: a damaged body is never served. */
    uint32_t crc = 0;
    for (off = 0; off < f->old_length;) {
        size_t want = f->old_length - off < sizeof buf ? (size_t)(f->old_length - off) : sizeof buf;
        if (pread_full(fd, buf, want, f->old_offset + off) != (ssize_t)want)
            break;
        crc = (uint32_t)crc32_z(crc, buf, want);
        off += want;
    }
    if (off < f->old_length || crc != f->old_crc) {
        log_warn(0, "store: the kept entry of '%s' is damaged (%s); not serving it", f->path,
                 off < f->old_length ? "shorter than its header says" : "CRC-32 mismatch");
        close(fd);
        return -EBADMSG;
    }
    off = 0;
    m.not_modified = 0;
    if (m.etag == NULL)
        m.etag = f->old_etag;
    if (m.last_modified == NULL)
        m.last_modified = f->old_lastmod;
    f->revalidated = !stale;
    f->stale = stale;
    rc = fill_header(f, GF_OK, f->old_length, &m);
    while (rc == 0 && off < f->old_length) {
        size_t want = f->old_length - off < sizeof buf ? (size_t)(f->old_length - off) : sizeof buf;
        ssize_t n = pread_full(fd, buf, want, f->old_offset + off);
        if (n != (ssize_t)want) {
            rc = n < 0 ? (int)n : -EIO;
            break;
        }
        rc = fill_data(f, buf, want);
        off += want;
    }
    close(fd);
    return rc;
}

/* Makes the complete, fsync'ed temporary file the entry: evict, rename. Called with the
 * store's lock held. Returns 0 or -errno. */
static int commit(struct store *st, struct fill *f, uint64_t size)
{
    char name[NAME_CAP];
    int rc;

    evict_for(st, size);
    entry_name(name, f->hash);
    if (renameat(st->dirfd, f->tmp, st->dirfd, name) < 0)
        return -errno;
    rc = entry_add(st, f->path, f->path_len, f->hash, size, f->expires_ms, f->etag, f->lastmod,
                   f->crc);
    if (rc < 0) {
        unlinkat(st->dirfd, name, 0);
        return rc;
    }
    /* Its CRC-32 is of the bytes written: no hit needs to check it until the file changes. */
    struct stat sb;
    struct entry *e = entry_find(st, f->path, f->path_len, f->hash);
    if (e != NULL && fstat(f->fd, &sb) == 0) {
        e->verified = 1;
        e->vino = sb.st_ino;
        e->vctime = sb.st_ctim;
    }
    return 0;
}

void fill_done(struct store *st, struct fill *f, int rc)
{
    struct fill **pp;
    uint64_t size;
    int ok, keep = 0, sync_failed = 0, header;

    pthread_mutex_lock(&f->lock);
    header = f->header;
    pthread_mutex_unlock(&f->lock);
    if (rc < 0 && !header && rc != -ECANCELED && stale_usable(f)) { /* no answer at all */
        const struct origin_meta none = {.max_age = 0};
        log_warn(-rc, "store: the origin failed for '%s'; serving the stale entry", f->path);
        if (fill_copy_old(f, &none, 1) == 0)
            rc = 0;
    }
    pthread_mutex_lock(&f->lock);
    ok = rc == 0 && f->header && f->status == GF_OK && f->written == f->length;
    size = f->offset + f->length;
    pthread_mutex_unlock(&f->lock);

    /* The body's CRC-32 in the header; the validators follow the body. */
    if (ok && f->keep) {
        unsigned char c[4];
        put_u32(c, f->crc);
        if (pwrite_full(f->fd, c, sizeof c, 32) < 0) {
            log_warn(errno, "store: cannot keep '%s': writing its header failed", f->path);
            f->keep = 0;
        }
    }
    if (ok && f->keep) {
        size_t el = f->etag ? strlen(f->etag) : 0, ll = f->lastmod ? strlen(f->lastmod) : 0;
        if ((el && pwrite_full(f->fd, f->etag, el, size) < 0) ||
            (ll && pwrite_full(f->fd, f->lastmod, ll, size + el) < 0)) {
            log_warn(errno, "store: cannot keep '%s': writing its validators failed", f->path);
            f->keep = 0;
        }
        size += el + ll;
    }

    /* Before the rename, outside the lock: a rename that survives a crash names a complete
     * file. (max_bytes never changes.) */
    if (ok && f->keep && size <= st->max_bytes && fsync(f->fd) < 0) {
        log_warn(errno, "store: cannot keep '%s': fsync failed", f->path);
        sync_failed = 1;
    }
    pthread_mutex_lock(&st->lock);
    for (pp = &st->fills; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    st->nfills--;
    if (ok && f->stale) {
        st->st.stale++;
    } else if (ok && f->disk_err != 0) {
        st->st.refused++;
        log_info("store: '%s' served from memory, not kept (the store refused it: %s)", f->path,
                 strerror(-f->disk_err));
    } else if (ok && !f->keep) {
        st->st.uncacheable++;
        log_info("store: '%s': the origin forbids keeping it (no-store, private, no-cache or "
                 "no freshness): served, not kept",
                 f->path);
    } else if (ok && f->purged) {
        log_info("store: '%s' was purged while it was filled: served, not kept", f->path);
    } else if (ok && size > st->max_bytes) {
        st->st.too_big++;
        log_info("store: '%s' (%llu bytes) is larger than the store's bound: served, not kept",
                 f->path, (unsigned long long)size);
    } else if (ok && !sync_failed) {
        int crc = commit(st, f, size);
        keep = crc == 0;
        if (keep)
            st->st.stored++;
        else
            log_warn(-crc, "store: cannot keep '%s'", f->path);
    } else {
        st->st.failed += rc < 0 || !f->header || f->status == GF_OK;
    }
    if (!keep && f->fd >= 0 && unlinkat(st->dirfd, f->tmp, 0) < 0 && errno != ENOENT)
        log_warn(errno, "store: cannot remove '%s/%s'", st->dir, f->tmp);
    pthread_mutex_unlock(&st->lock);

    pthread_mutex_lock(&f->lock);
    f->failed = !ok;
    f->done = 1;
    if (!f->header) { /* nothing was answered: readers answer ERROR */
        f->header = 1;
        f->status = GF_ERROR;
    }
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    fill_put(st, f);
}

void store_stats(struct store *st, struct store_stats *out)
{
    pthread_mutex_lock(&st->lock);
    *out = st->st;
    pthread_mutex_unlock(&st->lock);
}

/* path (path_len bytes) is the purge's path, or starts with it when prefix is set. */
static int purge_matches(const char *path, size_t path_len, const char *what, size_t what_len,
                         int prefix)
{
    return (prefix ? path_len >= what_len : path_len == what_len) &&
           memcmp(path, what, what_len) == 0;
}

uint64_t store_purge(struct store *st, const char *path, size_t path_len, int prefix)
{
    uint64_t n = 0;

    pthread_mutex_lock(&st->lock);
    for (struct fill *f = st->fills; f != NULL; f = f->next) {
        if (!f->purged && purge_matches(f->path, f->path_len, path, path_len, prefix)) {
            f->purged = 1;
            n++;
        }
    }
    if (!prefix) {
        struct entry *e = entry_find(st, path, path_len, hash_path(path, path_len));
        if (e != NULL) {
            entry_drop(st, e, 1);
            n = 1;
        }
    } else {
        struct entry *e = st->lru_head;
        while (e != NULL) {
            struct entry *next = e->next;
            if (purge_matches(e->path, e->path_len, path, path_len, 1)) {
                entry_drop(st, e, 1);
                n++;
            }
            e = next;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return n;
}

void store_drop_damaged(struct store *st, const char *path, size_t path_len, uint32_t crc)
{
    pthread_mutex_lock(&st->lock);
    struct entry *e = entry_find(st, path, path_len, hash_path(path, path_len));
    if (e != NULL && e->crc == crc) { /* not one that replaced it meanwhile */
        log_warn(0,
                 "store: the entry of '%s' is damaged (its body does not match its CRC-32); "
                 "dropped, the next request fetches it again",
                 e->path);
        st->st.discarded++;
        entry_drop(st, e, 1);
    }
    pthread_mutex_unlock(&st->lock);
}

void fill_forget_old(struct fill *f)
{
    free(f->old_etag);
    free(f->old_lastmod);
    f->old_etag = f->old_lastmod = NULL;
    f->has_old = 0;
}

void store_mark_verified(struct store *st, const char *path, size_t path_len, uint32_t crc, int fd,
                         const struct stat *before)
{
    struct stat sb;

    if (fstat(fd, &sb) < 0 || sb.st_ino != before->st_ino ||
        sb.st_ctim.tv_sec != before->st_ctim.tv_sec ||
        sb.st_ctim.tv_nsec != before->st_ctim.tv_nsec)
        return; /* changed while it was read: the next hit checks again */
    pthread_mutex_lock(&st->lock);
    struct entry *e = entry_find(st, path, path_len, hash_path(path, path_len));
    if (e != NULL && e->crc == crc) {
        e->verified = 1;
        e->vino = sb.st_ino;
        e->vctime = sb.st_ctim;
    }
    pthread_mutex_unlock(&st->lock);
}
