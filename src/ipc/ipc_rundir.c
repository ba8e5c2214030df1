/* ipc_rundir.c - resolving, creating and checking the per-user runtime directory. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* O_DIRECTORY, O_NOFOLLOW */
#include "ipc_rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSTANCE_PREFIX "instance-"

static char instance_name[IPC_INSTANCE_MAX + 1] = IPC_INSTANCE_DEFAULT;

int ipc_instance_valid(const char *name)
{
    size_t n;

    if (name == NULL)
        return -EINVAL;
    for (n = 0; name[n] != '\0'; n++) {
        char ch = name[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '-';
        if (!ok || n >= IPC_INSTANCE_MAX)
            return -EINVAL;
    }
    return n > 0 ? 0 : -EINVAL;
}

int ipc_instance_set(const char *name)
{
    if (ipc_instance_valid(name) < 0)
        return -EINVAL;
    strcpy(instance_name, name); /* valid: at most IPC_INSTANCE_MAX bytes */
    return 0;
}

const char *ipc_instance(void)
{
    return instance_name;
}

int ipc_rundir_base_ok(int fd, uid_t uid)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid &&
           (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

int ipc_rundir_open_at(int parent_fd, const char *dir_name, uid_t uid)
{
    struct stat st;
    int fd, rc;

    if (mkdirat(parent_fd, dir_name, 0700) < 0 && errno != EEXIST)
        return -errno;
    /* O_NOFOLLOW: a symlink planted under our name gives ELOOP instead of leading elsewhere. */
    fd = openat(parent_fd, dir_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        /* With O_DIRECTORY a symlink gives ENOTDIR: name it as what it is. */
        if (rc == -ENOTDIR && fstatat(parent_fd, dir_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            rc = -ELOOP;
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto err;
    }
    if (!S_ISDIR(st.st_mode)) {
        rc = -ENOTDIR;
        goto err;
    }
    if (st.st_uid != uid) {
        rc = -EPERM;
        goto err;
    }
    if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
        rc = -errno;
        goto err;
    }
    return fd;

err:
    close(fd);
    return rc;
}

/* Opens base (following symlinks: it is a parent) and requires it to be a directory of uid
 * that others may not write, unless trusted (/run, /dev/shm: owned by root). Then opens
 * name inside it. Returns the descriptor or -errno. */
static int open_under(const char *base, int check_base, const char *name, uid_t uid)
{
    int bfd, fd;

    bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bfd < 0)
        return -errno;
    if (check_base && !ipc_rundir_base_ok(bfd, uid)) {
        close(bfd);
        return -EPERM;
    }
    fd = ipc_rundir_open_at(bfd, name, uid);
    close(bfd);
    return fd;
}

/* $GETFILE_RUNTIME_DIR: the directory itself is checked, its parent is the user's choice. */
static int open_explicit(const char *path, uid_t uid)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    char *slash;

    if (path[0] != '/')
        return -EINVAL; /* both daemons must find the same directory, whatever their cwd */
    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len);
    buf[len] = '\0';
    slash = strrchr(buf, '/');
    if (slash[1] == '\0')
        return -EINVAL; /* "/" itself */
    *slash = '\0';
    return open_under(slash == buf ? "/" : buf, 0, slash + 1, uid);
}

/* 1 when /run is a directory of root that others cannot write (not so in some containers:
 * root then takes the last resort like everybody else). */
static int run_usable(void)
{
    int fd = open("/run", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ok = fd >= 0 && ipc_rundir_base_ok(fd, 0);

    if (fd >= 0)
        close(fd);
    return ok;
}

/* rd->path = a + b. Returns 0 or -ENAMETOOLONG. */
static int set_path(struct ipc_rundir *rd, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la + lb >= sizeof rd->path)
        return -ENAMETOOLONG;
    memcpy(rd->path, a, la);
    memcpy(rd->path + la, b, lb + 1);
    return 0;
}

int ipc_rundir_open(struct ipc_rundir *rd)
{
    uid_t uid = geteuid();
    const char *env = getenv(IPC_RUNDIR_ENV);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char base[PATH_MAX], leaf[32];
    int fd;

    rd->fd = -1;
    rd->path[0] = '\0';
    if (env && env[0]) {
        rd->source = IPC_RUNDIR_ENV_VAR;
        fd = set_path(rd, env, "");
        if (fd == 0)
            fd = open_explicit(env, uid);
        goto done;
    }
    if (uid == 0 && run_usable()) {
        rd->source = IPC_RUNDIR_ROOT;
        set_path(rd, "/run/getfile", "");
        fd = open_under("/run", 1, "getfile", uid);
        goto done;
    }
    if (uid != 0 && xdg && xdg[0] == '/' && set_path(rd, xdg, "/getfile") == 0) {
        rd->source = IPC_RUNDIR_XDG;
        fd = open_under(xdg, 1, "getfile", uid);
        if (fd >= 0)
            goto done;
    }
    if (uid != 0) {
        snprintf(base, sizeof base, "/run/user/%u", (unsigned)uid);
        rd->source = IPC_RUNDIR_RUN_USER;
        set_path(rd, base, "/getfile");
        fd = open_under(base, 1, "getfile", uid);
        if (fd >= 0)
            goto done;
    }
    /* Last resort, where another user can take the name first: then refused. */
    rd->source = IPC_RUNDIR_SHM;
    snprintf(leaf, sizeof leaf, "getfile-%u", (unsigned)uid);
    set_path(rd, "/dev/shm/", leaf);
    fd = open_under("/dev/shm", 0, leaf, uid);
done:
    if (fd < 0)
        return fd;
    if (strcmp(instance_name, IPC_INSTANCE_DEFAULT) != 0) {
        char sub[sizeof INSTANCE_PREFIX + IPC_INSTANCE_MAX];
        size_t len = strlen(rd->path);
        int sfd;

        snprintf(sub, sizeof sub, INSTANCE_PREFIX "%s", instance_name);
        if (len + 1 + strlen(sub) >= sizeof rd->path) {
            close(fd);
            return -ENAMETOOLONG;
        }
        snprintf(rd->path + len, sizeof rd->path - len, "/%s", sub);
        sfd = ipc_rundir_open_at(fd, sub, uid);
        close(fd);
        if (sfd < 0)
            return sfd;
        fd = sfd;
    }
    rd->fd = fd;
    return 0;
}

void ipc_rundir_close(struct ipc_rundir *rd)
{
    if (rd->fd >= 0)
        close(rd->fd);
    rd->fd = -1;
}
