/* gfclient.h - GETFILE client library: one request per connection, strict incremental parsing.
 * The names follow the original framework (gfc_create, gfc_set_*, gfc_perform, gfc_get_*). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CLIENT_H
#define GF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "gf_proto.h"

/* One request's settings, results and its receive buffer (GFC_BUF_SIZE bytes). Not shared:
 * one thread uses a request at a time; separate requests need no locking (no global state). */
struct gfcrequest;

/* Content is read from the socket in pieces of at most this many bytes. */
#define GFC_BUF_SIZE (256 * 1024)

/* Called once with the parsed response header, before any content (for every status).
 * Return 0 to go on, or -errno to abort (gfc_perform then returns that value). */
typedef int (*gfc_header_fn)(const struct gf_response *hdr, void *arg);
/* Called with each piece of content (len > 0), in order; buf is borrowed for the call.
 * Return 0 or -errno to abort. Without a write function the content is discarded. */
typedef int (*gfc_write_fn)(const void *buf, size_t len, void *arg);

/* The connect and idle timeouts of a new request. */
#define GFC_DEFAULT_TIMEOUT_MS 10000

/* Returns a new request (free with gfc_cleanup), or NULL when out of memory.
 * Defaults: server "localhost", port 10823 (the framework's), timeouts GFC_DEFAULT_TIMEOUT_MS. */
struct gfcrequest *gfc_create(void);
void gfc_cleanup(struct gfcrequest *r); /* NULL is a no-op */

/* Setters copy their strings. Return 0, -EINVAL (empty server, port 0, or a path that
 * gf_path_valid rejects) or -ENOMEM. */
int gfc_set_server(struct gfcrequest *r, const char *server);
int gfc_set_port(struct gfcrequest *r, uint16_t port);
int gfc_set_path(struct gfcrequest *r, const char *path);
void gfc_set_headerfunc(struct gfcrequest *r, gfc_header_fn fn, void *arg);
void gfc_set_writefunc(struct gfcrequest *r, gfc_write_fn fn, void *arg);
/* connect_ms bounds the connect; idle_ms bounds any wait for the next bytes from the server
 * (renewed after every read) and any stall while sending the request. Negative: no limit. */
void gfc_set_timeouts(struct gfcrequest *r, int connect_ms, int idle_ms);

/* Connects, sends the request, and reads the response, in either framing (the documented
 * one or the older one of the course's prebuilt servers; gf_parse_response tells them apart).
 * The transfer is complete once the header and exactly the announced bytes (none for a
 * status other than OK) have arrived: the connection is closed then, without waiting for the
 * server to close first (the older servers wait for the client). Returns 0 for a complete
 * response of any status. Otherwise -errno:
 *   -EINVAL        no path was set;
 *   -ECONNREFUSED  nothing listens (the server is not up yet: callers may retry);
 *   -ENOENT        the server name does not resolve; other connect errors as they come;
 *   -ETIMEDOUT     the connect, a send, or a wait for the next bytes took longer than the
 *                  timeouts;
 *   -EPROTO        the response broke the protocol: a malformed header, or bytes beyond the
 *                  announced length (content of a non-OK status, or more than <length>)
 *                  that arrived with the last content bytes or were already waiting on the
 *                  socket when they were read (later ones are not waited for);
 *                  the status becomes GF_INVALID and gfc_get_error says what was wrong;
 *   -ECONNRESET    the connection ended (closed or reset) before a complete header, or before
 *                  all announced bytes: a short transfer, never a success (the status stays
 *                  as parsed, gfc_get_bytesreceived tells how far it got);
 *   -EPIPE         the server went away while the request was being sent;
 *   a callback's own error, as it returned it.
 * A request can be performed again (a new connection each time). */
int gfc_perform(struct gfcrequest *r);

/* After gfc_perform: the status (GF_INVALID when none was parsed), the announced length (0
 * unless OK) and the content bytes delivered to the write function (never more than the
 * announced length). */
enum gf_status gfc_get_status(const struct gfcrequest *r);
uint64_t gfc_get_filelen(const struct gfcrequest *r);
uint64_t gfc_get_bytesreceived(const struct gfcrequest *r);
/* The framing of the last response header (GF_FRAMING_DOCUMENTED when none was parsed). */
enum gf_framing gfc_get_framing(const struct gfcrequest *r);
/* After gfc_perform returned -EPROTO: what was wrong, as a static string, e.g.
 * "the length has a leading zero" or "bytes beyond the announced length"; NULL otherwise. */
const char *gfc_get_error(const struct gfcrequest *r);

#endif
