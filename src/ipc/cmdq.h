/* cmdq.h - the command channel: a POSIX message queue owned by the cache, on which proxies ask
 * for files. Messages are fixed-size, versioned structs with explicit widths. One cache per uid
 * and instance (ipc_rundir.h: the instance selects the directory of the registry and lock);
 * proxies find it through its registry and notice through a pidfd when it dies or restarts.
 * How discovery, locking and repair work, and what each failure looks like: docs/ipc.md. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CMDQ_H
#define GF_CMDQ_H

#include <limits.h>
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

/* --- control messages (gfctl) ---------------------------------------------------------- */

#define CMDQ_CTL_MAGIC   0x47464354u /* "GFCT" */
#define CMDQ_REPLY_MAGIC 0x47464350u /* "GFCP" */

enum cmdq_ctl_op {
    CMDQ_CTL_PURGE = 1,  /* drop the store entry of path */
    CMDQ_CTL_BAN = 2,    /* drop every store entry whose path starts with path */
    CMDQ_CTL_RELOAD = 3, /* read the index again (as SIGHUP); path_len 0 */
};

/* One control command, sent on the command queue like a request. The answer goes to the reply
 * queue of sender_pid and reply_serial (cmdq_reply_name): no name travels in the message. */
struct cmdq_ctl {
    uint32_t magic;               /* CMDQ_CTL_MAGIC */
    uint16_t version;             /* CMDQ_VERSION */
    uint16_t size;                /* sizeof(struct cmdq_ctl) */
    uint32_t op;                  /* enum cmdq_ctl_op */
    uint32_t sender_pid;          /* who waits for the reply; its credentials are checked */
    uint32_t reply_serial;        /* its reply queue's serial (0: the plain "-reply" name) */
    uint32_t path_len;            /* strlen(path): 1..CMDQ_PATH_MAX, 0 for RELOAD */
    char path[CMDQ_PATH_MAX + 1]; /* NUL-terminated, starts with '/'; all zero for RELOAD */
    char pad_[3];                 /* explicit tail padding; must be zero */
};
_Static_assert(sizeof(struct cmdq_ctl) <= sizeof(struct cmdq_request), "fits the queue");
_Static_assert(offsetof(struct cmdq_ctl, pad_) + sizeof(((struct cmdq_ctl *)0)->pad_) ==
                   sizeof(struct cmdq_ctl),
               "no implicit tail padding");

/* The cache's answer to a control command, on the sender's reply queue. */
struct cmdq_reply {
    uint32_t magic;   /* CMDQ_REPLY_MAGIC */
    uint16_t version; /* CMDQ_VERSION */
    uint16_t size;    /* sizeof(struct cmdq_reply) */
    int32_t status;   /* 0, or -errno: -EPERM pinned index path, -ENOENT no such entry,
                       * -ENOTSUP no store / no index to reload, other: the reload failed */
    uint32_t op;      /* the command's op */
    uint64_t count;   /* entries purged, or entries in the index after a reload */
};

/* The reply queue of process pid of uid: "/getfile-<uid>-<pid>-reply[<serial>]" (IPC_KIND_REPLY,
 * IPC_NAME_MAX bytes). Created by the sender (mode 0600, O_EXCL; on EEXIST, another user took
 * the name first: a new random serial); the cache writes there only when it is owned by its own
 * uid; a sender killed before it removed it is swept at the cache's next start. Returns 0 or
 * -EINVAL / -ENAMETOOLONG. */
int cmdq_reply_name(char *buf, uid_t uid, pid_t pid, uint32_t serial);

/* Fills *ctl (zeroing every unused byte). path (path_len bytes, no NUL) must start with '/'
 * for PURGE and BAN, and be empty (NULL, 0) for RELOAD. Returns 0, -EINVAL, or -ENAMETOOLONG. */
int cmdq_ctl_init(struct cmdq_ctl *ctl, enum cmdq_ctl_op op, pid_t sender_pid, const char *path,
                  size_t path_len);

/* Validates a received message of len bytes as strictly as cmdq_request_decode: magic, version,
 * exact size, size field, a known op, sender_pid > 0, a path as for init with a NUL right
 * after it and zero bytes after that, zero padding. Returns 0 and *out, -EBADMSG or -EPROTO. */
int cmdq_ctl_decode(const void *buf, size_t len, struct cmdq_ctl *out);

/* 1 when the message's first word is CMDQ_CTL_MAGIC (decode it with cmdq_ctl_decode). */
int cmdq_is_ctl(const void *buf, size_t len);

/* --- cache side --------------------------------------------------------------------------- */

#define CMDQ_CHECK_MS    1000  /* how often cmdq_server_check / a client re-checks the names */
#define CMDQ_OLD_QUEUES  4     /* replaced queues a cache keeps reading (see cmdq_server_check) */
#define CMDQ_OLD_KEEP_MS 60000 /* a replaced queue is read at least this long, until empty */

struct cmdq_server {
    int registry_fd;    /* holds the registry lock while the cache runs */
    int instance_fd;    /* the runtime directory (ipc_rundir.h), flock'ed: the instance lock */
    mqd_t mq;           /* the queue named mq_name */
    uint32_t mq_serial; /* the queue name's serial (0: the plain name), published */
    mqd_t old_mq[CMDQ_OLD_QUEUES];         /* queues replaced by cmdq_server_check, still read */
    int64_t old_since_ms[CMDQ_OLD_QUEUES]; /* clock_mono_ms() when each was replaced */
    unsigned nold;
    unsigned next_rx; /* the queue a receive looks at first (fairness among several) */
    int retired;      /* cmdq_server_retire gave the names up; the queues are still open */
    char mq_name[IPC_NAME_MAX];
    char registry_name[IPC_NAME_MAX]; /* file name in the runtime directory */
    char rundir[PATH_MAX];            /* the runtime directory's path, set by open */
    int rundir_failed;                /* open failed on the runtime directory (named rundir) */
};

/* Becomes the one cache of the uid and instance: takes the single-instance lock, sweeps queues and
 * segments of dead owners, creates the queue (mode 0600, CMDQ_MAXMSG messages of sizeof(struct
 * cmdq_request)) and publishes the pid in the registry. A process runs at most one server and
 * then no cmdq_client (a close() of the registry in this process would drop its lock). The
 * lock is inherited by fork: a child that outlives the cache keeps other caches out. Returns 0;
 * -EBUSY when another cache of this uid runs (*holder, may be NULL, set to its pid when known;
 * nothing of it is touched); -EPERM when the registry or lock belongs to another user; a
 * system limit by name: -EMFILE (RLIMIT_MSGQUEUE), -ENOSPC (queues_max), -EINVAL
 * (msg_max/msgsize_max below our needs); or -errno. On failure nothing is left. */
int cmdq_server_open(struct cmdq_server *s, pid_t *holder);

/* Receives one message into buf (cap >= sizeof(struct cmdq_request), the queue's message
 * size; decode it with cmdq_request_decode), waiting at most timeout_ms (>= 0; a
 * CLOCK_REALTIME deadline, EINTR retried). Reads the current queue and every replaced one still
 * kept. Returns its length, -ETIMEDOUT, -EINVAL (small cap, negative timeout), or -errno. */
ssize_t cmdq_server_receive(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms);

/* What cmdq_server_check repaired (bit mask). */
#define CMDQ_FIXED_QUEUE    1u /* the queue name was gone or replaced: a new queue was made */
#define CMDQ_FIXED_REGISTRY 2u /* the registry name was gone or replaced: re-created, re-locked */

/* Checks that the queue and registry names still refer to this server's objects and repairs
 * either one that is gone or replaced (a new queue, while the replaced one is still read for
 * CMDQ_OLD_KEEP_MS and until empty; a new, locked registry), publishing the record again. Call
 * it every CMDQ_CHECK_MS or so from the receiving thread; it costs a few system calls. Stores
 * the CMDQ_FIXED_* bits of what it repaired in *fixed (0: all was well). Returns 0, or the
 * -errno of a repair that failed (tried again on the next call; the old objects keep working
 * meanwhile): -EINVAL on a closed server, -EBUSY when the registry name refers to an object
 * another process has locked (left alone), -EAGAIN when CMDQ_OLD_QUEUES replaced queues are
 * still kept, -EMFILE or -ENOSPC when no new queue could be created. */
int cmdq_server_check(struct cmdq_server *s, unsigned *fixed);

/* Gives the cache's names up at once while it keeps running, for a cache that is stopping:
 * unlinks the queue and registry names (only while they still refer to its own objects) and
 * drops both locks. A new cache can start at once, and proxies, which check the registry before
 * every send, stop sending here and look the new one up. The queues stay open (receiving from
 * them still works) until cmdq_server_close; nothing is published or repaired any more
 * (cmdq_server_check answers -EINVAL). Idempotent; a no-op on a closed server. */
void cmdq_server_retire(struct cmdq_server *s);

/* Closes the queues and the registry and drops the locks. Unlinks the queue and registry names
 * only while they still refer to this server's own objects (another process may have created
 * new ones under the same names since). Idempotent, also on a zeroed struct. Requests still
 * queued are lost: their proxies see the pidfd of this cache report its exit (or time out if it
 * keeps running). */
void cmdq_server_close(struct cmdq_server *s);

/* --- proxy side --------------------------------------------------------------------------- */

/* Shared by all proxy workers; thread-safe. Reconnects to a restarted cache by itself. */
struct cmdq_client;

/* Creates a client for this uid (connects lazily), opening the runtime directory (ipc_rundir.h)
 * where the cache publishes itself; its path goes to rundir (rundir_cap bytes; may be NULL),
 * also when it is refused. Returns 0, -ENOMEM, or the runtime directory's -errno (-EPERM:
 * another owner, -ELOOP: a symlink, ...). */
int cmdq_client_new(struct cmdq_client **out, char *rundir, size_t rundir_cap);
void cmdq_client_free(struct cmdq_client *c); /* NULL is a no-op */

/* Sends req to the running cache, connecting first if needed: a client looks the cache up
 * again at once when the one it knew has died, re-created its queue or given its names up (the
 * registry changed since the last lookup: checked before every send), and otherwise at most
 * once per backoff interval (50 ms doubling to 1 s while no cache is found, cut short when the
 * registry changes). Waits at most timeout_ms (>= 0) for room in a full queue, checking the
 * cache is alive every CMDQ_SEND_SLICE_MS. On success stores a new pidfd of that cache in
 * *cache_pidfd, which the caller closes (poll it with peer_alive while waiting for the
 * answer); on failure *cache_pidfd is -1. Returns 0, -ENOTCONN (no cache running, or within the
 * backoff interval), -ESRCH (the cache died while we waited), -ETIMEDOUT, or -errno. */
int cmdq_client_send(struct cmdq_client *c, const struct cmdq_request *req, int timeout_ms,
                     int *cache_pidfd);

/* Finds the running cache as cmdq_client_send does (same lookups, backoff and checks: its
 * registry, its lock, its queue) without sending anything, for a backend that carries the
 * request over another channel (sysv: a queue keyed by the cache's pid). On success stores
 * the cache's pid in *cache_pid and a new pidfd of it in *cache_pidfd (the caller closes it);
 * on failure *cache_pidfd is -1. Returns 0, -ENOTCONN or -errno as cmdq_client_send. */
int cmdq_client_locate(struct cmdq_client *c, pid_t *cache_pid, int *cache_pidfd);

/* The runtime directory the client found the registry in (ipc_rundir.h), where a backend may
 * publish more (sysv_pub.h). Owned by the client: fixed until cmdq_client_free. */
int cmdq_client_dir(const struct cmdq_client *c);

/* As cmdq_client_send for a control command. */
int cmdq_client_send_ctl(struct cmdq_client *c, const struct cmdq_ctl *ctl, int timeout_ms,
                         int *cache_pidfd);

#endif
