/* gfserver.h - GETFILE server library: a listener, a boss thread and a fixed pool of workers.
 *
 * Idle workers accept connections (one at a time, from one shared epoll set; the listener
 * defers an accept until the client's first bytes came, for at most ~1 s). A worker that finds
 * the whole request header already there calls the handler itself: no handoff between threads
 * on the common path. A connection still sending its header goes to the boss, which reads it
 * in an epoll loop, so a client that sends its header slowly holds no worker: up to
 * max_waiting such connections (max_per_client from one address) wait at once, each until
 * header_timeout_ms after its accept. Their complete requests are queued (bounded) to the
 * workers. While every worker is busy nothing is accepted: new connections wait in the
 * listen backlog. The library answers INVALID to a malformed or late header by itself (from the
 * boss, without blocking), and ERROR when a handler fails before sending a header. Every send is
 * bounded by a stall deadline, SIGPIPE never fires, and stopping is clean: stop accepting, let
 * in-flight transfers finish, cut them after a grace period, join. One request per connection;
 * after the response the library half-closes and discards what the client still sends (bounded: 1
 * s, 64 KiB) before closing, so unread request bytes do not make the kernel reset the connection
 * while the response is still in flight. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SERVER_H
#define GF_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "gf_proto.h"

struct gfserver;
struct gfs_ctx; /* one request in progress; valid only inside the handler call */

/* Serves one request. path is NUL-terminated (path_len bytes, validated by gf_path_valid),
 * borrowed until the handler returns; arg is this worker's own argument (see gfs_options).
 * Returns 0 when the response is complete (a header, plus exactly the announced bytes for
 * GF_OK), or -errno on failure: before any header the library sends ERROR; after a header the
 * connection is closed early, so the client sees a short transfer. */
typedef int (*gfs_handler_fn)(struct gfs_ctx *ctx, const char *path, size_t path_len, void *arg);

/* Conditions worth a log line; the library never logs, it reports them here. */
enum gfs_event {
    /* accept(2) failed for lack of resources (value: its errno: EMFILE, ENFILE, ENOBUFS,
     * ENOMEM); accepting stops for ~100 ms, then the boss lets the workers retry. At most once
     * a second. */
    GFS_EV_ACCEPT_PAUSED,
    /* A handler returned 0 without a complete response (no header, or fewer bytes than
     * announced): treated as a failure. value: 0 */
    GFS_EV_INCOMPLETE,
    /* The shutdown grace period ended; value: connections still active (being served, or
     * still sending their header), whose sockets are now shut down. */
    GFS_EV_CUT,
    /* A new connection without its complete header was closed at once: its client address
     * already had max_per_client connections waiting, or max_waiting connections had
     * complete requests. value: 0 */
    GFS_EV_REFUSED,
    /* The boss saw the stop request (stop_flag or gfs_stop) and closed the listener; in-flight
     * transfers now get the grace period. From the boss, once. value: 0 */
    GFS_EV_STOPPING,
};

/* Called from the boss or a worker thread, so it must be thread-safe and quick. */
typedef void (*gfs_event_fn)(enum gfs_event ev, int value, void *arg);

/* What a worker did with one connection, for an access log; the pointers are valid during
 * the on_done call only. */
struct gfs_done {
    const struct sockaddr *peer; /* the client's address, as accept saw it */
    socklen_t peer_len;
    const char *path;    /* the requested path; NULL when no valid request was read */
    int status;          /* the enum gf_status sent (by the handler or the library), or -1 */
    uint64_t sent;       /* content bytes sent */
    int64_t duration_ns; /* from the accept to the end of the response (before the close) */
    const char *note;    /* what the handler set with gfs_ctx_set_note, or NULL */
};

/* Called once per connection: by the worker after the response it served, or by the boss for a
 * connection it answered itself (INVALID) or closed without a request (status -1). So it must
 * be thread-safe and quick: it delays the close, and on the boss every other connection. */
typedef void (*gfs_done_fn)(const struct gfs_done *d, void *arg);

struct gfs_options {
    const char *host;      /* address to bind; NULL = every address */
    uint16_t port;         /* 0 = pick a free port (see gfs_port) */
    unsigned nthreads;     /* workers, >= 1 */
    unsigned queue_depth;  /* requests the boss completed, waiting for a worker; 0 = 4 * nthreads */
    int backlog;           /* listen(2) backlog; 0 = 1024 */
    int header_timeout_ms; /* whole request header must arrive within this long of the
                            * accept, else INVALID; 0 = 60000 */
    int send_timeout_ms;   /* a send may stall (the socket never writable) this long; 0 = 10000 */
    /* A response must go out at min_rate bytes/s at least, measured over windows of
     * send_timeout_ms (the kernel's socket buffers count as taken): a client that takes less
     * within a window is cut at its end. 0 = 1024 */
    unsigned min_rate;
    /* When > 0, the whole response (from the handler's call) must be sent within this long,
     * else the client is cut. 0 = no limit */
    int response_timeout_ms;
    int shutdown_grace_ms; /* after stop, in-flight transfers get this long; 0 = 5000 */
    /* Connections the boss holds before a worker takes them (waiting for their header,
     * lingering after INVALID, or complete and waiting for room in the queue); 0 = half the
     * RLIMIT_NOFILE soft limit, at least 16, at most 65536. When full, a new connection
     * evicts (resets) the oldest one still without a complete request. */
    unsigned max_waiting;
    /* Of those, at most this many from one client address; more are closed at once. 0 = 64 */
    unsigned max_per_client;
    /* The form of every response header: GF_FRAMING_DOCUMENTED (0, the default) or
     * GF_FRAMING_LEGACY, for the course's prebuilt clients (docs/protocol.md). Either way
     * the library closes after the response. */
    enum gf_framing framing;
    gfs_handler_fn handler;
    void **worker_args; /* nthreads entries, worker i gets worker_args[i]; NULL = all NULL */
    /* When non-NULL, the boss stops as soon as *stop_flag becomes non-zero. Signal handlers
     * only set it; gfs_run unblocks SIGINT/SIGTERM only inside its ppoll, so a signal taken
     * by the boss thread wakes it without a race. If another thread of the caller has them
     * unblocked and takes the signal, the boss still sees the flag within a second. */
    volatile sig_atomic_t *stop_flag;
    gfs_event_fn on_event; /* optional; gets event_arg */
    void *event_arg;
    gfs_done_fn on_done; /* optional; gets done_arg */
    void *done_arg;
};

/* Creates the server and binds the listening socket. Copies opt and the worker_args array (the
 * pointers in it are the caller's). Starts no thread. Returns 0 and *out, or -errno (-EINVAL
 * for bad options: no handler, nthreads not in 1..4096, queue_depth or max_waiting over
 * 65536, a negative timeout, an unknown framing; -EADDRINUSE, ...). */
int gfs_new(struct gfserver **out, const struct gfs_options *opt);

/* The bound port (useful after port 0). */
uint16_t gfs_port(const struct gfserver *s);

/* Starts the workers and runs the boss loop in the calling thread until stopped (stop_flag or
 * gfs_stop). Then it closes the listener, serves what is in flight and queued for up to
 * shutdown_grace_ms; after that gfs_ctx_cancelled turns true, every active client socket is
 * shut down, queued connections are closed unserved, and every worker is joined (so it returns
 * once each handler has returned: a handler must give up when its sends fail or when it sees
 * gfs_ctx_cancelled). Workers run with SIGINT, SIGTERM and SIGPIPE blocked; the caller's
 * signal mask is restored before returning. Call once: returns 0, -EALREADY on a second call,
 * or -errno when the workers could not start. */
int gfs_run(struct gfserver *s);

/* Asks gfs_run to stop; callable from any thread (not from a signal handler: use stop_flag).
 * Before gfs_run, it makes gfs_run return at once. */
void gfs_stop(struct gfserver *s);

/* Closes the listener and frees the server (after gfs_run returned, or if it never ran).
 * NULL is a no-op. */
void gfs_free(struct gfserver *s);

/* Sends the response header (length only counts for GF_OK). For GF_OK, exactly length content
 * bytes must follow through gfs_send. Call at most once. Returns 0 or -errno (-EPIPE,
 * -ECONNRESET, -ETIMEDOUT: the client is gone or stuck; -EALREADY if a header was sent; -EINVAL
 * for GF_INVALID; -ECANCELED after the grace period). */
int gfs_send_header(struct gfs_ctx *ctx, enum gf_status st, uint64_t length);

/* Sends len content bytes (all of them, or fails). Returns 0 or -errno; -EMSGSIZE if this
 * would exceed the announced length, -EPROTO before an OK header, -ECANCELED after the grace
 * period. Once a send failed, the connection is dead: every later send returns that error. */
int gfs_send(struct gfs_ctx *ctx, const void *buf, size_t len);

/* The largest body gfs_send_ok sends with its header in one write. */
#define GFS_SMALL_MAX 16384

/* A whole GF_OK response: the header for len content bytes, then the bytes. Up to
 * GFS_SMALL_MAX bytes go out with the header in one write (one TCP segment: the client wakes
 * once, not once for the header and again for the body); larger ones, and a sink, as
 * gfs_send_header then gfs_send. Returns as those two. */
int gfs_send_ok(struct gfs_ctx *ctx, const void *buf, size_t len);

/* gfs_send for len bytes of the file fd from offset, sent with sendfile (no copy through user
 * space; a sink ctx hands fd to its send_fd op, else gets them read into a buffer). fd is only read
 * (pread/sendfile: its offset is not used or moved). Returns as gfs_send, and -ENODATA when the
 * file ends before len bytes (it shrank: the connection is then broken like after any failed send).
 */
int gfs_send_file(struct gfs_ctx *ctx, int fd, uint64_t offset, uint64_t len);

/* Non-zero once the server is stopping (handlers doing long waits should check it and give up
 * when the grace period is over; see gfs_ctx_cancelled). */
int gfs_ctx_stopping(const struct gfs_ctx *ctx);

/* Non-zero once the shutdown grace period has passed: the handler must return promptly. */
int gfs_ctx_cancelled(const struct gfs_ctx *ctx);

/* Non-zero once gfs_send_header was called (whether or not its write succeeded): from then on
 * nothing else may answer this request. */
int gfs_ctx_header_sent(const struct gfs_ctx *ctx);

/* Bytes of content sent so far through gfs_send. */
uint64_t gfs_ctx_sent(const struct gfs_ctx *ctx);

/* Sets the note on_done reports for this request (a string that outlives the server, e.g. a
 * literal); the last call wins. */
void gfs_ctx_set_note(struct gfs_ctx *ctx, const char *note);

/* Tells the front end the source's validators of the content about to be sent (call before
 * gfs_send_header): its ETag and Last-Modified, as the source gave them, or NULL. GETFILE has
 * no place for them, so a GETFILE connection ignores them; a sink (below) gets them. The
 * strings are borrowed for the call. */
void gfs_ctx_set_validators(struct gfs_ctx *ctx, const char *etag, const char *last_modified);

/* ---- sinks: the same handlers behind another front end ------------------------------------
 * A ctx made by gfs_ctx_sink_new runs a handler outside any server: the checks of
 * gfs_send_header and gfs_send (one header, GF_OK's length never exceeded, nothing after a
 * failure) stay here, and what passes them goes to the sink's functions instead of a socket.
 * The HTTP front end (src/proxy/http_front.h) serves the proxy's handlers this way. */
struct gfs_sink_ops {
    /* The response header: st is GF_OK, GF_FILE_NOT_FOUND or GF_ERROR; length counts for
     * GF_OK only. Returns 0 or -errno (the ctx is then broken). */
    int (*header)(void *sink, enum gf_status st, uint64_t length);
    /* len content bytes (buf borrowed for the call); all of them, or -errno. */
    int (*send)(void *sink, const void *buf, size_t len);
    /* gfs_ctx_stopping and gfs_ctx_cancelled of the ctx. */
    int (*stopping)(void *sink);
    int (*cancelled)(void *sink);
    /* gfs_ctx_set_validators; may be NULL. */
    void (*validators)(void *sink, const char *etag, const char *last_modified);
    /* gfs_send_file's len bytes of fd from offset, for a sink that sends files itself (it
     * keeps its own dup of fd: the caller closes fd when the handler returns). May be NULL,
     * and may return -ENOTSUP before taking anything: the bytes then come through send. */
    int (*send_fd)(void *sink, int fd, uint64_t offset, uint64_t len);
};

/* Makes a ctx whose output goes to ops with sink (both borrowed until gfs_ctx_sink_free).
 * Returns 0 and *out, or -ENOMEM. */
int gfs_ctx_sink_new(struct gfs_ctx **out, const struct gfs_sink_ops *ops, void *sink);

/* Frees a ctx made by gfs_ctx_sink_new. NULL is a no-op. */
void gfs_ctx_sink_free(struct gfs_ctx *ctx);

/* The status a sink ctx's handler sent (GF_OK, ...), or -1 before any header. */
int gfs_ctx_status(const struct gfs_ctx *ctx);

/* The note set with gfs_ctx_set_note, or NULL. */
const char *gfs_ctx_note(const struct gfs_ctx *ctx);

#endif
