/* shm_chan.h - the data channel: a shared memory segment owned by the proxy, into which the
 * cache writes one file at a time as a ring of chunk slots.
 *
 * Layout (all offsets fixed by shm_geometry from the segment size alone):
 *
 *   struct shm_seg_hdr   magic, version, geometry, two process-shared semaphores, cancel word
 *   slot 0 .. K-1        each: struct shm_slot_hdr, then slot_cap payload bytes
 *
 * Protocol for one request with generation g (K = 1 is exactly the design report's ping-pong):
 *   proxy: sets hdr->generation = g, hdr->cancel = 0 (segment idle: filled = 0, free = K),
 *          sends the cmdq_request naming the segment and g.
 *   cache: for seq = 0, 1, ...: wait(free); write slot[seq % K] = {g, seq, kind, len, status,
 *          file_len} + payload; post(filled). seq 0 is the RESPONSE (status, file_len, and the
 *          first payload bytes); DATA chunks follow until file_len bytes were written.
 *   proxy: for seq = 0, 1, ...: wait(filled); copy slot header to locals once, validate
 *          (generation, seq, kind, len <= slot_cap, running total <= file_len); use the payload;
 *          post(free). Done when the total reaches file_len: filled = 0, free = K again.
 * Every wait is sliced (SHM_WAIT_SLICE_MS) and checks between slices that the peer lives
 * (pidfd) and that nobody cancelled. A transfer the proxy abandons is never reused: the proxy
 * sets cancel, then replaces the segment (new name), so a late write from the old transfer can
 * only land in memory nobody reads; the generation check on every chunk is the second fence. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SHM_CHAN_H
#define GF_SHM_CHAN_H

#include <semaphore.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc_names.h"

#define SHM_MAGIC         0x47465347u /* "GFSG" */
#define SHM_VERSION       1u
#define SHM_SEG_MIN       512u        /* smallest segment users may ask for */
#define SHM_SEG_MAX       (1u << 30)  /* 1 GiB */
#define SHM_WAIT_SLICE_MS 100         /* liveness is checked at least this often */

enum shm_slot_kind { SHM_SLOT_RESPONSE = 1, SHM_SLOT_DATA = 2 };
enum shm_status { SHM_STATUS_OK = 0, SHM_STATUS_NOT_FOUND = 1, SHM_STATUS_ERROR = 2 };

/* Lives in shared memory: fixed-width plain data, no pointers. */
struct shm_seg_hdr {
    uint32_t magic;      /* SHM_MAGIC, written once by the creator */
    uint32_t version;    /* SHM_VERSION */
    uint64_t seg_size;   /* creator's size; the attacher trusts fstat, not this */
    uint32_t nslots;     /* K, from shm_geometry */
    uint32_t slot_cap;   /* payload bytes per slot, from shm_geometry */
    uint64_t generation; /* proxy: set before each request; cache: reads once at attach */
    uint32_t cancel;     /* proxy: 1 = abandoned, stop writing (atomic access) */
    uint32_t pad_;
    sem_t filled;        /* slots holding a chunk: cache posts, proxy waits (init 0) */
    sem_t free;          /* slots free to write: proxy posts, cache waits (init K) */
};

/* Lives in shared memory at the start of every slot. */
struct shm_slot_hdr {
    uint64_t generation; /* the request's generation */
    uint64_t seq;        /* 0 for the RESPONSE, then 1, 2, ... */
    uint64_t file_len;   /* RESPONSE: the file's length; DATA: 0 */
    uint32_t kind;       /* enum shm_slot_kind */
    uint32_t status;     /* RESPONSE: enum shm_status; DATA: 0 */
    uint32_t len;        /* payload bytes in this slot, <= slot_cap */
    uint32_t pad_;
};

/* The geometry rule: the payload area after the (64-byte aligned) segment header is split
 * into K slots of equal, 64-byte aligned size, K = clamp(area / SHM_SLOT_TARGET_MIN, 1,
 * SHM_SLOTS_MAX). Documented in docs/ipc.md. Returns 0, or -EINVAL when seg_size is outside
 * [SHM_SEG_MIN, SHM_SEG_MAX]. Both sides compute it; the attacher compares with the header. */
int shm_geometry(uint64_t seg_size, uint32_t *nslots, uint32_t *slot_cap);

/* --- proxy side: creation and consuming ---------------------------------------------------- */

/* A mapped segment in this process. */
struct shm_seg {
    struct shm_seg_hdr *hdr;  /* mapping base */
    size_t size;              /* mapped bytes = fstat size */
    char name[IPC_NAME_MAX];
    uint32_t nslots, slot_cap;
    uint64_t seq;             /* consumer/producer position within the current request */
};

/* Creates /getfile-<uid>-<pid>-seg<serial> (O_EXCL, 0600), reserves its memory with
 * posix_fallocate (a full /dev/shm gives -ENOSPC here, never SIGBUS later), maps it and
 * initialises header and semaphores. Returns 0 or -errno; on failure nothing is left. */
int shm_seg_create(struct shm_seg *seg, uint32_t serial, uint64_t size);

/* Unmaps and unlinks (creator only). Idempotent on a zeroed struct. */
void shm_seg_destroy(struct shm_seg *seg);

/* Prepares the idle segment for a new request with generation gen. */
void shm_seg_begin(struct shm_seg *seg, uint64_t gen);

/* A validated chunk as the consumer sees it. data points into the segment: borrowed until
 * shm_seg_release. */
struct shm_chunk {
    enum shm_slot_kind kind;
    enum shm_status status; /* RESPONSE only */
    uint64_t file_len;      /* RESPONSE only */
    const unsigned char *data;
    uint32_t len;
};

/* Waits for the next chunk of request gen, at most timeout_ms in all, checking peer_pidfd
 * between slices and *stop (may be NULL). Validates it as described above (expected_left is
 * the bytes still owed; pass UINT64_MAX before the RESPONSE). Returns 0, -ETIMEDOUT, -ESRCH
 * (the cache died), -ECANCELED (*stop), or -EBADMSG (a chunk that fails validation: abandon). */
int shm_seg_next(struct shm_seg *seg, uint64_t gen, uint64_t expected_left, int peer_pidfd,
                 int timeout_ms, const volatile sig_atomic_t *stop, struct shm_chunk *out);

/* Gives the slot of the last chunk back to the producer. */
void shm_seg_release(struct shm_seg *seg);

/* Marks the current request abandoned so the producer stops writing. */
void shm_seg_cancel(struct shm_seg *seg);

/* --- cache side: attaching and producing -------------------------------------------------- */

/* Opens and maps the segment named in a validated request: checks it is a regular object of
 * our uid with mode 0600, that its real size (fstat) is within limits and at least the claimed
 * size, and that magic, version and geometry in its header match shm_geometry(real size).
 * Returns 0 or -errno (-ENOENT, -EPERM, -EBADMSG); never maps more than the object holds. */
int shm_seg_attach(struct shm_seg *seg, const char *name, uint64_t claimed_size);

/* Unmaps an attached segment (never unlinks). Idempotent on a zeroed struct. */
void shm_seg_detach(struct shm_seg *seg);

/* Waits for a free slot and returns its payload area in *payload (slot_cap bytes), at most
 * timeout_ms in all, checking peer_pidfd and the cancel word between slices, and *stop.
 * Returns 0, -ETIMEDOUT, -ESRCH (proxy died), -ECANCELED (cancelled or *stop). */
int shm_seg_reserve(struct shm_seg *seg, int peer_pidfd, int timeout_ms,
                    const volatile sig_atomic_t *stop, unsigned char **payload);

/* Publishes the reserved slot: writes its header (generation gen, the next seq) and posts. */
void shm_seg_publish(struct shm_seg *seg, uint64_t gen, enum shm_slot_kind kind,
                     enum shm_status status, uint64_t file_len, uint32_t len);

#endif
