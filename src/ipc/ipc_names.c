/* ipc_names.c - formatting, strict parsing and the dead-owner sweep of our IPC object names. */
/* SPDX-License-Identifier: MIT */
#include "ipc_names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define NAME_PREFIX   "/getfile-"
#define MQUEUE_DIR    "/dev/mqueue"
#define SHM_DIR       "/dev/shm"
#define MQUEUE_MAGIC_ 0x19800202 /* statfs f_type of the mqueue filesystem */

/* The word after the pid of the kinds whose serial is optional. */
static const char *kind_suffix(enum ipc_kind kind)
{
    switch (kind) {
    case IPC_KIND_CMDQ:
        return "cmd";
    case IPC_KIND_STATS:
        return "stats";
    case IPC_KIND_REPLY:
        return "reply";
    default:
        return NULL;
    }
}

int ipc_name_format(char *buf, enum ipc_kind kind, uid_t uid, pid_t pid, uint32_t serial)
{
    int n;

    switch (kind) {
    case IPC_KIND_REGISTRY:
        n = snprintf(buf, IPC_NAME_MAX, NAME_PREFIX "%u-cache", (unsigned)uid);
        break;
    case IPC_KIND_CMDQ:
    case IPC_KIND_STATS:
    case IPC_KIND_REPLY:
        /* The suffix alone is serial 0; a serial, when there is one, follows it. */
        if (pid <= 0)
            return -EINVAL;
        if (serial == 0)
            n = snprintf(buf, IPC_NAME_MAX, NAME_PREFIX "%u-%d-%s", (unsigned)uid, (int)pid,
                         kind_suffix(kind));
        else
            n = snprintf(buf, IPC_NAME_MAX, NAME_PREFIX "%u-%d-%s%u", (unsigned)uid, (int)pid,
                         kind_suffix(kind), (unsigned)serial);
        break;
    case IPC_KIND_SEGMENT:
        if (pid <= 0)
            return -EINVAL;
        n = snprintf(buf, IPC_NAME_MAX, NAME_PREFIX "%u-%d-seg%u", (unsigned)uid, (int)pid,
                     (unsigned)serial);
        break;
    default:
        return -EINVAL;
    }
    if (n < 0 || n >= IPC_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* Reads 1..10 decimal digits without a leading zero (a lone "0" is fine) at *p, advancing *p.
 * Returns 0 and the value, or -EINVAL. */
static int parse_decimal(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    *p = s + n;
    *out = v;
    return 0;
}

/* Consumes the literal lit at *p. Returns 0 or -EINVAL. */
static int parse_literal(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0)
        return -EINVAL;
    *p += n;
    return 0;
}

int ipc_name_parse(const char *name, enum ipc_kind kind, uid_t uid, pid_t *pid, uint32_t *serial)
{
    const char *p = name;
    uint64_t v, pid_v = 0, serial_v = 0;

    if (strnlen(name, IPC_NAME_MAX) == IPC_NAME_MAX)
        return -EINVAL;
    if (parse_literal(&p, NAME_PREFIX) < 0 || parse_decimal(&p, &v) < 0 || v != (uint64_t)uid)
        return -EINVAL;
    if (parse_literal(&p, "-") < 0)
        return -EINVAL;
    switch (kind) {
    case IPC_KIND_REGISTRY:
        if (parse_literal(&p, "cache") < 0)
            return -EINVAL;
        break;
    case IPC_KIND_CMDQ:
    case IPC_KIND_SEGMENT:
    case IPC_KIND_STATS:
    case IPC_KIND_REPLY:
        if (parse_decimal(&p, &pid_v) < 0 || pid_v == 0 || pid_v > INT_MAX)
            return -EINVAL;
        if (parse_literal(&p, "-") < 0)
            return -EINVAL;
        if (kind == IPC_KIND_SEGMENT) {
            if (parse_literal(&p, "seg") < 0 || parse_decimal(&p, &serial_v) < 0 ||
                serial_v > UINT32_MAX)
                return -EINVAL;
        } else {
            /* The suffix alone is serial 0; a serial after it is 1 or more. */
            if (parse_literal(&p, kind_suffix(kind)) < 0)
                return -EINVAL;
            if (*p != '\0' &&
                (parse_decimal(&p, &serial_v) < 0 || serial_v == 0 || serial_v > UINT32_MAX))
                return -EINVAL;
        }
        break;
    default:
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;
    if (pid)
        *pid = (pid_t)pid_v;
    if (serial)
        *serial = (uint32_t)serial_v;
    return 0;
}

int ipc_random_serial(uint32_t *out)
{
    uint32_t v = 0;

    do {
        ssize_t n = getrandom(&v, sizeof v, 0);

        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0 && n != (ssize_t)sizeof v)
            v = 0; /* short read: try again */
    } while (v == 0);
    *out = v;
    return 0;
}

/* 1 when pid certainly no longer exists. EPERM means it exists (another user's). */
static int pid_is_dead(pid_t pid)
{
    return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Removes the dead owners' objects of one kind listed in dir. Returns the count or -errno. */
/* Kinds that are message queues (in /dev/mqueue), not shared memory objects. */
static int is_queue(enum ipc_kind kind)
{
    return kind == IPC_KIND_CMDQ || kind == IPC_KIND_REPLY;
}

static int sweep_dir(const char *dir, enum ipc_kind kind, uid_t uid)
{
    char name[IPC_NAME_MAX];
    struct dirent *de;
    struct stat st;
    int removed = 0, dfd;
    DIR *d;

    d = opendir(dir);
    if (!d)
        return -errno;
    dfd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        pid_t pid;
        size_t len = strnlen(de->d_name, sizeof de->d_name);

        /* Entries have no leading '/'; ours do. */
        if (len + 2 > sizeof name)
            continue;
        name[0] = '/';
        memcpy(name + 1, de->d_name, len + 1);
        if (ipc_name_parse(name, kind, uid, &pid, NULL) < 0)
            continue;
        /* Only objects really owned by uid: a same-named object of another user is not ours. */
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid != uid)
            continue;
        if (!pid_is_dead(pid))
            continue;
        if ((is_queue(kind) ? mq_unlink(name) : shm_unlink(name)) == 0)
            removed++;
        /* ENOENT: another sweeper was first. Anything else: leave it, keep going. */
    }
    closedir(d);
    return removed;
}

int ipc_sweep_dead(uid_t uid, unsigned kinds)
{
    int removed = 0, rc;

    if (kinds & ~((1u << IPC_KIND_CMDQ) | (1u << IPC_KIND_SEGMENT) | (1u << IPC_KIND_STATS) |
                  (1u << IPC_KIND_REPLY)))
        return -EINVAL;
    for (enum ipc_kind k = IPC_KIND_SEGMENT; k <= IPC_KIND_STATS; k++) {
        if (!(kinds & (1u << k)))
            continue;
        rc = sweep_dir(SHM_DIR, k, uid);
        if (rc < 0)
            return rc;
        removed += rc;
    }
    /* Queues are only listable where the mqueue filesystem is mounted; skip them if not. */
    for (enum ipc_kind k = IPC_KIND_CMDQ; k <= IPC_KIND_REPLY; k++) {
        if (!is_queue(k) || !(kinds & (1u << k)) || !ipc_mqueue_listable())
            continue;
        rc = sweep_dir(MQUEUE_DIR, k, uid);
        if (rc < 0)
            return rc;
        removed += rc;
    }
    return removed;
}

int ipc_mqueue_listable(void)
{
    struct statfs sf;

    return statfs(MQUEUE_DIR, &sf) == 0 && sf.f_type == MQUEUE_MAGIC_;
}
