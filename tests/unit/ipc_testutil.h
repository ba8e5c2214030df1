/* ipc_testutil.h - helpers for the IPC unit tests: a private IPC namespace, leftover checks,
 * dead pids. Include after defining _GNU_SOURCE (unshare). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_IPC_TESTUTIL_H
#define GF_IPC_TESTUTIL_H

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Moves this process into private mount and IPC namespaces with a fresh tmpfs on /dev/shm and
 * a private mqueue mount on /dev/mqueue and a fresh tmpfs on /run/getfile (root's runtime
 * directory) (like tests/integration/lib.sh), so the per-uid
 * registry name cannot collide with a cache or test running elsewhere and every object left
 * is visible. Needs root. Returns 0 or -errno. */
static inline int ipc_test_isolate(void)
{
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC) < 0)
        return -errno;
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
        return -errno;
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=512m,mode=1777") < 0)
        return -errno;
    /* Root's runtime directory (ipc_rundir.h), private too: the registry lives there. Its
     * wider mode is narrowed to 0700 by whoever opens it first. */
    if (mkdir("/run/getfile", 0700) < 0 && errno != EEXIST)
        return -errno;
    if (mount("tmpfs", "/run/getfile", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") < 0)
        return -errno;
    if (mkdir("/dev/mqueue", 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -errno;
    return 0;
}

/* ipc_test_isolate(), but a process that may not make namespaces (not root) exits 77, which
 * ctest reports as skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt): every test calling this
 * needs the private /dev/shm and /dev/mqueue. Other failures are returned. */
static inline int ipc_test_isolate_or_skip(void)
{
    int rc = ipc_test_isolate();

    if (rc == -EPERM) {
        fprintf(stderr, "SKIP: needs root for a private mount and IPC namespace\n");
        exit(77);
    }
    return rc;
}

/* Entries of dir whose name starts with prefix (no leading '/'). -1 if dir is unreadable. */
static inline int ipc_test_count(const char *dir, const char *prefix)
{
    struct dirent *de;
    int n = 0;
    DIR *d = opendir(dir);

    if (!d)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* Objects named getfile-<euid>-<pid>-* in /dev/shm and /dev/mqueue (where listable). */
static inline int ipc_test_objects_of(pid_t pid)
{
    char prefix[64];
    int n, m;

    snprintf(prefix, sizeof prefix, "getfile-%u-%d-", (unsigned)geteuid(), (int)pid);
    n = ipc_test_count("/dev/shm", prefix);
    m = ipc_test_count("/dev/mqueue", prefix);
    return (n > 0 ? n : 0) + (m > 0 ? m : 0);
}

/* Open descriptors of this process (a leak check: compare with a baseline). */
static inline int ipc_test_open_fds(void)
{
    int n = ipc_test_count("/proc/self/fd", "");

    return n < 0 ? -1 : n - 3; /* ".", ".." and the directory's own descriptor */
}

/* A pid that belonged to a child of ours which has exited and been reaped. */
static inline pid_t ipc_test_dead_pid(void)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return pid;
}

#endif
