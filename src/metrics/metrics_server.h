/* metrics_server.h - the daemons' Prometheus endpoint: GET /metrics over HTTP, served by
 * libmicrohttpd in a thread of its own, with the page written by the daemon's collect callback.
 *
 * Bounded: at most METRICS_CONN_MAX connections (METRICS_CONN_PER_IP from one address), each
 * closed after METRICS_IDLE_S seconds without traffic, with METRICS_CONN_MEMORY bytes for its
 * request, and a page of at most METRICS_PAGE_MAX bytes. Other paths get 404, other methods
 * than GET and HEAD 405. The server's thread runs with every signal the daemons catch blocked,
 * so their handlers run in their own threads as before; it touches nothing of the daemon but
 * what the collect callback reads. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_METRICS_SERVER_H
#define GF_METRICS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "prom_text.h"

#define METRICS_DEFAULT_ADDR "127.0.0.1" /* when --metrics gives a port alone */
#define METRICS_ADDR_MAX     64          /* bytes of a numeric address, with the NUL */
#define METRICS_CONN_MAX     16u
#define METRICS_CONN_PER_IP  8u
#define METRICS_IDLE_S       10u
#define METRICS_CONN_MEMORY  (32u << 10)
#define METRICS_PAGE_MAX     (1u << 20)
#define METRICS_PATH         "/metrics"

/* Where to listen: a numeric IPv4 or IPv6 address and a port. */
struct metrics_endpoint {
    char addr[METRICS_ADDR_MAX];
    uint16_t port;
};

/* Parses "[ADDR:]PORT": "9100" (on METRICS_DEFAULT_ADDR), "0.0.0.0:9100", "[::1]:9100".
 * The address must be numeric (no name lookup); the port 1..65535. Returns 0, or -EINVAL with
 * *why set to a static one-line reason. */
int metrics_endpoint_parse(const char *s, struct metrics_endpoint *out, const char **why);

/* Writes the whole page for one scrape into b (bounded at METRICS_PAGE_MAX). Runs in the server's
 * thread, one scrape at a time: it must only read the daemon's figures, never wait for its
 * threads. Returns 0, or -errno (then the scrape gets 500). */
typedef int (*metrics_collect_fn)(struct prom_buf *b, void *arg);

struct metrics_server;

/* Binds ep (a port of 0 picks a free one) and starts serving in a new thread. Returns 0 and
 * *out, or -errno: the bind's (-EADDRINUSE, -EADDRNOTAVAIL, -EACCES), or -EIO when
 * libmicrohttpd could not start. */
int metrics_server_start(struct metrics_server **out, const struct metrics_endpoint *ep,
                         metrics_collect_fn collect, void *arg);

/* The bound port. */
uint16_t metrics_server_port(const struct metrics_server *m);

/* The page's URL, "http://127.0.0.1:9100/metrics" ("http://[::1]:9100/metrics"), into out
 * (cap bytes, NUL-terminated, truncated). */
void metrics_server_url(const struct metrics_server *m, char *out, size_t cap);

/* Stops serving (closing the listener and every connection, joining the thread) and frees.
 * NULL is a no-op. */
void metrics_server_stop(struct metrics_server *m);

#endif
