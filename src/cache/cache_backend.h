/* cache_backend.h - simplecached's side of an --ipc backend (ipc_backend.h), and what the
 * server shares with every backend: the workers, the lookup (index, store, fill on miss), the
 * counters. No backend repeats the lookup logic; each only moves requests and bytes. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CACHE_BACKEND_H
#define GF_CACHE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "cmdq.h"
#include "ipc_backend.h"
#include "shm_chan.h"
#include "stats.h"
#include "store.h"

struct cache_server;
struct cache_backend; /* one backend's state, private to it */

/* One unit of work a backend hands to the server's workers (cache_server_submit): run serves
 * it from start to end in a worker thread (slot: the worker's stats slot) and then owns its
 * release. Embed it first in the backend's own job struct. */
struct cache_job {
    void (*run)(struct cache_server *s, unsigned slot, struct cache_job *job);
};

struct cache_backend_ops {
    const char *name;
    /* Creates the backend's endpoint and starts taking requests (they go to the workers with
     * cache_server_submit). Called by cache_server_new. NULL: nothing to open (posix: the
     * command queue, opened by simplecached for every backend, is its channel). */
    int (*open)(struct cache_server *s, struct cache_backend **out);
    /* On stop: takes no more requests, gives its names up (a new cache may start), and submits
     * nothing after it returns. NULL: nothing to do. */
    void (*retire)(struct cache_backend *b);
    /* After every worker was joined: frees the rest (jobs still queued were run). NULL is a
     * no-op; so is b == NULL. */
    void (*close)(struct cache_backend *b);
};

/* The ops of backend b, or NULL when this build does not have it yet. */
const struct cache_backend_ops *cache_backend_ops_for(enum ipc_backend b);

/* The posix backend: requests come on the command queue, answers go into the proxy's
 * shared memory segment (cache_server.c). */
extern const struct cache_backend_ops cache_backend_posix;

/* The socket backends (cache_sock.c): requests on a Unix socket in the runtime directory; the
 * bytes follow on it (unix), or the file's read-only descriptor is passed (fd) unless the entry
 * is still being filled (then it is streamed as in unix). */
extern const struct cache_backend_ops cache_backend_unix;
extern const struct cache_backend_ops cache_backend_fd;

/* The sysv backend (cache_sysv.c): requests on a System V queue keyed by our pid, answers
 * into the proxy's System V segment with the posix ring. */
extern const struct cache_backend_ops cache_backend_sysv;

/* Serves a decoded request req into the attached ring seg (shm_chan.h; a posix or a System V
 * segment) of the proxy watched by pidfd, from the generation check to the last chunk, counted
 * from t0_ns (clock_mono_ns at its start). via: the backend the request came by; not the
 * server's one gives a quick ERROR. Returns 1 when the segment must not be kept attached (the
 * transfer was abandoned), else 0. The caller attached seg and detaches it. */
int cache_server_serve_ring(struct cache_server *s, unsigned slot, const struct cmdq_request *req,
                            struct shm_seg *seg, int pidfd, enum ipc_backend via, int64_t t0_ns);

/* Hands job to the workers, waiting at most timeout_ms (-1: no limit) while they are all busy
 * and the queue is full. Returns 0 (run will be called), -ETIMEDOUT, or -EPIPE when stopping
 * (the caller releases the job). */
int cache_server_submit(struct cache_server *s, struct cache_job *job, int timeout_ms);

/* The runtime directory of this cache's instance (ipc_rundir.h), where socket names go: its
 * descriptor (valid until the command queue is retired) and *path. */
int cache_server_rundir(const struct cache_server *s, const char **path);

/* Non-zero once the server stops: no new transfer starts (a lookup answers ERROR). */
int cache_server_stopping(const struct cache_server *s);

/* The number of workers (cache_server_options.nthreads). */
unsigned cache_server_nthreads(const struct cache_server *s);

/* The longest wait for the other side, in ms (cache_server_options.stall_ms). */
int cache_server_stall_ms(const struct cache_server *s);

/* Called between the waits of a request: 0 to go on, -ESRCH when the requester died,
 * -ECANCELED when it gave up. */
typedef int (*cache_wanted_fn)(void *arg);

/* Checks, between waits, that the transfer is still wanted: the server's end of grace first,
 * then wanted(arg). Returns 0, -ECANCELED or -ESRCH. */
int cache_server_still_wanted(const struct cache_server *s, cache_wanted_fn wanted, void *arg);

/* Status of an answer (the values of enum shm_status, the same for every backend). */
enum cache_status {
    CACHE_STATUS_OK = 0,
    CACHE_STATUS_NOT_FOUND = 1,
    CACHE_STATUS_ERROR = 2,
    CACHE_STATUS_ORIGIN_NOT_FOUND = 3, /* a fill's origin said 404: the proxy asks no origin */
    CACHE_STATUS_OTHER_BACKEND = 4,    /* a ring request to a cache on a socket --ipc or sysv */
    CACHE_STATUS_FILL = 100,           /* the body comes from a fill read as it grows */
};

/* What a lookup found. OK: an open file (fd, owned: cache_answer_release closes it), the body at
 * base for len bytes. FILL: fill (a reference, released likewise). */
struct cache_answer {
    int status; /* enum cache_status */
    int fd;
    uint64_t base, len;
    int64_t crc; /* a store entry not checked since its file changed: its body's CRC-32; else -1 */
    struct fill *fill;
    int64_t fresh_ms; /* OK: how long the answer stays true unless the generation moves (an
                       * index entry: -1, no limit; a store entry: until it goes stale) */
};

/* The change generation (fd backend, docs/ipc.md "Kept descriptors"): a word the backend
 * publishes read-only to proxies; the server adds one after every change that can make an
 * earlier answer wrong (reload, purge, ban) and at stop. Registered once, before any thread
 * runs; NULL: none. */
void cache_server_set_generation(struct cache_server *s, _Atomic uint32_t *word);

/* Adds one to the generation (release order: after the change it announces). */
void cache_server_bump_generation(struct cache_server *s);

/* Looks path up after the -d delay (its slices call wanted): the index first (its entries are
 * pinned: never fetched), then the store, then a fill from the origin (started here, or
 * joined). Returns the status (a) or -ESRCH/-ECANCELED when the request should be dropped
 * without an answer; answers ERROR while stopping. a is always safe to release. */
int cache_server_lookup(struct cache_server *s, const char *path, size_t path_len,
                        cache_wanted_fn wanted, void *arg, struct cache_answer *a);

/* For an OK answer whose store entry is unchecked (a->crc >= 0): reads the whole body and
 * compares its CRC-32. A match marks the entry checked; a mismatch (or a short read) drops it
 * and returns -EBADMSG (-EIO): answer ERROR. 0 when nothing needs checking. */
int cache_server_check_entry(struct cache_server *s, const char *path, size_t path_len,
                             const struct cache_answer *a);

/* Closes the answer's file and drops its fill reference; a released answer is a no-op. */
void cache_answer_release(struct cache_server *s, struct cache_answer *a);

/* Waits until the fill moved past (have_header, have), ended, or stall_ms passed without a
 * change, calling cache_server_still_wanted between slices. Returns 0 with *fs, its -errno,
 * or -ETIMEDOUT. */
int cache_server_wait_fill(struct cache_server *s, struct fill *f, cache_wanted_fn wanted,
                           void *arg, int have_header, uint64_t have, struct fill_state *fs);

/* The cache_status of an origin's answer. */
int cache_status_of_gf(int gf_status);

/* A request's end, for the counters and the live figures: outcome with bytes sent, t0_ns from
 * clock_mono_ns at its start. */
enum cache_result {
    CACHE_RESULT_SERVED,
    CACHE_RESULT_NOT_FOUND,
    CACHE_RESULT_ERROR,
    CACHE_RESULT_ABORTED,
    CACHE_RESULT_REJECTED,
};
void cache_server_done(struct cache_server *s, enum cache_result r, const struct cache_answer *a,
                       uint64_t bytes, int64_t t0_ns);

/* The live figures (NULL: none) for stats_slot_begin/progress/end of slot. */
struct stats_region *cache_server_stats_region(const struct cache_server *s);

/* Non-zero when a warning a peer can provoke may be logged now (rate limited). */
int cache_server_warn_ok(struct cache_server *s);

#endif
