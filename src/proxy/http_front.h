/* http_front.h - webproxy's HTTP/1.1 front end: the proxy's GETFILE handlers served over HTTP
 * with libmicrohttpd (docs/http.md).
 *
 * libmicrohttpd's threads parse requests and write responses (epoll, keep-alive, 400/414/431 by
 * itself); a request that passes our checks (GET or HEAD, a path GETFILE can name) is queued
 * to our own workers, which run the handler with a sink ctx (gfserver.h): what the handler
 * sends is handed to libmicrohttpd's body callback piece by piece, without a buffer of our
 * own (bodies up to 64 KiB excepted: gathered, then answered whole), and the connection is
 * suspended while the handler has nothing for it (unless the optional quick handler served it
 * at once on libmicrohttpd's thread: see quick below). The GETFILE statuses map to
 * 200/206/304/416 (OK), 404 (FILE_NOT_FOUND) and 502 (ERROR); a handler that fails before the
 * HTTP header went out (which waits for the first body byte) gets 504 for -ETIMEDOUT, 503
 * when cancelled, else 502.
 *
 * Bounds: a request header must arrive within header_timeout_ms of the accept or of the
 * previous response (else the connection is shut down); an idle connection (no byte either
 * way) is closed after the send timeout, rounded up to whole seconds; a response's body must
 * go out at min_rate bytes/s over windows of send_timeout_ms, else it is cut; headers over
 * 32 KiB get 431 (a request line over it 414); max_per_client connections per client address
 * and max_conns in all. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_HTTP_FRONT_H
#define GF_HTTP_FRONT_H

#include <stdint.h>

#include "gfserver.h"

struct http_front;

/* webproxy's defaults of map_max and map_min (docs/http.md). */
#define HTTP_FRONT_MAP_MAX (64ull << 20)
#define HTTP_FRONT_MAP_MIN (1ull << 20)

struct http_front_options {
    const char *host;        /* address to bind (a name or a literal); NULL = every address */
    uint16_t port;           /* 0 = pick a free one (http_front_port) */
    unsigned nthreads;       /* workers running the handler, 1..4096 */
    unsigned io_threads;     /* libmicrohttpd's threads; 0 = one per online CPU, at most 4 */
    unsigned queue_depth;    /* requests waiting for a worker (more get 503); 0 = 4 * nthreads */
    int header_timeout_ms;   /* 0 = 60000 */
    int send_timeout_ms;     /* 0 = 10000 */
    unsigned min_rate;       /* bytes/s; 0 = 1024 */
    int shutdown_grace_ms;   /* 0 = 5000 */
    unsigned max_per_client; /* connections per client address; 0 = 64 */
    unsigned max_conns;      /* connections in all; 0 = 1000 */
    uint64_t map_max;        /* a body of map_min bytes or more from the cache's descriptor
                              * (gfs_send_file) in a file up to this long is sent from a
                              * mapping of the file kept across requests (at most 1 GiB and 256
                              * files mapped), others with sendfile; 0 = always sendfile
                              * (HTTP_FRONT_MAP_MAX: webproxy's default) */
    uint64_t map_min;        /* 0 = HTTP_FRONT_MAP_MIN */
    gfs_handler_fn handler;  /* called with handler_arg from every worker */
    /* Optional: called first, with handler_arg, on libmicrohttpd's thread, for a request it
     * can serve at once without waiting on anything (webproxy: a hit from a kept descriptor,
     * no round trip to the cache); it returns having sent no header when it cannot, and the
     * request then goes to handler on a worker. Its sends must not wait: a body from a file
     * (gfs_send_file, handed whole to libmicrohttpd) or up to 64 KiB (gathered) is served;
     * any other body fails (502). Saves the hand-over to a worker and back per request. A body
     * from a file is then watched by the watcher thread every 50 ms (rate, file unchanged)
     * instead of by a worker every 100 ms, and checked once more when it ends. */
    gfs_handler_fn quick;
    const char *quick_error_note; /* the note on_done reports when a body quick promised
                                   * fails afterwards (cut, changed file, client gone) */
    void *handler_arg; /* Optional: called once per request when both sides are done with it (the
                        * response ended and the handler returned), from a libmicrohttpd thread or a
                        * worker; path is NULL for a request answered without a handler (405, 400,
                        * ...), status the GETFILE status the handler sent (or -1), sent the body
                        * bytes handed to libmicrohttpd. */
    gfs_done_fn on_done;
    void *done_arg;
};

/* Binds and listens. Copies opt. Returns 0 and *out, or -errno (-EINVAL options,
 * -EADDRINUSE, -EADDRNOTAVAIL, -EHOSTUNREACH for a host that does not resolve, ...). */
int http_front_new(struct http_front **out, const struct http_front_options *opt);

/* The bound port. */
uint16_t http_front_port(const struct http_front *h);

/* Starts libmicrohttpd, the workers and a watcher thread (with SIGINT, SIGTERM and SIGPIPE
 * blocked in all of them). Sets fixed malloc thresholds for the whole process (mallopt: see
 * http_front.c) so response buffers are reused. Returns 0 or -errno. */
int http_front_start(struct http_front *h);

/* Asks the front end to stop; callable from any thread (not from a signal handler). The
 * watcher then stops accepting, gives requests in flight shutdown_grace_ms, cancels the rest
 * (gfs_ctx_cancelled turns true), joins the workers and stops libmicrohttpd. */
void http_front_stop(struct http_front *h);

/* Stops as above if not yet stopped (waiting for it) and frees. NULL is a no-op. */
void http_front_free(struct http_front *h);

#endif
