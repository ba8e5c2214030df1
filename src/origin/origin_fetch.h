/* origin_fetch.h - the HTTP origin fetch shared by webproxy's origin mode and simplecached's
 * fill: the body of BASE_URL/path, fetched with libcurl and streamed into a sink as it arrives,
 * retried with backoff while nothing was answered (docs/origin.md). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_ORIGIN_FETCH_H
#define GF_ORIGIN_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gf_proto.h"

#define ORIGIN_CONNECT_TIMEOUT_MS 5000           /* default connect timeout */
#define ORIGIN_LOW_SPEED_LIMIT    1L             /* default: bytes/s counted as "stalled" */
#define ORIGIN_LOW_SPEED_TIME_S   30L            /* default: seconds of stall before giving up */
#define ORIGIN_SPOOL_MAX          (256ull << 20) /* default spool limit for unknown lengths */
#define ORIGIN_BASE_MAX           4096           /* bytes of a normalized base URL */
#define ORIGIN_RETRIES            2              /* default: retries after the first attempt */
#define ORIGIN_RETRIES_MAX        10
#define ORIGIN_RETRY_BASE_MS      100 /* default: the first pause is 50..100 ms, then doubles */
#define ORIGIN_RETRY_BUDGET_MS                                                                 \
    10000                          /* default: no retry starts later than this after the first \
                                    */
#define ORIGIN_RETRY_DEFAULT (~0u) /* origin_retry.max: ORIGIN_RETRIES */

/* Retry with backoff: an attempt that fails before anything went to the sink (no connection, a
 * timeout, a reset, a 5xx) is tried again after a pause of half of base_ms * 2^(n-1) plus a
 * random part up to the other half, at most max times, and never when the pause would end more
 * than budget_ms after the first attempt started. Never after the sink had its header, never
 * for 3xx/4xx, never for a name that does not resolve. */
struct origin_retry {
    unsigned max;       /* retries; 0 = none, ORIGIN_RETRY_DEFAULT = ORIGIN_RETRIES */
    unsigned base_ms;   /* 0 = ORIGIN_RETRY_BASE_MS */
    unsigned budget_ms; /* 0 = ORIGIN_RETRY_BUDGET_MS */
};

struct origin_options {
    const char *base_url;   /* -s as given; normalized with origin_base_parse. Copied. */
    int connect_timeout_ms; /* 0 = ORIGIN_CONNECT_TIMEOUT_MS */
    long low_speed_limit;   /* bytes/s; 0 = ORIGIN_LOW_SPEED_LIMIT */
    long low_speed_time_s;  /* a transfer slower than the limit this long fails; 0 = default */
    uint64_t spool_max;     /* longest body of unknown length; 0 = ORIGIN_SPOOL_MAX */
    const char *spool_dir;  /* for bodies of unknown length; NULL = $TMPDIR or /tmp. Copied. */
    struct origin_retry retry;
};

/* What the origin said about keeping its response (the Cache-Control directives a shared cache
 * obeys, and Expires). */
struct origin_meta {
    int no_store;     /* no-store, private or no-cache: keep nothing */
    int64_t max_age;  /* seconds it stays fresh: s-maxage, else max-age, else Expires - Date (an
                       * invalid Expires: 0); -1 when the origin said nothing */
    const char *etag; /* the ETag (no control characters, < 128 bytes), or NULL */
    const char *last_modified; /* the Last-Modified, likewise, or NULL */
    int not_modified; /* a conditional fetch was answered 304: the header is GF_OK with length 0
                       * and no body follows; max_age, etag, last_modified are the 304's */
};

/* Validators of a kept copy, for a conditional GET (origin_fetch_cond); each may be NULL. */
struct origin_cond {
    const char *etag;          /* sent as If-None-Match */
    const char *last_modified; /* sent as If-Modified-Since */
};

/* Where a fetch puts its answer, GETFILE-shaped: header once (status, and the length for
 * GF_OK, and what the origin said about keeping it), then for GF_OK exactly length bytes through
 * data, in order. Each returns 0 or -errno (which stops the fetch). The last content byte is held
 * back until the whole body is known to be right, so a sink that got every byte got a correct body.
 * cancelled (may be NULL) is polled during the transfer and the backoff pauses; non-zero stops the
 * fetch with -ECANCELED. */
struct origin_sink {
    int (*header)(void *arg, enum gf_status st, uint64_t length, const struct origin_meta *meta);
    int (*data)(void *arg, const void *buf, size_t n);
    int (*cancelled)(void *arg);
    void *arg;
};

struct origin_fetcher; /* a reused CURL handle and buffers; one thread at a time (origin_pool.h) */

/* Checks a base URL and writes its normalized form (as libcurl prints it, one trailing '/'
 * removed) into out (cap bytes, NUL-terminated). The URL needs an http or https scheme and a
 * host, and no query or fragment. Returns the length, or -EINVAL with *why set to a static
 * one-line reason (for the usage message), or -ENAMETOOLONG. */
ssize_t origin_base_parse(const char *url, char *out, size_t cap, const char **why);

/* Builds base + path into out (cap bytes, NUL-terminated): bytes other than unreserved
 * characters (ALPHA DIGIT - . _ ~) and '/' are percent-encoded. Returns the length, -ENOENT
 * when a segment of path (split at '/' and '\') is "." or "..", or would be one to an origin
 * that percent-decodes it (up to 8 times, hex case-insensitive, an encoded '/' or '\' splitting
 * it again; a segment still encoded after 8 decodings is refused too), or -ENOSPC.
 * base is a normalized base (origin_base_parse), base_len bytes. */
ssize_t origin_url_build(char *out, size_t cap, const char *base, size_t base_len, const char *path,
                         size_t path_len);

/* Creates a fetcher. curl_global_init must have run (main does it before any thread).
 * Returns 0, -EINVAL (bad base URL) or -ENOMEM. */
int origin_fetcher_new(struct origin_fetcher **out, const struct origin_options *opt);

/* Cleans up the CURL handle (closing kept-alive connections) and frees. NULL is a no-op. */
void origin_fetcher_free(struct origin_fetcher *f);

/* Fetches path into sink with one GET, retried as origin_retry says; call from one thread at
 * a time per fetcher. Answers (and returns 0): OK + the body for 200/203 with a body of the
 * right length (a body without Content-Length is spooled to a file first, up to spool_max, and
 * then announced with its length); FILE_NOT_FOUND for 3xx/4xx and for a path with a dot
 * segment; ERROR for 5xx (once no retry is left) and other statuses. Returns -errno when
 * nothing could be answered (no connection, DNS, timeout, spool over its limit: the sink never
 * had its header), and after the header for any failure, or a body shorter or longer than
 * announced: the sink got fewer than length bytes. */
int origin_fetch(struct origin_fetcher *f, const char *path, size_t path_len,
                 const struct origin_sink *sink);

/* origin_fetch as a conditional GET when cond (may be NULL) holds a validator: a 304 is
 * answered to the sink as GF_OK, length 0, meta->not_modified set, and no body. */
int origin_fetch_cond(struct origin_fetcher *f, const char *path, size_t path_len,
                      const struct origin_cond *cond, const struct origin_sink *sink);

/* Requests this fetcher served, the origin connections it opened for them (so requests /
 * connections shows keep-alive at work), and the retries it made (retries may be NULL). */
void origin_fetcher_stats(const struct origin_fetcher *f, uint64_t *requests, uint64_t *connects,
                          uint64_t *retries);

#endif
