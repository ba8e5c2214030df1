/* shm_chan.h - the data channel: a shared memory segment owned by the proxy, into which the
 * cache writes one file at a time as a ring of chunk slots.
 *
 * Layout (all offsets fixed by shm_geometry from the segment size alone):
 *
 *   struct shm_seg_hdr   magic, version, geometry, two process-shared semaphores, cancel word
 *   slot 0 .. K-1        each: struct shm_slot_hdr, then slot_cap payload bytes
 *
 * Protocol for one request with generation g (K = 1 is exactly the design report's ping-pong):
 *   proxy: shm_seg_begin(g) on an idle segment (filled = 0, free = K, cancel = 0), then sends
 *          the cmdq_request naming the segment and g.
 *   cache: for seq = 0, 1, ...: wait(free); write slot[seq % K] = {g, seq, kind, len, status,
 *          file_len} + payload; post(filled). seq 0 is the RESPONSE (status, file_len, and the
 *          first min(file_len, slot_cap) payload bytes); DATA chunks (len >= 1) follow until
 *          file_len bytes were written. A miss or an error is one RESPONSE with len 0 and
 *          file_len 0.
 *   proxy: for seq = 0, 1, ...: wait(filled); copy slot header to locals once, validate
 *          (generation, seq, kind, len <= slot_cap, running total <= file_len); use the payload;
 *          post(free) (shm_seg_release, also for the last chunk). Done when the total reaches
 *          file_len: filled = 0, free = K again, and the segment may serve the next request.
 * The semaphores count slots; explicit release/acquire atomics on each slot's seq (producer ->
 * consumer) and ack (consumer -> producer) words order the slot contents, so the protocol is
 * correct under the C memory model on its own and visible to TSan (which does not intercept
 * sem_clockwait).
 * Every wait is sliced (SHM_WAIT_SLICE_MS) and checks between slices that the peer lives
 * (pidfd) and that nobody cancelled. A side whose sem_post fails sets the cancel word instead,
 * so the other stops waiting within a slice. A transfer the proxy abandons (timeout, peer death, a
 * bad chunk, its client gone) is never reused: the proxy calls shm_seg_cancel, then replaces the
 * segment (shm_seg_destroy + shm_seg_create with a new serial, hence a new name), so a late
 * write from the old transfer can only land in memory nobody reads; the generation check on
 * every chunk is the second fence (a stale request, a pool bug), not a substitute: two writers
 * in one reused segment can interleave on a slot, one's header with the other's payload
 * (spin/handshake.pml finds it). After a complete transfer the segment is idle and reusable.
 * Trust: both processes run as the same uid, so these checks defend against bugs, stale
 * objects and confusion (and keep a confused peer from crashing us), not against a hostile
 * same-uid process, which could ptrace us anyway. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SHM_CHAN_H
#define GF_SHM_CHAN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc_names.h"
#include "shm_sem.h"

#define SHM_MAGIC           0x47465347u /* "GFSG" */
#define SHM_VERSION         2u          /* 2: shm_sem instead of glibc sem_t */
#define SHM_SEG_MIN         512u        /* smallest segment users may ask for */
#define SHM_SEG_MAX         (1u << 30)  /* 1 GiB */
#define SHM_WAIT_SLICE_MS   100         /* liveness is checked at least this often */
#define SHM_SLOTS_MAX       4u          /* K never exceeds this */
#define SHM_SLOT_TARGET_MIN 2048u       /* a new slot only for every this many segment bytes */
#define SHM_HDR_SPACE       256u /* bytes reserved for struct shm_seg_hdr (64-byte aligned) */
#define SHM_SLOT_HDR_SPACE  64u  /* bytes reserved for each struct shm_slot_hdr */

enum shm_slot_kind { SHM_SLOT_RESPONSE = 1, SHM_SLOT_DATA = 2 };
/* NOT_FOUND: the cache does not have it (not in its index or store, and it does not fill);
 * ORIGIN_NOT_FOUND: the cache fills itself and its origin answered that it does not exist, so a
 * proxy with an origin of its own must not ask it again (docs/cache.md, "Both mode");
 * OTHER_BACKEND: the cache serves another --ipc and did not look the path up: to the proxy it is
 * no cache, so its origin may take the request (a proxy older than this status refuses it as a
 * bad chunk and answers ERROR). */
enum shm_status {
    SHM_STATUS_OK = 0,
    SHM_STATUS_NOT_FOUND = 1,
    SHM_STATUS_ERROR = 2,
    SHM_STATUS_ORIGIN_NOT_FOUND = 3,
    SHM_STATUS_OTHER_BACKEND = 4,
};

/* Values of the cancel word; any of them ends the request and the segment is replaced. */
#define SHM_CANCEL_PROXY 1u /* the proxy abandoned it: stop writing */
#define SHM_CANCEL_CACHE 2u /* the cache could not post a chunk: stop waiting for one */

/* Lives in shared memory: fixed-width plain data, no pointers. */
struct shm_seg_hdr {
    uint32_t magic;      /* SHM_MAGIC, written once by the creator */
    uint32_t version;    /* SHM_VERSION */
    uint64_t seg_size;   /* creator's size; the attacher trusts fstat, not this */
    uint32_t nslots;     /* K, from shm_geometry */
    uint32_t slot_cap;   /* payload bytes per slot, from shm_geometry */
    uint64_t generation; /* proxy: set by shm_seg_begin before it sends the request (atomic
                          * release); the cache may compare it (atomic acquire) with the
                          * request's to drop a stale request. Chunks carry the request's. */
    uint32_t cancel;     /* SHM_CANCEL_*: the request is abandoned (atomic access) */
    uint32_t pad_;
    struct shm_sem filled; /* slots holding a chunk: cache posts, proxy waits (init 0) */
    struct shm_sem free;   /* slots free to write: proxy posts, cache waits (init K) */
};

/* Lives in shared memory at the start of every slot. */
struct shm_slot_hdr {
    uint64_t generation; /* the request's generation */
    uint64_t seq;        /* 0 for the RESPONSE, then 1, 2, ... */
    uint64_t file_len;   /* RESPONSE: the file's length; DATA: 0 */
    uint32_t kind;       /* enum shm_slot_kind */
    uint32_t status;     /* RESPONSE: enum shm_status; DATA: 0 */
    uint32_t len;        /* payload bytes in this slot, <= slot_cap */
    uint32_t ack;        /* consumer: low 32 bits of seq, stored (release) when it gives the
                          * slot back; producer: loads it (acquire) before rewriting the slot.
                          * Orders memory only; its value is never trusted. */
};
_Static_assert(sizeof(struct shm_seg_hdr) <= SHM_HDR_SPACE, "segment header space");
_Static_assert(sizeof(struct shm_slot_hdr) <= SHM_SLOT_HDR_SPACE, "slot header space");
_Static_assert(SHM_HDR_SPACE + SHM_SLOT_HDR_SPACE + 64 <= SHM_SEG_MIN, "smallest segment");

/* The geometry rule (docs/ipc.md): after SHM_HDR_SPACE header bytes come
 * K = clamp(seg_size / SHM_SLOT_TARGET_MIN, 1, SHM_SLOTS_MAX) slots of equal size
 * stride = floor((seg_size - SHM_HDR_SPACE) / K / 64) * 64, each SHM_SLOT_HDR_SPACE header
 * bytes then slot_cap = stride - SHM_SLOT_HDR_SPACE payload bytes (a multiple of 64, >= 192).
 * 512 B -> 1 slot of 192 B; 8 KiB -> 4 x 1920 B; 1 MiB -> 4 x 262016 B. Returns 0, or -EINVAL
 * when seg_size is outside [SHM_SEG_MIN, SHM_SEG_MAX]. Both sides compute it; the attacher
 * compares with the header. */
int shm_geometry(uint64_t seg_size, uint32_t *nslots, uint32_t *slot_cap);

/* 0 when the header at hdr, mapped with size bytes, carries our magic, version and the
 * geometry of that size (*k slots of *cap bytes); each field is loaded once. -EBADMSG
 * otherwise. Shared by every backend that maps a ring segment. */
int shm_seg_hdr_check(struct shm_seg_hdr *hdr, uint64_t size, uint32_t *k, uint32_t *cap);

/* --- proxy side: creation and consuming ---------------------------------------------------- */

/* A mapped segment in this process. */
struct shm_seg {
    struct shm_seg_hdr *hdr; /* mapping base */
    size_t size;             /* mapped bytes = fstat size */
    char name[IPC_NAME_MAX];
    uint32_t nslots, slot_cap;
    uint64_t seq; /* consumer/producer position within the current request */
};

#define SHM_CREATE_ATTEMPTS 16 /* names tried by shm_seg_create before it gives -EEXIST */

/* Creates /getfile-<uid>-<pid>-seg<serial> (O_EXCL, 0600), reserves its memory with
 * posix_fallocate (a full /dev/shm gives -ENOSPC here, never SIGBUS later), maps it and
 * initialises header and semaphores. When the name exists (another user took it first, or a
 * leftover), random serials are tried instead, SHM_CREATE_ATTEMPTS names in all: the name used
 * is seg->name. Returns 0 or -errno; on failure nothing is left. */
int shm_seg_create(struct shm_seg *seg, uint32_t serial, uint64_t size);

/* Unmaps and unlinks (creator only) and zeroes *seg. Idempotent on a zeroed struct. The
 * semaphores are not destroyed: an abandoned producer may still wait on them in its own
 * mapping, which stays valid until it detaches. */
void shm_seg_destroy(struct shm_seg *seg);

/* Lays out an idle segment of size bytes at mem (64-byte aligned, zero-filled, shareable) and
 * fills *seg (name left empty). shm_seg_create uses it; tests and fuzzers use it on ordinary
 * memory. Returns 0 or -EINVAL (size outside the geometry's range). */
int shm_seg_layout_init(struct shm_seg *seg, void *mem, uint64_t size);

/* Prepares the idle segment for a new request with generation gen (a value never used before
 * on this segment, e.g. from a process-wide counter): stores it, clears cancel, seq = 0. Slot
 * positions restart with each request, so the segment must be idle (shm_seg_is_idle): fresh, or
 * after a complete transfer; the producer starts only when it has received the request. */
void shm_seg_begin(struct shm_seg *seg, uint64_t gen);

/* 1 when the segment is idle (filled = 0, free = K, not cancelled, header intact: magic,
 * version, geometry), so it may serve a new request; 0 otherwise, also when the mapping shrank
 * (a pool must then replace it). */
int shm_seg_is_idle(struct shm_seg *seg);

/* A validated chunk as the consumer sees it. data points into the segment: borrowed until
 * shm_seg_release. */
struct shm_chunk {
    enum shm_slot_kind kind;
    enum shm_status status; /* RESPONSE only */
    uint64_t file_len;      /* RESPONSE only */
    const unsigned char *data;
    uint32_t len;
};

/* Waits for the next chunk of request gen, at most timeout_ms (>= 0) in all, checking
 * peer_pidfd (the cache's, from cmdq_client_send) between slices and *stop (may be NULL).
 * Validates it as described above (expected_left is the bytes still owed; pass UINT64_MAX
 * before the RESPONSE). A chunk already there is returned even if the peer has died. Returns 0,
 * -ETIMEDOUT, -ESRCH (the cache died), -ECANCELED (*stop), -ECONNABORTED (the cancel word is
 * set: the cache gave up, see shm_seg_publish), -EBADMSG (a chunk that fails validation:
 * abandon), -EINVAL (timeout_ms < 0) or another -errno (a bad pidfd). */
int shm_seg_next(struct shm_seg *seg, uint64_t gen, uint64_t expected_left, int peer_pidfd,
                 int timeout_ms, const volatile sig_atomic_t *stop, struct shm_chunk *out);

/* Gives the slot of the last chunk back to the producer (ends the borrow of its data). Call it
 * once per chunk returned by shm_seg_next, including the last one. Returns 0, or -errno when
 * the post failed: the cancel word is then set, so the producer stops within one wait slice,
 * and the caller must abandon the transfer (shm_seg_cancel, replace the segment). */
int shm_seg_release(struct shm_seg *seg);

/* Marks the current request abandoned so the producer stops writing, and wakes a producer
 * waiting for a free slot so it sees that at once. The segment must then be replaced
 * (shm_seg_destroy, shm_seg_create with a new serial), never reused. */
void shm_seg_cancel(struct shm_seg *seg);

/* Checks a slot header h, already copied to private memory, as chunk seq of request gen in a
 * segment of slot_cap payload bytes per slot, expected_left bytes still owed (UINT64_MAX before
 * the RESPONSE). Returns 0 or -EBADMSG. shm_seg_next uses it; exposed for the fuzzer. */
int shm_chunk_validate(const struct shm_slot_hdr *h, uint64_t gen, uint64_t seq, uint32_t slot_cap,
                       uint64_t expected_left);

/* --- cache side: attaching and producing -------------------------------------------------- */

/* Opens and maps the segment named in a validated request: checks it is a regular object of
 * our uid with mode 0600, that its real size (fstat) is within limits and at least the claimed
 * size, and that magic, version and geometry in its header match shm_geometry(real size).
 * Returns 0 or -errno (-ENOENT; -EPERM: not a segment name of our uid, another owner, another
 * mode; -EBADMSG: size or header); never maps more than the object holds. */
int shm_seg_attach(struct shm_seg *seg, const char *name, uint64_t claimed_size);

/* The identity of the object a segment was attached from, as fstat saw it when it was mapped. */
struct shm_seg_id {
    dev_t dev;
    ino_t ino;
    off_t size;
};

/* shm_seg_attach, for a caller that keeps the mapping across requests: also stores the mapped
 * object's identity in *id (may be NULL), and pre-faults the mapping (MAP_POPULATE) when
 * the object is at most populate_max bytes (0: never). Same returns as shm_seg_attach. */
int shm_seg_attach_id(struct shm_seg *seg, const char *name, uint64_t claimed_size,
                      size_t populate_max, struct shm_seg_id *id);

/* Checks that a kept attachment still stands for seg->name: the name opens the very object *id
 * describes (same st_dev, st_ino and size), which passes shm_seg_attach's checks again (regular,
 * our uid, mode 0600, size at least claimed_size), and the mapped header still holds the magic,
 * version and geometry of that size. Returns 0; -ENOENT (the name is gone), -ESTALE (the name
 * now opens another object: the owner replaced or re-created it), -EPERM, -EBADMSG or another
 * -errno. Touches nothing; the caller detaches a segment that fails. */
int shm_seg_revalidate(const struct shm_seg *seg, const struct shm_seg_id *id,
                       uint64_t claimed_size);

/* Unmaps an attached segment (never unlinks). Idempotent on a zeroed struct. */
void shm_seg_detach(struct shm_seg *seg);

/* Waits for a free slot and returns its payload area in *payload (slot_cap bytes, borrowed
 * until shm_seg_publish), at most timeout_ms (>= 0) in all, checking peer_pidfd (the proxy's,
 * from peer_open(req.proxy_pid)) and the cancel word between slices, and *stop (may be NULL).
 * The cancel word is also checked before waiting. Returns 0, -ETIMEDOUT, -ESRCH (proxy died),
 * -ECANCELED (cancelled or *stop), -EINVAL (timeout_ms < 0) or another -errno. */
int shm_seg_reserve(struct shm_seg *seg, int peer_pidfd, int timeout_ms,
                    const volatile sig_atomic_t *stop, unsigned char **payload);

/* Gives up the current request from the producer's side (a failed wait, the proxy too slow for
 * the stall limit, shutdown): sets the cancel word to SHM_CANCEL_CACHE unless it is already
 * set (the proxy's own cancel stays), which ends the proxy's wait for the next chunk within one
 * slice with -ECONNABORTED instead of at its stall limit. The proxy then replaces the segment. */
void shm_seg_abandon(struct shm_seg *seg);

/* Publishes the reserved slot: writes its header (generation gen, the next seq) and posts.
 * kind is SHM_SLOT_RESPONSE for seq 0 and SHM_SLOT_DATA after; len <= slot_cap (asserted).
 * Returns 0, or -errno when the post failed (EOVERFLOW, a corrupt semaphore): the chunk will
 * never be seen, so the cancel word is set instead (SHM_CANCEL_CACHE), which ends the proxy's
 * wait within one slice; the caller must give the transfer up. */
int shm_seg_publish(struct shm_seg *seg, uint64_t gen, enum shm_slot_kind kind,
                    enum shm_status status, uint64_t file_len, uint32_t len);

#endif
