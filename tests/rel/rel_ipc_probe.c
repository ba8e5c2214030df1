/* rel_ipc_probe.c - tries to open a named POSIX shm object, message queue or file (a registry in
 * a runtime directory), to send to a System V queue or attach a System V segment by id, or to
 * connect to a Unix socket, and reports how it went, for the two-user test:
 * "rel_ipc_probe shm|mq|file|msgq|shmat|connect NAME" prints "ok" or the errno name. msgq ID
 * reads the queue's state (IPC_STAT: the same mode bits a send needs, and nothing is sent);
 * shmat ID attaches read-only and detaches. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define USAGE "usage: rel_ipc_probe shm|mq|file|msgq|shmat|connect NAME\n"

static const char *errno_name(int e)
{
    switch (e) {
    case EACCES:
        return "EACCES";
    case EPERM:
        return "EPERM";
    case ENOENT:
        return "ENOENT";
    case EINVAL:
        return "EINVAL";
    default:
        return "OTHER";
    }
}

/* 0 when allowed, else errno. */
static int probe_sysv(const char *kind, const char *arg)
{
    int id = atoi(arg);

    if (strcmp(kind, "msgq") == 0) {
        struct msqid_ds ds;
        return msgctl(id, IPC_STAT, &ds) == 0 ? 0 : errno;
    }
    void *p = shmat(id, NULL, SHM_RDONLY);
    if (p == (void *)-1)
        return errno;
    shmdt(p);
    return 0;
}

static int probe_connect(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd, rc = 0;

    if (strlen(path) >= sizeof a.sun_path)
        return EINVAL;
    memcpy(a.sun_path, path, strlen(path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        rc = errno;
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    int err = 0;

    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf(USAGE);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "shm") != 0 && strcmp(argv[1], "mq") != 0 &&
                      strcmp(argv[1], "file") != 0 && strcmp(argv[1], "msgq") != 0 &&
                      strcmp(argv[1], "shmat") != 0 && strcmp(argv[1], "connect") != 0)) {
        fprintf(stderr, "rel_ipc_probe: bad arguments\n" USAGE);
        return 2;
    }
    if (strcmp(argv[1], "shm") == 0 || strcmp(argv[1], "file") == 0) {
        int fd = argv[1][0] == 's' ? shm_open(argv[2], O_RDWR | O_CLOEXEC, 0)
                                   : open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            err = errno;
        else
            close(fd);
    } else if (strcmp(argv[1], "mq") == 0) {
        mqd_t q = mq_open(argv[2], O_WRONLY | O_NONBLOCK);
        if (q == (mqd_t)-1)
            err = errno;
        else
            mq_close(q);
    } else if (strcmp(argv[1], "connect") == 0) {
        err = probe_connect(argv[2]);
    } else {
        err = probe_sysv(argv[1], argv[2]);
    }
    if (err) {
        printf("%s\n", errno_name(err));
        return 1;
    }
    printf("ok\n");
    return 0;
}
