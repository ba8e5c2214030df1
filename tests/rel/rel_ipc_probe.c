/* rel_ipc_probe.c - tries to open a named POSIX shm object, message queue or file (a registry in
 * a runtime directory) and reports how it went, for the two-user test: "rel_ipc_probe
 * shm|mq|file NAME" prints "ok" or the errno name. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf("usage: rel_ipc_probe shm|mq|file NAME\n");
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "shm") != 0 && strcmp(argv[1], "mq") != 0 &&
                      strcmp(argv[1], "file") != 0)) {
        fprintf(stderr, "rel_ipc_probe: bad arguments\nusage: rel_ipc_probe shm|mq|file NAME\n");
        return 2;
    }
    if (strcmp(argv[1], "shm") == 0 || strcmp(argv[1], "file") == 0) {
        int fd = argv[1][0] == 's' ? shm_open(argv[2], O_RDWR | O_CLOEXEC, 0)
                                   : open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            printf("%s\n", errno_name(errno));
            return 1;
        }
        close(fd);
    } else {
        mqd_t q = mq_open(argv[2], O_WRONLY | O_NONBLOCK);
        if (q == (mqd_t)-1) {
            printf("%s\n", errno_name(errno));
            return 1;
        }
        mq_close(q);
    }
    printf("ok\n");
    return 0;
}
