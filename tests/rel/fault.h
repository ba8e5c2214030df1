/* fault.h - fault injection for test builds: fail the k-th call of a wrapped function.
 *
 * Linked only into the fault-injection copies of the daemons (webproxy_fi, simplecached_fi) and
 * tests, with `-Wl,--wrap=<fn>` for every function below, so calls made from our own objects go
 * through __wrap_<fn> (calls from inside libc or libcurl do not). Release binaries never see it.
 *
 * GF_FAULT="rule[,rule...]", rule = FN:K[+][:ACTION]
 *   FN      a wrapped function name (shm_open, mmap, sem_post, malloc, ...)
 *   K       the 1-based call number of FN in this process that fails; "K+" fails K and every
 *           later call
 *   ACTION  an errno name or number (the call fails with it; default: a sensible one per FN),
 *           "kill" (the process raises SIGKILL instead of making the call: deterministic death
 *           at an exact point), or "stop" (raises SIGSTOP, then makes the call once continued:
 *           a stalled peer), or "half" (sendmsg and sendfile only: sends the first half of
 *           its bytes, at least one, then raises SIGKILL: a peer that dies mid-message, after
 *           a passed descriptor went with the first byte)
 * GF_FAULT_COUNT_FILE=path: at exit, writes one "FN CALLS" line per wrapped function, and a
 *   "signals N" line (see GF_FAULT_SIGNAL).
 * GF_FAULT_SIGNAL=USR1|USR2|number: installs a handler for that signal that only counts it,
 *   without SA_RESTART, so each one delivered makes whatever blocking call its thread is in fail
 *   with EINTR (the daemons install no such handler themselves: a storm of a signal they ignore
 *   would interrupt nothing, one whose default action kills would end them).
 * GF_FAULT_LEAK=1: loses one 4 KiB allocation at start, so a test can prove that a leak in
 *   this build and setting is really reported (LeakSanitizer, valgrind) before trusting silence.
 * Every injected fault is announced on stderr with one write(2):
 *   gf_fault: sem_post call 7: kill
 * A malformed GF_FAULT is reported on stderr and exits the process with status 2. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_FAULT_H
#define GF_FAULT_H

#include <mqueue.h>
#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* Replaces the rules with those of spec (GF_FAULT syntax; NULL or "" clears them) and resets
 * every call counter. Not thread-safe: call before threads start (the constructor calls it with
 * getenv("GF_FAULT")). Returns 0 or -EINVAL (rules unchanged). */
int fault_configure(const char *spec);

/* Calls of fn so far in this process (0 for an unknown name), and faults injected in all. */
unsigned long fault_calls(const char *fn);
unsigned long fault_injected(void);

/* Signals caught by the GF_FAULT_SIGNAL handler so far. */
unsigned long fault_signals(void);

/* The wrappers. Each counts the call, then either injects the configured fault or calls the
 * real function. Functions that return an error number (posix_fallocate, pthread_create)
 * return it; the others set errno and return their failure value. */
int __wrap_shm_open(const char *name, int oflag, mode_t mode);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_ftruncate(int fd, off_t len);
int __wrap_posix_fallocate(int fd, off_t off, off_t len);
mqd_t __wrap_mq_open(const char *name, int oflag, ...);
int __wrap_mq_timedsend(mqd_t mq, const char *msg, size_t len, unsigned prio,
                        const struct timespec *abs);
ssize_t __wrap_mq_timedreceive(mqd_t mq, char *msg, size_t len, unsigned *prio,
                               const struct timespec *abs);
int __wrap_sem_init(sem_t *sem, int pshared, unsigned value);
int __wrap_sem_post(sem_t *sem);
int __wrap_sem_timedwait(sem_t *sem, const struct timespec *abs);
int __wrap_sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abs);
struct shm_sem;
int __wrap_shm_sem_post(struct shm_sem *s); /* these two return 0/-errno */
int __wrap_shm_sem_clockwait(struct shm_sem *s, const struct timespec *abs);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
int __wrap_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __wrap_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
int __wrap_socket(int domain, int type, int protocol);
int __wrap_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags);
int __wrap_msgget(key_t key, int flags); /* the sysv backend's queue and segments */
int __wrap_msgsnd(int id, const void *msg, size_t size, int flags);
ssize_t __wrap_msgrcv(int id, void *msg, size_t size, long type, int flags);
int __wrap_shmget(key_t key, size_t size, int flags);
void *__wrap_shmat(int id, const void *addr, int flags);
void *__wrap_curl_easy_init(void); /* only with GF_FAULT_CURL (binaries linking libcurl) */

#endif
