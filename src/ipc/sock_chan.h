/* sock_chan.h - the Unix domain socket of the socket backends (--ipc unix and fd): its name in
 * the runtime directory (ipc_rundir.h), listening, connecting with peer credentials checked,
 * descriptor passing (SCM_RIGHTS) and I/O bounded in time. The messages are in sock_msg.h.
 *
 *   <runtime dir>/getfile-<uid>-unix.sock   the listening socket of the cache on --ipc unix
 *   <runtime dir>/getfile-<uid>-fd.sock     the same on --ipc fd
 *
 * The runtime directory is per instance and the cache that holds its instance lock is the only
 * one that binds there, so a name found at its start was left by a dead cache (or given up by a
 * retiring one): it is removed. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SOCK_CHAN_H
#define GF_SOCK_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SOCK_NAME_MAX 64

/* Called between the waits of a blocking call: non-zero ends it with that value (a -errno). */
typedef int (*sock_stop_fn)(void *arg);

/* The socket's file name for backend (IPC_BACKEND_UNIX or _FD) into buf (SOCK_NAME_MAX).
 * Returns 0 or -EINVAL. */
int sock_chan_name(char *buf, uid_t uid, unsigned backend);

struct sock_listener {
    int fd;     /* listening, non-blocking, close-on-exec; -1: none */
    int dir_fd; /* our own descriptor of the directory */
    dev_t dev;  /* the name's identity after bind, to remove it only while it is ours */
    ino_t ino;
    char name[SOCK_NAME_MAX];
};

/* Removes a stale name, binds name in the directory (dir_path, opened as dir_fd: used when the
 * path is too long for an address), mode 0600, and listens. Returns 0 or -errno. */
int sock_listen(struct sock_listener *l, const char *dir_path, int dir_fd, const char *name,
                int backlog);

/* Closes the socket and removes the name when it still is ours; idempotent. */
void sock_listener_close(struct sock_listener *l);

/* Accepts one connection within ms. A peer whose uid (SO_PEERCRED) is not uid is closed and
 * -EPERM returned. Returns the connection (non-blocking, close-on-exec; *peer_pid set) or
 * -ETIMEDOUT, -EPERM, -errno. */
int sock_accept(struct sock_listener *l, int ms, uid_t uid, pid_t *peer_pid);

/* Connects to name in the directory within timeout_ms and checks that the listener runs as uid.
 * Returns 0 and *out_fd (non-blocking, close-on-exec, *peer_pid set), -ENOTCONN when nobody
 * listens there (no such name, refused, not a socket), -EPERM (another uid), -ETIMEDOUT
 * (backlog full throughout), -errno. */
int sock_connect(const char *dir_path, int dir_fd, const char *name, int timeout_ms, uid_t uid,
                 int *out_fd, pid_t *peer_pid);

/* Removes the socket names of every backend in the directory that are sockets of uid (a dead
 * cache's; call it only holding the instance lock). Returns how many or -errno. */
int sock_sweep(int dir_fd, uid_t uid);

/* Reads exactly len bytes; at most one descriptor may come along (SCM_RIGHTS, received
 * close-on-exec): *fd_out gets it, or -1 (fd_out NULL: none accepted). Waits until deadline_ms
 * (clock_mono_ms; -1: none), calling stop every 100 ms. Returns 0, -ECONNRESET (the peer closed
 * first), -ETIMEDOUT, stop's value, -EBADMSG (descriptors not wanted, more than one, or cut),
 * -errno. On error no descriptor is left open. */
int sock_recv_full(int fd, void *buf, size_t len, int *fd_out, int64_t deadline_ms,
                   sock_stop_fn stop, void *arg);

/* Reads at least one and at most cap bytes, waiting as sock_recv_full. Returns the count, or
 * -ECONNRESET (the peer closed), -ETIMEDOUT, stop's value, -errno. */
ssize_t sock_recv_some(int fd, void *buf, size_t cap, int64_t deadline_ms, sock_stop_fn stop,
                       void *arg);

/* Writes len bytes, with pass_fd (>= 0) as SCM_RIGHTS on the first byte. Gives up after stall_ms
 * without progress; calls stop every 100 ms. Never raises SIGPIPE. Returns 0, -ETIMEDOUT, -EPIPE
 * (the peer is gone), stop's value, -errno. */
int sock_send_full(int fd, const void *buf, size_t len, int pass_fd, int stall_ms,
                   sock_stop_fn stop, void *arg);

/* sock_send_full for len bytes of file_fd from off, with sendfile. -ENODATA when the file ends
 * first. */
int sock_sendfile_full(int fd, int file_fd, uint64_t off, uint64_t len, int stall_ms,
                       sock_stop_fn stop, void *arg);

/* 1 when the peer has closed or reset the connection (nothing more is expected from it: any
 * input or hangup counts), 0 when not, without waiting. */
int sock_peer_gone(int fd);

#endif
