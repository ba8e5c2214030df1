/* peer.c - liveness of the other process through a pidfd (readable once it has exited), or a
 * /proc/<pid> directory where pidfd_open is missing. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int peer_open_proc(pid_t pid)
{
    char path[32];
    int fd;

    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "/proc/%d", (int)pid);
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? -ESRCH : -errno;
    return fd;
}

/* Set once pidfd_open has answered ENOSYS: it will not start working in this process. */
static atomic_int pidfd_missing;

int peer_open(pid_t pid)
{
    long fd;

    if (pid <= 0)
        return -EINVAL;
    if (atomic_load_explicit(&pidfd_missing, memory_order_relaxed))
        return peer_open_proc(pid);
    /* pidfd_open always sets close-on-exec. */
    fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0)
        return (int)fd;
    if (errno != ENOSYS)
        return -errno;
    atomic_store_explicit(&pidfd_missing, 1, memory_order_relaxed);
    return peer_open_proc(pid);
}

/* A /proc/<pid> directory stays bound to its process: once that has been reaped, files in it
 * fail with ESRCH even if the pid is reused. A zombie still has its stat, in state Z. */
static int proc_alive(int dirfd)
{
    char buf[512];
    const char *p;
    ssize_t n;
    int fd;

    fd = openat(dirfd, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ESRCH || errno == ENOENT ? 0 : -errno;
    do {
        n = read(fd, buf, sizeof buf - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;

        close(fd);
        return err == ESRCH ? 0 : -err;
    }
    close(fd);
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may hold anything, so look after its last ')'. */
    p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] == '\0')
        return -EIO;
    return p[2] == 'Z' || p[2] == 'X' || p[2] == 'x' ? 0 : 1;
}

int peer_alive(int pidfd)
{
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    struct stat st;
    int n;

    if (fstat(pidfd, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return proc_alive(pidfd);
    do {
        n = poll(&pfd, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (n == 0)
        return 1;
    if (pfd.revents & POLLNVAL)
        return -EBADF;
    return 0;
}

int peer_uids_are(pid_t pid, uid_t uid)
{
    char path[40], line[256];
    unsigned long r, e, sv, fs;
    int found = 0;
    FILE *f;

    if (pid <= 0)
        return -EINVAL;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? -ESRCH : -errno;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "Uid: %lu %lu %lu %lu", &r, &e, &sv, &fs) == 4) {
            found = 1;
            break;
        }
    }
    fclose(f);
    if (!found)
        return -EIO;
    return r == uid && e == uid && sv == uid && fs == uid;
}
