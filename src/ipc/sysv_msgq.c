/* sysv_msgq.c - System V message queue with bounded, polled waits. */
/* SPDX-License-Identifier: MIT */
#include "sysv_msgq.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"
#include "sysv_keys.h"

#define MTYPE_REQUEST 1L

struct sysv_msgbuf {
    long mtype;
    unsigned char data[SYSV_MSG_MAX];
};

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleeps *delay_us (at most until deadline) and doubles it up to SYSV_POLL_MAX_US. */
static void backoff(int64_t *delay_us, int64_t deadline)
{
    int64_t left = deadline - now_us(), d = *delay_us < left ? *delay_us : left;
    struct timespec ts;

    if (d > 0) {
        ts.tv_sec = (time_t)(d / 1000000);
        ts.tv_nsec = (long)(d % 1000000) * 1000;
        nanosleep(&ts, NULL);
    }
    *delay_us = *delay_us * 2 > SYSV_POLL_MAX_US ? SYSV_POLL_MAX_US : *delay_us * 2;
}

/* 0 when id is a queue of our uid (owner and creator) with mode 0600, else -EPERM/-errno. */
static int check_owner(int id)
{
    struct msqid_ds ds;
    uid_t me = geteuid();

    if (msgctl(id, IPC_STAT, &ds) < 0)
        return -errno;
    if (ds.msg_perm.uid != me || ds.msg_perm.cuid != me || (ds.msg_perm.mode & 0777) != 0600)
        return -EPERM;
    return 0;
}

int sysv_msgq_create(struct sysv_msgq *q, pid_t owner)
{
    key_t key = sysv_key_make(SYSV_KIND_CMD, (uint32_t)owner);
    int id;

    *q = (struct sysv_msgq){.id = -1, .key = key};
    if (key == (key_t)-1)
        return -EINVAL;
    for (int attempt = 0; attempt < 2; attempt++) {
        id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
        if (id >= 0) {
            q->id = id;
            q->owner = 1;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
        /* A leftover of our uid: its owner is dead, or it is us (a reused pid). */
        id = msgget(key, 0);
        if (id < 0 || check_owner(id) < 0)
            return -EEXIST;
        if (owner != getpid() && !(kill(owner, 0) < 0 && errno == ESRCH))
            return -EEXIST;
        if (msgctl(id, IPC_RMID, NULL) < 0 && errno != EINVAL && errno != EIDRM)
            return -errno;
    }
    return -EEXIST;
}

int sysv_msgq_create_free(struct sysv_msgq *q, pid_t owner, int (*before)(key_t key, void *arg),
                          void *arg)
{
    int rc = sysv_msgq_create(q, owner), id;

    if (rc != -EEXIST)
        return rc;
    for (int attempt = 0; attempt < SYSV_MSGQ_CREATE_ATTEMPTS; attempt++) {
        key_t key = sysv_key_make(SYSV_KIND_CMDR, sysv_random_serial());

        rc = before ? before(key, arg) : 0;
        if (rc < 0)
            return rc;
        id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
        if (id >= 0) {
            *q = (struct sysv_msgq){.id = id, .key = key, .owner = 1};
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int sysv_msgq_open(struct sysv_msgq *q, pid_t owner)
{
    return sysv_msgq_open_key(q, sysv_key_make(SYSV_KIND_CMD, (uint32_t)owner));
}

int sysv_msgq_open_key(struct sysv_msgq *q, key_t key)
{
    int id, rc;

    *q = (struct sysv_msgq){.id = -1, .key = key};
    if (key == (key_t)-1 || key == IPC_PRIVATE)
        return -EINVAL;
    id = msgget(key, 0);
    if (id < 0)
        return -errno;
    rc = check_owner(id);
    if (rc < 0)
        return rc;
    q->id = id;
    return 0;
}

int sysv_msgq_send(const struct sysv_msgq *q, const void *buf, size_t len, int peer_pidfd,
                   int timeout_ms)
{
    struct sysv_msgbuf m;
    int64_t deadline, delay = SYSV_POLL_MIN_US;

    if (q->id < 0 || len == 0 || len > SYSV_MSG_MAX || timeout_ms < 0)
        return -EINVAL;
    m.mtype = MTYPE_REQUEST;
    memcpy(m.data, buf, len);
    deadline = now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (msgsnd(q->id, &m, len, IPC_NOWAIT) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return -errno;
        if (peer_pidfd >= 0 && peer_alive(peer_pidfd) == 0)
            return -ESRCH;
        if (now_us() >= deadline)
            return -ETIMEDOUT;
        backoff(&delay, deadline);
    }
}

ssize_t sysv_msgq_receive(const struct sysv_msgq *q, void *buf, size_t cap, int timeout_ms,
                          const volatile sig_atomic_t *stop)
{
    struct sysv_msgbuf m;
    int64_t deadline, delay = SYSV_POLL_MIN_US;
    ssize_t n;

    if (q->id < 0)
        return -EINVAL;
    if (timeout_ms < 0) {
        /* Blocking: ends with a message, the queue's removal (EIDRM) or a signal. */
        n = msgrcv(q->id, &m, sizeof m.data, 0, MSG_NOERROR);
        if (n < 0)
            return -errno;
        if (m.mtype != MTYPE_REQUEST || (size_t)n > cap)
            return -EBADMSG;
        memcpy(buf, m.data, (size_t)n);
        return n;
    }
    deadline = now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        /* MSG_NOERROR: an oversized message is taken (truncated) rather than left to wedge
         * the queue; one longer than cap is then refused below. */
        n = msgrcv(q->id, &m, sizeof m.data, 0, IPC_NOWAIT | MSG_NOERROR);
        if (n >= 0) {
            if (m.mtype != MTYPE_REQUEST || (size_t)n > cap)
                return -EBADMSG;
            memcpy(buf, m.data, (size_t)n);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != ENOMSG)
            return -errno;
        if (stop && *stop)
            return -ECANCELED;
        if (now_us() >= deadline)
            return -ETIMEDOUT;
        backoff(&delay, deadline);
    }
}

int sysv_msgq_count(const struct sysv_msgq *q)
{
    struct msqid_ds ds;

    if (msgctl(q->id, IPC_STAT, &ds) < 0)
        return -errno;
    return (int)ds.msg_qnum;
}

void sysv_msgq_close(struct sysv_msgq *q)
{
    if (q->id >= 0 && q->owner)
        msgctl(q->id, IPC_RMID, NULL);
    q->id = -1;
    q->owner = 0;
}
