/* fault.c - fault injection through the linker's --wrap: fail the k-th call of a function. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sendfile.h>
#include <sys/shm.h>
#include <sys/uio.h>
#include <unistd.h>

#ifdef GF_FAULT_CURL
#include <curl/curl.h>
#endif

/* The real functions, resolved by the linker's --wrap. */
int __real_shm_open(const char *name, int oflag, mode_t mode);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_ftruncate(int fd, off_t len);
int __real_posix_fallocate(int fd, off_t off, off_t len);
mqd_t __real_mq_open(const char *name, int oflag, ...);
int __real_mq_timedsend(mqd_t mq, const char *msg, size_t len, unsigned prio,
                        const struct timespec *abs);
ssize_t __real_mq_timedreceive(mqd_t mq, char *msg, size_t len, unsigned *prio,
                               const struct timespec *abs);
int __real_sem_init(sem_t *sem, int pshared, unsigned value);
int __real_sem_post(sem_t *sem);
int __real_sem_timedwait(sem_t *sem, const struct timespec *abs);
int __real_sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abs);
int __real_shm_sem_post(struct shm_sem *s);
int __real_shm_sem_clockwait(struct shm_sem *s, const struct timespec *abs);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
int __real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
int __real_socket(int domain, int type, int protocol);
int __real_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
int __real_msgget(key_t key, int flags);
int __real_msgsnd(int id, const void *msg, size_t size, int flags);
ssize_t __real_msgrcv(int id, void *msg, size_t size, long type, int flags);
int __real_shmget(key_t key, size_t size, int flags);
void *__real_shmat(int id, const void *addr, int flags);
#ifdef GF_FAULT_CURL
CURL *__real_curl_easy_init(void);
#endif

enum fault_fn {
    FN_SHM_OPEN,
    FN_MMAP,
    FN_FTRUNCATE,
    FN_POSIX_FALLOCATE,
    FN_MQ_OPEN,
    FN_MQ_TIMEDSEND,
    FN_MQ_TIMEDRECEIVE,
    FN_SEM_INIT,
    FN_SEM_POST,
    FN_SEM_TIMEDWAIT,
    FN_SEM_CLOCKWAIT,
    FN_SHM_SEM_POST,
    FN_SHM_SEM_CLOCKWAIT,
    FN_PTHREAD_CREATE,
    FN_MALLOC,
    FN_CALLOC,
    FN_REALLOC,
    FN_STRDUP,
    FN_ACCEPT4,
    FN_SENDMSG,
    FN_SENDFILE,
    FN_SOCKET,
    FN_CONNECT,
    FN_RECVMSG,
    FN_RECV,
    FN_MSGGET,
    FN_MSGSND,
    FN_MSGRCV,
    FN_SHMGET,
    FN_SHMAT,
    FN_CURL_EASY_INIT,
    FN_COUNT
};

/* Name and the errno a failure gets unless the rule names one. */
static const struct {
    const char *name;
    int default_errno;
} fn_info[FN_COUNT] = {
    [FN_SHM_OPEN] = {"shm_open", EMFILE},
    [FN_MMAP] = {"mmap", ENOMEM},
    [FN_FTRUNCATE] = {"ftruncate", EIO},
    [FN_POSIX_FALLOCATE] = {"posix_fallocate", ENOSPC},
    [FN_MQ_OPEN] = {"mq_open", EMFILE},
    [FN_MQ_TIMEDSEND] = {"mq_timedsend", ETIMEDOUT},
    [FN_MQ_TIMEDRECEIVE] = {"mq_timedreceive", ETIMEDOUT},
    [FN_SEM_INIT] = {"sem_init", ENOSYS},
    [FN_SEM_POST] = {"sem_post", EOVERFLOW},
    /* Not EINTR, which callers retry (the sweeps try it separately as F:k:EINTR). */
    [FN_SEM_TIMEDWAIT] = {"sem_timedwait", EINVAL},
    [FN_SEM_CLOCKWAIT] = {"sem_clockwait", EINVAL},
    /* The data segment's semaphores (src/ipc/shm_sem.h): post a slot, wait for one. */
    [FN_SHM_SEM_POST] = {"shm_sem_post", EOVERFLOW},
    [FN_SHM_SEM_CLOCKWAIT] = {"shm_sem_clockwait", EINVAL},
    [FN_PTHREAD_CREATE] = {"pthread_create", EAGAIN},
    [FN_MALLOC] = {"malloc", ENOMEM},
    [FN_CALLOC] = {"calloc", ENOMEM},
    [FN_REALLOC] = {"realloc", ENOMEM},
    [FN_STRDUP] = {"strdup", ENOMEM},
    [FN_ACCEPT4] = {"accept4", EMFILE},
    /* The socket backends (src/ipc/sock_chan.c, netio_sendfile_all_by). */
    [FN_SENDMSG] = {"sendmsg", EPIPE},
    [FN_SENDFILE] = {"sendfile", EIO},
    [FN_SOCKET] = {"socket", EMFILE},
    /* The cache's socket is not there (or not listening): what a dead cache looks like. */
    [FN_CONNECT] = {"connect", ECONNREFUSED},
    [FN_RECVMSG] = {"recvmsg", ECONNRESET},
    [FN_RECV] = {"recv", ECONNRESET},
    /* The sysv backend (src/ipc/sysv_msgq.c, sysv_seg.c). */
    [FN_MSGGET] = {"msgget", ENOSPC},
    [FN_MSGSND] = {"msgsnd", ENOMEM},
    /* As if the queue had been removed by hand (ipcrm): the cache makes it again. */
    [FN_MSGRCV] = {"msgrcv", EIDRM},
    [FN_SHMGET] = {"shmget", ENOSPC},
    [FN_SHMAT] = {"shmat", ENOMEM},
    [FN_CURL_EASY_INIT] = {"curl_easy_init", ENOMEM},
};

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"EPERM", EPERM},
    {"ENOENT", ENOENT},
    {"EINTR", EINTR},
    {"EIO", EIO},
    {"EBADF", EBADF},
    {"EAGAIN", EAGAIN},
    {"ENOMEM", ENOMEM},
    {"EACCES", EACCES},
    {"EEXIST", EEXIST},
    {"EINVAL", EINVAL},
    {"ENFILE", ENFILE},
    {"EMFILE", EMFILE},
    {"EFBIG", EFBIG},
    {"ENOSPC", ENOSPC},
    {"ENOSYS", ENOSYS},
    {"EOVERFLOW", EOVERFLOW},
    {"ETIMEDOUT", ETIMEDOUT},
    {"EMSGSIZE", EMSGSIZE},
    {"ECONNABORTED", ECONNABORTED},
    {"ENOBUFS", ENOBUFS},
    {"EPROTO", EPROTO},
    {"EPIPE", EPIPE},
    {"ECONNREFUSED", ECONNREFUSED},
    {"ECONNRESET", ECONNRESET},
    {"EIDRM", EIDRM},
    {"ENOMSG", ENOMSG},
};

enum fault_action { ACT_NONE, ACT_ERRNO, ACT_KILL, ACT_STOP, ACT_HALF };

/* fault_hit's answer for a "half" rule: send part of the bytes, then die. */
#define FAULT_HALF (-1)

#define MAX_RULES 16

struct fault_rule {
    enum fault_fn fn;
    unsigned long k; /* 1-based call number */
    int and_later;   /* "K+": every call from k on */
    enum fault_action action;
    int err;
};

/* Written only by fault_configure (before threads start); read by every wrapper. */
static struct fault_rule rules[MAX_RULES];
static size_t nrules;
static const char *count_file;

static atomic_ulong calls[FN_COUNT];
static atomic_ulong injected;
static volatile sig_atomic_t signals_caught; /* only the handler writes it */

static int parse_errno(const char *s, size_t len, int *out)
{
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
        if (strlen(errno_names[i].name) == len && memcmp(errno_names[i].name, s, len) == 0) {
            *out = errno_names[i].value;
            return 0;
        }
    }
    int v = 0;
    if (len == 0 || len > 4)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v <= 0)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Parses one rule "FN:K[+][:ACTION]" of len bytes. */
static int parse_rule(const char *s, size_t len, struct fault_rule *r)
{
    const char *end = s + len;
    const char *c1 = memchr(s, ':', len);
    if (!c1)
        return -EINVAL;
    size_t fnlen = (size_t)(c1 - s);
    int found = 0;
    for (int i = 0; i < FN_COUNT; i++) {
        if (strlen(fn_info[i].name) == fnlen && memcmp(fn_info[i].name, s, fnlen) == 0) {
            r->fn = (enum fault_fn)i;
            found = 1;
            break;
        }
    }
    if (!found)
        return -EINVAL;

    const char *p = c1 + 1;
    unsigned long k = 0;
    if (p == end || *p < '0' || *p > '9')
        return -EINVAL;
    while (p < end && *p >= '0' && *p <= '9') {
        if (k > 100000000ul)
            return -EINVAL;
        k = k * 10 + (unsigned long)(*p++ - '0');
    }
    if (k == 0)
        return -EINVAL;
    r->k = k;
    r->and_later = 0;
    if (p < end && *p == '+') {
        r->and_later = 1;
        p++;
    }
    r->action = ACT_ERRNO;
    r->err = fn_info[r->fn].default_errno;
    if (p == end)
        return 0;
    if (*p != ':')
        return -EINVAL;
    p++;
    size_t alen = (size_t)(end - p);
    if (alen == 4 && memcmp(p, "kill", 4) == 0) {
        r->action = ACT_KILL;
        return 0;
    }
    if (alen == 4 && memcmp(p, "stop", 4) == 0) {
        r->action = ACT_STOP;
        return 0;
    }
    if (alen == 4 && memcmp(p, "half", 4) == 0) {
        /* Only where bytes are sent: the others have no "part" to make. */
        if (r->fn != FN_SENDMSG && r->fn != FN_SENDFILE)
            return -EINVAL;
        r->action = ACT_HALF;
        return 0;
    }
    return parse_errno(p, alen, &r->err);
}

int fault_configure(const char *spec)
{
    struct fault_rule parsed[MAX_RULES];
    size_t n = 0;

    if (spec) {
        const char *p = spec;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len > 0) {
                if (n == MAX_RULES || parse_rule(p, len, &parsed[n]) < 0)
                    return -EINVAL;
                n++;
            }
            p += len + (comma ? 1 : 0);
        }
    }
    memcpy(rules, parsed, n * sizeof(parsed[0]));
    nrules = n;
    for (int i = 0; i < FN_COUNT; i++)
        atomic_store(&calls[i], 0);
    atomic_store(&injected, 0);
    return 0;
}

unsigned long fault_calls(const char *fn)
{
    for (int i = 0; i < FN_COUNT; i++) {
        if (strcmp(fn_info[i].name, fn) == 0)
            return atomic_load(&calls[i]);
    }
    return 0;
}

unsigned long fault_injected(void)
{
    return atomic_load(&injected);
}

unsigned long fault_signals(void)
{
    return (unsigned long)signals_caught;
}

static void on_storm_signal(int sig)
{
    (void)sig;
    signals_caught = signals_caught + 1; /* lost updates between threads are harmless */
}

/* Parses GF_FAULT_SIGNAL. Returns the signal number, 0 when unset, -EINVAL when malformed. */
static int storm_signal(const char *s)
{
    int v = 0;

    if (s == NULL || *s == '\0')
        return 0;
    if (strcmp(s, "USR1") == 0 || strcmp(s, "SIGUSR1") == 0)
        return SIGUSR1;
    if (strcmp(s, "USR2") == 0 || strcmp(s, "SIGUSR2") == 0)
        return SIGUSR2;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 64)
            return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    return v >= 1 && v <= 64 && v != SIGKILL && v != SIGSTOP ? v : -EINVAL;
}

/* One line on stderr, one write(2); no allocation (we may be inside malloc's wrapper). */
static void announce(enum fault_fn fn, unsigned long n, const struct fault_rule *r)
{
    char line[128];
    char errbuf[32];
    const char *what = "stop";

    if (r->action == ACT_KILL) {
        what = "kill";
    } else if (r->action == ACT_HALF) {
        what = "half";
    } else if (r->action == ACT_ERRNO) {
        snprintf(errbuf, sizeof(errbuf), "errno %d", r->err);
        what = errbuf;
        for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++) {
            if (errno_names[i].value == r->err) {
                what = errno_names[i].name;
                break;
            }
        }
    }
    int len =
        snprintf(line, sizeof(line), "gf_fault: %s call %lu: %s\n", fn_info[fn].name, n, what);
    if (len > 0) {
        ssize_t w =
            write(STDERR_FILENO, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
        (void)w;
    }
}

/* Counts a call of fn. Returns the errno to fail it with, 0 to make the real call (after a
 * "stop" action the process was continued) or FAULT_HALF (the wrapper sends part of its bytes,
 * then calls die_now). A "kill" action does not return. */
static int fault_hit(enum fault_fn fn)
{
    unsigned long n = atomic_fetch_add(&calls[fn], 1) + 1;

    for (size_t i = 0; i < nrules; i++) {
        const struct fault_rule *r = &rules[i];
        if (r->fn != fn || !(n == r->k || (r->and_later && n > r->k)))
            continue;
        atomic_fetch_add(&injected, 1);
        announce(fn, n, r);
        switch (r->action) {
        case ACT_KILL:
            raise(SIGKILL);
            _exit(137); /* not reached */
        case ACT_STOP:
            raise(SIGSTOP);
            return 0;
        case ACT_HALF:
            return FAULT_HALF;
        case ACT_ERRNO:
            return r->err;
        case ACT_NONE:
            break;
        }
    }
    return 0;
}

/* The end of a "half" action: SIGKILL, as "kill". */
static void die_now(void)
{
    raise(SIGKILL);
    _exit(137); /* not reached */
}

static void write_counts(void)
{
    char buf[2048];
    size_t used = 0;

    if (!count_file)
        return;
    for (int i = 0; i < FN_COUNT; i++) {
        int len = snprintf(buf + used, sizeof(buf) - used, "%s %lu\n", fn_info[i].name,
                           atomic_load(&calls[i]));
        if (len < 0 || (size_t)len >= sizeof(buf) - used)
            break;
        used += (size_t)len;
    }
    int len = snprintf(buf + used, sizeof(buf) - used, "signals %lu\n", fault_signals());
    if (len > 0 && (size_t)len < sizeof(buf) - used)
        used += (size_t)len;
    int fd = open(count_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, buf, used);
    (void)w;
    close(fd);
}

__attribute__((constructor)) static void fault_init(void)
{
    const char *spec = getenv("GF_FAULT");
    int sig = storm_signal(getenv("GF_FAULT_SIGNAL"));

    if (fault_configure(spec) < 0 || sig < 0) {
        static const char msg[] = "gf_fault: cannot parse GF_FAULT (FN:K[+][:ACTION],...) "
                                  "or GF_FAULT_SIGNAL (USR1, USR2 or a number)\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(2);
    }
    if (sig > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_storm_signal; /* no SA_RESTART: interrupted calls fail with EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, NULL);
    }
    const char *leak = getenv("GF_FAULT_LEAK");
    if (leak && strcmp(leak, "1") == 0) {
        void *volatile lost = __real_malloc(4096); /* volatile: the store really happens */
        if (lost)
            memset(lost, 0x5a, 4096);
        lost = NULL; /* the only pointer to it is gone: a leak */
        (void)lost;
    }
    count_file = getenv("GF_FAULT_COUNT_FILE");
    if (count_file && *count_file)
        atexit(write_counts);
}

int __wrap_shm_open(const char *name, int oflag, mode_t mode)
{
    int err = fault_hit(FN_SHM_OPEN);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_shm_open(name, oflag, mode);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    int err = fault_hit(FN_MMAP);
    if (err) {
        errno = err;
        return MAP_FAILED;
    }
    return __real_mmap(addr, len, prot, flags, fd, off);
}

int __wrap_ftruncate(int fd, off_t len)
{
    int err = fault_hit(FN_FTRUNCATE);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_ftruncate(fd, len);
}

int __wrap_posix_fallocate(int fd, off_t off, off_t len)
{
    int err = fault_hit(FN_POSIX_FALLOCATE);
    if (err)
        return err; /* returns the error number, errno untouched */
    return __real_posix_fallocate(fd, off, len);
}

mqd_t __wrap_mq_open(const char *name, int oflag, ...)
{
    mode_t mode = 0;
    struct mq_attr *attr = NULL;

    if (oflag & O_CREAT) {
        va_list ap;
        va_start(ap, oflag);
        mode = va_arg(ap, mode_t);
        attr = va_arg(ap, struct mq_attr *);
        va_end(ap);
    }
    int err = fault_hit(FN_MQ_OPEN);
    if (err) {
        errno = err;
        return (mqd_t)-1;
    }
    if (oflag & O_CREAT)
        return __real_mq_open(name, oflag, mode, attr);
    return __real_mq_open(name, oflag);
}

int __wrap_mq_timedsend(mqd_t mq, const char *msg, size_t len, unsigned prio,
                        const struct timespec *abs)
{
    int err = fault_hit(FN_MQ_TIMEDSEND);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_mq_timedsend(mq, msg, len, prio, abs);
}

ssize_t __wrap_mq_timedreceive(mqd_t mq, char *msg, size_t len, unsigned *prio,
                               const struct timespec *abs)
{
    int err = fault_hit(FN_MQ_TIMEDRECEIVE);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_mq_timedreceive(mq, msg, len, prio, abs);
}

int __wrap_sem_init(sem_t *sem, int pshared, unsigned value)
{
    int err = fault_hit(FN_SEM_INIT);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sem_init(sem, pshared, value);
}

int __wrap_sem_post(sem_t *sem)
{
    int err = fault_hit(FN_SEM_POST);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sem_post(sem);
}

int __wrap_sem_timedwait(sem_t *sem, const struct timespec *abs)
{
    int err = fault_hit(FN_SEM_TIMEDWAIT);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sem_timedwait(sem, abs);
}

int __wrap_sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abs)
{
    int err = fault_hit(FN_SEM_CLOCKWAIT);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sem_clockwait(sem, clock, abs);
}

int __wrap_shm_sem_post(struct shm_sem *s)
{
    int err = fault_hit(FN_SHM_SEM_POST);
    if (err)
        return -err; /* 0/-errno, like the real one */
    return __real_shm_sem_post(s);
}

int __wrap_shm_sem_clockwait(struct shm_sem *s, const struct timespec *abs)
{
    int err = fault_hit(FN_SHM_SEM_CLOCKWAIT);
    if (err)
        return -err;
    return __real_shm_sem_clockwait(s, abs);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int err = fault_hit(FN_PTHREAD_CREATE);
    if (err)
        return err; /* returns the error number */
    return __real_pthread_create(t, attr, fn, arg);
}

void *__wrap_malloc(size_t n)
{
    int err = fault_hit(FN_MALLOC);
    if (err) {
        errno = err;
        return NULL;
    }
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    int err = fault_hit(FN_CALLOC);
    if (err) {
        errno = err;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    int err = fault_hit(FN_REALLOC);
    if (err) {
        errno = err;
        return NULL; /* p stays valid, as with a real failure */
    }
    return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    int err = fault_hit(FN_STRDUP);
    if (err) {
        errno = err;
        return NULL;
    }
    return __real_strdup(s);
}

int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    int err = fault_hit(FN_ACCEPT4);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_accept4(fd, addr, len, flags);
}

/* "half": the first half of the bytes (at least one, so a passed descriptor goes with it) in
 * one sendmsg, then death: the peer holds a message cut short. */
static void sendmsg_half(int fd, const struct msghdr *msg, int flags)
{
    struct iovec iov[16];
    struct msghdr m = *msg;
    size_t total = 0, want, n = 0;

    for (size_t i = 0; i < msg->msg_iovlen; i++)
        total += msg->msg_iov[i].iov_len;
    want = total / 2 > 0 ? total / 2 : total;
    for (size_t i = 0; i < msg->msg_iovlen && i < 16 && want > 0; i++, n++) {
        iov[i] = msg->msg_iov[i];
        if (iov[i].iov_len > want)
            iov[i].iov_len = want;
        want -= iov[i].iov_len;
    }
    m.msg_iov = iov;
    m.msg_iovlen = n;
    ssize_t w = __real_sendmsg(fd, &m, flags);
    (void)w;
    die_now();
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    int err = fault_hit(FN_SENDMSG);
    if (err == FAULT_HALF)
        sendmsg_half(fd, msg, flags);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sendmsg(fd, msg, flags);
}

ssize_t __wrap_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    int err = fault_hit(FN_SENDFILE);
    if (err == FAULT_HALF) {
        ssize_t w = __real_sendfile(out_fd, in_fd, offset, count / 2 > 0 ? count / 2 : count);
        (void)w;
        die_now();
    }
    if (err) {
        errno = err;
        return -1;
    }
    return __real_sendfile(out_fd, in_fd, offset, count);
}

int __wrap_socket(int domain, int type, int protocol)
{
    int err = fault_hit(FN_SOCKET);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_socket(domain, type, protocol);
}

int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    int err = fault_hit(FN_CONNECT);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_connect(fd, addr, len);
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
    int err = fault_hit(FN_RECVMSG);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_recvmsg(fd, msg, flags);
}

ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags)
{
    int err = fault_hit(FN_RECV);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_recv(fd, buf, len, flags);
}

int __wrap_msgget(key_t key, int flags)
{
    int err = fault_hit(FN_MSGGET);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_msgget(key, flags);
}

int __wrap_msgsnd(int id, const void *msg, size_t size, int flags)
{
    int err = fault_hit(FN_MSGSND);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_msgsnd(id, msg, size, flags);
}

ssize_t __wrap_msgrcv(int id, void *msg, size_t size, long type, int flags)
{
    int err = fault_hit(FN_MSGRCV);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_msgrcv(id, msg, size, type, flags);
}

int __wrap_shmget(key_t key, size_t size, int flags)
{
    int err = fault_hit(FN_SHMGET);
    if (err) {
        errno = err;
        return -1;
    }
    return __real_shmget(key, size, flags);
}

void *__wrap_shmat(int id, const void *addr, int flags)
{
    int err = fault_hit(FN_SHMAT);
    if (err) {
        errno = err;
        return (void *)-1;
    }
    return __real_shmat(id, addr, flags);
}

#ifdef GF_FAULT_CURL
void *__wrap_curl_easy_init(void)
{
    if (fault_hit(FN_CURL_EASY_INIT))
        return NULL;
    return __real_curl_easy_init();
}
#endif
