/* shm_chan.c - the data segment: creation, attach checks, and the K-slot chunk ring.
 *
 * Who posts what: the cache (producer) waits on free and posts filled once per chunk; the proxy
 * (consumer) waits on filled and posts free once per chunk. The slot contents are ordered by a
 * release store of the slot's seq (producer) / ack (consumer) word and an acquire load on the
 * other side, so the semaphores only count. A crashed peer leaves the counts wherever they
 * were: the survivor notices through its pidfd within a wait slice, and the proxy replaces the
 * segment instead of repairing it. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* MAP_POPULATE */
#include "shm_chan.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "peer.h"
#include "shm_guard.h"

/* Runs expr (an int expression touching seg's mapping) under a guard: rc is its value, or
 * -EFAULT when the mapping shrank under it (SIGBUS, see shm_guard.h). */
#define GUARDED(seg, rc, expr)                        \
    do {                                              \
        struct shm_guard g_;                          \
        shm_guard_push(&g_, (seg)->hdr, (seg)->size); \
        if (sigsetjmp(g_.jb, 0) == 0)                 \
            (rc) = (expr);                            \
        else                                          \
            (rc) = -EFAULT;                           \
        shm_guard_pop(&g_);                           \
    } while (0)

int shm_geometry(uint64_t seg_size, uint32_t *nslots, uint32_t *slot_cap)
{
    uint64_t k, stride;

    if (seg_size < SHM_SEG_MIN || seg_size > SHM_SEG_MAX)
        return -EINVAL;
    k = seg_size / SHM_SLOT_TARGET_MIN;
    if (k < 1)
        k = 1;
    if (k > SHM_SLOTS_MAX)
        k = SHM_SLOTS_MAX;
    stride = ((seg_size - SHM_HDR_SPACE) / k) & ~(uint64_t)63;
    *nslots = (uint32_t)k;
    *slot_cap = (uint32_t)(stride - SHM_SLOT_HDR_SPACE);
    return 0;
}

/* The header of the slot that holds chunk seq. */
static struct shm_slot_hdr *slot_of(const struct shm_seg *seg, uint64_t seq)
{
    size_t i = (size_t)(seq % seg->nslots);
    size_t stride = (size_t)seg->slot_cap + SHM_SLOT_HDR_SPACE;

    return (struct shm_slot_hdr *)((unsigned char *)seg->hdr + SHM_HDR_SPACE + i * stride);
}

static unsigned char *payload_of(struct shm_slot_hdr *sh)
{
    return (unsigned char *)sh + SHM_SLOT_HDR_SPACE;
}

static int is_cancelled(const struct shm_seg *seg)
{
    return __atomic_load_n(&seg->hdr->cancel, __ATOMIC_ACQUIRE) != 0;
}

int shm_seg_layout_init(struct shm_seg *seg, void *mem, uint64_t size)
{
    struct shm_seg_hdr *hdr = mem;
    uint32_t k, cap;
    int rc;

    rc = shm_geometry(size, &k, &cap);
    if (rc < 0)
        return rc;
    hdr->version = SHM_VERSION;
    hdr->seg_size = size;
    hdr->nslots = k;
    hdr->slot_cap = cap;
    hdr->generation = 0;
    hdr->cancel = 0;
    shm_sem_init(&hdr->filled, 0);
    shm_sem_init(&hdr->free, k);
    /* Magic last: a header with the magic is complete. */
    __atomic_store_n(&hdr->magic, SHM_MAGIC, __ATOMIC_RELEASE);
    memset(seg, 0, sizeof *seg);
    seg->hdr = hdr;
    seg->size = (size_t)size;
    seg->nslots = k;
    seg->slot_cap = cap;
    return 0;
}

int shm_seg_create(struct shm_seg *seg, uint32_t serial, uint64_t size)
{
    char name[IPC_NAME_MAX];
    void *mem;
    int fd, rc;
    uint32_t k, cap;

    memset(seg, 0, sizeof *seg);
    rc = shm_geometry(size, &k, &cap);
    if (rc < 0)
        return rc;
    /* Another user can create any name in /dev/shm first, the next serials included: a name
     * that exists is never opened, a random serial is tried instead. */
    for (int attempt = 0;; attempt++) {
        rc = ipc_name_format(name, IPC_KIND_SEGMENT, geteuid(), getpid(), serial);
        if (rc < 0)
            return rc;
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd >= 0)
            break;
        if (errno != EEXIST || attempt == SHM_CREATE_ATTEMPTS - 1)
            return -errno;
        rc = ipc_random_serial(&serial);
        if (rc < 0)
            return rc;
    }
    /* Exactly 0600 whatever the umask: the attacher insists on it. */
    if (fchmod(fd, 0600) < 0 || ftruncate(fd, (off_t)size) < 0) {
        rc = -errno;
        goto err_unlink;
    }
    /* On a full tmpfs ftruncate succeeds and the first touch raises SIGBUS; this fails cleanly. */
    do {
        rc = posix_fallocate(fd, 0, (off_t)size);
    } while (rc == EINTR);
    if (rc != 0) {
        rc = -rc;
        goto err_unlink;
    }
    mem = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) {
        rc = -errno;
        goto err_unlink;
    }
    close(fd);
    struct shm_seg fresh = {.hdr = mem, .size = (size_t)size};
    GUARDED(&fresh, rc, shm_seg_layout_init(seg, mem, size)); /* shrunk by someone already */
    if (rc < 0) {
        munmap(mem, (size_t)size);
        shm_unlink(name);
        return rc;
    }
    memcpy(seg->name, name, sizeof name);
    return 0;

err_unlink:
    shm_unlink(name);
    close(fd);
    return rc;
}

void shm_seg_destroy(struct shm_seg *seg)
{
    if (seg->hdr)
        munmap(seg->hdr, seg->size);
    if (seg->name[0])
        shm_unlink(seg->name);
    memset(seg, 0, sizeof *seg);
}

static int seg_begin(struct shm_seg *seg, uint64_t gen)
{
    __atomic_store_n(&seg->hdr->generation, gen, __ATOMIC_RELEASE);
    __atomic_store_n(&seg->hdr->cancel, 0, __ATOMIC_RELEASE);
    seg->seq = 0;
    return 0;
}

void shm_seg_begin(struct shm_seg *seg, uint64_t gen)
{
    int rc;

    GUARDED(seg, rc, seg_begin(seg, gen)); /* a shrunk segment fails at the next step */
    (void)rc;
}

/* Idle, and its header still what we wrote: a segment someone scribbled over is replaced, not
 * handed to the next request (whose cache would refuse it). */
static int seg_is_idle(struct shm_seg *seg)
{
    uint32_t k, cap;

    if (shm_seg_hdr_check(seg->hdr, seg->size, &k, &cap) < 0)
        return 0;
    /* Faults (guarded: -EFAULT, not idle) when the object was shrunk below the mapping. */
    (void)*(volatile const unsigned char *)((const unsigned char *)seg->hdr + seg->size - 1);
    return shm_sem_value(&seg->hdr->filled) == 0 && shm_sem_value(&seg->hdr->free) == seg->nslots &&
           !is_cancelled(seg);
}

int shm_seg_is_idle(struct shm_seg *seg)
{
    int rc;

    GUARDED(seg, rc, seg_is_idle(seg));
    return rc == 1;
}

/* Waits for one unit of sem, at most timeout_ms in all, in slices of SHM_WAIT_SLICE_MS; checks
 * *stop, the cancel word and the peer between slices. A set cancel word ends the wait with
 * cancel_rc (the producer's -ECANCELED, the consumer's -ECONNABORTED). Returns 0 or -errno. */
static int sliced_wait(struct shm_seg *seg, struct shm_sem *sem, int peer_pidfd, int timeout_ms,
                       const volatile sig_atomic_t *stop, int cancel_rc)
{
    int64_t deadline;

    if (timeout_ms < 0)
        return -EINVAL;
    deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        struct timespec abs;
        int left, slice, alive, rc;

        if (stop && *stop)
            return -ECANCELED;
        if (is_cancelled(seg))
            return cancel_rc;
        left = clock_ms_left(deadline);
        slice = left < SHM_WAIT_SLICE_MS ? left : SHM_WAIT_SLICE_MS;
        abs = clock_mono_in(slice);
        /* The decrement is tried before the deadline is looked at, so slice 0 is a trywait. */
        rc = shm_sem_clockwait(sem, &abs);
        if (rc == 0)
            return 0;
        if (rc == -EINTR)
            continue;
        if (rc != -ETIMEDOUT)
            return rc;
        alive = peer_alive(peer_pidfd);
        if (alive < 0)
            return alive;
        if (alive == 0) {
            /* What it posted before it died is still ours (e.g. its last chunk). */
            if (shm_sem_trywait(sem) == 0)
                return 0;
            return -ESRCH;
        }
        if (left == 0)
            return -ETIMEDOUT;
    }
}

int shm_chunk_validate(const struct shm_slot_hdr *h, uint64_t gen, uint64_t seq, uint32_t slot_cap,
                       uint64_t expected_left)
{
    if (h->generation != gen || h->seq != seq || h->len > slot_cap)
        return -EBADMSG;
    if (seq == 0) {
        if (h->kind != SHM_SLOT_RESPONSE)
            return -EBADMSG;
        switch (h->status) {
        case SHM_STATUS_OK:
            if (h->len > h->file_len)
                return -EBADMSG;
            return 0;
        case SHM_STATUS_NOT_FOUND:
        case SHM_STATUS_ERROR:
        case SHM_STATUS_ORIGIN_NOT_FOUND:
        case SHM_STATUS_OTHER_BACKEND:
            return h->len == 0 && h->file_len == 0 ? 0 : -EBADMSG;
        default:
            return -EBADMSG;
        }
    }
    /* DATA: every chunk makes progress and none goes past the file's end. */
    if (h->kind != SHM_SLOT_DATA || h->status != SHM_STATUS_OK || h->file_len != 0 || h->len == 0 ||
        h->len > expected_left)
        return -EBADMSG;
    return 0;
}

static int seg_next(struct shm_seg *seg, uint64_t gen, uint64_t expected_left, int peer_pidfd,
                    int timeout_ms, const volatile sig_atomic_t *stop, struct shm_chunk *out)
{
    struct shm_slot_hdr *sh, h;
    int rc;

    rc = sliced_wait(seg, &seg->hdr->filled, peer_pidfd, timeout_ms, stop, -ECONNABORTED);
    if (rc < 0)
        return rc;
    sh = slot_of(seg, seg->seq);
    /* Copy once (atomic loads cannot be re-read by the compiler), validate the copy, use it. */
    h.seq = __atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE);
    h.generation = __atomic_load_n(&sh->generation, __ATOMIC_RELAXED);
    h.file_len = __atomic_load_n(&sh->file_len, __ATOMIC_RELAXED);
    h.kind = __atomic_load_n(&sh->kind, __ATOMIC_RELAXED);
    h.status = __atomic_load_n(&sh->status, __ATOMIC_RELAXED);
    h.len = __atomic_load_n(&sh->len, __ATOMIC_RELAXED);
    h.ack = 0;
    if (shm_chunk_validate(&h, gen, seg->seq, seg->slot_cap, expected_left) < 0)
        return -EBADMSG;
    out->kind = (enum shm_slot_kind)h.kind;
    out->status = (enum shm_status)h.status;
    out->file_len = h.file_len;
    out->data = payload_of(sh);
    out->len = h.len;
    seg->seq++;
    return 0;
}

int shm_seg_next(struct shm_seg *seg, uint64_t gen, uint64_t expected_left, int peer_pidfd,
                 int timeout_ms, const volatile sig_atomic_t *stop, struct shm_chunk *out)
{
    int rc;

    GUARDED(seg, rc, seg_next(seg, gen, expected_left, peer_pidfd, timeout_ms, stop, out));
    return rc;
}

/* shm_sem_post, and when it fails (EOVERFLOW: a corrupt count) the cancel word set to who
 * instead: the peer then stops waiting within one slice rather than at its stall limit.
 * Returns 0 or -errno. */
static int post_or_cancel(struct shm_seg *seg, struct shm_sem *sem, uint32_t who)
{
    int rc = shm_sem_post(sem);

    if (rc < 0)
        __atomic_store_n(&seg->hdr->cancel, who, __ATOMIC_RELEASE);
    return rc;
}

static int seg_release(struct shm_seg *seg)
{
    struct shm_slot_hdr *sh;

    assert(seg->seq > 0); /* release follows a successful shm_seg_next */
    sh = slot_of(seg, seg->seq - 1);
    __atomic_store_n(&sh->ack, (uint32_t)(seg->seq - 1), __ATOMIC_RELEASE);
    return post_or_cancel(seg, &seg->hdr->free, SHM_CANCEL_PROXY);
}

int shm_seg_release(struct shm_seg *seg)
{
    int rc;

    GUARDED(seg, rc, seg_release(seg));
    return rc;
}

static int seg_cancel(struct shm_seg *seg)
{
    __atomic_store_n(&seg->hdr->cancel, SHM_CANCEL_PROXY, __ATOMIC_RELEASE);
    /* Wakes a producer waiting for room; it then sees the cancel word. If the post fails it
     * still sees the word, one slice later. */
    (void)shm_sem_post(&seg->hdr->free);
    return 0;
}

void shm_seg_cancel(struct shm_seg *seg)
{
    int rc;

    GUARDED(seg, rc, seg_cancel(seg)); /* a shrunk segment is replaced anyway */
    (void)rc;
}

int shm_seg_hdr_check(struct shm_seg_hdr *hdr, uint64_t size, uint32_t *k, uint32_t *cap)
{
    uint32_t magic = __atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE);
    uint32_t version = __atomic_load_n(&hdr->version, __ATOMIC_RELAXED);
    uint64_t seg_size = __atomic_load_n(&hdr->seg_size, __ATOMIC_RELAXED);
    uint32_t nslots = __atomic_load_n(&hdr->nslots, __ATOMIC_RELAXED);
    uint32_t slot_cap = __atomic_load_n(&hdr->slot_cap, __ATOMIC_RELAXED);

    if (shm_geometry(size, k, cap) < 0 || magic != SHM_MAGIC || version != SHM_VERSION ||
        seg_size != size || nslots != *k || slot_cap != *cap)
        return -EBADMSG;
    return 0;
}

/* The checks of shm_seg_attach on an open object: a regular object of our uid, mode 0600, a
 * real size within limits and at least claimed_size. Fills *st. Returns 0 or -errno. */
static int object_check(int fd, uint64_t claimed_size, struct stat *st)
{
    if (fstat(fd, st) < 0)
        return -errno;
    if (!S_ISREG(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 0777) != 0600)
        return -EPERM;
    /* The real size decides what we map; a claim larger than reality is a lie or a bug. */
    if (st->st_size < (off_t)SHM_SEG_MIN || st->st_size > (off_t)SHM_SEG_MAX ||
        (uint64_t)st->st_size < claimed_size)
        return -EBADMSG;
    return 0;
}

int shm_seg_attach_id(struct shm_seg *seg, const char *name, uint64_t claimed_size,
                      size_t populate_max, struct shm_seg_id *id)
{
    struct stat st;
    uint32_t k, cap;
    size_t size;
    void *mem;
    int fd, rc;

    memset(seg, 0, sizeof *seg);
    if (ipc_name_parse(name, IPC_KIND_SEGMENT, geteuid(), NULL, NULL) < 0)
        return -EPERM;
    fd = shm_open(name, O_RDWR, 0);
    if (fd < 0)
        return -errno;
    rc = object_check(fd, claimed_size, &st);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    size = (size_t)st.st_size;
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_SHARED | (size <= populate_max ? MAP_POPULATE : 0), fd, 0);
    close(fd);
    if (mem == MAP_FAILED)
        return -errno;
    seg->hdr = mem;
    seg->size = size;
    GUARDED(seg, rc, shm_seg_hdr_check(mem, size, &k, &cap));
    if (rc < 0) {
        munmap(mem, size);
        memset(seg, 0, sizeof *seg);
        return rc;
    }
    seg->nslots = k;
    seg->slot_cap = cap;
    seg->seq = 0;
    memcpy(seg->name, name, strlen(name) + 1);
    if (id != NULL) {
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        id->size = st.st_size;
    }
    return 0;
}

int shm_seg_attach(struct shm_seg *seg, const char *name, uint64_t claimed_size)
{
    return shm_seg_attach_id(seg, name, claimed_size, 0, NULL);
}

int shm_seg_revalidate(const struct shm_seg *seg, const struct shm_seg_id *id,
                       uint64_t claimed_size)
{
    struct stat st;
    uint32_t k, cap;
    int fd, rc;

    fd = shm_open(seg->name, O_RDONLY, 0);
    if (fd < 0)
        return -errno;
    rc = object_check(fd, claimed_size, &st);
    close(fd);
    if (rc < 0)
        return rc;
    if (st.st_dev != id->dev || st.st_ino != id->ino || st.st_size != id->size ||
        (size_t)st.st_size != seg->size)
        return -ESTALE;
    GUARDED(seg, rc, shm_seg_hdr_check(seg->hdr, seg->size, &k, &cap));
    if (rc < 0)
        return rc;
    if (k != seg->nslots || cap != seg->slot_cap)
        return -EBADMSG;
    return 0;
}

void shm_seg_detach(struct shm_seg *seg)
{
    if (seg->hdr)
        munmap(seg->hdr, seg->size);
    memset(seg, 0, sizeof *seg);
}

static int seg_reserve(struct shm_seg *seg, int peer_pidfd, int timeout_ms,
                       const volatile sig_atomic_t *stop, unsigned char **payload)
{
    struct shm_slot_hdr *sh;
    int rc;

    rc = sliced_wait(seg, &seg->hdr->free, peer_pidfd, timeout_ms, stop, -ECANCELED);
    if (rc < 0)
        return rc;
    /* The unit may be the one shm_seg_cancel posted to wake us. */
    if (is_cancelled(seg))
        return -ECANCELED;
    sh = slot_of(seg, seg->seq);
    /* Pairs with the consumer's release in shm_seg_release: its reads of the slot are done. */
    (void)__atomic_load_n(&sh->ack, __ATOMIC_ACQUIRE);
    /* Producers of one process may share a kept mapping, so another thread of ours may have
     * written this slot for an earlier request. What orders that before our writes is the
     * consumer's ack (a release in another process, which TSan cannot see); this acquire of
     * the slot's seq, which that thread released in shm_seg_publish, is the same order made
     * visible within our process. */
    (void)__atomic_load_n(&sh->seq, __ATOMIC_ACQUIRE);
    *payload = payload_of(sh);
    return 0;
}

int shm_seg_reserve(struct shm_seg *seg, int peer_pidfd, int timeout_ms,
                    const volatile sig_atomic_t *stop, unsigned char **payload)
{
    int rc;

    GUARDED(seg, rc, seg_reserve(seg, peer_pidfd, timeout_ms, stop, payload));
    return rc;
}

static int seg_abandon(struct shm_seg *seg)
{
    uint32_t none = 0;

    (void)__atomic_compare_exchange_n(&seg->hdr->cancel, &none, SHM_CANCEL_CACHE, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    return 0;
}

void shm_seg_abandon(struct shm_seg *seg)
{
    int rc;

    GUARDED(seg, rc, seg_abandon(seg)); /* the proxy notices a shrunk segment by itself */
    (void)rc;
}

static int seg_publish(struct shm_seg *seg, uint64_t gen, enum shm_slot_kind kind,
                       enum shm_status status, uint64_t file_len, uint32_t len)
{
    struct shm_slot_hdr *sh = slot_of(seg, seg->seq);

    assert(len <= seg->slot_cap); /* the payload area is slot_cap bytes */
    __atomic_store_n(&sh->generation, gen, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->file_len, file_len, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->kind, (uint32_t)kind, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->status, (uint32_t)status, __ATOMIC_RELAXED);
    __atomic_store_n(&sh->len, len, __ATOMIC_RELAXED);
    /* Publishes the payload and the fields above to the consumer's acquire load of seq. */
    __atomic_store_n(&sh->seq, seg->seq, __ATOMIC_RELEASE);
    seg->seq++;
    return post_or_cancel(seg, &seg->hdr->filled, SHM_CANCEL_CACHE);
}

int shm_seg_publish(struct shm_seg *seg, uint64_t gen, enum shm_slot_kind kind,
                    enum shm_status status, uint64_t file_len, uint32_t len)
{
    int rc;

    GUARDED(seg, rc, seg_publish(seg, gen, kind, status, file_len, len));
    return rc;
}
