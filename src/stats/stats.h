/* stats.h - a daemon's live figures in a shared memory object, for gfmon and the metrics
 * endpoint: request outcomes, bytes, a latency histogram, queue and store gauges, and one record
 * per slot (a proxy's segment, a cache's worker) with its state and progress.
 *
 * Object: /getfile-<uid>-<pid>-stats (ipc_names.h, IPC_KIND_STATS), created O_EXCL mode 0600 by
 * the daemon (-stats<serial>, a random serial, when another user took that name first: readers
 * find it by listing and owner), unlinked when it exits, swept by the next daemon of the uid to
 * start after a crash. Readers (stats_attach) open it O_RDONLY and map it PROT_READ: they cannot
 * write a byte of it.
 *
 * Layout (fixed-width words, native byte order; STATS_VERSION changes with any of it):
 *
 *   struct stats_shm_hdr   written once before magic is published (release): role, pid, uid,
 *                          instance (ipc_rundir.h),
 *                          start time, configuration, nslots, and the offsets below
 *   global block           u64 seq, then STATS_GLOBAL_WORDS u64 words: counters, gauges, latency
 *                          histogram (enum stats_word gives each word's index)
 *   slot records           nslots x (u64 seq, then STATS_SLOT_WORDS u64 words)
 *
 * Consistency: every block is a seqlock. The writer makes seq odd, stores the changed words
 * (release), makes seq even (release); a reader loads seq (acquire), copies the words (acquire),
 * loads seq again and keeps the copy only when both are the same even value; otherwise it tries
 * again, a bounded number of times (STATS_READ_TRIES), and then gives up with -EAGAIN. So a
 * reader never locks, waits for or slows a writer, and a reader that stops (SIGSTOP) or dies
 * stops nothing. Every shared word is accessed atomically, so a torn copy is only ever
 * discarded, never a data race.
 *
 * Writers: the global block has any number of writer threads, serialised by a mutex in the
 * daemon's private memory; each slot record has one writer at a time (the thread that owns the
 * slot, ownership handed over by the daemon's own locks). A writer keeps its own copy of every
 * word and only stores into the object; it never reads it, so nothing written there by anyone
 * else can change what a daemon does.
 *
 * Every writer function is a no-op when r is NULL (stats off) and never fails. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_STATS_H
#define GF_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc_rundir.h"

#define STATS_MAGIC           0x47465354u /* "GFST" */
#define STATS_VERSION         4u          /* bumped with STATS_S_SEG_SIZE (size classes) */
#define STATS_CREATE_ATTEMPTS 16          /* names tried by stats_create before it gives -EEXIST */
#define STATS_SLOTS_MAX       1024u /* slot records per object (SEG_POOL_MAX, CACHE_THREADS_MAX) */
#define STATS_PATH_WORDS      16u   /* a slot's path: up to 127 bytes + NUL, in u64 words */
#define STATS_PATH_MAX        (STATS_PATH_WORDS * 8u)
#define STATS_CONFIG_MAX      256u  /* the configuration text, NUL included */
#define STATS_READ_TRIES      1000u /* a reader's attempts at one consistent copy */

enum stats_role { STATS_ROLE_CACHE = 1, STATS_ROLE_PROXY = 2 };

/* How a request ended; every request the daemon finishes counts in exactly one. Per role:
 *   cache: HIT served, MISS not in the index (NOT_FOUND answered), ERROR answered ERROR,
 *          CANCELLED the transfer was abandoned (proxy died or cancelled, stall, cut, read
 *          error) or the request dropped (stale generation, segment would not attach).
 *   proxy (one per request read, counted when its connection ends): HIT served from the cache,
 *          MISS the cache did not have it (FILE_NOT_FOUND sent, cache mode), ORIGIN answered
 *          OK from the origin, NOT_FOUND the origin answered FILE_NOT_FOUND, ERROR failed
 *          (ERROR sent, or a transfer cut short), CANCELLED the client left before any answer.
 *   FILL (fetched into the cache on a miss) and STALE (served stale) stay 0 until the cache
 *   fills itself; they are counted like any other outcome (stats_request_done). */
enum stats_outcome {
    STATS_HIT,
    STATS_MISS,
    STATS_FILL,
    STATS_STALE,
    STATS_ORIGIN,
    STATS_NOT_FOUND,
    STATS_ERROR,
    STATS_CANCELLED,
    STATS_OUTCOMES
};

/* Counters other than outcomes; bump with stats_add. */
enum stats_counter {
    STATS_C_BYTES = STATS_OUTCOMES, /* content bytes sent (proxy: to clients; cache: into
                                     * segments), counted by stats_request_done */
    STATS_C_MESSAGES,               /* command queue messages: cache received, proxy sent */
    STATS_C_REJECTED,               /* cache: messages that failed validation */
    STATS_C_EVICTIONS,      /* entries evicted from the store (0 until the store has a size) */
    STATS_C_PURGES,         /* entries purged on request */
    STATS_C_ORIGIN_FETCHES, /* requests sent to the origin */
    STATS_C_RETRIES,        /* origin fetches tried again */
    STATS_C_NOT_MODIFIED,   /* origin answers 304 (revalidated) */
    STATS_COUNTERS_END
};

/* Gauges (current values); set with stats_set. */
enum stats_gauge {
    STATS_G_QUEUE_DEPTH = STATS_COUNTERS_END, /* cache: messages waiting in the command queue */
    STATS_G_QUEUE_CAP,                        /* cache: the command queue's capacity */
    STATS_G_STORE_ENTRIES,                    /* cache: entries in the index */
    STATS_G_STORE_BYTES,                      /* cache: bytes of the indexed files */
    STATS_G_ACTIVE,                           /* transfers in progress (slots IN_USE) */
    STATS_GAUGES_END
};

/* Request latency (from the start of a request to its end): fixed log-scale buckets. Bucket i
 * counts latencies <= stats_latency_bounds_us[i] and > the bound before it; the last bucket
 * (index STATS_LAT_BUCKETS - 1) is +Inf. For Prometheus, le="bound/1e6" and cumulative sums. */
#define STATS_LAT_BUCKETS 18u
extern const uint64_t stats_latency_bounds_us[STATS_LAT_BUCKETS - 1];

/* Content bytes per request, the same way: bucket i counts sizes <= stats_size_bounds[i] and >
 * the bound before it, the last bucket is +Inf; the sum is STATS_C_BYTES and the count
 * STATS_W_LAT_COUNT (every request is timed and sized). */
#define STATS_SIZE_BUCKETS 12u
extern const uint64_t stats_size_bounds[STATS_SIZE_BUCKETS - 1];

enum stats_word {
    STATS_W_LAT_BUCKET = STATS_GAUGES_END,                       /* STATS_LAT_BUCKETS words */
    STATS_W_LAT_SUM_US = STATS_W_LAT_BUCKET + STATS_LAT_BUCKETS, /* sum of latencies, us */
    STATS_W_LAT_COUNT,                                           /* requests timed */
    STATS_W_SIZE_BUCKET,                                         /* STATS_SIZE_BUCKETS words */
    STATS_GLOBAL_WORDS = STATS_W_SIZE_BUCKET + STATS_SIZE_BUCKETS
};

enum stats_slot_state { STATS_SLOT_FREE = 0, STATS_SLOT_IN_USE = 1, STATS_SLOT_ABANDONED = 2 };

/* Configuration, published once at creation. 0 where it does not apply. */
struct stats_config {
    uint32_t threads;            /* worker threads */
    uint32_t segments;           /* proxy: segments in the pool */
    uint64_t segment_size;       /* proxy: bytes per segment */
    uint32_t port;               /* proxy: GETFILE port */
    uint32_t delay_us;           /* cache: -d */
    char text[STATS_CONFIG_MAX]; /* the rest, human-readable ("mode=cache index=locals.txt") */
};

/* Lives in shared memory. */
struct stats_shm_hdr {
    uint32_t magic; /* STATS_MAGIC, stored last (release) once the rest is in place */
    uint32_t version;
    uint32_t role;          /* enum stats_role */
    uint32_t pid;           /* the daemon's */
    uint32_t uid;           /* its euid */
    uint32_t nslots;        /* slot records */
    uint64_t size;          /* bytes of the object */
    uint64_t start_unix_ms; /* CLOCK_REALTIME at creation */
    uint64_t start_mono_ms; /* CLOCK_MONOTONIC at creation (the system-wide clock) */
    uint64_t global_off;    /* byte offset of the global block */
    uint64_t slots_off;     /* byte offset of slot record 0 */
    uint64_t slot_stride;   /* bytes per slot record */
    uint32_t cfg_threads, cfg_segments;
    uint64_t cfg_segment_size;
    uint32_t cfg_port, cfg_delay_us;
    char cfg_text[STATS_CONFIG_MAX];
    char instance[40]; /* the daemon's instance (ipc_instance), NUL-terminated */
};
_Static_assert(IPC_INSTANCE_MAX < 40, "instance field holds a name and its NUL");

/* The words of one slot record after its seq. */
enum stats_slot_word {
    STATS_S_STATE,    /* enum stats_slot_state */
    STATS_S_WORKER,   /* the owning thread's id (gettid, as in top -H), 0 when FREE */
    STATS_S_PEER,     /* cache: the proxy's pid; proxy: 0 (one cache serves them all) */
    STATS_S_SERIAL,   /* proxy: the segment's serial (its name's seg<serial>) */
    STATS_S_DONE,     /* bytes transferred so far */
    STATS_S_TOTAL,    /* bytes to transfer, 0 until known */
    STATS_S_START_MS, /* CLOCK_MONOTONIC when the transfer began */
    STATS_S_PATH,     /* STATS_PATH_WORDS words: the request path, NUL-padded, truncated */
    /* Size classes: */
    STATS_S_SEG_SIZE = STATS_S_PATH + STATS_PATH_WORDS, /* proxy: the segment's bytes; cache 0 */
    STATS_SLOT_WORDS
};

/* A consistent copy of the global block, plus the header, for either side. */
struct stats_snapshot {
    enum stats_role role;
    pid_t pid;
    uid_t uid;
    unsigned nslots;
    uint64_t start_unix_ms;
    uint64_t uptime_ms; /* at the time of the snapshot */
    struct stats_config config;
    char instance[IPC_INSTANCE_MAX + 1]; /* the daemon's instance */
    uint64_t w[STATS_GLOBAL_WORDS];      /* indexed by stats_outcome, stats_counter, stats_gauge,
                                          * stats_word: e.g. w[STATS_HIT], w[STATS_G_QUEUE_DEPTH],
                                          * w[STATS_W_LAT_BUCKET + i] (not cumulative) */
};

/* A consistent copy of one slot record. */
struct stats_slot {
    enum stats_slot_state state;
    pid_t worker;
    pid_t peer;
    uint32_t serial;
    uint64_t done, total;
    uint64_t start_mono_ms;
    char path[STATS_PATH_MAX]; /* NUL-terminated */
    uint64_t seg_size;         /* proxy: the segment's bytes (its size class); cache: 0 */
};

struct stats_region; /* a daemon's own object (writer), or a read-only view of one (reader) */

/* --- writer (the daemon) ------------------------------------------------------------------- */

/* Sweeps the stats objects of dead daemons of this uid (ipc_sweep_dead), then creates this
 * process's object for role with nslots (0..STATS_SLOTS_MAX) slot records, all FREE, the
 * configuration cfg (may be NULL) and this process's instance (ipc_instance). Returns 0 and *out,
 * or -errno (-EEXIST: this pid already has one; -EINVAL); on failure nothing is left. */
int stats_create(struct stats_region **out, enum stats_role role, unsigned nslots,
                 const struct stats_config *cfg);

/* One finished request: outcome + 1, STATS_C_BYTES + bytes, latency and bytes into their
 * histograms. */
void stats_request_done(struct stats_region *r, enum stats_outcome outcome, uint64_t bytes,
                        uint64_t latency_us);

/* Adds n to a counter (an outcome or a stats_counter); the documented way to count evictions,
 * purges, origin fetches, retries and 304s. */
void stats_add(struct stats_region *r, unsigned counter, uint64_t n);

/* Sets a gauge (enum stats_gauge). */
void stats_set(struct stats_region *r, unsigned gauge, uint64_t v);

/* Slot records. Only the slot's current owner may call these (one writer per slot); slot >=
 * nslots is ignored. begin: IN_USE by the calling thread, for path (path_len bytes, truncated to
 * STATS_PATH_MAX - 1), peer and serial as in stats_slot; done and total 0; STATS_G_ACTIVE + 1.
 * progress: done and total (0: unknown). end: FREE or ABANDONED (state), worker cleared;
 * STATS_G_ACTIVE - 1 after a begin. */
void stats_slot_begin(struct stats_region *r, unsigned slot, pid_t peer, uint32_t serial,
                      const char *path, size_t path_len);
void stats_slot_progress(struct stats_region *r, unsigned slot, uint64_t done, uint64_t total);
void stats_slot_end(struct stats_region *r, unsigned slot, enum stats_slot_state state);
/* Sets a slot's state and serial outright without the active count (the proxy's pool: a
 * replaced segment becomes FREE under its new serial). */
void stats_slot_state(struct stats_region *r, unsigned slot, enum stats_slot_state state,
                      uint32_t serial);

/* Sets a slot's segment size (the proxy's pool, at start); kept across begin and end. */
void stats_slot_size(struct stats_region *r, unsigned slot, uint64_t size);

/* Writer: unmaps and unlinks the object (when it is still this process's own). Reader: unmaps.
 * NULL is a no-op. */
void stats_close(struct stats_region *r);

/* --- reader (gfmon, the metrics endpoint in the daemon itself) ----------------------------- */

/* Maps the stats object of pid (of this euid) read-only after checking that it is a regular
 * object owned by this euid, mode 0600, large enough for its header and what the header
 * declares, with our magic and version. Returns 0 and *out; -ENOENT (no such object); -EAGAIN
 * (being created: no magic yet); -EPERM (wrong owner or mode); -EPROTO (another version);
 * -EBADMSG (inconsistent header); or -errno. */
int stats_attach(struct stats_region **out, pid_t pid);

/* The pids whose stats objects of this euid are in /dev/shm (names that parse strictly, objects
 * owned by this euid), up to max into pids, ascending. Returns the number found (may
 * exceed max) or -errno. */
int stats_list(pid_t *pids, unsigned max);

/* A consistent copy of the global block and the header, by seqlock: never blocks, never
 * writes. Works on a writer's own region too (in-process: the metrics endpoint). Returns 0, or
 * -EAGAIN when no consistent copy was had in STATS_READ_TRIES attempts (a writer stopped in
 * the middle of an update). */
int stats_snapshot(const struct stats_region *r, struct stats_snapshot *out);

/* A consistent copy of slot record slot (< nslots). Returns 0, -EINVAL or -EAGAIN as above. */
int stats_slot_read(const struct stats_region *r, unsigned slot, struct stats_slot *out);

/* Names for output: "cache"/"proxy", "hit"/"miss"/..., "FREE"/"IN_USE"/"ABANDONED", and the
 * counters' and gauges' snake_case names ("bytes", "queue_depth", ...). NULL when unknown. */
const char *stats_role_name(enum stats_role role);
const char *stats_word_name(unsigned word);
const char *stats_slot_state_name(enum stats_slot_state state);

#endif
