/* handle_with_curl.c - origin mode: one GET per request, streamed through a reused CURL handle. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include "handle_with_curl.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "gf_proto.h"
#include "log.h"

#define SPOOL_BUF_SIZE (64u << 10)  /* bytes read back from the spool per gfs_send */
#define CURL_BUF_SIZE  (256L << 10) /* libcurl's receive buffer (its default is 16 KiB) */
#define SEND_BUF_SIZE  (256u << 10) /* body bytes gathered per gfs_send (libcurl hands 16 KiB) */
#define SEND_FLUSH_MS  20           /* gathered bytes wait at most about this long */
#define DRAIN_MAX      (64u << 10)  /* error bodies longer than this are cut, not drained */
#define DOT_DECODE_MAX 8            /* percent-decoding passes in the dot-segment check */
#define SPOOL_NAME_MAX 4096
#define VALIDATOR_MAX  128 /* longest ETag or Last-Modified value passed on */

enum fetch_mode {
    FETCH_UNDECIDED, /* no body byte and no end of transfer yet: nothing sent */
    FETCH_STREAM,    /* 200 with Content-Length: OK header sent, bytes forwarded */
    FETCH_SPOOL,     /* 200 without Content-Length: body goes to the spool file */
    FETCH_DISCARD,   /* any other status: its GETFILE status was sent, the body is drained */
};

/* The request in progress; reset by handle_with_curl. */
struct fetch {
    struct origin_fetcher *f;
    struct gfs_ctx *ctx;
    CURL *curl;
    enum fetch_mode mode;
    long http_status;
    uint64_t length;    /* FETCH_STREAM: the announced length */
    uint64_t received;  /* body bytes libcurl delivered */
    size_t pending;     /* FETCH_STREAM: body bytes gathered in f->sbuf, not yet sent; the last
                         * content byte is always among them until the transfer is known good */
    int64_t flushed_ms; /* when pending bytes were last sent */
    int spool_fd;       /* -1 until the first spooled byte */
    int err;      /* -errno of our own abort (client gone, spool full, cancelled, bad length) */
    int excess;   /* libcurl found bytes past Content-Length */
    int cl_count; /* Content-Length headers in the current response's header block */
    uint64_t cl_value;           /* the first one's value */
    const char *cl_bad;          /* why those headers cannot be trusted, or NULL */
    char etag[VALIDATOR_MAX];    /* the current response's ETag, or "" */
    char lastmod[VALIDATOR_MAX]; /* its Last-Modified, or "" */
};

struct origin_fetcher {
    CURL *curl;
    char base[ORIGIN_BASE_MAX];
    size_t base_len;
    int plain_http; /* http:// (not TLS): a kept connection's socket can be peeked at */
    long connect_timeout_ms, low_speed_limit, low_speed_time_s;
    char *url; /* base + encoded path, url_cap bytes */
    size_t url_cap;
    char *spool_dir;
    uint64_t spool_max;
    unsigned char *buf;  /* SPOOL_BUF_SIZE bytes */
    unsigned char *sbuf; /* SEND_BUF_SIZE bytes: the body gathered for the client */
    char errbuf[CURL_ERROR_SIZE];
    struct fetch x;
    uint64_t requests, connects;
};

/* ---- URLs -------------------------------------------------------------------------------- */

ssize_t origin_base_parse(const char *url, char *out, size_t cap, const char **why)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *part = NULL, *norm = NULL;
    ssize_t rc = -EINVAL;

    *why = "out of memory";
    if (u == NULL)
        return -ENOMEM;
    *why = "not a valid URL";
    if (url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    *why = "the URL needs an http:// or https:// scheme";
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        goto out;
    *why = "the URL has no host";
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        goto out;
    *why = "the URL must not have a query (?...)";
    if (curl_url_get(u, CURLUPART_QUERY, &part, 0) != CURLUE_NO_QUERY)
        goto out;
    *why = "the URL must not have a fragment (#...)";
    curl_free(part);
    part = NULL;
    if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) != CURLUE_NO_FRAGMENT)
        goto out;
    *why = "not a valid URL";
    if (curl_url_get(u, CURLUPART_URL, &norm, 0) != CURLUE_OK)
        goto out;
    size_t len = strlen(norm);
    if (len > 0 && norm[len - 1] == '/')
        len--;
    *why = "the URL is too long";
    if (len + 1 > cap || len + 1 > ORIGIN_BASE_MAX) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    memcpy(out, norm, len);
    out[len] = '\0';
    *why = NULL;
    rc = (ssize_t)len;
out:
    curl_free(norm);
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Non-zero when buf[0..len), split at '/' and '\\', has a "." or ".." piece. */
static int has_dot_piece(const char *buf, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || buf[i] == '/' || buf[i] == '\\') {
            size_t n = i - start;
            if ((n == 1 && buf[start] == '.') ||
                (n == 2 && buf[start] == '.' && buf[start + 1] == '.'))
                return 1;
            start = i + 1;
        }
    }
    return 0;
}

/* Non-zero when seg[0..len) is, or percent-decodes to, something with a "." or ".." piece:
 * decoding is repeated because an origin (or something in front of it) may decode more than
 * once, and an encoded '/' or '\\' may split the segment there. */
static int segment_is_dot(const char *seg, size_t len)
{
    char buf[GF_PATH_MAX];

    if (len > sizeof buf)
        return 1; /* cannot happen for a valid GETFILE path; refuse rather than guess */
    memcpy(buf, seg, len);
    for (int pass = 0;; pass++) {
        if (has_dot_piece(buf, len))
            return 1;
        size_t o = 0;
        int changed = 0;
        for (size_t i = 0; i < len; i++) {
            int hi, lo;
            if (buf[i] == '%' && i + 2 < len && (hi = hex_value((unsigned char)buf[i + 1])) >= 0 &&
                (lo = hex_value((unsigned char)buf[i + 2])) >= 0) {
                buf[o++] = (char)(hi * 16 + lo);
                i += 2;
                changed = 1;
            } else {
                buf[o++] = buf[i];
            }
        }
        len = o;
        if (!changed)
            return 0;
        if (pass + 1 == DOT_DECODE_MAX)
            return 1; /* still encoded after DOT_DECODE_MAX passes: refuse */
    }
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

ssize_t origin_url_build(char *out, size_t cap, const char *base, size_t base_len, const char *path,
                         size_t path_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, seg = 0;

    if (path_len == 0 || path[0] != '/')
        return -ENOENT;
    for (size_t i = 0; i <= path_len; i++) {
        if (i == path_len || path[i] == '/' || path[i] == '\\') {
            if (segment_is_dot(path + seg, i - seg))
                return -ENOENT;
            seg = i + 1;
        }
    }
    if (base_len >= cap)
        return -ENOSPC;
    memcpy(out, base, base_len);
    o = base_len;
    for (size_t i = 0; i < path_len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '/' || is_unreserved(c)) {
            if (cap - o < 2)
                return -ENOSPC;
            out[o++] = (char)c;
        } else {
            if (cap - o < 4)
                return -ENOSPC;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return (ssize_t)o;
}

/* ---- the fetcher ------------------------------------------------------------------------- */

/* Parses a Content-Length value (optional blanks, digits, optional blanks and line end).
 * Returns NULL and the value, or what is wrong with it. */
static const char *parse_content_length(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *digits;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    for (digits = p; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return "a Content-Length over 64 bits";
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p == digits)
        return "a Content-Length that is not a number";
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p != end)
        return "a Content-Length that is not a number";
    *out = v;
    return NULL;
}

/* Keeps the value of a validator header (data[0..n), after its name) in out, or "" when it is
 * too long or holds a control character: it is passed on to HTTP clients as it is. */
static void keep_validator(char out[VALIDATOR_MAX], const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    out[0] = '\0';
    if ((size_t)(end - p) >= VALIDATOR_MAX)
        return;
    for (const char *q = p; q < end; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
}

/* libcurl takes a Content-Length over 64 bits for "no length" and reads to the end of the
 * connection, and keeps one of two conflicting values: either way a cut body could be served
 * as complete. Such headers abort the transfer here (ERROR, or a short transfer). */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    static const char name[] = "content-length:";
    static const char etag[] = "etag:", lastmod[] = "last-modified:";
    struct fetch *x = arg;
    size_t n = size * nmemb;
    uint64_t v = 0;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        x->cl_count = 0; /* a new response's header block (after a 1xx) */
        x->etag[0] = x->lastmod[0] = '\0';
        return n;
    }
    if (n >= sizeof etag - 1 && strncasecmp(data, etag, sizeof etag - 1) == 0) {
        keep_validator(x->etag, data + sizeof etag - 1, data + n);
        return n;
    }
    if (n >= sizeof lastmod - 1 && strncasecmp(data, lastmod, sizeof lastmod - 1) == 0) {
        keep_validator(x->lastmod, data + sizeof lastmod - 1, data + n);
        return n;
    }
    if (n < sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
        return n;
    x->cl_bad = parse_content_length(data + sizeof name - 1, data + n, &v);
    if (x->cl_bad == NULL && x->cl_count > 0 && v != x->cl_value)
        x->cl_bad = "two different Content-Length headers";
    if (x->cl_bad != NULL) {
        x->err = -EBADMSG;
        return 0; /* aborts the transfer; the connection is not reused */
    }
    if (x->cl_count++ == 0)
        x->cl_value = v;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg);
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow);
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *arg);
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg);

/* A new easy handle with every per-fetcher option set. These stay on the handle across
 * requests (only the URL changes), so no curl_easy_reset is needed and the handle's connection
 * cache, keep-alive, survives. Returns NULL when out of memory. */
static CURL *handle_new(struct origin_fetcher *f)
{
    CURL *h = curl_easy_init();
    CURLcode c = CURLE_OK;

    if (h == NULL)
        return NULL;
    c |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    c |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    c |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    c |= curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    c |= curl_easy_setopt(h, CURLOPT_USERAGENT, "getfile-webproxy");
    c |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, f->connect_timeout_ms);
    c |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, f->low_speed_limit);
    c |= curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, f->low_speed_time_s);
    c |= curl_easy_setopt(h, CURLOPT_BUFFERSIZE, CURL_BUF_SIZE);
    c |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, f->errbuf);
    c |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    c |= curl_easy_setopt(h, CURLOPT_WRITEDATA, &f->x);
    c |= curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    c |= curl_easy_setopt(h, CURLOPT_HEADERDATA, &f->x);
    c |= curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    c |= curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    c |= curl_easy_setopt(h, CURLOPT_XFERINFODATA, &f->x);
    /* libcurl reports bytes past Content-Length only as an info line; see on_debug. */
    c |= curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    c |= curl_easy_setopt(h, CURLOPT_DEBUGDATA, &f->x);
    c |= curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
    if (c != CURLE_OK) {
        curl_easy_cleanup(h);
        return NULL;
    }
    return h;
}

/* Replaces the handle, closing every connection it kept. Returns 0 or -ENOMEM (the old
 * handle is then kept). */
static int handle_renew(struct origin_fetcher *f)
{
    CURL *h = handle_new(f);

    if (h == NULL)
        return -ENOMEM;
    curl_easy_cleanup(f->curl);
    f->curl = h;
    return 0;
}

int origin_fetcher_new(struct origin_fetcher **out, const struct origin_options *opt)
{
    struct origin_fetcher *f;
    const char *why, *dir;
    ssize_t n;

    f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOMEM;
    n = origin_base_parse(opt->base_url, f->base, sizeof f->base, &why);
    if (n < 0) {
        free(f);
        return n == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    f->base_len = (size_t)n;
    f->plain_http = strncmp(f->base, "http:", 5) == 0;
    f->connect_timeout_ms =
        opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : ORIGIN_CONNECT_TIMEOUT_MS;
    f->low_speed_limit = opt->low_speed_limit > 0 ? opt->low_speed_limit : ORIGIN_LOW_SPEED_LIMIT;
    f->low_speed_time_s =
        opt->low_speed_time_s > 0 ? opt->low_speed_time_s : ORIGIN_LOW_SPEED_TIME_S;
    f->url_cap = f->base_len + 3 * GF_PATH_MAX + 1;
    f->url = malloc(f->url_cap);
    f->buf = malloc(SPOOL_BUF_SIZE);
    f->sbuf = malloc(SEND_BUF_SIZE);
    dir = opt->spool_dir;
    if (dir == NULL)
        dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    f->spool_dir = strdup(dir);
    f->spool_max = opt->spool_max ? opt->spool_max : ORIGIN_SPOOL_MAX;
    if (f->url == NULL || f->buf == NULL || f->sbuf == NULL || f->spool_dir == NULL)
        goto err_free;
    f->curl = handle_new(f);
    if (f->curl == NULL)
        goto err_free;
    *out = f;
    return 0;

err_free:
    origin_fetcher_free(f);
    return -ENOMEM;
}

void origin_fetcher_free(struct origin_fetcher *f)
{
    if (f == NULL)
        return;
    if (f->curl != NULL)
        curl_easy_cleanup(f->curl);
    free(f->spool_dir);
    free(f->buf);
    free(f->sbuf);
    free(f->url);
    free(f);
}

void origin_fetcher_stats(const struct origin_fetcher *f, uint64_t *requests, uint64_t *connects)
{
    *requests = f->requests;
    *connects = f->connects;
}

/* ---- one transfer ------------------------------------------------------------------------ */

/* Chooses the answer once the final response's status is known (first body callback, or the
 * end of a transfer without body). Sends the GETFILE header unless the body must be spooled. */
static int fetch_decide(struct fetch *x)
{
    long code = 0;
    curl_off_t cl = -1;
    int rc;

    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    x->http_status = code;
    if (code == 200 || code == 203) {
        gfs_ctx_set_validators(x->ctx, x->etag[0] ? x->etag : NULL,
                               x->lastmod[0] ? x->lastmod : NULL);
        curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0) {
            x->mode = FETCH_SPOOL;
            return 0;
        }
        x->mode = FETCH_STREAM;
        x->length = (uint64_t)cl;
        rc = gfs_send_header(x->ctx, GF_OK, x->length);
    } else {
        /* Redirects are not followed: 3xx, like 4xx, says "no file at this URL". */
        x->mode = FETCH_DISCARD;
        rc = gfs_send_header(x->ctx, code >= 300 && code < 500 ? GF_FILE_NOT_FOUND : GF_ERROR, 0);
    }
    if (rc < 0)
        x->err = rc;
    return rc;
}

static int spool_open(struct fetch *x, const char *dir)
{
    char name[SPOOL_NAME_MAX];
    int fd, n;

    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        goto out;
    /* The file system has no O_TMPFILE: a named file, unlinked at once. */
    n = snprintf(name, sizeof name, "%s/webproxy-spool-XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof name) {
        errno = ENAMETOOLONG;
        goto out;
    }
    fd = mkostemp(name, O_CLOEXEC);
    if (fd >= 0)
        unlink(name);
out:
    if (fd < 0)
        return -errno;
    x->spool_fd = fd;
    return 0;
}

static int write_full(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends the gathered body bytes but keep_last (0 or 1) to the client; kept bytes move to the
 * front. Returns 0 or gfs_send's -errno. */
static int send_pending(struct fetch *x, size_t keep_last)
{
    unsigned char *sbuf = x->f->sbuf;
    size_t n = x->pending - keep_last;
    int rc = 0;

    if (n > 0)
        rc = gfs_send(x->ctx, sbuf, n);
    if (keep_last)
        sbuf[0] = sbuf[x->pending - 1];
    x->pending = keep_last;
    x->flushed_ms = clock_mono_ms();
    return rc;
}

/* Adds n body bytes (the announced length not exceeded) to the gathered ones, sending a full
 * buffer as long as the content's last byte is not in it. */
static int stream_body(struct fetch *x, const char *data, size_t n)
{
    unsigned char *sbuf = x->f->sbuf;
    int rc = 0;

    while (n > 0 && rc == 0) {
        size_t take = SEND_BUF_SIZE - x->pending;
        if (take > n)
            take = n;
        memcpy(sbuf + x->pending, data, take);
        x->pending += take;
        data += take;
        n -= take;
        if (x->pending == SEND_BUF_SIZE)
            rc = send_pending(x, n == 0 && x->received == x->length ? 1 : 0);
    }
    return rc;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct fetch *x = arg;
    struct origin_fetcher *f = x->f;
    size_t n = size * nmemb;
    int rc = 0;

    if (x->mode == FETCH_UNDECIDED && fetch_decide(x) < 0)
        return CURL_WRITEFUNC_ERROR;
    switch (x->mode) {
    case FETCH_STREAM:
        if (n > x->length - x->received) {
            rc = -EBADMSG; /* libcurl stops at Content-Length; never pass more on */
            break;
        }
        x->received += n;
        /* Gathered into SEND_BUF_SIZE sends; the last byte stays until the transfer is known
         * good, so the client never sees a complete file that was not. */
        rc = stream_body(x, data, n);
        break;
    case FETCH_SPOOL:
        if (n > f->spool_max - x->received) {
            rc = -EFBIG;
            break;
        }
        if (x->spool_fd < 0 && n > 0)
            rc = spool_open(x, f->spool_dir);
        if (rc == 0)
            rc = write_full(x->spool_fd, data, n);
        x->received += n;
        break;
    case FETCH_DISCARD:
        x->received += n;
        if (x->received > DRAIN_MAX)
            return CURL_WRITEFUNC_ERROR; /* answered already; just drop the connection */
        break;
    case FETCH_UNDECIDED:
        break;
    }
    if (rc < 0) {
        x->err = rc;
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct fetch *x = arg;
    int rc;

    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (gfs_ctx_cancelled(x->ctx)) {
        x->err = -ECANCELED;
        return 1;
    }
    /* A slow origin: what was gathered goes on after SEND_FLUSH_MS, bar the last byte. */
    if (x->mode == FETCH_STREAM && x->pending > (x->received == x->length ? 1u : 0u) &&
        clock_mono_ms() - x->flushed_ms >= SEND_FLUSH_MS) {
        rc = send_pending(x, x->received == x->length ? 1 : 0);
        if (rc < 0) {
            x->err = rc;
            return 1;
        }
    }
    return 0;
}

/* libcurl passes on at most Content-Length body bytes; when more came in the read that held
 * the response header it only says "Excess found ..." and closes the connection: this is how
 * we learn of it (later surplus stays in the socket: kept_connection_has_data). */
static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size, void *arg)
{
    static const char excess[] = "Excess found";
    struct fetch *x = arg;

    (void)curl;
    if (type == CURLINFO_TEXT && size >= sizeof excess - 1 &&
        memcmp(data, excess, sizeof excess - 1) == 0)
        x->excess = 1;
    return 0;
}

/* Non-zero when bytes wait on the connection libcurl kept from the last transfer. Nothing may
 * follow a complete response on an idle HTTP/1.1 connection: such bytes are surplus body (the
 * origin sent more than its Content-Length), and libcurl 7.x would read them as the next
 * response. Plain HTTP only: on TLS the socket carries records of its own. */
static int kept_connection_has_data(struct origin_fetcher *f)
{
    curl_socket_t s = CURL_SOCKET_BAD;
    char c;

    if (!f->plain_http || curl_easy_getinfo(f->curl, CURLINFO_ACTIVESOCKET, &s) != CURLE_OK ||
        s == CURL_SOCKET_BAD)
        return 0;
    return recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static int curl_errno(CURLcode res)
{
    switch (res) {
    case CURLE_COULDNT_CONNECT:
        return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return -ECONNRESET;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int spool_send(struct origin_fetcher *f)
{
    struct fetch *x = &f->x;
    uint64_t off = 0;
    int rc;

    rc = gfs_send_header(x->ctx, GF_OK, x->received);
    while (rc == 0 && off < x->received) {
        size_t want =
            x->received - off < SPOOL_BUF_SIZE ? (size_t)(x->received - off) : SPOOL_BUF_SIZE;
        ssize_t n = pread(x->spool_fd, f->buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        rc = gfs_send(x->ctx, f->buf, (size_t)n);
        off += (uint64_t)n;
    }
    return rc;
}

/* Turns the end of a transfer into the return value (and the last bytes) of the handler. */
static int fetch_finish(struct origin_fetcher *f, CURLcode res)
{
    struct fetch *x = &f->x;
    int rc;

    if (x->err == -EFBIG) {
        log_warn(0, "GET '%s': body without Content-Length over the spool limit (%llu bytes)",
                 f->url, (unsigned long long)f->spool_max);
        return x->err;
    }
    if (x->cl_bad != NULL) {
        log_warn(0, "GET '%s': refused: the origin sent %s", f->url, x->cl_bad);
        return x->err;
    }
    if (x->err < 0) {
        log_warn(-x->err, "GET '%s' stopped", f->url);
        return x->err;
    }
    if (res != CURLE_OK) {
        if (x->mode == FETCH_DISCARD)
            return 0; /* its status went out already; the rest of an error body is no loss */
        log_warn(0, "GET '%s' failed: %s", f->url,
                 f->errbuf[0] ? f->errbuf : curl_easy_strerror(res));
        return curl_errno(res);
    }
    /* Checked before an empty body's header goes out: it would be the whole response. */
    if (x->excess || kept_connection_has_data(f)) {
        log_warn(0, "GET '%s': the origin sent more than Content-Length", f->url);
        handle_renew(f); /* if it fails, the check before the next request tries again */
        if (x->mode != FETCH_DISCARD)
            return -EBADMSG;
    }
    if (x->mode == FETCH_UNDECIDED && (rc = fetch_decide(x)) < 0)
        return rc;
    switch (x->mode) {
    case FETCH_STREAM:
        if (x->received != x->length) {
            log_warn(0, "GET '%s': %llu body bytes, Content-Length %llu", f->url,
                     (unsigned long long)x->received, (unsigned long long)x->length);
            return -EBADMSG;
        }
        return send_pending(x, 0);
    case FETCH_SPOOL:
        return spool_send(f);
    case FETCH_DISCARD:
    case FETCH_UNDECIDED:
        break;
    }
    log_debug("GET '%s': HTTP %ld", f->url, x->http_status);
    return 0;
}

int handle_with_curl(struct gfs_ctx *ctx, const char *path, size_t path_len,
                     struct origin_fetcher *f)
{
    ssize_t n;
    long nconn = 0;
    int rc;

    f->requests++;
    n = origin_url_build(f->url, f->url_cap, f->base, f->base_len, path, path_len);
    if (n == -ENOENT) {
        log_debug("refused '%s': dot segment", path);
        return gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
    }
    if (n < 0)
        return (int)n;
    memset(&f->x, 0, sizeof f->x);
    f->x.f = f;
    f->x.ctx = ctx;
    f->x.spool_fd = -1;
    f->x.flushed_ms = clock_mono_ms();
    f->errbuf[0] = '\0';
    /* Surplus that arrived after the last response ended: never let it be read as this one. */
    if (kept_connection_has_data(f)) {
        log_warn(0, "data after the last response on the origin connection: reconnecting");
        rc = handle_renew(f);
        if (rc < 0)
            return rc;
    }
    f->x.curl = f->curl;
    if (curl_easy_setopt(f->curl, CURLOPT_URL, f->url) != CURLE_OK)
        return -ENOMEM;
    CURLcode res = curl_easy_perform(f->curl);
    if (curl_easy_getinfo(f->curl, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
        f->connects += (uint64_t)nconn;
    rc = fetch_finish(f, res);
    if (f->x.spool_fd >= 0)
        close(f->x.spool_fd);
    return rc;
}
