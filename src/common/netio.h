/* netio.h - TCP sockets and EINTR-safe, deadline-bounded I/O. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_NETIO_H
#define GF_NETIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates a listening TCP socket (SO_REUSEADDR, CLOEXEC, non-blocking) bound to host:port.
 * host NULL means every local address. port 0 picks a free port; netio_local_port() tells
 * which. Stores the fd in *out_fd. Returns 0 or -errno (-EADDRINUSE, ...). */
int netio_listen_tcp(const char *host, uint16_t port, int backlog, int *out_fd);

/* The local port of a bound socket, or -errno. */
int netio_local_port(int fd);

/* Connects to host:port (name or address) within timeout_ms. The fd is CLOEXEC and
 * non-blocking, with TCP_NODELAY. Returns 0 or -errno (-ECONNREFUSED, -ETIMEDOUT,
 * -EHOSTUNREACH; -ENOENT when the name does not resolve). */
int netio_connect_tcp(const char *host, uint16_t port, int timeout_ms, int *out_fd);

/* Sets O_NONBLOCK. Returns 0 or -errno. */
int netio_set_nonblock(int fd);

/* Writes all len bytes to a non-blocking socket. Gives up with -ETIMEDOUT when no byte could
 * be written for stall_ms (-1: no limit). Never raises SIGPIPE (-EPIPE instead). Retries
 * EINTR and partial writes. Returns 0 or -errno. */
int netio_write_all(int fd, const void *buf, size_t len, int stall_ms);

/* As netio_write_all, and also gives up with -ETIMEDOUT at deadline_ms (clock_mono_ms()
 * value; -1: none) whatever the progress. */
int netio_write_all_by(int fd, const void *buf, size_t len, int stall_ms, int64_t deadline_ms);

/* sendfile in calls of at most this many bytes (the kernel's own limit is ~2 GiB). */
#define NETIO_SENDFILE_MAX (1u << 30)

/* Sends len bytes of file_fd from *off to a non-blocking socket with sendfile (no copy through
 * user space), advancing *off by what was sent (also on failure: a caller can tell progress).
 * Waits and gives up as netio_write_all_by. sendfile has no MSG_NOSIGNAL: the caller blocks or
 * ignores SIGPIPE (the daemons here do; their workers block it). Returns 0, -ENODATA
 * when the file ends before len bytes (it shrank), or -errno. */
int netio_sendfile_all_by(int sock, int file_fd, uint64_t *off, size_t len, int stall_ms,
                          int64_t deadline_ms);

/* Reads at most cap bytes from a non-blocking fd, waiting until deadline_ms
 * (clock_mono_ms() value; -1: no limit). Returns bytes read (> 0), 0 at end of stream, or
 * -errno (-ETIMEDOUT at the deadline). */
ssize_t netio_read_some(int fd, void *buf, size_t cap, int64_t deadline_ms);

#endif
