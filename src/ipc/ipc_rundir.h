/* ipc_rundir.h - the per-user runtime directory where the cache's registry and instance lock
 * live: a directory of our uid that no other user can write, so no other user can take the
 * rendezvous name first.
 *
 * Both daemons resolve it the same way, from the first of these that applies:
 *   1. $GETFILE_RUNTIME_DIR, used as is (created if missing); when it is unusable, an error;
 *   2. euid 0: /run/getfile (when /run is root's and others cannot write it; else step 5);
 *   3. $XDG_RUNTIME_DIR/getfile, when $XDG_RUNTIME_DIR is absolute and a directory of our uid
 *      that nobody else may write; otherwise skipped;
 *   4. /run/user/<uid>/getfile, under the same condition;
 *   5. /dev/shm/getfile-<uid> (last resort): another user can create that name first, and then
 *      both daemons refuse to start (-EPERM) instead of using it.
 * The directory itself (the last component) must be a real directory (not a symlink) of our uid;
 * created with mode 0700, and chmod'ed back to 0700 when it is ours with a wider mode.
 *
 * Instances: the process's instance (ipc_instance_set, "default" unless --instance) selects the
 * directory used. The default instance uses the runtime directory itself, as it always did;
 * another instance NAME uses its subdirectory "instance-NAME" (created and checked the same
 * way), so each instance has its own registry and instance lock. Queues, segments and stats
 * objects keep their names (their owner's pid keeps them apart); the instance is recorded in
 * each stats object (stats.h) for gfmon. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_IPC_RUNDIR_H
#define GF_IPC_RUNDIR_H

#include <limits.h>
#include <sys/types.h>

#define IPC_RUNDIR_ENV "GETFILE_RUNTIME_DIR"

enum ipc_rundir_source {
    IPC_RUNDIR_ENV_VAR,  /* $GETFILE_RUNTIME_DIR */
    IPC_RUNDIR_ROOT,     /* /run/getfile */
    IPC_RUNDIR_XDG,      /* $XDG_RUNTIME_DIR/getfile */
    IPC_RUNDIR_RUN_USER, /* /run/user/<uid>/getfile */
    IPC_RUNDIR_SHM,      /* /dev/shm/getfile-<uid> */
};

struct ipc_rundir {
    int fd; /* O_DIRECTORY descriptor, close-on-exec */
    enum ipc_rundir_source source;
    char path[PATH_MAX];
};

/* Opens (creating if needed) this euid's runtime directory as described above. Returns 0, or
 * -errno with rd->path naming the directory that was refused (-EPERM: another owner, or a
 * parent others may write; -ELOOP: a symlink; -ENOTDIR; -ENAMETOOLONG ...). */
int ipc_rundir_open(struct ipc_rundir *rd);

/* Opens dir_name inside the directory parent_fd (created with mode 0700 when missing) and checks
 * it is a directory (not a symlink) owned by uid; a wider mode than 0700 is narrowed to 0700.
 * Returns the descriptor or -errno (-EPERM another owner, -ELOOP symlink, -ENOTDIR). Exposed
 * for the tests. */
int ipc_rundir_open_at(int parent_fd, const char *dir_name, uid_t uid);

/* 1 when fd is a directory owned by uid that no other user may write (no group or other write
 * bit), else 0. */
int ipc_rundir_base_ok(int fd, uid_t uid);

void ipc_rundir_close(struct ipc_rundir *rd);

#define IPC_INSTANCE_DEFAULT "default"
#define IPC_INSTANCE_MAX     32 /* characters of an instance name, NUL excluded */

/* 0 when name is a valid instance name: 1..IPC_INSTANCE_MAX characters of [A-Za-z0-9_-];
 * else -EINVAL (NULL, empty, too long, any other byte: '/', '.', space, ...). */
int ipc_instance_valid(const char *name);

/* Sets this process's instance (copied). Call once in main, before any thread and before any
 * ipc_rundir_open. Returns 0 or -EINVAL (not valid, as above); on error nothing changes. */
int ipc_instance_set(const char *name);

/* The message of a program refusing an instance name (then exit 2). */
#define IPC_INSTANCE_RULE "1 to 32 characters of A-Z a-z 0-9 _ -"

/* This process's instance: IPC_INSTANCE_DEFAULT unless ipc_instance_set said otherwise. */
const char *ipc_instance(void);

#endif
