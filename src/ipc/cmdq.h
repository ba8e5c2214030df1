/* cmdq.h - the command channel: a POSIX message queue owned by the cache, on which proxies ask
 * for files. Messages are fixed-size, versioned structs with explicit widths.
 *
 * Discovery: the cache holds a write lock (fcntl) on its registry object /getfile-<uid>-cache
 * for as long as it runs and stores its pid there; its queue is /getfile-<uid>-<pid>-cmd.
 * A proxy reads the registry to find the queue, and a pidfd to notice when that cache dies:
 * a restarted cache has a new pid, hence a new queue, so nothing is ever sent to a dead queue
 * unnoticed. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CMDQ_H
#define GF_CMDQ_H

#include <mqueue.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc_names.h"

#define CMDQ_MAGIC   0x47465251u /* "GFRQ" */
#define CMDQ_VERSION 1u
#define CMDQ_MAXMSG  8L /* queue depth; within this machine's fs.mqueue.msg_max (10) */
#define CMDQ_PATH_MAX 4096

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
    char pad_[3];                 /* explicit: keeps the size a multiple of 8 */
};
_Static_assert(sizeof(struct cmdq_request) <= 8192, "must fit this machine's msgsize_max");
_Static_assert(sizeof(struct cmdq_request) % 8 == 0, "no implicit tail padding");

/* Fills *req for a request (zeroing every unused byte). Returns 0 or -EINVAL/-ENAMETOOLONG. */
int cmdq_request_init(struct cmdq_request *req, pid_t proxy_pid, const char *seg_name,
                      uint64_t seg_size, uint64_t generation, const char *path, size_t path_len);

/* Validates a received message of len bytes (as mq_receive returned it) for a cache running as
 * uid: exact size, magic, version, size field, NUL-terminated fields whose lengths match,
 * path starting with '/', seg_name matching the segment pattern for uid with the pid equal to
 * proxy_pid. Copies it into *out only when valid. Returns 0, -EBADMSG (malformed), -EPROTO
 * (other version), or -EPERM (a foreign name). */
int cmdq_request_decode(const void *buf, size_t len, uid_t uid, struct cmdq_request *out);

/* --- cache side --------------------------------------------------------------------------- */

struct cmdq_server {
    int registry_fd; /* holds the single-instance lock while the cache runs */
    mqd_t mq;
    char mq_name[IPC_NAME_MAX];
    char registry_name[IPC_NAME_MAX];
};

/* Takes the single-instance lock (-EBUSY, with *holder set to the running cache's pid, when
 * another cache of this uid runs: nothing of the live one is touched), sweeps queues and
 * segments of dead owners, creates the queue with O_EXCL, mode 0600 and explicit attributes
 * (CMDQ_MAXMSG messages of sizeof(struct cmdq_request)), then publishes the pid in the registry.
 * A system limit that stops it is named in the return: -EMFILE (RLIMIT_MSGQUEUE), -ENOSPC
 * (queues_max), -EINVAL (msg_max/msgsize_max below our needs). Returns 0 or -errno. */
int cmdq_server_open(struct cmdq_server *s, pid_t *holder);

/* Receives one message into buf (cap >= sizeof(struct cmdq_request) + 1, so an oversized
 * message cannot pass for a valid one), waiting at most timeout_ms. Returns its length,
 * -ETIMEDOUT, or -errno. */
ssize_t cmdq_server_receive(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms);

/* Closes and unlinks the queue and the registry, dropping the lock. Idempotent. */
void cmdq_server_close(struct cmdq_server *s);

/* --- proxy side --------------------------------------------------------------------------- */

/* Shared by all proxy workers; thread-safe. Reconnects to a restarted cache by itself. */
struct cmdq_client;

/* Creates a client for this uid (connects lazily). Returns 0 or -ENOMEM. */
int cmdq_client_new(struct cmdq_client **out);
void cmdq_client_free(struct cmdq_client *c); /* NULL is a no-op */

/* Sends req to the running cache. If not connected, or the cache it was connected to has died,
 * looks the cache up again (at most once per backoff interval, which doubles from 50 ms up to
 * 1 s while no cache is found, and resets on success). Waits at most timeout_ms for room in a
 * full queue, checking the cache is alive between short slices. On success stores a new pidfd
 * of that cache in *cache_pidfd, which the caller closes (poll it with peer_alive while waiting
 * for the answer). Returns 0, -ENOTCONN (no cache running),
 * -ESRCH (the cache died while we waited), -ETIMEDOUT, or -errno. */
int cmdq_client_send(struct cmdq_client *c, const struct cmdq_request *req, int timeout_ms,
                     int *cache_pidfd);

/* The pid of the cache currently connected, or 0. For logs and tests. */
pid_t cmdq_client_cache_pid(struct cmdq_client *c);

#endif
