/* cmdq.h - the command channel: a POSIX message queue owned by the cache, on which proxies ask
 * for files. Messages are fixed-size, versioned structs with explicit widths.
 *
 * Discovery: the cache holds a write lock (fcntl) on its registry object /getfile-<uid>-cache
 * for as long as it runs and stores its pid there; its queue is /getfile-<uid>-<pid>-cmd. (One
 * cache per uid is enforced by a separate lock that cannot be unlinked; the cache re-creates
 * either name if it is removed while it runs.)
 * A proxy reads the registry to find the queue, and a pidfd to notice when that cache dies:
 * a restarted cache has a new pid, hence a new queue, so nothing is ever sent to a dead queue
 * unnoticed. The lock is a POSIX record lock, owned by the process: one cmdq_server per
 * process, and a process running one must not use a cmdq_client (its close() of the registry
 * would drop the lock, and F_GETLK does not report a process's own lock). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CMDQ_H
#define GF_CMDQ_H

#include <mqueue.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc_names.h"

#define CMDQ_MAGIC         0x47465251u /* "GFRQ" */
#define CMDQ_VERSION       1u
#define CMDQ_MAXMSG        8L /* queue depth; within this machine's fs.mqueue.msg_max (10) */
#define CMDQ_PATH_MAX      4096
#define CMDQ_SEND_SLICE_MS 50 /* a full queue's wait checks the cache's pidfd this often */

/* One request: "write the file at path into segment seg_name, tagged with generation". */
struct cmdq_request {
    uint32_t magic;               /* CMDQ_MAGIC */
    uint16_t version;             /* CMDQ_VERSION */
    uint16_t size;                /* sizeof(struct cmdq_request) */
    uint32_t proxy_pid;           /* the segment's owner: pid in seg_name must match */
    uint32_t path_len;            /* strlen(path), 1..CMDQ_PATH_MAX */
    uint64_t generation;          /* must tag every chunk written for this request */
    uint64_t seg_size;            /* claimed segment size: checked against fstat, never trusted */
    char seg_name[IPC_NAME_MAX];  /* NUL-terminated, IPC_KIND_SEGMENT pattern */
    char path[CMDQ_PATH_MAX + 1]; /* NUL-terminated request path, starts with '/' */
    char pad_[7];                 /* explicit tail padding (to 4200 bytes); must be zero */
};
_Static_assert(sizeof(struct cmdq_request) <= 8192, "must fit this machine's msgsize_max");
_Static_assert(offsetof(struct cmdq_request, pad_) + sizeof(((struct cmdq_request *)0)->pad_) ==
                   sizeof(struct cmdq_request),
               "no implicit tail padding");

/* Fills *req for a request (zeroing every unused byte). path is path_len bytes (no NUL needed,
 * none allowed inside), starting with '/'; seg_name must be a segment name of proxy_pid and
 * this euid. Returns 0, -EINVAL, or -ENAMETOOLONG (path_len > CMDQ_PATH_MAX). */
int cmdq_request_init(struct cmdq_request *req, pid_t proxy_pid, const char *seg_name,
                      uint64_t seg_size, uint64_t generation, const char *path, size_t path_len);

/* Validates a received message of len bytes (as mq_receive returned it) for a cache running as
 * uid: magic, version, exact size, size field, proxy_pid > 0, NUL-terminated fields whose
 * lengths match, path starting with '/', zero padding, seg_size within [SHM_SEG_MIN,
 * SHM_SEG_MAX], seg_name matching the segment pattern for uid with the pid equal to proxy_pid.
 * Copies it into *out only when valid. Returns 0, -EBADMSG (malformed), -EPROTO (right magic,
 * other version: checked before the size, which may differ), or -EPERM (a name that is not a
 * segment of proxy_pid and uid, "//x" and other uids included). */
int cmdq_request_decode(const void *buf, size_t len, uid_t uid, struct cmdq_request *out);

/* --- cache side --------------------------------------------------------------------------- */

#define CMDQ_CHECK_MS    1000  /* how often cmdq_server_check / a client re-checks the names */
#define CMDQ_OLD_QUEUES  4     /* replaced queues a cache keeps reading (see cmdq_server_check) */
#define CMDQ_OLD_KEEP_MS 60000 /* a replaced queue is read at least this long, until empty */

struct cmdq_server {
    int registry_fd; /* holds the registry lock while the cache runs */
    int instance_fd; /* the single-instance lock: a bound abstract unix socket (see open) */
    mqd_t mq;        /* the queue named mq_name */
    mqd_t old_mq[CMDQ_OLD_QUEUES];         /* queues replaced by cmdq_server_check, still read */
    int64_t old_since_ms[CMDQ_OLD_QUEUES]; /* clock_mono_ms() when each was replaced */
    unsigned nold;
    unsigned next_rx; /* the queue a receive looks at first (fairness among several) */
    char mq_name[IPC_NAME_MAX];
    char registry_name[IPC_NAME_MAX];
};

/* Takes the single-instance lock (-EBUSY, with *holder (may be NULL) set to the running
 * cache's pid when known, when another cache of this uid runs: nothing of the live one is
 * touched; -EPERM when the registry object belongs to another user), sweeps queues and
 * segments of dead owners, creates the queue with O_EXCL, mode 0600 and explicit attributes
 * (CMDQ_MAXMSG messages of sizeof(struct cmdq_request)), then publishes the pid in the registry.
 * The single-instance lock is an abstract unix socket named after the uid, the IPC namespace
 * and the /dev/shm file system, which nobody can unlink; the registry's fcntl lock (which
 * proxies check) is taken too, and only once the registry name is seen to refer to the locked
 * object. The socket is close-on-exec but inherited by fork: a child that outlives the cache
 * would keep other caches out. A system limit that stops it is named in the return: -EMFILE
 * (RLIMIT_MSGQUEUE),
 * -ENOSPC (queues_max), -EINVAL (msg_max/msgsize_max below our needs). Returns 0 or -errno. */
int cmdq_server_open(struct cmdq_server *s, pid_t *holder);

/* Receives one message into buf (cap >= sizeof(struct cmdq_request), the queue's message
 * size; decode it with cmdq_request_decode), waiting at most timeout_ms (>= 0; a
 * CLOCK_REALTIME deadline, EINTR retried). Reads the current queue and every replaced one still
 * kept. Returns its length, -ETIMEDOUT, -EINVAL (small cap, negative timeout), or -errno. */
ssize_t cmdq_server_receive(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms);

/* What cmdq_server_check repaired (bit mask). */
#define CMDQ_FIXED_QUEUE    1u /* the queue name was gone or replaced: a new queue was made */
#define CMDQ_FIXED_REGISTRY 2u /* the registry name was gone or replaced: re-created, re-locked */

/* Checks that the queue name and the registry name still refer to this server's objects
 * (inode and device; the queue through mq_open + fstat, which needs no /dev/mqueue mount; the
 * registry through stat, since opening and closing it would drop our lock). A queue name that
 * is gone or refers to something else gets a new queue of ours; the old one is kept and read
 * (proxies that hold it still send there) until it is empty and CMDQ_OLD_KEEP_MS have passed.
 * A registry name that is gone or refers to an unlocked object gets a new, locked registry; in
 * both cases the registry record is written again, so waiting proxies look it up at once. Call
 * it every CMDQ_CHECK_MS or so from the receiving thread; it costs a few system calls. Stores
 * the CMDQ_FIXED_* bits of what it repaired in *fixed (0: all was well). Returns 0, or the
 * -errno of a repair that failed (tried again on the next call; the old objects keep working
 * meanwhile; *fixed still tells what the other repair did): -EINVAL on a closed server, -EBUSY
 * when the registry name
 * refers to an object another process has locked (left alone), -EAGAIN when CMDQ_OLD_QUEUES
 * replaced queues are still kept, -EMFILE or -ENOSPC when no new queue could be created. */
int cmdq_server_check(struct cmdq_server *s, unsigned *fixed);

/* Closes the queues and the registry and drops the locks. Unlinks the queue and registry names
 * only while they still refer to this server's own objects (another process may have created
 * new ones under the same names since). Idempotent, also on a zeroed struct. Requests still
 * queued are lost: their proxies see the pidfd of this cache report its exit (or time out if it
 * keeps running). */
void cmdq_server_close(struct cmdq_server *s);

/* For tests only: when set, called with the registry name right after a registry object has
 * been locked and before the name is checked to still refer to it. NULL in the programs. */
extern void (*cmdq_test_after_lock)(const char *registry_name);

/* --- proxy side --------------------------------------------------------------------------- */

/* Shared by all proxy workers; thread-safe. Reconnects to a restarted cache by itself. */
struct cmdq_client;

/* Creates a client for this uid (connects lazily). Returns 0 or -ENOMEM. */
int cmdq_client_new(struct cmdq_client **out);
void cmdq_client_free(struct cmdq_client *c); /* NULL is a no-op */

/* Sends req to the running cache. If not connected, or the cache it was connected to has died,
 * looks the cache up again (at most once per backoff interval, which doubles from 50 ms up to
 * 1 s while no cache is found, and resets on success; a cache found dead is looked up again at
 * once, and so is one whose registry has changed since the last failed lookup: within the
 * interval each send stats the registry instead). A lookup reads the pid from the registry, opens a
 * pidfd for it, checks with F_GETLK that this very pid holds the registry lock (so a stale registry
 * whose pid was reused is not believed), and opens its queue write-only. While connected, a send
 * more than CMDQ_CHECK_MS after the last check first checks that the queue name still refers to
 * the queue it holds; if the name refers to another queue (the cache re-created it), it looks
 * the cache up again at once (a name that is gone keeps the connection). Waits at most timeout_ms
 * (>= 0) for room in a full queue, checking the cache is alive between slices of
 * CMDQ_SEND_SLICE_MS. On success stores a new pidfd of that cache in *cache_pidfd, which the caller
 * closes (poll it with peer_alive while waiting for the answer); on failure *cache_pidfd is -1. The
 * lock is not held while waiting. Returns 0, -ENOTCONN (no cache running, or within the backoff
 * interval), -ESRCH (the cache died while we waited), -ETIMEDOUT, or -errno. */
int cmdq_client_send(struct cmdq_client *c, const struct cmdq_request *req, int timeout_ms,
                     int *cache_pidfd);

/* The pid of the cache currently connected, or 0. For logs and tests. */
pid_t cmdq_client_cache_pid(struct cmdq_client *c);

/* How many registry lookups this client has made (connect attempts). For stats and tests. */
unsigned cmdq_client_lookups(struct cmdq_client *c);

#endif
