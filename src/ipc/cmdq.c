/* cmdq.c - the command queue: request messages, the cache's registry + lock + queue, and the
 * proxy's thread-safe client that finds the cache and notices when it dies or restarts. */
/* SPDX-License-Identifier: MIT */
#include "cmdq.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "peer.h"
#include "shm_chan.h"

#define REGISTRY_MAGIC   0x47464352u /* "GFCR" */
#define REGISTRY_VERSION 1u
#define LOCK_ATTEMPTS    3
#define BACKOFF_MIN_MS   50
#define BACKOFF_MAX_MS   1000
#define SHM_DIR          "/dev/shm" /* where glibc keeps shm objects */

/* The registry's contents: written by the cache once it holds the lock and its queue exists. */
struct registry_rec {
    uint32_t magic;
    uint32_t version;
    uint32_t pid;
    uint32_t pad_;
};

int cmdq_request_init(struct cmdq_request *req, pid_t proxy_pid, const char *seg_name,
                      uint64_t seg_size, uint64_t generation, const char *path, size_t path_len)
{
    size_t name_len;
    pid_t seg_pid;

    memset(req, 0, sizeof *req);
    if (proxy_pid <= 0)
        return -EINVAL;
    if (path_len > CMDQ_PATH_MAX)
        return -ENAMETOOLONG;
    if (path_len == 0 || path[0] != '/' || memchr(path, '\0', path_len))
        return -EINVAL;
    name_len = strnlen(seg_name, IPC_NAME_MAX);
    if (name_len == IPC_NAME_MAX)
        return -ENAMETOOLONG;
    if (ipc_name_parse(seg_name, IPC_KIND_SEGMENT, geteuid(), &seg_pid, NULL) < 0 ||
        seg_pid != proxy_pid)
        return -EINVAL;
    req->magic = CMDQ_MAGIC;
    req->version = CMDQ_VERSION;
    req->size = sizeof *req;
    req->proxy_pid = (uint32_t)proxy_pid;
    req->path_len = (uint32_t)path_len;
    req->generation = generation;
    req->seg_size = seg_size;
    memcpy(req->seg_name, seg_name, name_len + 1);
    memcpy(req->path, path, path_len);
    return 0;
}

int cmdq_request_decode(const void *buf, size_t len, uid_t uid, struct cmdq_request *out)
{
    static const char zero_pad[sizeof out->pad_];
    struct cmdq_request r;
    uint32_t magic;
    uint16_t version;
    pid_t seg_pid;

    /* Magic and version first: another version may have another size. */
    if (len < sizeof magic + sizeof version)
        return -EBADMSG;
    memcpy(&magic, buf, sizeof magic);
    memcpy(&version, (const char *)buf + sizeof magic, sizeof version);
    if (magic != CMDQ_MAGIC)
        return -EBADMSG;
    if (version != CMDQ_VERSION)
        return -EPROTO;
    if (len != sizeof r)
        return -EBADMSG;
    memcpy(&r, buf, sizeof r);
    if (r.size != sizeof r || r.proxy_pid == 0 || r.proxy_pid > INT_MAX)
        return -EBADMSG;
    if (r.path_len == 0 || r.path_len > CMDQ_PATH_MAX)
        return -EBADMSG;
    if (!memchr(r.seg_name, '\0', sizeof r.seg_name))
        return -EBADMSG;
    /* Also catches a path without a NUL: strnlen is then sizeof r.path > CMDQ_PATH_MAX. */
    if (strnlen(r.path, sizeof r.path) != r.path_len || r.path[0] != '/')
        return -EBADMSG;
    if (memcmp(r.pad_, zero_pad, sizeof zero_pad) != 0)
        return -EBADMSG;
    if (r.seg_size < SHM_SEG_MIN || r.seg_size > SHM_SEG_MAX)
        return -EBADMSG;
    if (ipc_name_parse(r.seg_name, IPC_KIND_SEGMENT, uid, &seg_pid, NULL) < 0 ||
        seg_pid != (pid_t)r.proxy_pid)
        return -EPERM;
    *out = r;
    return 0;
}

/* --- cache side --------------------------------------------------------------------------- */

/* Opens (creating if needed) the registry and takes its write lock. Returns the descriptor,
 * -EBUSY (with *holder) or -errno. */
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
            /* A cache on its way out unlinks the registry before it unlocks: a lock on an
             * unlinked object would make us invisible. Closing our only descriptor is fine. */
            if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
                close(fd);
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

int cmdq_server_open(struct cmdq_server *s, pid_t *holder)
{
    struct mq_attr attr = {.mq_maxmsg = CMDQ_MAXMSG, .mq_msgsize = sizeof(struct cmdq_request)};
    struct registry_rec rec = {REGISTRY_MAGIC, REGISTRY_VERSION, 0, 0};
    uid_t uid = geteuid();
    pid_t pid = getpid();
    mqd_t mq = (mqd_t)-1;
    int fd, rc;

    memset(s, 0, sizeof *s);
    s->registry_fd = -1;
    s->mq = (mqd_t)-1;
    if (holder)
        *holder = 0;
    rc = ipc_name_format(s->registry_name, IPC_KIND_REGISTRY, uid, 0, 0);
    if (rc == 0)
        rc = ipc_name_format(s->mq_name, IPC_KIND_CMDQ, uid, pid, 0);
    if (rc < 0)
        goto err_names;
    fd = registry_lock(s->registry_name, holder);
    if (fd < 0) {
        rc = fd;
        goto err_names;
    }
    /* Only the lock holder may sweep: no other cache can be creating a queue now. */
    (void)ipc_sweep_dead(uid, (1u << IPC_KIND_CMDQ) | (1u << IPC_KIND_SEGMENT));
    unlink_previous_queue(fd, uid);
    for (int attempt = 0; attempt < 2; attempt++) {
        /* Linux mq descriptors are always close-on-exec. */
        mq = mq_open(s->mq_name, O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
        if (mq != (mqd_t)-1 || errno != EEXIST)
            break;
        /* Our own pid's name under the lock: left by a dead process that had our pid, or by
         * an earlier server of this process. Nobody else can own it. */
        mq_unlink(s->mq_name);
    }
    if (mq == (mqd_t)-1) {
        rc = -errno;
        goto err_registry;
    }
    rec.pid = (uint32_t)pid;
    if (ftruncate(fd, sizeof rec) < 0) {
        rc = -errno;
        goto err_mq;
    }
    if (pwrite(fd, &rec, sizeof rec, 0) != (ssize_t)sizeof rec) {
        rc = errno ? -errno : -EIO;
        goto err_mq;
    }
    s->registry_fd = fd;
    s->mq = mq;
    return 0;

err_mq:
    mq_close(mq);
    mq_unlink(s->mq_name);
err_registry: /* we hold the lock: the object is ours to remove */
    shm_unlink(s->registry_name);
    close(fd);
err_names:
    s->registry_name[0] = '\0';
    s->mq_name[0] = '\0';
    return rc;
}

ssize_t cmdq_server_receive(struct cmdq_server *s, void *buf, size_t cap, int timeout_ms)
{
    struct timespec deadline;
    ssize_t n;

    if (cap < sizeof(struct cmdq_request) || timeout_ms < 0)
        return -EINVAL;
    deadline = clock_realtime_in(timeout_ms);
    do {
        n = mq_timedreceive(s->mq, buf, cap, NULL, &deadline);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

void cmdq_server_close(struct cmdq_server *s)
{
    /* Queue first: a proxy that still finds the registry then fails to open the queue. */
    if (s->mq_name[0]) {
        mq_close(s->mq);
        mq_unlink(s->mq_name);
        s->mq_name[0] = '\0';
    }
    s->mq = (mqd_t)-1;
    if (s->registry_name[0]) {
        shm_unlink(s->registry_name);
        close(s->registry_fd); /* drops the lock */
        s->registry_name[0] = '\0';
    }
    s->registry_fd = -1;
}

/* --- proxy side --------------------------------------------------------------------------- */

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
};

int cmdq_client_new(struct cmdq_client **out)
{
    struct cmdq_client *c = calloc(1, sizeof *c);

    *out = NULL;
    if (!c)
        return -ENOMEM;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return -ENOMEM;
    }
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
    pthread_mutex_destroy(&c->lock);
    free(c);
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
    rc = ipc_name_format(name, IPC_KIND_REGISTRY, uid, 0, 0);
    if (rc < 0)
        return rc;
    fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0)
        return errno == ENOENT ? -ENOTCONN : -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
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
    rc = ipc_name_format(name, IPC_KIND_CMDQ, uid, (pid_t)rec.pid, 0);
    if (rc < 0)
        goto err_pidfd;
    mq = mq_open(name, O_WRONLY);
    if (mq == (mqd_t)-1) {
        rc = errno == ENOENT ? -ENOTCONN : -errno;
        goto err_pidfd;
    }
    if (peer_alive(pidfd) != 1) {
        mq_close(mq);
        rc = -ENOTCONN;
        goto err_pidfd;
    }
    c->mq = mq;
    c->pidfd = pidfd;
    c->pid = (pid_t)rec.pid;
    return 0;

err_pidfd:
    close(pidfd);
    return rc;
}

/* Takes the registry's stat signature (inode, size, times) into *st, or its errno. */
static int registry_stat(struct stat *st)
{
    char name[IPC_NAME_MAX], path[sizeof SHM_DIR + IPC_NAME_MAX];

    memset(st, 0, sizeof *st);
    if (ipc_name_format(name, IPC_KIND_REGISTRY, geteuid(), 0, 0) < 0)
        return EINVAL;
    memcpy(path, SHM_DIR, sizeof SHM_DIR - 1);
    memcpy(path + sizeof SHM_DIR - 1, name, strlen(name) + 1);
    return stat(path, st) < 0 ? errno : 0;
}

static int same_stat(const struct stat *a, int a_err, const struct stat *b, int b_err)
{
    if (a_err || b_err)
        return a_err == b_err;
    return a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Connects if needed, then dups the queue and pidfd for the caller. */
static int connect_and_dup(struct cmdq_client *c, int *mq_dup, int *pidfd_dup)
{
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    if (c->pidfd >= 0 && peer_alive(c->pidfd) != 1) {
        /* The cache died or restarted: a new one has a new pid and queue. Look at once. */
        disconnect_locked(c);
        c->next_lookup_ms = 0;
    }
    if (c->pidfd < 0) {
        int64_t now = clock_mono_ms();
        struct stat st;
        int st_err = registry_stat(&st);

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

int cmdq_client_send(struct cmdq_client *c, const struct cmdq_request *req, int timeout_ms,
                     int *cache_pidfd)
{
    int mq = -1, pidfd = -1, rc;
    int64_t deadline;

    *cache_pidfd = -1;
    if (timeout_ms < 0)
        return -EINVAL;
    rc = connect_and_dup(c, &mq, &pidfd);
    if (rc < 0)
        return rc;
    deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        int left = clock_ms_left(deadline);
        int slice = left < CMDQ_SEND_SLICE_MS ? left : CMDQ_SEND_SLICE_MS;
        struct timespec ts = clock_realtime_in(slice);
        int alive;

        if (mq_timedsend((mqd_t)mq, (const char *)req, sizeof *req, 0, &ts) == 0) {
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
