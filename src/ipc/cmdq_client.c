/* cmdq_client.c - the proxy's side of the command queue: a thread-safe client that finds the
 * running cache through its registry, sends to its queue, and notices when it dies or restarts. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* AT_EMPTY_PATH, F_DUPFD_CLOEXEC */
#include "cmdq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmdq_priv.h"
#include "cmdq_testing.h"
#include "ipc_rundir.h"
#include "peer.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

struct cmdq_client {
    pthread_mutex_t lock;
    mqd_t mq;               /* guarded by lock; -1 while disconnected */
    int pidfd;              /* guarded by lock; of the connected cache, -1 while disconnected */
    pid_t pid;              /* guarded by lock; the connected cache */
    int backoff_ms;         /* guarded by lock; the next interval after a failed lookup */
    int64_t next_lookup_ms; /* guarded by lock; no lookup before this clock_mono_ms() */
    unsigned lookups;       /* guarded by lock */
    struct stat seen;       /* guarded by lock; the registry at the last failed lookup */
    int seen_errno;         /* guarded by lock; stat's errno then, or 0 */
    struct stat mq_st;      /* guarded by lock; the connected queue (inode, device) */
    struct stat reg_st;     /* guarded by lock; the registry as the last lookup began */
    int reg_errno;          /* guarded by lock; stat's errno then, or 0 */
    int64_t next_check_ms;  /* guarded by lock; when to check that its name still refers to it */
    char mq_name[IPC_NAME_MAX];  /* guarded by lock; the connected queue's name */
    int dir;                     /* the runtime directory (ipc_rundir.h); fixed */
    char registry[IPC_NAME_MAX]; /* the registry's file name in dir; fixed */
};

int cmdq_client_new(struct cmdq_client **out, char *rundir, size_t rundir_cap)
{
    struct cmdq_client *c = calloc(1, sizeof *c);
    struct ipc_rundir rd;
    int rc;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    rd.path[0] = '\0';
    rc = registry_file(c->registry, geteuid());
    if (rc == 0)
        rc = ipc_rundir_open(&rd);
    if (rundir && rundir_cap > 0) {
        size_t n = strnlen(rd.path, rundir_cap - 1);

        memcpy(rundir, rd.path, n);
        rundir[n] = '\0';
    }
    if (rc < 0) {
        free(c);
        return rc;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        ipc_rundir_close(&rd);
        free(c);
        return -ENOMEM;
    }
    c->dir = rd.fd;
    c->mq = (mqd_t)-1;
    c->pidfd = -1;
    c->backoff_ms = BACKOFF_MIN_MS;
    *out = c;
    return 0;
}

static void disconnect_locked(struct cmdq_client *c)
{
    if (c->mq != (mqd_t)-1)
        mq_close(c->mq);
    if (c->pidfd >= 0)
        close(c->pidfd);
    c->mq = (mqd_t)-1;
    c->pidfd = -1;
    c->pid = 0;
}

void cmdq_client_free(struct cmdq_client *c)
{
    if (!c)
        return;
    disconnect_locked(c);
    close(c->dir);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Takes the registry's stat signature (inode, size, times) into *st, or its errno. */
static int registry_stat(const struct cmdq_client *c, struct stat *st)
{
    memset(st, 0, sizeof *st);
    return fstatat(c->dir, c->registry, st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
}

static int same_stat(const struct stat *a, int a_err, const struct stat *b, int b_err)
{
    if (a_err || b_err)
        return a_err == b_err;
    return a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Finds the running cache: registry pid, a pidfd for it, the lock held by that very pid, its
 * queue. Returns 0 (connected) or -errno (-ENOTCONN: no cache). */
static int lookup_locked(struct cmdq_client *c)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    char name[IPC_NAME_MAX];
    struct registry_rec rec;
    struct stat st;
    uid_t uid = geteuid();
    int fd, pidfd, rc;
    ssize_t n;
    mqd_t mq;

    c->lookups++;
    /* Taken first: a registry that changes after it is seen again as changed, and looked up. */
    c->reg_errno = registry_stat(c, &c->reg_st);
    fd = openat(c->dir, c->registry, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP ? -ENOTCONN : -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 0777) != 0600) {
        close(fd);
        return -ENOTCONN;
    }
    n = pread(fd, &rec, sizeof rec, 0);
    if (n != (ssize_t)sizeof rec || rec.magic != REGISTRY_MAGIC ||
        rec.version != REGISTRY_VERSION || rec.pid == 0 || rec.pid > INT_MAX) {
        close(fd);
        return -ENOTCONN;
    }
    pidfd = peer_open((pid_t)rec.pid);
    if (pidfd < 0) {
        close(fd);
        return pidfd == -ESRCH ? -ENOTCONN : pidfd;
    }
    /* A crashed cache leaves its registry behind; only a pid that holds the lock is a cache.
     * The pidfd was opened first, so if this pid is the holder now, the pidfd is the cache. */
    rc = fcntl(fd, F_GETLK, &fl);
    close(fd); /* this process holds no lock on the registry */
    if (rc < 0) {
        rc = -errno;
        goto err_pidfd;
    }
    if (fl.l_type == F_UNLCK || fl.l_pid != (pid_t)rec.pid) {
        rc = -ENOTCONN;
        goto err_pidfd;
    }
    rc = ipc_name_format(name, IPC_KIND_CMDQ, uid, (pid_t)rec.pid, rec.queue_serial);
    if (rc < 0)
        goto err_pidfd;
    mq = mq_open(name, O_WRONLY);
    if (mq == (mqd_t)-1) {
        rc = errno == ENOENT || errno == EACCES ? -ENOTCONN : -errno;
        goto err_pidfd;
    }
    /* Only a queue of our uid and mode is the cache's: root may open anybody's. */
    if (mq_fstat(mq, &st) < 0 || st.st_uid != uid || (st.st_mode & 0777) != 0600 ||
        peer_alive(pidfd) != 1) {
        mq_close(mq);
        rc = -ENOTCONN;
        goto err_pidfd;
    }
    c->mq_st = st;
    memcpy(c->mq_name, name, sizeof name);
    c->next_check_ms = clock_mono_ms() + CMDQ_CHECK_MS;
    c->mq = mq;
    c->pidfd = pidfd;
    c->pid = (pid_t)rec.pid;
    return 0;

err_pidfd:
    close(pidfd);
    return rc;
}

/* What the connected cache's queue name refers to now: 1 and *st, or 0 (no queue under it). */
static int queue_under_name_locked(struct cmdq_client *c, struct stat *st)
{
    int found;
    mqd_t q;

    q = mq_open(c->mq_name, O_WRONLY);
    if (q == (mqd_t)-1)
        return 0;
    found = mq_fstat(q, st) == 0 && st->st_uid == geteuid();
    mq_close(q);
    return found;
}

/* 1 if the connected cache's queue name now refers to another queue than ours (the cache
 * re-created it after it was removed), else 0 (the same queue, or no queue under the name: the
 * cache still reads the one we hold). */
static int queue_replaced_locked(struct cmdq_client *c)
{
    struct stat st;

    return queue_under_name_locked(c, &st) && !same_object(&st, &c->mq_st);
}

/* 1 if the connected cache's queue name still refers to the queue we hold. */
static int queue_still_ours_locked(struct cmdq_client *c)
{
    struct stat st;

    return queue_under_name_locked(c, &st) && same_object(&st, &c->mq_st);
}

/* Every CMDQ_CHECK_MS: moves to the cache's new queue when its name was given to one. The old
 * connection stays until the new one is made, so a failed lookup loses nothing. */
static void recheck_queue_locked(struct cmdq_client *c)
{
    mqd_t old_mq = c->mq;
    int old_pidfd = c->pidfd;
    pid_t old_pid = c->pid;
    struct stat old_st = c->mq_st;
    char old_name[IPC_NAME_MAX];

    memcpy(old_name, c->mq_name, sizeof old_name);
    c->next_check_ms = clock_mono_ms() + CMDQ_CHECK_MS;
    if (!queue_replaced_locked(c))
        return;
    c->mq = (mqd_t)-1;
    c->pidfd = -1;
    c->pid = 0;
    if (lookup_locked(c) < 0) {
        c->mq = old_mq;
        c->pidfd = old_pidfd;
        c->pid = old_pid;
        c->mq_st = old_st;
        memcpy(c->mq_name, old_name, sizeof old_name);
        return;
    }
    mq_close(old_mq);
    close(old_pidfd);
}

/* Before every send: a registry that changed since the last lookup means a stopping cache gave
 * its names up (a new one may run already), or a cache published itself again. Looks the cache
 * up again and moves to what it finds. When nothing is found, the connection is kept only while
 * the cache's queue name still refers to our queue (the registry alone was removed: the cache
 * re-creates it); otherwise the cache has retired and we disconnect. */
static void follow_registry_locked(struct cmdq_client *c)
{
    mqd_t old_mq = c->mq;
    int old_pidfd = c->pidfd;
    pid_t old_pid = c->pid;
    struct stat old_st = c->mq_st, st;
    int st_err = registry_stat(c, &st);
    char old_name[IPC_NAME_MAX];

    memcpy(old_name, c->mq_name, sizeof old_name);
    if (same_stat(&st, st_err, &c->reg_st, c->reg_errno))
        return;
    c->mq = (mqd_t)-1;
    c->pidfd = -1;
    c->pid = 0;
    if (lookup_locked(c) == 0) {
        mq_close(old_mq);
        close(old_pidfd);
        return;
    }
    c->mq = old_mq;
    c->pidfd = old_pidfd;
    c->pid = old_pid;
    c->mq_st = old_st;
    memcpy(c->mq_name, old_name, sizeof old_name);
    if (queue_still_ours_locked(c))
        return; /* c->reg_st is the registry now: looked up again when it changes */
    disconnect_locked(c);
    c->seen = c->reg_st;
    c->seen_errno = c->reg_errno;
    c->next_lookup_ms = clock_mono_ms() + c->backoff_ms;
}

/* Connects if needed, then dups the queue and pidfd for the caller; *pid_out (may be NULL):
 * the connected cache's pid. */
static int connect_and_dup(struct cmdq_client *c, int *mq_dup, int *pidfd_dup, pid_t *pid_out)
{
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    if (c->pidfd >= 0 && peer_alive(c->pidfd) != 1) {
        /* The cache died or restarted: a new one has a new pid and queue. Look at once. */
        disconnect_locked(c);
        c->next_lookup_ms = 0;
    }
    if (c->pidfd >= 0)
        follow_registry_locked(c);
    if (c->pidfd >= 0 && clock_mono_ms() >= c->next_check_ms)
        recheck_queue_locked(c);
    if (c->pidfd < 0) {
        int64_t now = clock_mono_ms();
        struct stat st;
        int st_err = registry_stat(c, &st);

        /* Within the backoff interval only a changed registry (a cache that has just
         * published its pid) is worth a lookup; a stat costs far less than one. */
        if (now < c->next_lookup_ms && same_stat(&st, st_err, &c->seen, c->seen_errno)) {
            rc = -ENOTCONN;
            goto out;
        }
        rc = lookup_locked(c);
        if (rc < 0) {
            c->seen = st;
            c->seen_errno = st_err;
            c->next_lookup_ms = now + c->backoff_ms;
            c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
            goto out;
        }
        c->backoff_ms = BACKOFF_MIN_MS;
        c->next_lookup_ms = 0;
    }
    /* mqd_t is a file descriptor on Linux. Private duplicates let us wait without the lock
     * while another thread reconnects and closes the originals. */
    *mq_dup = fcntl((int)c->mq, F_DUPFD_CLOEXEC, 0);
    *pidfd_dup = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 0);
    if (pid_out)
        *pid_out = c->pid;
    if (*mq_dup < 0 || *pidfd_dup < 0) {
        rc = -errno;
        if (*mq_dup >= 0)
            close(*mq_dup);
        if (*pidfd_dup >= 0)
            close(*pidfd_dup);
    }
out:
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static int send_msg(struct cmdq_client *c, const void *msg, size_t len, int timeout_ms,
                    int *cache_pidfd)
{
    int mq = -1, pidfd = -1, rc;
    int64_t deadline;

    *cache_pidfd = -1;
    if (timeout_ms < 0)
        return -EINVAL;
    rc = connect_and_dup(c, &mq, &pidfd, NULL);
    if (rc < 0)
        return rc;
    deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        int left = clock_ms_left(deadline);
        int slice = left < CMDQ_SEND_SLICE_MS ? left : CMDQ_SEND_SLICE_MS;
        struct timespec ts = clock_realtime_in(slice);
        int alive;

        if (mq_timedsend((mqd_t)mq, (const char *)msg, len, 0, &ts) == 0) {
            rc = 0;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno != ETIMEDOUT) {
            rc = -errno;
            break;
        }
        /* The queue is full: a dead cache will never drain it. */
        alive = peer_alive(pidfd);
        if (alive <= 0) {
            rc = alive == 0 ? -ESRCH : alive;
            break;
        }
        if (left == 0) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    close(mq);
    if (rc == 0)
        *cache_pidfd = pidfd;
    else
        close(pidfd);
    return rc;
}

int cmdq_client_send(struct cmdq_client *c, const struct cmdq_request *req, int timeout_ms,
                     int *cache_pidfd)
{
    return send_msg(c, req, sizeof *req, timeout_ms, cache_pidfd);
}

int cmdq_client_send_ctl(struct cmdq_client *c, const struct cmdq_ctl *ctl, int timeout_ms,
                         int *cache_pidfd)
{
    return send_msg(c, ctl, sizeof *ctl, timeout_ms, cache_pidfd);
}

int cmdq_client_locate(struct cmdq_client *c, pid_t *cache_pid, int *cache_pidfd)
{
    int mq = -1, rc;

    *cache_pidfd = -1;
    rc = connect_and_dup(c, &mq, cache_pidfd, cache_pid);
    if (rc < 0)
        return rc;
    close(mq);
    return 0;
}

int cmdq_client_dir(const struct cmdq_client *c)
{
    return c->dir;
}

pid_t cmdq_client_cache_pid(struct cmdq_client *c)
{
    pid_t pid;

    pthread_mutex_lock(&c->lock);
    pid = c->pidfd >= 0 ? c->pid : 0;
    pthread_mutex_unlock(&c->lock);
    return pid;
}

unsigned cmdq_client_lookups(struct cmdq_client *c)
{
    unsigned n;

    pthread_mutex_lock(&c->lock);
    n = c->lookups;
    pthread_mutex_unlock(&c->lock);
    return n;
}
