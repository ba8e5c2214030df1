/* sysv_pub.c - the command queue's key, published in the runtime directory. */
/* SPDX-License-Identifier: MIT */
#include "sysv_pub.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/msg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysv_keys.h"
#include "sysv_msgq.h"

struct pub_rec {
    uint32_t magic, version, pid;
    int32_t key;
};

static int pub_name(char *buf, size_t cap, const char *suffix)
{
    int n = snprintf(buf, cap, "getfile-%lu-sysv.key%s", (unsigned long)geteuid(), suffix);

    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int sysv_pub_write(int dir, pid_t pid, key_t key)
{
    struct pub_rec r = {SYSV_PUB_MAGIC, SYSV_PUB_VERSION, (uint32_t)pid, (int32_t)key};
    char name[64], tmp[64];
    int fd, rc;

    rc = pub_name(name, sizeof name, "");
    if (rc == 0)
        rc = pub_name(tmp, sizeof tmp, ".tmp");
    if (rc < 0)
        return rc;
    unlinkat(dir, tmp, 0); /* a leftover of a cache killed while it wrote */
    fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    rc = write(fd, &r, sizeof r) == (ssize_t)sizeof r ? 0 : (errno ? -errno : -EIO);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(dir, tmp, dir, name) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(dir, tmp, 0);
    return rc;
}

int sysv_pub_read(int dir, pid_t *pid, key_t *key)
{
    struct pub_rec r;
    enum sysv_kind kind;
    struct stat st;
    char name[64];
    uint32_t low;
    ssize_t n;
    int fd, rc;

    rc = pub_name(name, sizeof name, "");
    if (rc < 0)
        return rc;
    fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -EPERM : -errno;
    rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0777) != 0600))
        rc = -EPERM;
    if (rc == 0) {
        n = pread(fd, &r, sizeof r, 0);
        if (n != (ssize_t)sizeof r || st.st_size != (off_t)sizeof r || r.magic != SYSV_PUB_MAGIC ||
            r.version != SYSV_PUB_VERSION || r.pid == 0 || r.pid > INT32_MAX ||
            sysv_key_parse((key_t)r.key, &kind, &low) < 0 || kind == SYSV_KIND_SEG)
            rc = -EBADMSG;
    }
    close(fd);
    if (rc < 0)
        return rc;
    *pid = (pid_t)r.pid;
    *key = (key_t)r.key;
    return 0;
}

void sysv_pub_remove(int dir, pid_t pid)
{
    char name[64];
    pid_t p = 0;
    key_t k = 0;

    if (sysv_pub_read(dir, &p, &k) == 0 && p == pid && pub_name(name, sizeof name, "") == 0)
        unlinkat(dir, name, 0);
}

int sysv_pub_sweep(int dir)
{
    struct sysv_msgq q;
    enum sysv_kind kind;
    uint32_t low;
    pid_t pid = 0;
    key_t key = 0;
    int removed = 0;

    if (sysv_pub_read(dir, &pid, &key) < 0 || pid == getpid() ||
        !(kill(pid, 0) < 0 && errno == ESRCH))
        return 0;
    if (sysv_key_parse(key, &kind, &low) == 0 && kind == SYSV_KIND_CMDR &&
        sysv_msgq_open_key(&q, key) == 0)
        removed = msgctl(q.id, IPC_RMID, NULL) == 0;
    sysv_pub_remove(dir, pid);
    return removed;
}
