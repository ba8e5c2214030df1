/* handle_with_curl.h - origin mode: serve a GETFILE request with the body of BASE_URL/path,
 * fetched with libcurl in one GET and streamed to the client as it arrives (docs/origin.md). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_HANDLE_WITH_CURL_H
#define GF_HANDLE_WITH_CURL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gfserver.h"

#define ORIGIN_CONNECT_TIMEOUT_MS 5000           /* default connect timeout */
#define ORIGIN_LOW_SPEED_LIMIT    1L             /* default: bytes/s counted as "stalled" */
#define ORIGIN_LOW_SPEED_TIME_S   30L            /* default: seconds of stall before giving up */
#define ORIGIN_SPOOL_MAX          (256ull << 20) /* default spool limit for unknown lengths */
#define ORIGIN_BASE_MAX           4096           /* bytes of a normalized base URL */

struct origin_options {
    const char *base_url;   /* -s as given; normalized with origin_base_parse. Copied. */
    int connect_timeout_ms; /* 0 = ORIGIN_CONNECT_TIMEOUT_MS */
    long low_speed_limit;   /* bytes/s; 0 = ORIGIN_LOW_SPEED_LIMIT */
    long low_speed_time_s;  /* a transfer slower than the limit this long fails; 0 = default */
    uint64_t spool_max;     /* longest body of unknown length; 0 = ORIGIN_SPOOL_MAX */
    const char *spool_dir;  /* for bodies of unknown length; NULL = $TMPDIR or /tmp. Copied. */
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

/* Serves path through ctx from the origin with one GET; call from one thread at a time per
 * fetcher. Answers (and returns 0): OK + the body for 200/203 with a body of the right length;
 * FILE_NOT_FOUND for 3xx/4xx and for a path with a dot segment; ERROR for 5xx and other
 * statuses. Returns -errno when nothing could be answered (no connection, DNS, timeout,
 * spool over its limit: the library then sends ERROR), and after the OK header for any
 * failure, or a body shorter or longer than announced: the client sees a short transfer.
 * The last content byte is held back until the whole body is known to be right. */
int handle_with_curl(struct gfs_ctx *ctx, const char *path, size_t path_len,
                     struct origin_fetcher *f);

/* Requests this fetcher served, and the origin connections it opened for them (so
 * requests / connections shows keep-alive at work). */
void origin_fetcher_stats(const struct origin_fetcher *f, uint64_t *requests, uint64_t *connects);

#endif
