/* gfclient.h - GETFILE client library: one request per connection, strict incremental parsing.
 * The names follow the original framework (gfc_create, gfc_set_*, gfc_perform, gfc_get_*). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CLIENT_H
#define GF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "gf_proto.h"

struct gfcrequest;

/* Called once with the parsed response header, before any content. Return 0 to go on, or
 * -errno to abort (gfc_perform then returns that value). */
typedef int (*gfc_header_fn)(const struct gf_response *hdr, void *arg);
/* Called with each piece of content, in order. Return 0 or -errno to abort. */
typedef int (*gfc_write_fn)(const void *buf, size_t len, void *arg);

/* Returns a new request (free with gfc_cleanup), or NULL when out of memory.
 * Defaults: server "localhost", port 10823 (the framework's), timeouts 10000 ms. */
struct gfcrequest *gfc_create(void);
void gfc_cleanup(struct gfcrequest *r); /* NULL is a no-op */

/* Setters copy their strings. Return 0, -EINVAL (bad path or port 0) or -ENOMEM. */
int gfc_set_server(struct gfcrequest *r, const char *server);
int gfc_set_port(struct gfcrequest *r, uint16_t port);
int gfc_set_path(struct gfcrequest *r, const char *path);
void gfc_set_headerfunc(struct gfcrequest *r, gfc_header_fn fn, void *arg);
void gfc_set_writefunc(struct gfcrequest *r, gfc_write_fn fn, void *arg);
/* connect_ms bounds the connect; idle_ms bounds any wait for the next bytes from the server. */
void gfc_set_timeouts(struct gfcrequest *r, int connect_ms, int idle_ms);

/* Connects, sends the request, reads the response. Returns 0 when a complete response was
 * received: a status other than OK, or OK with exactly the announced bytes. Otherwise -errno:
 * -ECONNREFUSED (server not up: callers may retry), -ETIMEDOUT, -EPROTO (malformed response
 * header; status becomes GF_INVALID), -ECONNRESET or -EPIPE (the connection ended before all
 * announced bytes: a short transfer, never a success), or a callback's own error.
 * A request can be performed again (a new connection each time). */
int gfc_perform(struct gfcrequest *r);

/* After gfc_perform: the status (GF_INVALID when none was parsed), the announced length and the
 * content bytes received. */
enum gf_status gfc_get_status(const struct gfcrequest *r);
uint64_t gfc_get_filelen(const struct gfcrequest *r);
uint64_t gfc_get_bytesreceived(const struct gfcrequest *r);

#endif
