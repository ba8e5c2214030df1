/* cmdq_server.c - the cache's side of the command queue: the instance lock, the registry and its
 * lock, the queue, receiving, repairing names removed from under it, and closing. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* AT_EMPTY_PATH */
#include "cmdq.h"
#include "sock_chan.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmdq_priv.h"
#include "cmdq_testing.h"
#include "ipc_rundir.h"

#define LOCK_ATTEMPTS 3

void (*cmdq_test_after_lock)(const char *registry_name);

/* 1 if the name in the directory dir refers to the object open as fd, 0 if not (or gone), or
 * -errno. By fstatat without following a symlink: opening the name and closing that descriptor
 * would drop our fcntl lock on it. */
static int file_name_is(int dir, const char *name, int fd)
{
    struct stat a, b;

    if (fstat(fd, &a) < 0)
        return -errno;
    if (fstatat(dir, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    return same_object(&a, &b);
}

/* 1 if the queue name refers to the queue mq, 0 if not (gone, or an object we may not open),
 * or -errno. mq_open + fstat: works without the /dev/mqueue mount (an mqd_t is a descriptor). */
static int queue_name_is(const char *name, mqd_t mq)
{
    struct stat a, b;
    mqd_t q;
    int rc;

    rc = mq_fstat(mq, &a);
    if (rc < 0)
        return rc;
    q = mq_open(name, O_RDONLY | O_NONBLOCK);
    if (q == (mqd_t)-1)
        return errno == ENOENT || errno == EACCES ? 0 : -errno;
    rc = mq_fstat(q, &b);
    if (rc == 0)
        rc = same_object(&a, &b);
    mq_close(q);
    return rc;
}

/* The pid holding the lock of the registry in dir, or 0. Caller holds no lock on it. */
static pid_t registry_holder(int dir, const char *name)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    pid_t pid = 0;

    if (fd < 0)
        return 0;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        pid = fl.l_pid;
    close(fd);
    return pid;
}

/* The pid holding a flock on the object open as fd, from /proc/locks ("1: FLOCK ADVISORY WRITE
 * <pid> <major>:<minor>:<inode> 0 EOF", device numbers in hex), or 0 when unknown. */
static pid_t flock_holder(int fd)
{
    char line[256], want[64];
    struct stat st;
    pid_t pid = 0;
    FILE *f;

    if (fstat(fd, &st) < 0)
        return 0;
    snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
             (unsigned long long)st.st_ino);
    f = fopen("/proc/locks", "re");
    if (!f)
        return 0;
    while (pid == 0 && fgets(line, sizeof line, f)) {
        char type[16], id[64];
        long p;

        if (sscanf(line, "%*s %15s %*s %*s %ld %63s", type, &p, id) == 3 &&
            strcmp(type, "FLOCK") == 0 && strcmp(id, want) == 0 && p > 0)
            pid = (pid_t)p;
    }
    fclose(f);
    return pid;
}

/* The single-instance lock is a flock on the runtime directory itself: only our uid can open
 * it (mode 0700), nobody can take it first, it cannot be removed from under the running cache
 * while the directory holds anything, and it goes when the cache dies. Takes it on the
 * directory open as dir. Returns 0, -EBUSY (with *holder when the registry names it) or
 * -errno. */
static int instance_lock(int dir, const char *registry, pid_t *holder)
{
    if (flock(dir, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno != EWOULDBLOCK)
        return -errno;
    if (holder) {
        *holder = registry_holder(dir, registry);
        if (*holder == 0)
            *holder = flock_holder(dir); /* the registry name was removed */
    }
    return -EBUSY;
}

/* Opens the registry file in dir for writing, creating it (0600) if needed. A symlink or a
 * directory under its name (nobody else can write the directory, but it may have been wider
 * once) is removed first. Returns the descriptor or -errno. */
static int open_registry(int dir, const char *name)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = openat(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd >= 0)
            return fd;
        if (errno != ELOOP && errno != EISDIR)
            return -errno;
        if (unlinkat(dir, name, errno == EISDIR ? AT_REMOVEDIR : 0) < 0)
            return -EPERM;
    }
    return -EPERM;
}

/* Opens (creating if needed) the registry and takes its write lock, then checks that the name
 * still refers to the locked object (it may have been unlinked, or unlinked and created again,
 * between our shm_open and our lock): else it starts over, LOCK_ATTEMPTS times at most. Returns
 * the descriptor, -EBUSY (with *holder) or -errno. */
static int registry_lock(int dir, const char *name, pid_t *holder)
{
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        struct stat st;
        int fd, rc;

        /* Not O_EXCL: the object outlives a crashed cache; the lock is what tells. */
        fd = open_registry(dir, name);
        if (fd < 0)
            return fd;
        if (fstat(fd, &st) < 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
            /* Not ours, in our own directory (put there while its mode was wider): remove. */
            close(fd);
            if (unlinkat(dir, name, 0) < 0)
                return -EPERM;
            continue;
        }
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            if (cmdq_test_after_lock)
                cmdq_test_after_lock(name);
            /* A cache on its way out unlinks the registry before it unlocks, and anybody may
             * unlink or replace the name: a lock on an object the name no longer refers to
             * would make us invisible, and let a second cache lock the new object. Closing our
             * only descriptor of it is fine. */
            rc = file_name_is(dir, name, fd);
            if (rc <= 0) {
                close(fd);
                if (rc < 0)
                    return rc;
                continue;
            }
            if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) < 0) {
                rc = -errno;
                close(fd);
                return rc;
            }
            return fd;
        }
        if (errno != EAGAIN && errno != EACCES) {
            rc = -errno;
            close(fd);
            return rc;
        }
        fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        rc = fcntl(fd, F_GETLK, &fl);
        close(fd); /* we hold no lock on it */
        if (rc == 0 && fl.l_type != F_UNLCK) {
            if (holder)
                *holder = fl.l_pid;
            return -EBUSY;
        }
        /* The holder left between our two calls: try again. */
    }
    return -EBUSY;
}

/* 1 when the queue under name belongs to our uid (owner from fstat), else 0. */
static int queue_is_ours(const char *name)
{
    struct stat st;
    mqd_t q = mq_open(name, O_RDONLY | O_NONBLOCK);
    int ours;

    if (q == (mqd_t)-1)
        return 0;
    ours = mq_fstat(q, &st) == 0 && st.st_uid == geteuid();
    mq_close(q);
    return ours;
}

/* Creates our queue, under s->mq_name first. A leftover of ours under that name (a dead
 * process that had our pid, an earlier server of this process, a name replaced while we run)
 * is removed; a name that belongs to anybody else is never opened: a random serial is tried
 * instead (another user can create any name in the mqueue file system first), and s->mq_name
 * and s->mq_serial become the name used. Returns the queue or (mqd_t)-1 with errno. */
static mqd_t create_queue(struct cmdq_server *s)
{
    struct mq_attr attr = {.mq_maxmsg = CMDQ_MAXMSG, .mq_msgsize = sizeof(struct cmdq_request)};
    uint32_t serial = s->mq_serial;
    int removed = 0, rc;
    mqd_t mq = (mqd_t)-1;

    for (int attempt = 0; attempt < CMDQ_CREATE_ATTEMPTS; attempt++) {
        char name[IPC_NAME_MAX];

        rc = ipc_name_format(name, IPC_KIND_CMDQ, geteuid(), getpid(), serial);
        if (rc < 0) {
            errno = -rc;
            return (mqd_t)-1;
        }
        /* Linux mq descriptors are always close-on-exec. */
        mq = mq_open(name, O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
        if (mq != (mqd_t)-1) {
            memcpy(s->mq_name, name, sizeof name);
            s->mq_serial = serial;
            return mq;
        }
        if (errno != EEXIST)
            return mq;
        if (!removed && queue_is_ours(name) && mq_unlink(name) == 0) {
            removed = 1;
            continue;
        }
        rc = ipc_random_serial(&serial);
        if (rc < 0) {
            errno = -rc;
            return (mqd_t)-1;
        }
    }
    errno = EEXIST;
    return mq;
}

/* A registry we could lock that still names a pid was left by a cache that died. Its queue
 * is removed by name, so the leftover goes even where /dev/mqueue is not mounted and
 * ipc_sweep_dead cannot list queues. Caller holds the lock. */
static void unlink_previous_queue(int registry_fd, uid_t uid)
{
    struct registry_rec old;
    char name[IPC_NAME_MAX];

    if (pread(registry_fd, &old, sizeof old, 0) != (ssize_t)sizeof old)
        return;
    if (old.magic != REGISTRY_MAGIC || old.pid == 0 || old.pid > INT32_MAX)
        return;
    if (ipc_name_format(name, IPC_KIND_CMDQ, uid, (pid_t)old.pid,
                        old.version >= 2 ? old.queue_serial : 0) == 0 &&
        queue_is_ours(name))
        mq_unlink(name);
}

/* Writes {magic, version, our pid, queue serial} into the registry open as fd. Returns 0 or
 * -errno. */
static int publish(int fd, uint32_t queue_serial)
{
    struct registry_rec rec = {REGISTRY_MAGIC, REGISTRY_VERSION, (uint32_t)getpid(), queue_serial};

    if (ftruncate(fd, sizeof rec) < 0)
        return -errno;
    if (pwrite(fd, &rec, sizeof rec, 0) != (ssize_t)sizeof rec)
        return errno ? -errno : -EIO;
    return 0;
}

int cmdq_server_open(struct cmdq_server *s, pid_t *holder)
{
    struct ipc_rundir rd;
    uid_t uid = geteuid();
    mqd_t mq = (mqd_t)-1;
    int fd, dir, rc;

    memset(s, 0, sizeof *s);
    s->registry_fd = -1;
    s->instance_fd = -1;
    s->mq = (mqd_t)-1;
    if (holder)
        *holder = 0;
    rc = registry_file(s->registry_name, uid);
    if (rc < 0)
        goto err_names;
    rc = ipc_rundir_open(&rd);
    memcpy(s->rundir, rd.path, sizeof s->rundir);
    if (rc < 0) {
        s->rundir_failed = 1;
        goto err_names;
    }
    dir = rd.fd;
    /* The instance lock first: a second cache then touches nothing, and it works even when the
     * registry name was removed from under the running cache. */
    rc = instance_lock(dir, s->registry_name, holder);
    if (rc < 0)
        goto err_instance;
    /* Still needed: proxies check with F_GETLK that the registry's pid holds it. */
    fd = registry_lock(dir, s->registry_name, holder);
    if (fd < 0) {
        rc = fd;
        goto err_instance;
    }
    /* Only the lock holder may sweep: no other cache can be creating a queue now. */
    (void)ipc_sweep_dead(uid,
                         (1u << IPC_KIND_CMDQ) | (1u << IPC_KIND_SEGMENT) | (1u << IPC_KIND_REPLY));
    /* Socket names (sock_chan.h) of a dead cache of this instance, whatever its --ipc. */
    (void)sock_sweep(dir, uid);
    unlink_previous_queue(fd, uid);
    mq = create_queue(s);
    if (mq == (mqd_t)-1) {
        rc = -errno;
        goto err_registry;
    }
    rc = publish(fd, s->mq_serial);
    if (rc < 0)
        goto err_mq;
    s->registry_fd = fd;
    s->instance_fd = dir;
    s->mq = mq;
    return 0;

err_mq:
    mq_close(mq);
    mq_unlink(s->mq_name);
err_registry: /* we hold both locks and the name was ours a moment ago */
    if (file_name_is(dir, s->registry_name, fd) == 1)
        unlinkat(dir, s->registry_name, 0);
    close(fd);
err_instance:
    close(dir); /* drops the flock */
err_names:
    s->registry_name[0] = '\0';
    s->mq_name[0] = '\0';
    return rc;
}

/* Receives from the current queue and the replaced ones still kept, waiting at most
 * timeout_ms (monotonic) for any of them. */
static ssize_t receive_any(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms)
{
    static const struct timespec now = {0, 0}; /* a deadline in the past: do not wait */
    struct pollfd p[1 + CMDQ_OLD_QUEUES];
    unsigned n = 1 + s->nold;
    int64_t deadline = clock_mono_ms() + timeout_ms;

    p[0] = (struct pollfd){.fd = (int)s->mq, .events = POLLIN};
    for (unsigned i = 0; i < s->nold; i++)
        p[1 + i] = (struct pollfd){.fd = (int)s->old_mq[i], .events = POLLIN};
    for (;;) {
        int ready = poll(p, n, clock_ms_left(deadline));

        if (ready < 0 && errno != EINTR)
            return -errno;
        if (ready == 0)
            return -ETIMEDOUT;
        /* Round robin, so a busy queue cannot starve another. */
        for (unsigned k = 0; ready > 0 && k < n; k++) {
            unsigned i = (s->next_rx + k) % n;
            ssize_t len;

            if (!(p[i].revents & POLLIN))
                continue;
            len = mq_timedreceive((mqd_t)p[i].fd, buf, cap, NULL, &now);
            if (len >= 0) {
                s->next_rx = (i + 1) % n;
                return len;
            }
            if (errno != ETIMEDOUT && errno != EAGAIN && errno != EINTR)
                return -errno;
        }
    }
}

ssize_t cmdq_server_receive(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms)
{
    struct timespec deadline;
    ssize_t n;

    if (cap < sizeof(struct cmdq_request) || timeout_ms < 0)
        return -EINVAL;
    if (s->nold > 0)
        return receive_any(s, buf, cap, timeout_ms);
    deadline = clock_realtime_in(timeout_ms);
    do {
        n = mq_timedreceive(s->mq, buf, cap, NULL, &deadline);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

/* Closes the replaced queues that are empty and were replaced CMDQ_OLD_KEEP_MS ago: every proxy
 * has moved to the new queue by then (it checks the name every CMDQ_CHECK_MS before sending, and
 * waits far less than that for room). */
static void expire_old_queues(struct cmdq_server *s)
{
    int64_t now = clock_mono_ms();

    for (unsigned i = 0; i < s->nold;) {
        struct mq_attr a;

        if (now - s->old_since_ms[i] < CMDQ_OLD_KEEP_MS || mq_getattr(s->old_mq[i], &a) < 0 ||
            a.mq_curmsgs > 0) {
            i++;
            continue;
        }
        mq_close(s->old_mq[i]);
        s->nold--;
        s->old_mq[i] = s->old_mq[s->nold];
        s->old_since_ms[i] = s->old_since_ms[s->nold];
    }
    s->next_rx = 0;
}

/* Narrows an object of ours back to mode 0600 (proxies accept nothing else). Returns 0 or
 * -errno. */
static int mode_0600(int fd)
{
    struct stat st;

    /* fstatat: fd may be a queue (see mq_fstat). */
    if (fstatat(fd, "", &st, AT_EMPTY_PATH) < 0)
        return -errno;
    return (st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0 ? -errno : 0;
}

/* Returns 1 (re-created), 0 (the name is ours) or -errno. */
static int check_queue(struct cmdq_server *s)
{
    int rc = queue_name_is(s->mq_name, s->mq);
    mqd_t mq;

    if (rc > 0)
        return mode_0600((int)s->mq);
    if (rc < 0)
        return rc;
    if (s->nold == CMDQ_OLD_QUEUES)
        return -EAGAIN;
    mq = create_queue(s);
    if (mq == (mqd_t)-1)
        return -errno;
    /* Proxies connected before still hold the old queue and send there: keep reading it. */
    s->old_mq[s->nold] = s->mq;
    s->old_since_ms[s->nold] = clock_mono_ms();
    s->nold++;
    s->mq = mq;
    return 1;
}

/* Returns 1 (re-created and locked), 0 (the name is ours) or -errno. */
static int check_registry(struct cmdq_server *s)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    struct stat st, old;
    int dir = s->instance_fd;
    int rc = file_name_is(dir, s->registry_name, s->registry_fd);
    int fd;

    if (rc > 0)
        return mode_0600(s->registry_fd);
    if (rc < 0)
        return rc;
    fd = open_registry(dir, s->registry_name);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0 || fstat(s->registry_fd, &old) < 0) {
        rc = -errno;
        goto err;
    }
    if (same_object(&st, &old)) {
        /* The name came back to our object between stat and open: closing either descriptor
         * drops the lock, so keep the new one and lock it again. */
        close(s->registry_fd);
        s->registry_fd = fd;
        return fcntl(fd, F_SETLK, &fl) < 0 ? -errno : 0;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        rc = unlinkat(dir, s->registry_name, 0) < 0 ? -EPERM : -EAGAIN; /* next time */
        goto err;
    }
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        rc = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        goto err;
    }
    if (cmdq_test_after_lock)
        cmdq_test_after_lock(s->registry_name);
    rc = file_name_is(dir, s->registry_name, fd);
    if (rc <= 0) {
        rc = rc < 0 ? rc : -EAGAIN; /* replaced again meanwhile: next time */
        goto err;
    }
    if ((st.st_mode & 0777) != 0600 && fchmod(fd, 0600) < 0) {
        rc = -errno;
        goto err;
    }
    close(s->registry_fd); /* drops our lock on the old, unnamed object only */
    s->registry_fd = fd;
    return 1;

err:
    close(fd);
    return rc;
}

/* Narrows the runtime directory back to 0700 if somebody of our uid widened it. Returns 0 or
 * -errno. */
static int check_rundir(struct cmdq_server *s)
{
    struct stat st;

    if (fstat(s->instance_fd, &st) < 0)
        return -errno;
    if ((st.st_mode & 07777) != 0700 && fchmod(s->instance_fd, 0700) < 0)
        return -errno;
    return 0;
}

int cmdq_server_check(struct cmdq_server *s, unsigned *fixed)
{
    int rc, first = 0;

    *fixed = 0;
    if (!s->registry_name[0])
        return -EINVAL;
    first = check_rundir(s);
    expire_old_queues(s);
    rc = check_queue(s);
    if (rc > 0)
        *fixed |= CMDQ_FIXED_QUEUE;
    else if (rc < 0 && first == 0)
        first = rc;
    rc = check_registry(s);
    if (rc > 0)
        *fixed |= CMDQ_FIXED_REGISTRY;
    else if (rc < 0 && first == 0)
        first = rc;
    /* Written again even when only the queue is new: the registry's times change, so proxies
     * that failed to find the queue look it up again at once. */
    if (*fixed) {
        rc = publish(s->registry_fd, s->mq_serial);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

/* Unlinks the queue and registry names and drops the locks. Queue first: a proxy that still
 * finds the registry then fails to open the queue. Each name is kept when it is known to refer
 * to another object (gone: nothing to do); when the check itself fails (EMFILE, say) it is
 * removed as before, since with the instance lock, released last, no other cache of ours can
 * have created it. The queue descriptors stay open. */
static void give_up_names(struct cmdq_server *s)
{
    if (s->mq_name[0]) {
        if (queue_name_is(s->mq_name, s->mq) != 0)
            mq_unlink(s->mq_name);
        s->mq_name[0] = '\0';
    }
    if (s->registry_name[0]) {
        if (file_name_is(s->instance_fd, s->registry_name, s->registry_fd) != 0)
            unlinkat(s->instance_fd, s->registry_name, 0);
        close(s->registry_fd); /* drops the registry lock */
        close(s->instance_fd); /* drops the instance lock (the flock on the directory) */
        s->registry_name[0] = '\0';
        s->registry_fd = -1;
        s->instance_fd = -1;
    }
}

void cmdq_server_retire(struct cmdq_server *s)
{
    if (!s->registry_name[0])
        return; /* closed, or retired already */
    give_up_names(s);
    s->retired = 1;
}

void cmdq_server_close(struct cmdq_server *s)
{
    int open = s->mq_name[0] || s->retired;

    for (unsigned i = 0; i < s->nold; i++)
        mq_close(s->old_mq[i]);
    s->nold = 0;
    give_up_names(s);
    if (open)
        mq_close(s->mq);
    s->mq = (mqd_t)-1;
    s->retired = 0;
    s->registry_fd = -1;
    s->instance_fd = -1;
}
