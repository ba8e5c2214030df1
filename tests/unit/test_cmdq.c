/* test_cmdq.c - the command queue: message validation, the cache's single-instance registry and
 * queue, and the proxy's client against forked caches that answer, stall, crash and restart. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/cmdq.h"
#include "ipc/cmdq_testing.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "clock.h"
#include "ipc/peer.h"
#include "ipc/shm_chan.h"
#include "ipc_testutil.h"
#include "test.h"

static int isolate_rc = -1;
static int fd_baseline = -1; /* open descriptors before the first test */

/* --- a cache in a child process ------------------------------------------------------------ */

enum cache_mode {
    CACHE_ECHO,   /* receives, decodes, reports each message on the pipe */
    CACHE_IDLE,   /* holds the queue but never receives */
    CACHE_CRASH,  /* like IDLE, then SIGKILLs itself after crash_ms (no cleanup) */
    CACHE_CHECK,  /* like ECHO, and calls cmdq_server_check between receives, as the boss does */
    CACHE_RETIRE, /* like ECHO; on SIGUSR2 calls cmdq_server_retire and reports "retired" */
};

struct report {
    int rc;       /* open: cmdq_server_open's result; message: cmdq_request_decode's */
    pid_t holder; /* open only */
    uint64_t generation;
    char path[64];
};

struct cache_child {
    pid_t pid;
    int rd; /* reports */
};

static volatile sig_atomic_t child_stop, child_retire;

static void on_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static void on_usr2(int sig)
{
    (void)sig;
    child_retire = 1;
}

static void write_report(int fd, const struct report *r)
{
    if (write(fd, r, sizeof *r) != (ssize_t)sizeof *r)
        _exit(3);
}

static void cache_main(enum cache_mode mode, int crash_ms, int wr)
{
    struct sigaction sa = {.sa_handler = on_term};
    struct report r = {0};
    struct cmdq_server s;
    int64_t end = clock_mono_ms() + 30000, crash_at = clock_mono_ms() + crash_ms;

    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, NULL);
    r.rc = cmdq_server_open(&s, &r.holder);
    write_report(wr, &r);
    if (r.rc < 0)
        _exit(0);
    while (!child_stop && clock_mono_ms() < end) {
        static char buf[sizeof(struct cmdq_request) + 64];
        struct cmdq_request req;
        ssize_t n;

        if (mode == CACHE_CRASH && clock_mono_ms() >= crash_at)
            raise(SIGKILL);
        if (mode == CACHE_RETIRE && child_retire == 1) {
            unsigned fixed;

            child_retire = 2;
            cmdq_server_retire(&s);
            cmdq_server_retire(&s); /* idempotent */
            memset(&r, 0, sizeof r);
            r.rc = cmdq_server_check(&s, &fixed) == -EINVAL ? 0 : -1; /* nothing to repair */
            strcpy(r.path, "retired");
            write_report(wr, &r);
        }
        if (mode != CACHE_ECHO && mode != CACHE_CHECK && mode != CACHE_RETIRE) {
            clock_sleep_ms(5);
            continue;
        }
        if (mode == CACHE_CHECK) {
            unsigned fixed;

            (void)cmdq_server_check(&s, &fixed);
        }
        n = cmdq_server_receive(&s, buf, sizeof buf, 50);
        if (n == -ETIMEDOUT || n == -EINTR)
            continue;
        memset(&r, 0, sizeof r);
        r.rc = n < 0 ? (int)n : cmdq_request_decode(buf, (size_t)n, geteuid(), &req);
        if (r.rc == 0) {
            r.generation = req.generation;
            size_t plen = strnlen(req.path, sizeof r.path - 1);

            memcpy(r.path, req.path, plen);
            r.path[plen] = '\0';
        }
        write_report(wr, &r);
    }
    cmdq_server_close(&s);
    _exit(0);
}

/* Reads one report, waiting at most timeout_ms. Returns 0 or -1. */
static int read_report(int rd, struct report *r, int timeout_ms)
{
    struct pollfd p = {.fd = rd, .events = POLLIN};

    if (poll(&p, 1, timeout_ms) != 1)
        return -1;
    return read(rd, r, sizeof *r) == (ssize_t)sizeof *r ? 0 : -1;
}

/* Forks a cache and waits for its open to finish. Returns open's result (0 when running). */
static int cache_start(struct cache_child *c, enum cache_mode mode, int crash_ms)
{
    struct report r;
    int p[2];

    c->pid = -1;
    c->rd = -1;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    c->pid = fork();
    if (c->pid == 0) {
        close(p[0]);
        cache_main(mode, crash_ms, p[1]);
    }
    close(p[1]);
    c->rd = p[0];
    if (c->pid < 0 || read_report(c->rd, &r, 10000) < 0)
        return -EIO;
    return r.rc;
}

/* Stops a cache (SIGTERM, clean close) and reaps it. Returns its wait status. */
static int cache_stop(struct cache_child *c)
{
    int status = -1;

    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        waitpid(c->pid, &status, 0);
    }
    if (c->rd >= 0)
        close(c->rd);
    c->pid = -1;
    c->rd = -1;
    return status;
}

static char *seg_name_of(char *buf, pid_t pid, uint32_t serial)
{
    ipc_name_format(buf, IPC_KIND_SEGMENT, geteuid(), pid, serial);
    return buf;
}

static int make_request(struct cmdq_request *req, const char *path, uint64_t gen)
{
    char seg[IPC_NAME_MAX];

    return cmdq_request_init(req, getpid(), seg_name_of(seg, getpid(), 3), 65536, gen, path,
                             strlen(path));
}

static int shm_exists(const char *name)
{
    char path[128];

    snprintf(path, sizeof path, "/dev/shm%s", name);
    return access(path, F_OK) == 0;
}

static int mq_exists(const char *name)
{
    mqd_t q = mq_open(name, O_WRONLY);

    if (q == (mqd_t)-1)
        return 0;
    mq_close(q);
    return 1;
}

/* The registry's file name in the runtime directory, as the server keeps it. */
static char *registry_name(char *buf)
{
    ipc_name_format(buf, IPC_KIND_REGISTRY, geteuid(), 0, 0);
    memmove(buf, buf + 1, strlen(buf));
    return buf;
}

/* The registry lives in root's runtime directory (ipc_test_isolate mounts a private one). */
#define RUNDIR "/run/getfile"

static const char *reg_path(const char *name)
{
    static char path[128];

    snprintf(path, sizeof path, RUNDIR "/%s", name);
    return path;
}

static int reg_exists(const char *name)
{
    return access(reg_path(name), F_OK) == 0;
}

static int reg_open(const char *name, int flags, mode_t mode)
{
    return open(reg_path(name), flags | O_CLOEXEC, mode);
}

static int reg_unlink(const char *name)
{
    return unlink(reg_path(name));
}

static ino_t reg_ino(const char *name)
{
    struct stat st;

    return stat(reg_path(name), &st) == 0 ? st.st_ino : 0;
}

/* Replaces the registry file by a new one (as `rm` then another creator would). Returns the
 * new file's inode, or 0. */
static ino_t replace_reg(const char *name)
{
    struct stat st;
    int fd;

    reg_unlink(name);
    fd = reg_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return 0;
    st.st_ino = 0;
    (void)fstat(fd, &st);
    close(fd);
    return st.st_ino;
}

static char *queue_name(char *buf, pid_t pid)
{
    ipc_name_format(buf, IPC_KIND_CMDQ, geteuid(), pid, 0);
    return buf;
}

/* Nothing of ours and no registry left (the namespace is private: nobody else is here). */
static void check_nothing_left(void)
{
    char reg[IPC_NAME_MAX];

    CHECK_EQ(ipc_test_objects_of(getpid()), 0);
    CHECK(!reg_exists(registry_name(reg)));
    CHECK_EQ(ipc_test_count("/dev/mqueue", "getfile-"), 0);
    CHECK_EQ(ipc_test_count("/dev/shm", "getfile-"), 0);
    CHECK_EQ(ipc_test_open_fds(), fd_baseline);
}

/* --- liveness ------------------------------------------------------------------------------ */

static void check_peer_kind(int (*open_fn)(pid_t))
{
    int64_t t0;
    int fd, p[2], alive = 1;
    pid_t child;

    CHECK_EQ(open_fn(0), -EINVAL);
    CHECK_EQ(open_fn(ipc_test_dead_pid()), -ESRCH);
    fd = open_fn(getpid());
    CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
    CHECK_EQ(peer_alive(fd), 1);
    close(fd);

    CHECK(pipe2(p, O_CLOEXEC) == 0);
    child = fork();
    if (child == 0) {
        char c;

        close(p[1]);
        _exit(read(p[0], &c, 1) == 0 ? 0 : 1); /* exits once the parent closes its end */
    }
    close(p[0]);
    fd = open_fn(child);
    CHECK(fd >= 0);
    CHECK_EQ(peer_alive(fd), 1);
    close(p[1]);
    /* Exited but not reaped (a zombie) already counts as dead. */
    t0 = clock_mono_ms();
    while ((alive = peer_alive(fd)) == 1 && clock_mono_ms() - t0 < 5000)
        clock_sleep_ms(1);
    CHECK_EQ(alive, 0);
    waitpid(child, NULL, 0);
    CHECK_EQ(peer_alive(fd), 0);
    close(fd);
}

static void test_peer(void)
{
    check_peer_kind(peer_open);
    check_peer_kind(peer_open_proc); /* where pidfd_open is missing (valgrind) */
    CHECK_EQ(peer_alive(-1), -EBADF);
    CHECK_EQ(peer_alive(1000000), -EBADF);
}

/* --- messages ------------------------------------------------------------------------------ */

static void test_decode_valid(void)
{
    struct cmdq_request req, out;
    char seg[IPC_NAME_MAX];

    CHECK_EQ(
        cmdq_request_init(&req, getpid(), seg_name_of(seg, getpid(), 7), 4096, 99, "/a/b.txt", 8),
        0);
    CHECK_EQ(sizeof req, 4200);
    CHECK_EQ(cmdq_request_decode(&req, sizeof req, geteuid(), &out), 0);
    CHECK_EQ(out.proxy_pid, getpid());
    CHECK_EQ(out.path_len, 8);
    CHECK_EQ(out.generation, 99);
    CHECK_EQ(out.seg_size, 4096);
    CHECK(strcmp(out.path, "/a/b.txt") == 0);
    CHECK(strcmp(out.seg_name, seg) == 0);
    /* The longest path fits. */
    {
        static char path[CMDQ_PATH_MAX];

        memset(path, 'p', sizeof path);
        path[0] = '/';
        CHECK_EQ(cmdq_request_init(&req, getpid(), seg, 4096, 1, path, sizeof path), 0);
        CHECK_EQ(cmdq_request_decode(&req, sizeof req, geteuid(), &out), 0);
        CHECK_EQ(out.path_len, CMDQ_PATH_MAX);
    }
}

/* Control messages (gfctl): built, decoded, and every malformed variant refused. */
static void test_ctl_decode(void)
{
    struct cmdq_ctl ctl, out, bad;
    char name[IPC_NAME_MAX];

    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_BAN, getpid(), "/img/", 5), 0);
    CHECK(cmdq_is_ctl(&ctl, sizeof ctl));
    CHECK_EQ(cmdq_ctl_decode(&ctl, sizeof ctl, &out), 0);
    CHECK_EQ(out.op, CMDQ_CTL_BAN);
    CHECK_EQ(out.path_len, 5);
    CHECK_EQ(strcmp(out.path, "/img/"), 0);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_RELOAD, getpid(), NULL, 0), 0);
    CHECK_EQ(cmdq_ctl_decode(&ctl, sizeof ctl, &out), 0);
    /* init refuses what decode would. */
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, getpid(), "a", 1), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, getpid(), NULL, 0), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_RELOAD, getpid(), "/a", 2), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, 0, "/a", 2), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, getpid(), "/a\0b", 4), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, (enum cmdq_ctl_op)9, getpid(), "/a", 2), -EINVAL);
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, getpid(), "/a", CMDQ_PATH_MAX + 1), -ENAMETOOLONG);
    /* decode: every field checked. */
    CHECK_EQ(cmdq_ctl_init(&ctl, CMDQ_CTL_PURGE, getpid(), "/a", 2), 0);
    CHECK_EQ(cmdq_ctl_decode(&ctl, sizeof ctl - 1, &out), -EBADMSG);
    CHECK_EQ(cmdq_ctl_decode(&ctl, 3, &out), -EBADMSG);
    bad = ctl, bad.version = 2;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EPROTO);
    bad = ctl, bad.magic = CMDQ_MAGIC;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    CHECK(!cmdq_is_ctl(&bad, sizeof bad));
    bad = ctl, bad.size--;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.op = 0;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.op = CMDQ_CTL_RELOAD; /* with a path */
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.sender_pid = 0;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.sender_pid = 0x80000000u;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.path_len = 3; /* longer than the path */
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.path_len = 1; /* shorter: bytes after it */
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.path[0] = 'x';
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.path[100] = 'x'; /* hidden after the NUL */
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    bad = ctl, bad.pad_[2] = 1;
    CHECK_EQ(cmdq_ctl_decode(&bad, sizeof bad, &out), -EBADMSG);
    /* The reply queue's name. */
    CHECK_EQ(cmdq_reply_name(name, 1000, 42, 0), 0);
    CHECK_EQ(strcmp(name, "/getfile-1000-42-reply"), 0);
    CHECK_EQ(cmdq_reply_name(name, 1000, 42, 7), 0);
    CHECK_EQ(strcmp(name, "/getfile-1000-42-reply7"), 0);
    CHECK_EQ(cmdq_reply_name(name, 1000, 0, 0), -EINVAL);
}

static void test_init_rejects(void)
{
    static char longpath[CMDQ_PATH_MAX + 1];
    struct cmdq_request a, b;
    char seg[IPC_NAME_MAX], longseg[IPC_NAME_MAX + 8];

    seg_name_of(seg, getpid(), 1);
    CHECK_EQ(cmdq_request_init(&a, getpid(), seg, 4096, 1, "/x", 0), -EINVAL);
    CHECK_EQ(cmdq_request_init(&a, getpid(), seg, 4096, 1, "x", 1), -EINVAL);
    CHECK_EQ(cmdq_request_init(&a, getpid(), seg, 4096, 1, "/a\0b", 4), -EINVAL);
    memset(longpath, '/', sizeof longpath);
    CHECK_EQ(cmdq_request_init(&a, getpid(), seg, 4096, 1, longpath, sizeof longpath),
             -ENAMETOOLONG);
    CHECK_EQ(cmdq_request_init(&a, 0, seg, 4096, 1, "/x", 2), -EINVAL);
    CHECK_EQ(cmdq_request_init(&a, getpid() + 1, seg, 4096, 1, "/x", 2), -EINVAL);
    CHECK_EQ(cmdq_request_init(&a, getpid(), "//x", 4096, 1, "/x", 2), -EINVAL);
    memset(longseg, '1', sizeof longseg);
    longseg[sizeof longseg - 1] = '\0';
    CHECK_EQ(cmdq_request_init(&a, getpid(), longseg, 4096, 1, "/x", 2), -ENAMETOOLONG);
    /* Every unused byte is zero, whatever was in the struct before. */
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0xa5, sizeof b);
    CHECK_EQ(cmdq_request_init(&a, getpid(), seg, 4096, 1, "/xy", 3), 0);
    CHECK_EQ(cmdq_request_init(&b, getpid(), seg, 4096, 1, "/xy", 3), 0);
    CHECK_MEM(&a, &b, sizeof a);
}

/* Decodes a mutated copy of a valid request. */
static int decode_mutated(void (*mutate)(struct cmdq_request *), size_t len)
{
    static unsigned char buf[sizeof(struct cmdq_request) + 16];
    struct cmdq_request req, out;
    unsigned char before[sizeof out];
    int rc;

    make_request(&req, "/dir/file", 5);
    if (mutate)
        mutate(&req);
    memset(buf, 0, sizeof buf);
    memcpy(buf, &req, sizeof req);
    memset(&out, 0xab, sizeof out);
    memcpy(before, &out, sizeof out);
    rc = cmdq_request_decode(buf, len, geteuid(), &out);
    if (rc != 0 && memcmp(before, &out, sizeof out) != 0)
        return -9999; /* a rejected message must not be copied out */
    return rc;
}

static void m_magic(struct cmdq_request *r)
{
    r->magic ^= 1;
}
static void m_version(struct cmdq_request *r)
{
    r->version = 2;
}
static void m_size(struct cmdq_request *r)
{
    r->size--;
}
static void m_pid0(struct cmdq_request *r)
{
    r->proxy_pid = 0;
}
static void m_seg_nonul(struct cmdq_request *r)
{
    memset(r->seg_name, 'a', sizeof r->seg_name);
}
static void m_path_nonul(struct cmdq_request *r)
{
    memset(r->path, 'a', sizeof r->path);
    r->path[0] = '/';
    r->path_len = CMDQ_PATH_MAX;
}
static void m_len_plus(struct cmdq_request *r)
{
    r->path_len++;
}
static void m_len_minus(struct cmdq_request *r)
{
    r->path_len--;
}
static void m_len_zero(struct cmdq_request *r)
{
    r->path_len = 0;
}
static void m_len_huge(struct cmdq_request *r)
{
    r->path_len = 0xffffffffu;
}
static void m_noslash(struct cmdq_request *r)
{
    r->path[0] = 'd';
}
static void m_pad(struct cmdq_request *r)
{
    r->pad_[6] = 1;
}
static void m_segsize_small(struct cmdq_request *r)
{
    r->seg_size = SHM_SEG_MIN - 1;
}
static void m_segsize_big(struct cmdq_request *r)
{
    r->seg_size = (uint64_t)SHM_SEG_MAX + 1;
}
static void m_foreign_uid(struct cmdq_request *r)
{
    ipc_name_format(r->seg_name, IPC_KIND_SEGMENT, geteuid() + 1, getpid(), 3);
}
static void m_pid_mismatch(struct cmdq_request *r)
{
    r->proxy_pid++;
}
static void m_double_slash(struct cmdq_request *r)
{
    char name[IPC_NAME_MAX];

    seg_name_of(name, getpid(), 3);
    r->seg_name[0] = '/'; /* "//getfile-..." */
    memcpy(r->seg_name + 1, name, strlen(name) + 1);
}
static void m_seg_noslash(struct cmdq_request *r)
{
    char name[IPC_NAME_MAX];

    seg_name_of(name, getpid(), 3);
    snprintf(r->seg_name, sizeof r->seg_name, "%s", name + 1);
}
static void m_seg_is_queue(struct cmdq_request *r)
{
    queue_name(r->seg_name, getpid());
}
static void m_seg_leading_zero(struct cmdq_request *r)
{
    snprintf(r->seg_name, sizeof r->seg_name, "/getfile-%u-%d-seg03", (unsigned)geteuid(),
             (int)getpid());
}

static void test_decode_rejects(void)
{
    const size_t n = sizeof(struct cmdq_request);

    CHECK_EQ(decode_mutated(NULL, n), 0);
    CHECK_EQ(decode_mutated(NULL, n - 1), -EBADMSG);
    CHECK_EQ(decode_mutated(NULL, n + 1), -EBADMSG);
    CHECK_EQ(decode_mutated(NULL, n + 16), -EBADMSG);
    CHECK_EQ(decode_mutated(NULL, 0), -EBADMSG);
    CHECK_EQ(decode_mutated(NULL, 5), -EBADMSG);
    CHECK_EQ(decode_mutated(m_magic, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_version, n), -EPROTO);
    CHECK_EQ(decode_mutated(m_version, 100), -EPROTO); /* another version, another size */
    CHECK_EQ(decode_mutated(m_size, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_pid0, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_seg_nonul, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_path_nonul, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_len_plus, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_len_minus, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_len_zero, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_len_huge, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_noslash, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_pad, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_segsize_small, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_segsize_big, n), -EBADMSG);
    CHECK_EQ(decode_mutated(m_foreign_uid, n), -EPERM);
    CHECK_EQ(decode_mutated(m_pid_mismatch, n), -EPERM);
    CHECK_EQ(decode_mutated(m_double_slash, n), -EPERM);
    CHECK_EQ(decode_mutated(m_seg_noslash, n), -EPERM);
    CHECK_EQ(decode_mutated(m_seg_is_queue, n), -EPERM);
    CHECK_EQ(decode_mutated(m_seg_leading_zero, n), -EPERM);
}

/* --- the cache's side ---------------------------------------------------------------------- */

static void test_server_roundtrip(void)
{
    struct cmdq_server s, z;
    struct cmdq_request req, out;
    struct mq_attr attr;
    struct stat st;
    char reg[IPC_NAME_MAX], qn[IPC_NAME_MAX], path[128];
    static char buf[sizeof(struct cmdq_request) + 1];
    pid_t holder = -1;
    int64_t t0;
    mqd_t q;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cmdq_server_open(&s, &holder), 0);
    CHECK_EQ(holder, 0);
    CHECK(strcmp(s.registry_name, registry_name(reg)) == 0);
    CHECK(strcmp(s.mq_name, queue_name(qn, getpid())) == 0);
    CHECK(stat(reg_path(reg), &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 16);
    CHECK(stat(RUNDIR, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
    snprintf(path, sizeof path, "/dev/mqueue%s", qn);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* The queue has exactly our attributes and is close-on-exec. */
    CHECK(mq_getattr(s.mq, &attr) == 0);
    CHECK_EQ(attr.mq_maxmsg, CMDQ_MAXMSG);
    CHECK_EQ(attr.mq_msgsize, sizeof(struct cmdq_request));
    CHECK(fcntl((int)s.mq, F_GETFD) & FD_CLOEXEC);
    CHECK(fcntl(s.registry_fd, F_GETFD) & FD_CLOEXEC);

    q = mq_open(qn, O_WRONLY);
    CHECK(q != (mqd_t)-1);
    make_request(&req, "/hello", 11);
    CHECK_EQ(mq_send(q, (const char *)&req, sizeof req, 0), 0);
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, 1000), sizeof req);
    CHECK_EQ(cmdq_request_decode(buf, sizeof req, geteuid(), &out), 0);
    CHECK(strcmp(out.path, "/hello") == 0);
    /* A bigger message cannot even be queued. */
    CHECK_EQ(mq_send(q, buf, sizeof buf, 0), -1);
    CHECK_EQ(errno, EMSGSIZE);
    mq_close(q);

    t0 = clock_mono_ms();
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, 150), -ETIMEDOUT);
    CHECK(clock_mono_ms() - t0 >= 140);
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof(struct cmdq_request) - 1, 10), -EINVAL);
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, -1), -EINVAL);

    cmdq_server_close(&s);
    CHECK(!reg_exists(reg));
    CHECK(!mq_exists(qn));
    cmdq_server_close(&s); /* idempotent */
    /* A zeroed struct is a no-op too: descriptor 0 stays open. */
    {
        int fd0_open = fcntl(0, F_GETFD) >= 0;

        memset(&z, 0, sizeof z);
        cmdq_server_close(&z);
        CHECK_EQ(fcntl(0, F_GETFD) >= 0, fd0_open);
    }
    check_nothing_left();
}

static void test_single_instance(void)
{
    struct cache_child a;
    struct cmdq_server s;
    char reg[IPC_NAME_MAX], qn[IPC_NAME_MAX];
    pid_t holder = -1;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_IDLE, 0), 0);
    /* POSIX locks are per process, so the running cache is a child. */
    CHECK_EQ(cmdq_server_open(&s, &holder), -EBUSY);
    CHECK_EQ(holder, a.pid);
    CHECK_EQ(cmdq_server_open(&s, NULL), -EBUSY);
    /* Nothing of the live cache was touched. */
    CHECK(reg_exists(registry_name(reg)));
    CHECK(mq_exists(queue_name(qn, a.pid)));
    cmdq_server_close(&s); /* a failed open leaves a closed struct */
    CHECK(mq_exists(qn));
    CHECK_EQ(cache_stop(&a), 0);
    /* Once it has gone, the next one starts. */
    CHECK_EQ(cmdq_server_open(&s, &holder), 0);
    cmdq_server_close(&s);
    check_nothing_left();
}

/* The inode the queue name refers to now, or 0. */
static ino_t mq_ino(const char *name)
{
    struct stat st;
    mqd_t q = mq_open(name, O_WRONLY);
    ino_t ino = 0;

    if (q == (mqd_t)-1)
        return 0;
    if (fstat((int)q, &st) == 0)
        ino = st.st_ino;
    mq_close(q);
    return ino;
}

static ino_t fd_ino(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* Another user can create any name in /dev/shm and the mqueue file system first: the old
 * fixed registry name, our queue's plain name, the next segment names. The cache must start
 * anyway (on a queue name of its own, published in the registry, which lives in the private
 * runtime directory), a client must find it, and nothing of the squatter's is touched. */
static void test_names_squatted(void)
{
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 16};
    char qn[IPC_NAME_MAX], old_reg[IPC_NAME_MAX], seg[IPC_NAME_MAX], reg[IPC_NAME_MAX];
    static char buf[sizeof(struct cmdq_request)];
    struct cmdq_request req, out;
    struct cmdq_client *c;
    struct cmdq_server s;
    pid_t holder = -1, child;
    struct stat st;
    int status, pidfd = -1;
    uint32_t rec[4] = {0};

    CHECK_EQ(isolate_rc, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "    (skipped: needs root to act as another user)\n");
        return;
    }
    queue_name(qn, getpid());
    ipc_name_format(old_reg, IPC_KIND_REGISTRY, geteuid(), 0, 0);
    seg_name_of(seg, getpid(), 3);
    child = fork();
    if (child == 0) {
        int ok = setgid(65534) == 0 && setuid(65534) == 0;
        mqd_t q = ok ? mq_open(qn, O_RDONLY | O_CREAT | O_EXCL, 0666, &attr) : (mqd_t)-1;
        int f1 = ok ? shm_open(old_reg, O_RDWR | O_CREAT | O_EXCL, 0666) : -1;
        int f2 = ok ? shm_open(seg, O_RDWR | O_CREAT | O_EXCL, 0666) : -1;
        _exit(q != (mqd_t)-1 && f1 >= 0 && f2 >= 0 ? 0 : 1);
    }
    CHECK(child > 0);
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    CHECK_EQ(cmdq_server_open(&s, &holder), 0);
    CHECK(s.mq_serial != 0 && strcmp(s.mq_name, qn) != 0);
    CHECK(mq_ino(s.mq_name) == fd_ino((int)s.mq));
    /* A client (another process: F_GETLK does not show a process its own lock) finds the
     * queue through the registry, and the squatter's queue gets nothing. */
    CHECK_EQ(make_request(&req, "/sq", 7), 0);
    child = fork();
    if (child == 0) {
        int rc = cmdq_client_new(&c, NULL, 0);

        if (rc == 0)
            rc = cmdq_client_send(c, &req, 1000, &pidfd);
        if (rc < 0)
            fprintf(stderr, "client: %s\n", strerror(-rc));
        _exit(rc == 0 && pidfd >= 0 ? 0 : 1);
    }
    CHECK(child > 0);
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, 5000), sizeof req);
    CHECK_EQ(cmdq_request_decode(buf, sizeof req, geteuid(), &out), 0);
    CHECK(strcmp(out.path, "/sq") == 0);
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* The registry names the queue's serial (read only now: a close of any descriptor of the
     * registry in this process would drop the server's lock). */
    registry_name(reg);
    {
        int fd = reg_open(reg, O_RDONLY, 0);

        CHECK(fd >= 0 && pread(fd, rec, sizeof rec, 0) == (ssize_t)sizeof rec);
        if (fd >= 0)
            close(fd);
        CHECK_EQ(rec[1], 2);
        CHECK_EQ(rec[2], (uint32_t)getpid());
        CHECK_EQ(rec[3], s.mq_serial);
    }
    {
        struct mq_attr a;
        mqd_t q = mq_open(qn, O_RDONLY | O_NONBLOCK);

        CHECK(q != (mqd_t)-1 && mq_getattr(q, &a) == 0 && a.mq_curmsgs == 0);
        if (q != (mqd_t)-1)
            mq_close(q);
    }
    cmdq_server_close(&s);
    /* The squatter's objects are still there, still its own: remove them as it would. */
    CHECK(stat("/dev/shm/getfile-0-cache", &st) == 0 && st.st_uid == 65534);
    CHECK(mq_unlink(qn) == 0);
    CHECK(shm_unlink(old_reg) == 0);
    CHECK(shm_unlink(seg) == 0);
    check_nothing_left();
}

static void test_stale_leftovers(void)
{
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 16};
    struct cache_child a;
    struct cmdq_server s;
    char reg[IPC_NAME_MAX], qa[IPC_NAME_MAX], seg[IPC_NAME_MAX], own_q[IPC_NAME_MAX];
    int fd, status = 0;
    mqd_t q;

    CHECK_EQ(isolate_rc, 0);
    /* A cache that crashes leaves its registry (unlocked) and its queue. */
    CHECK_EQ(cache_start(&a, CACHE_CRASH, 0), 0);
    waitpid(a.pid, &status, 0);
    close(a.rd);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(reg_exists(registry_name(reg)));
    CHECK(mq_exists(queue_name(qa, a.pid)));
    /* ... and a dead proxy of the same pid left a segment. */
    fd = shm_open(seg_name_of(seg, a.pid, 1), O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    close(fd);
    /* A leftover queue under our own pid (a dead process that had it) is replaced. */
    q = mq_open(queue_name(own_q, getpid()), O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
    CHECK(q != (mqd_t)-1);
    mq_close(q);

    CHECK_EQ(cmdq_server_open(&s, NULL), 0);
    CHECK(!mq_exists(qa));
    CHECK(!shm_exists(seg));
    CHECK(mq_getattr(s.mq, &attr) == 0);
    CHECK_EQ(attr.mq_msgsize, sizeof(struct cmdq_request));
    cmdq_server_close(&s);
    CHECK_EQ(ipc_test_objects_of(a.pid), 0);
    check_nothing_left();
}

/* Without the mqueue file system mounted the sweep cannot list queues; the crashed cache's
 * queue must still go, found through the pid its registry names. */
static void test_stale_queue_unmounted(void)
{
    struct cache_child a;
    struct cmdq_server s;
    char qa[IPC_NAME_MAX];
    int status = 0;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_CRASH, 0), 0);
    waitpid(a.pid, &status, 0);
    close(a.rd);
    CHECK(mq_exists(queue_name(qa, a.pid)));
    /* The host may have its own mqueue mount below ours: remove every layer. */
    CHECK_EQ(umount2("/dev/mqueue", MNT_DETACH), 0);
    while (umount2("/dev/mqueue", MNT_DETACH) == 0)
        ;
    CHECK_EQ(cmdq_server_open(&s, NULL), 0);
    CHECK(!mq_exists(qa));
    cmdq_server_close(&s);
    CHECK_EQ(mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), 0);
    check_nothing_left();
}

static void test_queue_limit(void)
{
    struct report r = {.rc = 1};
    int p[2], status = -1;
    pid_t pid;

    CHECK_EQ(isolate_rc, 0);
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        struct cmdq_server s;

        setrlimit(RLIMIT_MSGQUEUE, &rl);
        r.rc = cmdq_server_open(&s, NULL);
        write_report(p[1], &r);
        _exit(0);
    }
    close(p[1]);
    CHECK_EQ(read_report(p[0], &r, 10000), 0);
    close(p[0]);
    waitpid(pid, &status, 0);
    /* The limit is named, and nothing is left behind (the registry included). */
    CHECK_EQ(r.rc, -EMFILE);
    CHECK_EQ(ipc_test_objects_of(pid), 0);
    check_nothing_left();
}

/* A stop must not unlink names that meanwhile refer to somebody else's objects (a second
 * cache's registry, say). */
static void test_close_keeps_foreign_names(void)
{
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 16};
    struct cmdq_server s;
    char reg[IPC_NAME_MAX], qn[IPC_NAME_MAX];
    ino_t foreign_reg, foreign_q;
    mqd_t q;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cmdq_server_open(&s, NULL), 0);
    registry_name(reg);
    queue_name(qn, getpid());
    foreign_reg = replace_reg(reg);
    CHECK(foreign_reg != 0 && foreign_reg != fd_ino(s.registry_fd));
    mq_unlink(qn);
    q = mq_open(qn, O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
    CHECK(q != (mqd_t)-1);
    foreign_q = fd_ino((int)q);
    mq_close(q);
    cmdq_server_close(&s);
    CHECK_EQ(reg_ino(reg), foreign_reg);
    CHECK_EQ(mq_ino(qn), foreign_q);
    reg_unlink(reg);
    mq_unlink(qn);
    check_nothing_left();
}

static int hook_calls;

/* The first time, the name is replaced between our lock and the check of the name. */
static void replace_once(const char *name)
{
    if (hook_calls++ == 0)
        replace_reg(name);
}

/* A registry locked just as its name was given to a new object must not be kept: a second
 * cache would lock the new one. The open starts over and locks what the name refers to. */
static void test_lock_verify_retries(void)
{
    struct cmdq_server s;
    char reg[IPC_NAME_MAX];
    struct cache_child b;
    pid_t holder = -1;

    CHECK_EQ(isolate_rc, 0);
    registry_name(reg);
    hook_calls = 0;
    cmdq_test_after_lock = replace_once;
    CHECK_EQ(cmdq_server_open(&s, &holder), 0);
    cmdq_test_after_lock = NULL;
    CHECK_EQ(hook_calls, 2);
    CHECK(reg_ino(reg) != 0 && reg_ino(reg) == fd_ino(s.registry_fd));
    /* The same in the periodic check, which re-creates a removed registry. */
    reg_unlink(reg);
    hook_calls = 0;
    cmdq_test_after_lock = replace_once;
    {
        unsigned fixed = 99;

        CHECK_EQ(cmdq_server_check(&s, &fixed), -EAGAIN); /* replaced under it: next time */
        CHECK_EQ(fixed, 0);
        CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
        CHECK_EQ(fixed, CMDQ_FIXED_REGISTRY);
    }
    cmdq_test_after_lock = NULL;
    CHECK_EQ(hook_calls, 2);
    CHECK(reg_ino(reg) != 0 && reg_ino(reg) == fd_ino(s.registry_fd));
    /* Whatever happens to the names, a second cache does not start. */
    reg_unlink(reg);
    CHECK_EQ(cache_start(&b, CACHE_IDLE, 0), -EBUSY);
    cache_stop(&b);
    CHECK(!reg_exists(reg)); /* and touched nothing */
    cmdq_server_close(&s);
    check_nothing_left();
}

/* The boss's periodic check: a removed queue is re-created and the old one still read; a removed
 * registry is re-created, locked and published again; a second cache is refused all along. */
static void test_check_repairs(void)
{
    static char buf[sizeof(struct cmdq_request)];
    struct cmdq_request req, out;
    struct cmdq_server s;
    struct cache_child b;
    char reg[IPC_NAME_MAX], qn[IPC_NAME_MAX];
    unsigned fixed = 99;
    ino_t old_q;
    mqd_t held, fresh;
    int fd, locked = 0;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cmdq_server_open(&s, NULL), 0);
    registry_name(reg);
    queue_name(qn, getpid());
    CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
    CHECK_EQ(fixed, 0);
    /* The runtime directory widened while it runs: narrowed back to 0700. */
    {
        struct stat st;

        char qpath[128];

        CHECK_EQ(chmod(RUNDIR, 0777), 0);
        CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
        CHECK(stat(RUNDIR, &st) == 0 && (st.st_mode & 07777) == 0700);
        /* The same for the registry and the queue, whose proxies accept only 0600. */
        snprintf(qpath, sizeof qpath, "/dev/mqueue%s", qn);
        CHECK_EQ(chmod(reg_path(reg), 0644), 0);
        CHECK_EQ(chmod(qpath, 0666), 0);
        CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
        CHECK_EQ(fixed, 0);
        CHECK(stat(reg_path(reg), &st) == 0 && (st.st_mode & 07777) == 0600);
        CHECK(stat(qpath, &st) == 0 && (st.st_mode & 07777) == 0600);
    }

    /* The queue: a proxy holds it, then its name is removed. */
    held = mq_open(qn, O_WRONLY);
    CHECK(held != (mqd_t)-1);
    old_q = fd_ino((int)s.mq);
    CHECK_EQ(mq_unlink(qn), 0);
    CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
    CHECK_EQ(fixed, CMDQ_FIXED_QUEUE);
    CHECK(mq_ino(qn) != 0 && mq_ino(qn) != old_q && mq_ino(qn) == fd_ino((int)s.mq));
    CHECK_EQ(s.nold, 1);
    /* Both queues are read: nothing sent to the old one is lost. */
    fresh = mq_open(qn, O_WRONLY);
    CHECK(fresh != (mqd_t)-1);
    CHECK_EQ(make_request(&req, "/old", 1), 0);
    CHECK_EQ(mq_send(held, (const char *)&req, sizeof req, 0), 0);
    CHECK_EQ(make_request(&req, "/new", 2), 0);
    CHECK_EQ(mq_send(fresh, (const char *)&req, sizeof req, 0), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, 1000), sizeof req);
        CHECK_EQ(cmdq_request_decode(buf, sizeof req, geteuid(), &out), 0);
        CHECK(out.generation == 1 || out.generation == 2);
    }
    CHECK_EQ(cmdq_server_receive(&s, buf, sizeof buf, 50), -ETIMEDOUT);
    mq_close(held);
    mq_close(fresh);
    CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
    CHECK_EQ(fixed, 0);
    CHECK_EQ(s.nold, 1); /* kept for CMDQ_OLD_KEEP_MS */

    /* The registry: removed, re-created with our pid, and locked by us. */
    CHECK_EQ(reg_unlink(reg), 0);
    CHECK_EQ(cache_start(&b, CACHE_IDLE, 0), -EBUSY); /* before the repair too */
    cache_stop(&b);
    CHECK_EQ(cmdq_server_check(&s, &fixed), 0);
    CHECK_EQ(fixed, CMDQ_FIXED_REGISTRY);
    CHECK(reg_ino(reg) != 0 && reg_ino(reg) == fd_ino(s.registry_fd));
    fd = reg_open(reg, O_RDONLY, 0);
    CHECK(fd >= 0);
    if (fd >= 0) {
        uint32_t rec[4] = {0};

        CHECK_EQ(pread(fd, rec, sizeof rec, 0), sizeof rec);
        CHECK_EQ(rec[2], (uint32_t)getpid());
        close(fd); /* not the server's descriptor: its lock stays */
    }
    CHECK_EQ(cache_start(&b, CACHE_IDLE, 0), -EBUSY);
    cache_stop(&b);
    /* A registry replaced by an object someone else has locked is left alone. */
    {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int p[2];
        pid_t locker;
        char c;

        CHECK(pipe2(p, O_CLOEXEC) == 0);
        replace_reg(reg);
        locker = fork();
        if (locker == 0) {
            int lfd = reg_open(reg, O_RDWR, 0);

            close(p[1]);
            _exit(lfd >= 0 && fcntl(lfd, F_SETLK, &fl) == 0 && read(p[0], &c, 1) == 0 ? 0 : 1);
        }
        close(p[0]);
        for (int i = 0; i < 200 && !locked; i++) {
            struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            int rfd = reg_open(reg, O_RDONLY, 0);

            if (rfd >= 0 && fcntl(rfd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
                locked = 1;
            if (rfd >= 0)
                close(rfd);
            clock_sleep_ms(5);
        }
        CHECK(locked);
        CHECK_EQ(cmdq_server_check(&s, &fixed), -EBUSY);
        CHECK_EQ(fixed, 0);
        close(p[1]);
        waitpid(locker, NULL, 0);
        CHECK_EQ(cmdq_server_check(&s, &fixed), 0); /* unlocked now: taken over */
        CHECK_EQ(fixed, CMDQ_FIXED_REGISTRY);
    }
    cmdq_server_close(&s);
    CHECK_EQ(cmdq_server_check(&s, &fixed), -EINVAL);
    check_nothing_left();
}

/* --- the proxy's side ---------------------------------------------------------------------- */

static void test_client_no_cache(void)
{
    struct cmdq_client *c;
    struct cmdq_request req;
    int64_t t0, elapsed;
    int pidfd = 5, rc;
    unsigned lookups;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    make_request(&req, "/f", 1);
    t0 = clock_mono_ms();
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), -ENOTCONN);
    elapsed = clock_mono_ms() - t0;
    CHECK(elapsed < 200); /* quickly: no waiting for a cache that is not there */
    CHECK_EQ(pidfd, -1);
    CHECK_EQ(cmdq_client_cache_pid(c), 0);
    CHECK_EQ(cmdq_client_lookups(c), 1);
    /* Backoff: lookups at about 0, 50, 150, 350 ms while sending every 2 ms for 500 ms;
     * without it there would be ~250. */
    t0 = clock_mono_ms();
    while (clock_mono_ms() - t0 < 500) {
        rc = cmdq_client_send(c, &req, 1000, &pidfd);
        CHECK_EQ(rc, -ENOTCONN);
        clock_sleep_ms(2);
    }
    lookups = cmdq_client_lookups(c);
    CHECK(lookups >= 3 && lookups <= 8);
    if (lookups < 3 || lookups > 8)
        fprintf(stderr, "lookups: %u\n", lookups);
    CHECK_EQ(cmdq_client_send(c, &req, -1, &pidfd), -EINVAL);
    cmdq_client_free(c);
    cmdq_client_free(NULL);
    check_nothing_left();
}

/* A registry naming a live process that does not hold the lock (a crashed cache's pid reused)
 * must not be believed, even if a queue of that name exists. */
static void test_client_stale_registry(void)
{
    struct mq_attr attr = {.mq_maxmsg = CMDQ_MAXMSG, .mq_msgsize = sizeof(struct cmdq_request)};
    uint32_t rec[4] = {0x47464352u, 2, 0, 0};
    struct cmdq_client *c;
    struct cmdq_request req;
    char reg[IPC_NAME_MAX], qn[IPC_NAME_MAX];
    int fd, pidfd;
    pid_t impostor;
    mqd_t q;

    CHECK_EQ(isolate_rc, 0);
    impostor = fork();
    if (impostor == 0) {
        clock_sleep_ms(20000);
        _exit(0);
    }
    rec[2] = (uint32_t)impostor;
    fd = reg_open(registry_name(reg), O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, rec, sizeof rec, 0) == (ssize_t)sizeof rec);
    close(fd);
    q = mq_open(queue_name(qn, impostor), O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);
    CHECK(q != (mqd_t)-1);

    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    make_request(&req, "/f", 1);
    CHECK_EQ(cmdq_client_send(c, &req, 100, &pidfd), -ENOTCONN);
    cmdq_client_free(c);
    struct mq_attr now;
    CHECK(mq_getattr(q, &now) == 0 && now.mq_curmsgs == 0);

    mq_close(q);
    mq_unlink(qn);
    reg_unlink(reg);
    kill(impostor, SIGKILL);
    waitpid(impostor, NULL, 0);
    check_nothing_left();
}

static void test_client_roundtrip(void)
{
    struct cache_child a;
    struct cmdq_client *c;
    struct cmdq_request req;
    struct report r;
    int pidfd = -1;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_ECHO, 0), 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    for (int i = 0; i < 20; i++) {
        char path[32];

        snprintf(path, sizeof path, "/file/%d", i);
        CHECK_EQ(make_request(&req, path, 1000 + (uint64_t)i), 0);
        CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), 0);
        CHECK(pidfd >= 0);
        CHECK(pidfd >= 0 && peer_alive(pidfd) == 1);
        CHECK(pidfd >= 0 && (fcntl(pidfd, F_GETFD) & FD_CLOEXEC));
        if (pidfd >= 0)
            close(pidfd);
        CHECK_EQ(read_report(a.rd, &r, 5000), 0);
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.generation, 1000 + (uint64_t)i);
        CHECK(strcmp(r.path, path) == 0);
    }
    CHECK_EQ(cmdq_client_cache_pid(c), a.pid);
    CHECK_EQ(cmdq_client_lookups(c), 1); /* one connection served all */

    /* A clean stop: the client notices through the pidfd, and finds no cache. */
    CHECK_EQ(make_request(&req, "/last", 1), 0);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), 0);
    CHECK_EQ(cache_stop(&a), 0);
    CHECK(pidfd >= 0 && peer_alive(pidfd) == 0);
    if (pidfd >= 0)
        close(pidfd);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), -ENOTCONN);
    CHECK_EQ(cmdq_client_cache_pid(c), 0);
    cmdq_client_free(c);
    check_nothing_left();
}

/* The cache's queue name is removed: a connected client keeps sending to the queue it holds
 * (still read), the cache re-creates the name, the client moves to the new queue within
 * CMDQ_CHECK_MS, and a new client finds it at once. Every request arrives. */
static void test_client_queue_replaced(void)
{
    struct cache_child a;
    struct cmdq_client *c, *c2;
    struct cmdq_request req;
    struct report r;
    char qn[IPC_NAME_MAX];
    int pidfd = -1, sent = 0, got = 0;
    int64_t t0;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_CHECK, 0), 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    CHECK_EQ(make_request(&req, "/before", 1), 0);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), 0);
    close(pidfd);
    sent++;
    CHECK_EQ(mq_unlink(queue_name(qn, a.pid)), 0);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), 0); /* the old queue, still read */
    close(pidfd);
    sent++;
    t0 = clock_mono_ms();
    while (!mq_exists(qn) && clock_mono_ms() - t0 < 5000)
        clock_sleep_ms(5);
    CHECK(mq_exists(qn));
    /* A new client finds the cache at once. */
    CHECK_EQ(cmdq_client_new(&c2, NULL, 0), 0);
    CHECK_EQ(cmdq_client_send(c2, &req, 1000, &pidfd), 0);
    close(pidfd);
    sent++;
    CHECK_EQ(cmdq_client_lookups(c2), 1);
    cmdq_client_free(c2);
    /* The connected one moves over at its next check, without losing a request. */
    t0 = clock_mono_ms();
    while (cmdq_client_lookups(c) < 2 && clock_mono_ms() - t0 < 3 * CMDQ_CHECK_MS) {
        if (cmdq_client_send(c, &req, 1000, &pidfd) == 0) {
            close(pidfd);
            sent++;
        }
        clock_sleep_ms(20);
    }
    CHECK_EQ(cmdq_client_lookups(c), 2);
    CHECK_EQ(cmdq_client_cache_pid(c), a.pid);
    while (got < sent && read_report(a.rd, &r, 5000) == 0 && r.rc == 0)
        got++;
    CHECK_EQ(got, sent);
    CHECK_EQ(cache_stop(&a), 0);
    cmdq_client_free(c);
    check_nothing_left();
}

struct sender_arg {
    struct cmdq_client *c;
    int id;
    int failures;
};

static void *sender(void *p)
{
    struct sender_arg *a = p;

    for (int i = 0; i < 25; i++) {
        struct cmdq_request req;
        char path[32];
        int pidfd;

        snprintf(path, sizeof path, "/t%d/%d", a->id, i);
        if (make_request(&req, path, (uint64_t)a->id << 32 | (uint64_t)i) != 0 ||
            cmdq_client_send(a->c, &req, 5000, &pidfd) != 0) {
            a->failures++;
            continue;
        }
        close(pidfd);
    }
    return NULL;
}

static void test_client_threads(void)
{
    struct sender_arg args[4];
    pthread_t th[4];
    struct cache_child a;
    struct cmdq_client *c;
    unsigned char seen[4][25] = {{0}};
    int got = 0;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_ECHO, 0), 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct sender_arg){c, i, 0};
        CHECK_EQ(pthread_create(&th[i], NULL, sender, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(args[i].failures, 0);
    }
    for (int n = 0; n < 100; n++) {
        struct report r;
        int t, k;

        if (read_report(a.rd, &r, 5000) < 0)
            break;
        if (r.rc == 0 && sscanf(r.path, "/t%d/%d", &t, &k) == 2 && t >= 0 && t < 4 && k >= 0 &&
            k < 25 && r.generation == ((uint64_t)t << 32 | (uint64_t)k) && !seen[t][k]) {
            seen[t][k] = 1;
            got++;
        }
    }
    CHECK_EQ(got, 100);
    CHECK_EQ(cmdq_client_lookups(c), 1);
    CHECK_EQ(cache_stop(&a), 0);
    cmdq_client_free(c);
    check_nothing_left();
}

/* A full queue and a cache that dies: the sender must not hang; a new cache is found. */
static void test_client_cache_dies(void)
{
    struct cache_child a, b;
    struct cmdq_client *c;
    struct cmdq_request req;
    struct report r;
    char qa[IPC_NAME_MAX];
    int pidfd = -1, status = 0, rc;
    int64_t t0, elapsed;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_CRASH, 400), 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    make_request(&req, "/fill", 1);
    for (int i = 0; i < CMDQ_MAXMSG; i++) {
        CHECK_EQ(cmdq_client_send(c, &req, 0, &pidfd), 0);
        if (pidfd >= 0)
            close(pidfd);
    }
    t0 = clock_mono_ms();
    rc = cmdq_client_send(c, &req, 10000, &pidfd);
    elapsed = clock_mono_ms() - t0;
    CHECK_EQ(rc, -ESRCH);
    CHECK_EQ(pidfd, -1);
    CHECK(elapsed < 3000); /* the crash comes at 400 ms; the timeout is 10 s */
    waitpid(a.pid, &status, 0);
    close(a.rd);
    CHECK(WIFSIGNALED(status));
    CHECK(mq_exists(queue_name(qa, a.pid))); /* the crash left it */
    /* No cache now: the dead one's registry is stale. */
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), -ENOTCONN);

    /* Within the backoff interval after a failed lookup ... */
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), -ENOTCONN);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), -ENOTCONN);
    /* ... a new cache sweeps the old queue, and the client finds it at once: the registry
     * has changed. */
    CHECK_EQ(cache_start(&b, CACHE_ECHO, 0), 0);
    CHECK(!mq_exists(qa));
    make_request(&req, "/again", 2);
    rc = cmdq_client_send(c, &req, 1000, &pidfd);
    CHECK_EQ(rc, 0);
    CHECK_EQ(cmdq_client_cache_pid(c), b.pid);
    if (rc == 0)
        close(pidfd);
    CHECK_EQ(read_report(b.rd, &r, 5000), 0);
    CHECK(strcmp(r.path, "/again") == 0);

    /* A restart while connected: the next send goes to the new cache at once. */
    CHECK_EQ(cache_stop(&b), 0);
    CHECK_EQ(cache_start(&a, CACHE_ECHO, 0), 0);
    CHECK_EQ(cmdq_client_send(c, &req, 1000, &pidfd), 0);
    CHECK_EQ(cmdq_client_cache_pid(c), a.pid);
    if (pidfd >= 0)
        close(pidfd);
    CHECK_EQ(read_report(a.rd, &r, 5000), 0);
    CHECK(strcmp(r.path, "/again") == 0);
    CHECK_EQ(cache_stop(&a), 0);
    cmdq_client_free(c);
    check_nothing_left();
}

static void test_client_queue_full_timeout(void)
{
    struct cache_child a;
    struct cmdq_client *c;
    struct cmdq_request req;
    int pidfd = -1, rc;
    int64_t t0, elapsed;

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_IDLE, 0), 0);
    CHECK_EQ(cmdq_client_new(&c, NULL, 0), 0);
    make_request(&req, "/fill", 1);
    for (int i = 0; i < CMDQ_MAXMSG; i++) {
        CHECK_EQ(cmdq_client_send(c, &req, 0, &pidfd), 0);
        if (pidfd >= 0)
            close(pidfd);
    }
    CHECK_EQ(cmdq_client_send(c, &req, 0, &pidfd), -ETIMEDOUT);
    t0 = clock_mono_ms();
    rc = cmdq_client_send(c, &req, 300, &pidfd);
    elapsed = clock_mono_ms() - t0;
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK(elapsed >= 290 && elapsed < 3000);
    CHECK_EQ(cmdq_client_cache_pid(c), a.pid); /* a slow cache is still the cache */
    CHECK_EQ(cache_stop(&a), 0);
    cmdq_client_free(c);
    check_nothing_left();
}

/* Asks a CACHE_RETIRE child to give its names up and waits for it to say so. */
static int cache_retire(struct cache_child *c)
{
    struct report r;

    if (kill(c->pid, SIGUSR2) < 0 || read_report(c->rd, &r, 10000) < 0)
        return -EIO;
    return r.rc == 0 && strcmp(r.path, "retired") == 0 ? 0 : -EPROTO;
}

/* Sends one request and checks the cache child c received it. Returns send's result. */
static int send_to(struct cmdq_client *cl, struct cache_child *c, const char *path, uint64_t gen)
{
    struct cmdq_request req;
    struct report r;
    int pidfd = -1, rc;

    CHECK_EQ(make_request(&req, path, gen), 0);
    rc = cmdq_client_send(cl, &req, 1000, &pidfd);
    if (pidfd >= 0)
        close(pidfd);
    if (rc == 0 && c) {
        CHECK_EQ(read_report(c->rd, &r, 5000), 0);
        CHECK_EQ(r.rc, 0);
        CHECK_EQ(r.generation, gen);
        CHECK(strcmp(r.path, path) == 0);
    }
    return rc;
}

/* A stopping cache retires: its names go at once while it still runs, a new cache can start
 * beside it, a connected client stops sending to it before its next send (it is alive, so the
 * pidfd says nothing) and moves to the new cache, and the old cache's close leaves the new
 * cache's names alone. */
static void test_retire(void)
{
    struct cache_child a, b, c;
    struct cmdq_client *cl;
    char reg[IPC_NAME_MAX], qa[IPC_NAME_MAX], qb[IPC_NAME_MAX], qc[IPC_NAME_MAX];

    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(cache_start(&a, CACHE_RETIRE, 0), 0);
    CHECK_EQ(cmdq_client_new(&cl, NULL, 0), 0);
    CHECK_EQ(send_to(cl, &a, "/before", 1), 0);
    CHECK_EQ(cmdq_client_cache_pid(cl), a.pid);

    CHECK_EQ(cache_retire(&a), 0);
    CHECK(!reg_exists(registry_name(reg)));
    CHECK(!mq_exists(queue_name(qa, a.pid)));
    CHECK_EQ(kill(a.pid, 0), 0); /* still running */
    /* No cache has the names: the client does not send into the retired cache's queue. */
    CHECK_EQ(send_to(cl, NULL, "/between", 2), -ENOTCONN);
    CHECK_EQ(cmdq_client_cache_pid(cl), 0);

    /* A new cache starts beside the retired one, and the client finds it at once. */
    CHECK_EQ(cache_start(&b, CACHE_RETIRE, 0), 0);
    CHECK_EQ(send_to(cl, &b, "/to-b", 3), 0);
    CHECK_EQ(cmdq_client_cache_pid(cl), b.pid);

    /* Retire b and start c before the client's next send: it moves from b to c directly. */
    CHECK_EQ(cache_retire(&b), 0);
    CHECK_EQ(cache_start(&c, CACHE_ECHO, 0), 0);
    CHECK_EQ(send_to(cl, &c, "/to-c", 4), 0);
    CHECK_EQ(cmdq_client_cache_pid(cl), c.pid);

    /* The retired caches' stops leave c's names alone. */
    CHECK_EQ(cache_stop(&a), 0);
    CHECK_EQ(cache_stop(&b), 0);
    CHECK(reg_exists(registry_name(reg)));
    CHECK(mq_exists(queue_name(qc, c.pid)));
    CHECK(!mq_exists(queue_name(qb, b.pid)));
    CHECK_EQ(send_to(cl, &c, "/still-c", 5), 0);
    CHECK_EQ(cache_stop(&c), 0);
    cmdq_client_free(cl);
    check_nothing_left();
}

int main(void)
{
    static const struct test_case cases[] = {
        T(test_peer),
        T(test_decode_valid),
        T(test_init_rejects),
        T(test_ctl_decode),
        T(test_decode_rejects),
        T(test_server_roundtrip),
        T(test_single_instance),
        T(test_names_squatted),
        T(test_stale_leftovers),
        T(test_stale_queue_unmounted),
        T(test_queue_limit),
        T(test_close_keeps_foreign_names),
        T(test_lock_verify_retries),
        T(test_check_repairs),
        T(test_client_no_cache),
        T(test_client_stale_registry),
        T(test_client_roundtrip),
        T(test_client_queue_replaced),
        T(test_client_threads),
        T(test_client_cache_dies),
        T(test_client_queue_full_timeout),
        T(test_retire),
    };

    isolate_rc = ipc_test_isolate_or_skip();
    if (isolate_rc != 0)
        fprintf(stderr, "cannot isolate IPC (%s): these tests need root\n", strerror(-isolate_rc));
    fd_baseline = ipc_test_open_fds();
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
