/* gfclient.c - GETFILE client library: connect, send one request, stream the response. */
/* SPDX-License-Identifier: MIT */
#include "gfclient.h"
#include "clock.h"
#include "netio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GFC_DEFAULT_SERVER "localhost"
#define GFC_DEFAULT_PORT   10823

struct gfcrequest {
    char *server; /* owned */
    uint16_t port;
    char *path; /* owned; NULL until gfc_set_path */
    size_t path_len;
    gfc_header_fn header_fn;
    void *header_arg;
    gfc_write_fn write_fn;
    void *write_arg;
    int connect_ms, idle_ms; /* negative: no limit */
    /* Results of the last gfc_perform. */
    enum gf_status status;
    enum gf_framing framing;
    uint64_t filelen, received;
    const char *error;      /* static: what broke the protocol, or NULL */
    char buf[GFC_BUF_SIZE]; /* the response header, then content */
};

struct gfcrequest *gfc_create(void)
{
    struct gfcrequest *r = malloc(sizeof *r);

    if (r == NULL)
        return NULL;
    r->server = strdup(GFC_DEFAULT_SERVER);
    if (r->server == NULL) {
        free(r);
        return NULL;
    }
    r->port = GFC_DEFAULT_PORT;
    r->path = NULL;
    r->path_len = 0;
    r->header_fn = NULL;
    r->header_arg = NULL;
    r->write_fn = NULL;
    r->write_arg = NULL;
    r->connect_ms = GFC_DEFAULT_TIMEOUT_MS;
    r->idle_ms = GFC_DEFAULT_TIMEOUT_MS;
    r->status = GF_INVALID;
    r->framing = GF_FRAMING_DOCUMENTED;
    r->filelen = 0;
    r->received = 0;
    r->error = NULL;
    return r;
}

void gfc_cleanup(struct gfcrequest *r)
{
    if (r == NULL)
        return;
    free(r->server);
    free(r->path);
    free(r);
}

int gfc_set_server(struct gfcrequest *r, const char *server)
{
    char *s;

    if (server == NULL || *server == '\0')
        return -EINVAL;
    s = strdup(server);
    if (s == NULL)
        return -ENOMEM;
    free(r->server);
    r->server = s;
    return 0;
}

int gfc_set_port(struct gfcrequest *r, uint16_t port)
{
    if (port == 0)
        return -EINVAL;
    r->port = port;
    return 0;
}

int gfc_set_path(struct gfcrequest *r, const char *path)
{
    size_t len;
    char *p;

    if (path == NULL)
        return -EINVAL;
    len = strlen(path);
    if (!gf_path_valid(path, len))
        return -EINVAL;
    p = malloc(len + 1);
    if (p == NULL)
        return -ENOMEM;
    memcpy(p, path, len + 1);
    free(r->path);
    r->path = p;
    r->path_len = len;
    return 0;
}

void gfc_set_headerfunc(struct gfcrequest *r, gfc_header_fn fn, void *arg)
{
    r->header_fn = fn;
    r->header_arg = arg;
}

void gfc_set_writefunc(struct gfcrequest *r, gfc_write_fn fn, void *arg)
{
    r->write_fn = fn;
    r->write_arg = arg;
}

void gfc_set_timeouts(struct gfcrequest *r, int connect_ms, int idle_ms)
{
    r->connect_ms = connect_ms;
    r->idle_ms = idle_ms;
}

enum gf_status gfc_get_status(const struct gfcrequest *r)
{
    return r->status;
}

uint64_t gfc_get_filelen(const struct gfcrequest *r)
{
    return r->filelen;
}

uint64_t gfc_get_bytesreceived(const struct gfcrequest *r)
{
    return r->received;
}

enum gf_framing gfc_get_framing(const struct gfcrequest *r)
{
    return r->framing;
}

const char *gfc_get_error(const struct gfcrequest *r)
{
    return r->error;
}

/* -EPROTO, remembering why. */
static int proto_error(struct gfcrequest *r, const char *why)
{
    r->error = why;
    return -EPROTO;
}

/* Reads what the server sent next, waiting at most idle_ms from now. */
static ssize_t read_next(struct gfcrequest *r, int fd)
{
    int64_t deadline = r->idle_ms < 0 ? -1 : clock_mono_ms() + r->idle_ms;

    return netio_read_some(fd, r->buf, sizeof r->buf, deadline);
}

static int deliver(struct gfcrequest *r, size_t len)
{
    int rc = 0;

    if (len > 0 && r->write_fn)
        rc = r->write_fn(r->buf, len, r->write_arg);
    r->received += len;
    return rc;
}

/* Reads until a complete header is parsed; leaves it in r->status / r->filelen, and any
 * content that came with it at the front of r->buf. Stores that content's length in *extra. */
static int read_header(struct gfcrequest *r, int fd, size_t *extra)
{
    int64_t deadline;
    struct gf_response hdr;
    const char *why = NULL;
    size_t have = 0;
    ssize_t n, hlen;

    for (;;) {
        /* The header is at most GF_RESPONSE_MAX bytes, and the parser says so before have
         * reaches that; reading up to the whole buffer also takes in the first content. */
        deadline = r->idle_ms < 0 ? -1 : clock_mono_ms() + r->idle_ms;
        n = netio_read_some(fd, r->buf + have, sizeof r->buf - have, deadline);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ECONNRESET;
        have += (size_t)n;
        hlen = gf_parse_response(r->buf, have, &hdr, &why);
        if (hlen < 0)
            return proto_error(r, why);
        if (hlen > 0)
            break;
        if (have >= GF_RESPONSE_MAX) /* the parser's job, but never trust it with a loop */
            return proto_error(r, "header too long");
    }
    r->status = hdr.status;
    r->framing = hdr.framing;
    r->filelen = hdr.status == GF_OK ? hdr.length : 0;
    *extra = have - (size_t)hlen;
    memmove(r->buf, r->buf + hlen, *extra);
    return 0;
}

/* Bytes beyond the announced length: one request per connection, so nothing may follow. */
static int surplus(struct gfcrequest *r)
{
    return proto_error(r, r->status == GF_OK ? "bytes beyond the announced length"
                                             : "content after a status that has none");
}

/* Streams the content after the header; have bytes of it are already at the front of buf.
 * The transfer is complete at the announced length: we do not wait for the server's close
 * (the older servers wait for ours), only look whether more bytes are already here. */
static int read_content(struct gfcrequest *r, int fd, size_t have)
{
    ssize_t n;
    int rc;

    for (;;) {
        uint64_t left = r->filelen - r->received;
        if ((uint64_t)have > left) {
            rc = deliver(r, (size_t)left);
            return rc < 0 ? rc : surplus(r);
        }
        rc = deliver(r, have);
        if (rc < 0)
            return rc;
        if (r->received == r->filelen)
            break;
        n = read_next(r, fd);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ECONNRESET;
        have = (size_t)n;
    }
    do {
        n = recv(fd, r->buf, 1, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n > 0 ? surplus(r) : 0; /* else the close, nothing yet (EAGAIN), or a reset */
}

int gfc_perform(struct gfcrequest *r)
{
    char req[GF_REQUEST_MAX];
    size_t extra = 0;
    ssize_t reqlen;
    int fd, rc;

    r->status = GF_INVALID;
    r->framing = GF_FRAMING_DOCUMENTED;
    r->filelen = 0;
    r->received = 0;
    r->error = NULL;
    if (r->path == NULL)
        return -EINVAL;
    reqlen = gf_format_request(req, sizeof req, r->path, r->path_len);
    if (reqlen < 0)
        return (int)reqlen;
    rc = netio_connect_tcp(r->server, r->port, r->connect_ms, &fd);
    if (rc < 0)
        return rc;
    rc = netio_write_all(fd, req, (size_t)reqlen, r->idle_ms);
    if (rc < 0)
        goto out;
    rc = read_header(r, fd, &extra);
    if (rc < 0)
        goto out;
    if (r->header_fn) {
        rc = r->header_fn(
            &(struct gf_response){.status = r->status, .length = r->filelen, .framing = r->framing},
            r->header_arg);
        if (rc < 0)
            goto out;
    }
    rc = read_content(r, fd, extra);
out:
    if (rc == -EPROTO)
        r->status = GF_INVALID;
    close(fd);
    return rc;
}
