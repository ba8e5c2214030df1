/* origin_fetch.c - one GET per request (retried with backoff while nothing was answered), streamed
 * into a sink through a reused CURL handle. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* O_TMPFILE, mkostemp */
#include "origin_fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "gf_proto.h"
#include "hexdigit.h"
#include "log.h"

#define SPOOL_BUF_SIZE (64u << 10)  /* bytes read back from the spool per sink write */
#define CURL_BUF_SIZE  (256L << 10) /* libcurl's receive buffer (its default is 16 KiB) */
#define SEND_BUF_SIZE  (256u << 10) /* body bytes gathered per sink write (libcurl hands 16 KiB) */
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
    FETCH_RETRY,     /* a 5xx that will be retried: nothing sent, the body is drained */
};

/* The attempt in progress; reset by fetch_once. */
struct fetch {
    struct origin_fetcher *f;
    const struct origin_sink *sink;
    int may_retry;   /* this attempt may be retried if it fails before anything is answered */
    int conditional; /* the request carried If-None-Match or If-Modified-Since */
    int header_sent; /* the sink has had its header: no retry from here on */
    int retry;       /* this attempt failed before anything was answered; try again */
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
    uint64_t cl_value;  /* the first one's value */
    const char *cl_bad; /* why those headers cannot be trusted, or NULL */
    /* Freshness headers of the current response's header block: */
    int no_store;                /* Cache-Control no-store, private or no-cache */
    int64_t max_age, smax;       /* Cache-Control max-age, s-maxage; -1: not given */
    int64_t expires, date;       /* Expires, Date (Unix seconds); -2: not given, -1: invalid */
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
    struct origin_retry retry;
    uint64_t rng; /* xorshift state for the backoff jitter */
    uint64_t requests, connects, retries;
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

/* libcurl takes a Content-Length over 64 bits for "no length" and reads to the end of the
 * connection, and keeps one of two conflicting values: either way a cut body could be served
 * as complete. Such headers abort the transfer here (ERROR, or a short transfer). */
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

static void meta_reset(struct fetch *x)
{
    x->etag[0] = x->lastmod[0] = '\0';
    x->no_store = 0;
    x->max_age = x->smax = -1;
    x->expires = x->date = -2;
}

/* A delta-seconds value (digits only); -1 when it is not one. */
static int64_t delta_seconds(const char *p, const char *end)
{
    int64_t v = 0;

    if (p == end)
        return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v < INT32_MAX)
            v = v * 10 + (*p - '0');
    }
    return v > INT32_MAX ? INT32_MAX : v;
}

/* Cache-Control: the directives a shared cache obeys. no-cache (we do not revalidate yet) and
 * private count as no-store; s-maxage wins over max-age. */
static void parse_cache_control(struct fetch *x, const char *p, const char *end)
{
    while (p < end) {
        const char *tok, *tend, *eq;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        tok = p;
        while (p < end && *p != ',' && *p != '\r' && *p != '\n')
            p++;
        tend = p;
        while (tend > tok && (tend[-1] == ' ' || tend[-1] == '\t'))
            tend--;
        eq = memchr(tok, '=', (size_t)(tend - tok));
        size_t nlen = (size_t)((eq ? eq : tend) - tok);
        if ((nlen == 8 && strncasecmp(tok, "no-store", 8) == 0) ||
            (nlen == 7 && strncasecmp(tok, "private", 7) == 0) ||
            (nlen == 8 && strncasecmp(tok, "no-cache", 8) == 0))
            x->no_store = 1;
        else if (eq && nlen == 7 && strncasecmp(tok, "max-age", 7) == 0)
            x->max_age = delta_seconds(eq + 1, tend);
        else if (eq && nlen == 8 && strncasecmp(tok, "s-maxage", 8) == 0)
            x->smax = delta_seconds(eq + 1, tend);
        if (p < end && (*p == '\r' || *p == '\n'))
            break;
    }
}

/* An HTTP date header's value as Unix seconds, -1 when it cannot be parsed. */
static int64_t header_date(const char *p, const char *end)
{
    char buf[128];
    size_t n;

    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    n = (size_t)(end - p);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return (int64_t)curl_getdate(buf, NULL);
}

static int header_is(const char *data, size_t n, const char *name)
{
    size_t len = strlen(name);

    return n >= len && strncasecmp(data, name, len) == 0;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    static const char name[] = "content-length:";
    struct fetch *x = arg;
    size_t n = size * nmemb;
    uint64_t v = 0;

    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        x->cl_count = 0; /* a new response's header block (after a 1xx) */
        meta_reset(x);
        return n;
    }
    if (header_is(data, n, "cache-control:"))
        parse_cache_control(x, data + 14, data + n);
    else if (header_is(data, n, "expires:"))
        x->expires = header_date(data + 8, data + n);
    else if (header_is(data, n, "date:"))
        x->date = header_date(data + 5, data + n);
    else if (header_is(data, n, "etag:"))
        keep_validator(x->etag, data + 5, data + n);
    else if (header_is(data, n, "last-modified:"))
        keep_validator(x->lastmod, data + 14, data + n);
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
    f->retry = opt->retry;
    if (f->retry.base_ms == 0)
        f->retry.base_ms = ORIGIN_RETRY_BASE_MS;
    if (f->retry.budget_ms == 0)
        f->retry.budget_ms = ORIGIN_RETRY_BUDGET_MS;
    if (f->retry.max == ORIGIN_RETRY_DEFAULT)
        f->retry.max = ORIGIN_RETRIES;
    f->rng = (uint64_t)clock_mono_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)f;
    if (f->rng == 0)
        f->rng = 1;
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

void origin_fetcher_stats(const struct origin_fetcher *f, uint64_t *requests, uint64_t *connects,
                          uint64_t *retries)
{
    *requests = f->requests;
    *connects = f->connects;
    if (retries != NULL)
        *retries = f->retries;
}

/* ---- one transfer ------------------------------------------------------------------------ */

static int sink_header(struct fetch *x, enum gf_status st, uint64_t length, int not_modified)
{
    struct origin_meta meta = {.no_store = x->no_store,
                               .not_modified = not_modified,
                               .max_age = -1,
                               .etag = x->etag[0] ? x->etag : NULL,
                               .last_modified = x->lastmod[0] ? x->lastmod : NULL};

    /* s-maxage, else max-age, else Expires - Date (an invalid Expires: already stale). */
    if (x->smax >= 0)
        meta.max_age = x->smax;
    else if (x->max_age >= 0)
        meta.max_age = x->max_age;
    else if (x->expires == -1)
        meta.max_age = 0;
    else if (x->expires >= 0) {
        int64_t base = x->date >= 0 ? x->date : (int64_t)time(NULL);
        meta.max_age = x->expires > base ? x->expires - base : 0;
    }
    x->header_sent = 1;
    return x->sink->header(x->sink->arg, st, length, &meta);
}

static int sink_data(struct fetch *x, const void *buf, size_t n)
{
    return x->sink->data(x->sink->arg, buf, n);
}

static int sink_cancelled(const struct fetch *x)
{
    return x->sink->cancelled != NULL && x->sink->cancelled(x->sink->arg);
}

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
        curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
        if (cl < 0) {
            x->mode = FETCH_SPOOL;
            return 0;
        }
        x->mode = FETCH_STREAM;
        x->length = (uint64_t)cl;
        rc = sink_header(x, GF_OK, x->length, 0);
    } else if (code == 304 && x->conditional) {
        x->mode = FETCH_DISCARD; /* the kept copy is still good: no body */
        rc = sink_header(x, GF_OK, 0, 1);
    } else if (code >= 500 && code < 600 && x->may_retry) {
        x->mode = FETCH_RETRY; /* answered by a later attempt */
        return 0;
    } else {
        /* Redirects are not followed: 3xx, like 4xx, says "no file at this URL". */
        x->mode = FETCH_DISCARD;
        rc = sink_header(x, code >= 300 && code < 500 ? GF_FILE_NOT_FOUND : GF_ERROR, 0, 0);
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
 * front. Returns 0 or the sink's -errno. */
static int send_pending(struct fetch *x, size_t keep_last)
{
    unsigned char *sbuf = x->f->sbuf;
    size_t n = x->pending - keep_last;
    int rc = 0;

    if (n > 0)
        rc = sink_data(x, sbuf, n);
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
    case FETCH_RETRY:
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
    if (sink_cancelled(x)) {
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

    rc = sink_header(x, GF_OK, x->received, 0);
    while (rc == 0 && off < x->received) {
        size_t want =
            x->received - off < SPOOL_BUF_SIZE ? (size_t)(x->received - off) : SPOOL_BUF_SIZE;
        ssize_t n = pread(x->spool_fd, f->buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        rc = sink_data(x, f->buf, (size_t)n);
        off += (uint64_t)n;
    }
    return rc;
}

/* Failures of the transfer itself that a new attempt may cure: no connection, a timeout, a
 * connection reset or closed early. A name that does not resolve, a protocol error or our own
 * abort is not retried. */
static int curl_retryable(CURLcode res)
{
    switch (res) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
        return 1;
    default:
        return 0;
    }
}

/* Turns the end of a transfer into the return value (and the last bytes) of the attempt; sets
 * x->retry when it failed before anything was answered in a way another attempt may cure. */
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
    if (x->mode == FETCH_RETRY) {
        x->retry = 1;
        return -EIO;
    }
    if (res != CURLE_OK) {
        if (x->mode == FETCH_DISCARD)
            return 0; /* its status went out already; the rest of an error body is no loss */
        log_warn(0, "GET '%s' failed: %s", f->url,
                 f->errbuf[0] ? f->errbuf : curl_easy_strerror(res));
        x->retry = x->may_retry && !x->header_sent && curl_retryable(res);
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
    case FETCH_RETRY:
        x->retry = 1;
        return -EIO;
    case FETCH_DISCARD:
    case FETCH_UNDECIDED:
        break;
    }
    log_debug("GET '%s': HTTP %ld", f->url, x->http_status);
    return 0;
}

/* One GET of f->url into sink. */
static int fetch_once(struct origin_fetcher *f, const struct origin_sink *sink, int may_retry,
                      struct curl_slist *cond)
{
    long nconn = 0;
    int rc;

    memset(&f->x, 0, sizeof f->x);
    f->x.f = f;
    f->x.sink = sink;
    f->x.may_retry = may_retry;
    f->x.conditional = cond != NULL;
    f->x.spool_fd = -1;
    f->x.flushed_ms = clock_mono_ms();
    meta_reset(&f->x);
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
    if (curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, cond) != CURLE_OK)
        return -ENOMEM;
    CURLcode res = curl_easy_perform(f->curl);
    curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, NULL);
    if (curl_easy_getinfo(f->curl, CURLINFO_NUM_CONNECTS, &nconn) == CURLE_OK && nconn > 0)
        f->connects += (uint64_t)nconn;
    rc = fetch_finish(f, res);
    if (f->x.spool_fd >= 0)
        close(f->x.spool_fd);
    return rc;
}

/* The pause before retry number n (from 1): half of base * 2^(n-1), plus a random part up to
 * the other half ("equal jitter"), so the gaps grow and clients do not retry in step. */
static int backoff_ms(struct origin_fetcher *f, unsigned n)
{
    uint64_t cap = (uint64_t)f->retry.base_ms << (n - 1 < 20 ? n - 1 : 20);

    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    return (int)(cap / 2 + f->rng % (cap / 2 + 1));
}

/* Sleeps ms in slices, ending early when the sink is cancelled. Returns 0 or -ECANCELED. */
static int backoff_sleep(const struct origin_sink *sink, int ms)
{
    int64_t deadline = clock_mono_ms() + ms;

    for (;;) {
        if (sink->cancelled != NULL && sink->cancelled(sink->arg))
            return -ECANCELED;
        int left = clock_ms_left(deadline);
        if (left == 0)
            return 0;
        clock_sleep_ms(left < 50 ? left : 50);
    }
}

static int fetch_run(struct origin_fetcher *f, const char *path, size_t path_len,
                     struct curl_slist *cond, const struct origin_sink *sink);

/* Appends "name: value" to *list. Returns 0 or -ENOMEM (or -EINVAL for a value with control
 * characters or too long, which is not sent). */
static int cond_add(struct curl_slist **list, const char *name, const char *value)
{
    char line[VALIDATOR_MAX + 32];
    struct curl_slist *n;

    if (value == NULL || value[0] == '\0')
        return 0;
    if (strlen(value) >= VALIDATOR_MAX)
        return -EINVAL;
    for (const char *q = value; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            return -EINVAL;
    snprintf(line, sizeof line, "%s: %s", name, value);
    n = curl_slist_append(*list, line);
    if (n == NULL)
        return -ENOMEM;
    *list = n;
    return 0;
}

int origin_fetch(struct origin_fetcher *f, const char *path, size_t path_len,
                 const struct origin_sink *sink)
{
    return origin_fetch_cond(f, path, path_len, NULL, sink);
}

int origin_fetch_cond(struct origin_fetcher *f, const char *path, size_t path_len,
                      const struct origin_cond *cond, const struct origin_sink *sink)
{
    struct curl_slist *hdrs = NULL;
    int rc;

    if (cond != NULL && (cond_add(&hdrs, "If-None-Match", cond->etag) == -ENOMEM ||
                         cond_add(&hdrs, "If-Modified-Since", cond->last_modified) == -ENOMEM)) {
        curl_slist_free_all(hdrs);
        return -ENOMEM;
    }
    rc = fetch_run(f, path, path_len, hdrs, sink);
    curl_slist_free_all(hdrs);
    return rc;
}

static int fetch_run(struct origin_fetcher *f, const char *path, size_t path_len,
                     struct curl_slist *cond, const struct origin_sink *sink)
{
    int64_t start = clock_mono_ms();
    unsigned attempt = 0;
    ssize_t n;
    int rc;

    f->requests++;
    n = origin_url_build(f->url, f->url_cap, f->base, f->base_len, path, path_len);
    if (n == -ENOENT) {
        log_debug("refused '%s': dot segment", path);
        const struct origin_meta none = {.no_store = 0, .max_age = -1};
        return sink->header(sink->arg, GF_FILE_NOT_FOUND, 0, &none);
    }
    if (n < 0)
        return (int)n;
    for (;;) {
        /* A retry is allowed when one is left and its pause still fits in the time budget. */
        int pause = attempt < f->retry.max ? backoff_ms(f, attempt + 1) : 0;
        int may_retry = attempt < f->retry.max &&
                        clock_mono_ms() + pause - start <= (int64_t)f->retry.budget_ms;

        rc = fetch_once(f, sink, may_retry, cond);
        if (!f->x.retry)
            return rc;
        attempt++;
        f->retries++;
        if (f->x.http_status >= 500)
            log_info("GET '%s': HTTP %ld; retry %u of %u in %d ms", f->url, f->x.http_status,
                     attempt, f->retry.max, pause);
        else
            log_info("GET '%s': no answer; retry %u of %u in %d ms", f->url, attempt, f->retry.max,
                     pause);
        if (backoff_sleep(sink, pause) < 0)
            return -ECANCELED;
    }
}
