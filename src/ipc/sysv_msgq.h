/* sysv_msgq.h - a System V message queue (msgget/msgsnd/msgrcv) with bounded waits.
 *
 * msgsnd and msgrcv have no timed forms, only blocking or IPC_NOWAIT. Every wait here is
 * IPC_NOWAIT polled with an exponential backoff from SYSV_POLL_MIN_US to SYSV_POLL_MAX_US
 * (reset by each message), checking the deadline, the peer's pidfd and a stop flag between
 * polls. An idle receiver thus wakes at most 1 / SYSV_POLL_MAX_US times a second
 * (test_sysv measures its CPU), and a request that arrives after a long idle period waits up
 * to SYSV_POLL_MAX_US before it is seen: that is the price of a bounded wait here.
 *
 * A queue holds at most msgmnb bytes (16384 by default; raising it needs CAP_SYS_RESOURCE),
 * so few requests: a full queue is an ordinary bounded wait for the sender (-ETIMEDOUT), and
 * a queue whose owner died gives -ESRCH, never a hang.
 *
 * The queue outlives its owner: a cache killed with -9 leaves it (with any messages in it)
 * until the next cache's sysv_sweep_dead or sysv_msgq_create for the same key. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SYSV_MSGQ_H
#define GF_SYSV_MSGQ_H

#include <signal.h>
#include <stddef.h>
#include <sys/ipc.h>
#include <sys/types.h>

#define SYSV_MSG_MAX     8192u /* payload bytes per message (the default msgmax) */
#define SYSV_POLL_MIN_US 20    /* first sleep of a backoff */
#define SYSV_POLL_MAX_US 2000  /* longest sleep between two polls */

struct sysv_msgq {
    int id;    /* msqid, -1 when closed */
    key_t key; /* sysv_key_make(SYSV_KIND_CMD, owner pid) */
    int owner; /* 1: created by us (destroy removes it) */
};

/* Creates the command queue of process owner (key from sysv_keys.h), mode exactly 0600, with
 * IPC_EXCL. When the key is taken by an object of our uid whose owner pid is dead, or by our
 * own pid (a leftover), that object is removed and the key used; another owner's object or a
 * live owner's gives -EEXIST and nothing is touched. Returns 0 or -errno. */
int sysv_msgq_create(struct sysv_msgq *q, pid_t owner);

#define SYSV_MSGQ_CREATE_ATTEMPTS 16 /* random keys tried when the pid key is taken */

/* As sysv_msgq_create, but a key taken by anybody else (another uid, a live process) does not
 * stop us: then up to SYSV_MSGQ_CREATE_ATTEMPTS random SYSV_KIND_CMDR keys are tried. Such a key
 * holds no pid, so nothing but a record of it can find its owner: before (may be NULL) is called
 * with each random key before it is created, and a negative return stops with that error (the
 * cache publishes the key there first, so a crash after the queue's creation leaves a record
 * that names it: sysv_pub.h). q->key says which key it got. Returns 0 or -errno (-EEXIST only
 * when every key tried was taken). */
int sysv_msgq_create_free(struct sysv_msgq *q, pid_t owner, int (*before)(key_t key, void *arg),
                          void *arg);

/* Opens the command queue with key key: checked as sysv_msgq_open. Returns 0 or -errno. */
int sysv_msgq_open_key(struct sysv_msgq *q, key_t key);

/* Opens the command queue of process owner: it must be of our uid (owner and creator) with
 * mode 0600 (-EPERM otherwise; -ENOENT when there is none). Returns 0 or -errno. */
int sysv_msgq_open(struct sysv_msgq *q, pid_t owner);

/* Sends len (1..SYSV_MSG_MAX) bytes as one message, waiting for room at most timeout_ms
 * (>= 0) and checking peer_pidfd (-1: none) between polls. Returns 0, -ETIMEDOUT (full queue
 * of a live peer), -ESRCH (the peer died), -EIDRM (the queue was removed), -EINVAL, -EINTR is
 * retried, or another -errno. */
int sysv_msgq_send(const struct sysv_msgq *q, const void *buf, size_t len, int peer_pidfd,
                   int timeout_ms);

/* Receives one message into buf (cap bytes), waiting at most timeout_ms (>= 0) and checking
 * *stop (may be NULL), polled as above. timeout_ms < 0 blocks in msgrcv instead (no polling, no
 * idle cost, no added latency) until a message comes or the queue is removed (-EIDRM): for the
 * queue's owner, whose own sysv_msgq_close ends the wait; a signal gives -EINTR. A message
 * longer than cap is taken off the queue (so it cannot wedge it) and reported as -EBADMSG.
 * Returns the message length (>= 0), -ETIMEDOUT, -ECANCELED (*stop), -EIDRM (the queue was
 * removed), -EINTR (blocking only) or another -errno. */
ssize_t sysv_msgq_receive(const struct sysv_msgq *q, void *buf, size_t cap, int timeout_ms,
                          const volatile sig_atomic_t *stop);

/* Messages waiting in the queue now (IPC_STAT), or -errno. */
int sysv_msgq_count(const struct sysv_msgq *q);

/* Forgets the queue; removes it (IPC_RMID) when we created it. Idempotent. */
void sysv_msgq_close(struct sysv_msgq *q);

#endif
