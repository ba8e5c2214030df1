/* test_fault.c - unit tests of the fault injector: rule parsing, k-th call failures, errno per
 * function, "K+", kill and stop actions, counters and the count file written at exit. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"

/* Runs this binary again with env (NAME=VALUE entries) added; returns its wait status. */
static int rerun_self(const char *const *env, size_t nenv)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, STDOUT_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        setenv("TEST_FAULT_CHILD", "1", 1);
        for (size_t i = 0; i < nenv; i++)
            putenv((char *)(uintptr_t)env[i]);
        char *argv[] = {(char *)(uintptr_t) "test_fault", NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

static void test_parse(void)
{
    CHECK_EQ(fault_configure(NULL), 0);
    CHECK_EQ(fault_configure(""), 0);
    CHECK_EQ(fault_configure("malloc:1"), 0);
    CHECK_EQ(fault_configure("shm_open:3,mmap:2:ENOMEM,sem_post:7:kill,sem_post:9:stop"), 0);
    CHECK_EQ(fault_configure("ftruncate:1+:EIO"), 0);
    CHECK_EQ(fault_configure("mq_open:2:24"), 0);
    CHECK_EQ(fault_configure("nosuchfn:1"), -EINVAL);
    CHECK_EQ(fault_configure("malloc"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:0"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:x"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:1:ENOTANERRNO"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:1:kil"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:1x"), -EINVAL);
    CHECK_EQ(fault_configure("malloc:1:"), -EINVAL);
    CHECK_EQ(fault_configure("sendmsg:1:half,sendfile:3:half"), 0);
    CHECK_EQ(fault_configure("malloc:1:half"), -EINVAL); /* nothing to send half of */
    CHECK_EQ(fault_configure("msgrcv:2:EIDRM,shmat:1,connect:1:ECONNREFUSED"), 0);
    CHECK_EQ(fault_configure(NULL), 0);
}

static void test_kth_call_fails(void)
{
    CHECK_EQ(fault_configure("malloc:2"), 0);
    void *a = malloc(16);
    errno = 0;
    void *b = malloc(16);
    int err = errno;
    void *c = malloc(16);
    CHECK(a != NULL);
    CHECK(b == NULL);
    CHECK_EQ(err, ENOMEM);
    CHECK(c != NULL);
    CHECK_EQ(fault_calls("malloc"), 3);
    CHECK_EQ(fault_injected(), 1);
    free(a);
    free(c);
    CHECK_EQ(fault_configure(NULL), 0);
    CHECK_EQ(fault_calls("malloc"), 0);
}

static void *thread_noop(void *arg)
{
    return arg;
}

static void test_errno_per_function(void)
{
    char name[64];
    snprintf(name, sizeof(name), "/gf-fault-test-%d", (int)getpid());

    CHECK_EQ(fault_configure("shm_open:1,shm_open:2:EACCES,posix_fallocate:1,"
                             "pthread_create:1,sem_init:1,mmap:1"),
             0);
    errno = 0;
    CHECK_EQ(shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), -1);
    CHECK_EQ(errno, EMFILE);
    CHECK_EQ(shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), -1);
    CHECK_EQ(errno, EACCES);
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600); /* 3rd: real */
    CHECK(fd >= 0);
    if (fd >= 0) {
        errno = 0;
        CHECK_EQ(posix_fallocate(fd, 0, 4096), ENOSPC); /* returned, not in errno */
        CHECK_EQ(errno, 0);
        CHECK_EQ(posix_fallocate(fd, 0, 4096), 0);
        CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED);
        CHECK_EQ(errno, ENOMEM);
        void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(p != MAP_FAILED);
        if (p != MAP_FAILED)
            munmap(p, 4096);
        close(fd);
        shm_unlink(name);
    }
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, thread_noop, NULL), EAGAIN);
    sem_t sem;
    CHECK_EQ(sem_init(&sem, 1, 0), -1);
    CHECK_EQ(errno, ENOSYS);
    CHECK_EQ(sem_init(&sem, 1, 0), 0);
    sem_destroy(&sem);
    CHECK_EQ(fault_injected(), 6);
    CHECK_EQ(fault_configure(NULL), 0);
}

static void test_and_later(void)
{
    CHECK_EQ(fault_configure("calloc:2+,realloc:1:EINVAL"), 0);
    void *volatile a = calloc(1, 8); /* volatile: the compiler cannot know realloc fails */
    CHECK(a != NULL);
    for (int i = 0; i < 5; i++)
        CHECK(calloc(1, 8) == NULL);
    errno = 0;
    CHECK(realloc(a, 64) == NULL); /* a stays valid */
    CHECK_EQ(errno, EINVAL);
    void *b = realloc(a, 64);
    CHECK(b != NULL);
    free(b);
    CHECK_EQ(fault_calls("calloc"), 6);
    CHECK_EQ(fault_injected(), 6);
    CHECK_EQ(fault_configure(NULL), 0);
}

static void test_kill_and_stop(void)
{
    sem_t *sem =
        mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sem != MAP_FAILED);
    if (sem == MAP_FAILED)
        return;
    CHECK_EQ(sem_init(sem, 1, 0), 0);

    /* kill: the 2nd sem_post never happens, the process dies of SIGKILL. */
    pid_t pid = fork();
    if (pid == 0) {
        fault_configure("sem_post:2:kill");
        sem_post(sem);
        sem_post(sem);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int v = -1;
    sem_getvalue(sem, &v);
    CHECK_EQ(v, 1);

    /* stop: the process stops before the call and makes it once continued. */
    pid = fork();
    if (pid == 0) {
        fault_configure("sem_post:1:stop");
        sem_post(sem);
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, WUNTRACED), pid);
    CHECK(WIFSTOPPED(status));
    sem_getvalue(sem, &v);
    CHECK_EQ(v, 1);
    kill(pid, SIGCONT);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    sem_getvalue(sem, &v);
    CHECK_EQ(v, 2);
    sem_destroy(sem);
    munmap(sem, sizeof(sem_t));
}

/* half: the peer gets the first half of the message (with the descriptor), then EOF, and the
 * sender died of SIGKILL. */
static void test_half(void)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    pid_t pid = fork();
    if (pid == 0) {
        char msg[10] = "0123456789";
        struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = sizeof ctl.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        int passed = STDIN_FILENO;
        memcpy(CMSG_DATA(c), &passed, sizeof passed);
        close(sv[0]);
        fault_configure("sendmsg:1:half");
        sendmsg(sv[1], &m, 0);
        _exit(0);
    }
    close(sv[1]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char got[16];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = got, .iov_len = sizeof got};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    m.msg_control = ctl.buf;
    m.msg_controllen = sizeof ctl.buf;
    CHECK_EQ(recvmsg(sv[0], &m, 0), 5);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    CHECK(c != NULL && c->cmsg_type == SCM_RIGHTS);
    if (c != NULL && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        close(fd);
    }
    CHECK_EQ(memcmp(got, "01234", 5), 0);
    CHECK_EQ(recv(sv[0], got, sizeof got, 0), 0);
    close(sv[0]);
}

static void *send_usr1_later(void *arg)
{
    struct timespec d = {0, 50 * 1000 * 1000};
    nanosleep(&d, NULL);
    pthread_kill(*(pthread_t *)arg, SIGUSR1);
    return NULL;
}

/* The re-run child with GF_FAULT_SIGNAL=USR1: a caught signal interrupts a timed wait with
 * EINTR (the handler has no SA_RESTART) and is counted. Exit 0 when so. */
static void child_signal(void)
{
    sem_t sem;
    struct timespec abs;
    pthread_t self = pthread_self(), t;

    sem_init(&sem, 0, 0);
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec += 10;
    if (pthread_create(&t, NULL, send_usr1_later, &self) != 0)
        _exit(3);
    int rc = sem_timedwait(&sem, &abs);
    int err = errno;
    pthread_join(t, NULL);
    raise(SIGUSR1);
    exit(rc == -1 && err == EINTR && fault_signals() == 2 ? 0 : 4);
}

static void test_environment(void)
{
    if (getenv("GF_FAULT_SIGNAL"))
        child_signal();
    if (getenv("TEST_FAULT_CHILD")) {
        /* The re-run child: known calls after a reset, then the count file is written at exit. */
        sem_t sem;
        fault_configure(NULL);
        for (int i = 0; i < 3; i++) {
            void *volatile p = malloc(8); /* volatile: the pair must not be optimised away */
            free(p);
        }
        sem_init(&sem, 0, 0);
        sem_post(&sem);
        sem_destroy(&sem);
        return;
    }

    /* A malformed GF_FAULT stops the process at start with status 2. */
    const char *bad[] = {"GF_FAULT=malloc:zero"};
    int st = rerun_self(bad, 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    const char *badsig[] = {"GF_FAULT_SIGNAL=KILL"};
    st = rerun_self(badsig, 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);

    /* The count file lists every wrapped function with its calls. */
    char path[64];
    snprintf(path, sizeof(path), "/tmp/gf-fault-counts-%d", (int)getpid());
    char envv[96];
    snprintf(envv, sizeof(envv), "GF_FAULT_COUNT_FILE=%s", path);
    const char *good[] = {envv};
    st = rerun_self(good, 1);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    char fn[32];
    unsigned long n;
    int lines = 0;
    unsigned long mallocs = 0, posts = 0;
    while (fscanf(f, "%31s %lu", fn, &n) == 2) {
        lines++;
        if (strcmp(fn, "malloc") == 0)
            mallocs = n;
        if (strcmp(fn, "sem_post") == 0)
            posts = n;
    }
    fclose(f);
    unlink(path);
    CHECK(lines >= 18);
    CHECK_EQ(mallocs, 3);
    CHECK_EQ(posts, 1);

    /* GF_FAULT_SIGNAL: a counting handler whose signals interrupt blocking calls. */
    char envsig[96];
    snprintf(envsig, sizeof(envsig), "GF_FAULT_COUNT_FILE=%s", path);
    const char *sigenv[] = {"GF_FAULT_SIGNAL=USR1", envsig};
    st = rerun_self(sigenv, 2);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    unsigned long sigs = 0;
    while (fscanf(f, "%31s %lu", fn, &n) == 2) {
        if (strcmp(fn, "signals") == 0)
            sigs = n;
    }
    fclose(f);
    unlink(path);
    CHECK_EQ(sigs, 2);
}

TEST_MAIN(T(test_parse), T(test_kth_call_fails), T(test_errno_per_function), T(test_and_later),
          T(test_kill_and_stop), T(test_half), T(test_environment))
