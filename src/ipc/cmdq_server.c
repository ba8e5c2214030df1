/* cmdq_server.c - the cache's side of the command queue: the instance lock, the registry and its
 * lock, the queue, receiving, repairing names removed from under it, and closing. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* struct ucred, accept4, AT_EMPTY_PATH */
#include "cmdq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cmdq_priv.h"
#include "cmdq_testing.h"

#define LOCK_ATTEMPTS 3

void (*cmdq_test_after_lock)(const char *registry_name);

/* 1 if the shm name refers to the object open as fd, 0 if not (or gone), or -errno. By stat of
 * its path: opening the name and closing that descriptor would drop our fcntl lock on it. */
static int shm_name_is(const char *name, int fd)
{
    char path[sizeof SHM_DIR + IPC_NAME_MAX];
    struct stat a, b;

    if (snprintf(path, sizeof path, "%s%s", SHM_DIR, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    if (fstat(fd, &a) < 0)
        return -errno;
    if (stat(path, &b) < 0)
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

/* The single-instance lock lives in the abstract unix socket namespace, where a name exists
 * exactly while a socket is bound to it: nobody can unlink it, and it goes when the cache dies.
 * That namespace belongs to the network namespace, so the name also carries what a cache's
 * objects belong to: the IPC namespace (queues) and the /dev/shm file system (registry). */
static socklen_t instance_addr(struct sockaddr_un *sa, uid_t uid)
{
    struct stat ns = {0}, shm = {0};
    int n;

    (void)stat("/proc/self/ns/ipc", &ns); /* without /proc: 0, one name per network namespace */
    (void)stat(SHM_DIR, &shm);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "getfile-%u-cache-%llx-%llx",
                 (unsigned)uid, (unsigned long long)ns.st_ino, (unsigned long long)shm.st_dev);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The pid of the process that holds the instance lock (SO_PEERCRED of a connection to it), or
 * 0 when unknown (its backlog is full: the holder drains it in cmdq_server_check). Its uid goes
 * to *uid (unchanged when unknown). */
static pid_t instance_holder(const struct sockaddr_un *sa, socklen_t len, uid_t *uid)
{
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    pid_t pid = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0)
        return 0;
    if (connect(fd, (const struct sockaddr *)sa, len) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0) {
        pid = cr.pid;
        *uid = cr.uid;
    }
    close(fd);
    return pid;
}

/* The pid holding the lock of the registry name, or 0. Caller holds no lock on it. */
static pid_t registry_holder(const char *name)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int fd = shm_open(name, O_RDONLY, 0);
    pid_t pid = 0;

    if (fd < 0)
        return 0;
    if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
        pid = fl.l_pid;
    close(fd);
    return pid;
}

/* Binds the instance lock. Returns its descriptor, -EBUSY (with *holder when known) or -errno. */
static int instance_lock(uid_t uid, const char *registry_name, pid_t *holder)
{
    struct sockaddr_un sa;
    socklen_t len = instance_addr(&sa, uid);
    uid_t owner = uid;
    int fd, rc;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (const struct sockaddr *)&sa, len) == 0) {
        if (listen(fd, 4) == 0)
            return fd;
        rc = -errno;
        close(fd);
        return rc;
    }
    rc = -errno;
    close(fd);
    if (rc != -EADDRINUSE)
        return rc;
    /* Abstract names have no owner or mode: anyone can bind ours. A holder of another uid is
     * not a cache of ours but a squatter, reported as such (-EPERM, like a foreign registry). */
    pid_t pid = instance_holder(&sa, len, &owner);
    if (owner != uid)
        return -EPERM;
    if (holder)
        *holder = pid ? pid : registry_holder(registry_name);
    return -EBUSY;
}

/* Opens (creating if needed) the registry and takes its write lock, then checks that the name
 * still refers to the locked object (it may have been unlinked, or unlinked and created again,
 * between our shm_open and our lock): else it starts over, LOCK_ATTEMPTS times at most. Returns
 * the descriptor, -EBUSY (with *holder) or -errno. */
static int registry_lock(const char *name, pid_t *holder)
{
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
        struct stat st;
        int fd, rc;

        /* Not O_EXCL: the object outlives a crashed cache; the lock is what tells. */
        fd = shm_open(name, O_RDWR | O_CREAT, 0600);
        if (fd < 0)
            return -errno;
        if (fstat(fd, &st) < 0) {
            rc = -errno;
            close(fd);
            return rc;
        }
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
            close(fd);
            return -EPERM;
        }
        if (fcntl(fd, F_SETLK, &fl) == 0) {
            if (cmdq_test_after_lock)
                cmdq_test_after_lock(name);
            /* A cache on its way out unlinks the registry before it unlocks, and anybody may
             * unlink or replace the name: a lock on an object the name no longer refers to
             * would make us invisible, and let a second cache lock the new object. Closing our
             * only descriptor of it is fine. */
            rc = shm_name_is(name, fd);
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
    if (ipc_name_format(name, IPC_KIND_CMDQ, uid, (pid_t)old.pid, 0) == 0)
        mq_unlink(name);
}

/* Creates our queue under name. A leftover under our own pid's name (a dead process that had
 * our pid, an earlier server of this process, or a name replaced while we run) is nobody
 * else's: it is removed. Returns the queue or (mqd_t)-1 with errno. */
static mqd_t create_queue(const char *name)
{
    struct mq_attr attr = {.mq_maxmsg = CMDQ_MAXMSG, .mq_msgsize = sizeof(struct cmdq_request)};
    mqd_t mq = (mqd_t)-1;

    for (int attempt = 0; attempt < 2; attempt++) {
        /* Linux mq descriptors are always close-on-exec. */
        mq = mq_open(name, O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
        if (mq != (mqd_t)-1 || errno != EEXIST)
            break;
        mq_unlink(name);
    }
    return mq;
}

/* Writes {magic, version, our pid} into the registry open as fd. Returns 0 or -errno. */
static int publish(int fd)
{
    struct registry_rec rec = {REGISTRY_MAGIC, REGISTRY_VERSION, (uint32_t)getpid(), 0};

    if (ftruncate(fd, sizeof rec) < 0)
        return -errno;
    if (pwrite(fd, &rec, sizeof rec, 0) != (ssize_t)sizeof rec)
        return errno ? -errno : -EIO;
    return 0;
}

int cmdq_server_open(struct cmdq_server *s, pid_t *holder)
{
    uid_t uid = geteuid();
    pid_t pid = getpid();
    mqd_t mq = (mqd_t)-1;
    int fd, ifd, rc;

    memset(s, 0, sizeof *s);
    s->registry_fd = -1;
    s->instance_fd = -1;
    s->mq = (mqd_t)-1;
    if (holder)
        *holder = 0;
    rc = ipc_name_format(s->registry_name, IPC_KIND_REGISTRY, uid, 0, 0);
    if (rc == 0)
        rc = ipc_name_format(s->mq_name, IPC_KIND_CMDQ, uid, pid, 0);
    if (rc < 0)
        goto err_names;
    /* The instance lock first: a second cache then touches nothing, and it works even when the
     * registry name was removed from under the running cache. */
    ifd = instance_lock(uid, s->registry_name, holder);
    if (ifd < 0) {
        rc = ifd;
        goto err_names;
    }
    /* Still needed: proxies check with F_GETLK that the registry's pid holds it. */
    fd = registry_lock(s->registry_name, holder);
    if (fd < 0) {
        rc = fd;
        goto err_instance;
    }
    /* Only the lock holder may sweep: no other cache can be creating a queue now. */
    (void)ipc_sweep_dead(uid, (1u << IPC_KIND_CMDQ) | (1u << IPC_KIND_SEGMENT));
    unlink_previous_queue(fd, uid);
    mq = create_queue(s->mq_name);
    if (mq == (mqd_t)-1) {
        rc = -errno;
        goto err_registry;
    }
    rc = publish(fd);
    if (rc < 0)
        goto err_mq;
    s->registry_fd = fd;
    s->instance_fd = ifd;
    s->mq = mq;
    return 0;

err_mq:
    mq_close(mq);
    mq_unlink(s->mq_name);
err_registry: /* we hold both locks and the name was ours a moment ago */
    if (shm_name_is(s->registry_name, fd) == 1)
        shm_unlink(s->registry_name);
    close(fd);
err_instance:
    close(ifd);
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

/* Returns 1 (re-created), 0 (the name is ours) or -errno. */
static int check_queue(struct cmdq_server *s)
{
    int rc = queue_name_is(s->mq_name, s->mq);
    mqd_t mq;

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (s->nold == CMDQ_OLD_QUEUES)
        return -EAGAIN;
    mq = create_queue(s->mq_name);
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
    int rc = shm_name_is(s->registry_name, s->registry_fd);
    int fd;

    if (rc != 0)
        return rc < 0 ? rc : 0;
    fd = shm_open(s->registry_name, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        return -errno;
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
        rc = -EPERM;
        goto err;
    }
    if (fcntl(fd, F_SETLK, &fl) < 0) {
        rc = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        goto err;
    }
    if (cmdq_test_after_lock)
        cmdq_test_after_lock(s->registry_name);
    rc = shm_name_is(s->registry_name, fd);
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

int cmdq_server_check(struct cmdq_server *s, unsigned *fixed)
{
    int rc, first = 0, conn;

    *fixed = 0;
    if (!s->registry_name[0])
        return -EINVAL;
    /* Refused caches asking for our pid leave connections behind: drop them. */
    while ((conn = accept4(s->instance_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(conn);
    expire_old_queues(s);
    rc = check_queue(s);
    if (rc > 0)
        *fixed |= CMDQ_FIXED_QUEUE;
    else if (rc < 0)
        first = rc;
    rc = check_registry(s);
    if (rc > 0)
        *fixed |= CMDQ_FIXED_REGISTRY;
    else if (rc < 0 && first == 0)
        first = rc;
    /* Written again even when only the queue is new: the registry's times change, so proxies
     * that failed to find the queue look it up again at once. */
    if (*fixed) {
        rc = publish(s->registry_fd);
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
        if (shm_name_is(s->registry_name, s->registry_fd) != 0)
            shm_unlink(s->registry_name);
        close(s->registry_fd); /* drops the registry lock */
        close(s->instance_fd); /* drops the instance lock */
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
