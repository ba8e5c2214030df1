/* handle_with_curl.c - origin mode: the GETFILE client is origin_fetch's sink. */
/* SPDX-License-Identifier: MIT */
#include "handle_with_curl.h"

static int ctx_header(void *arg, enum gf_status st, uint64_t length, const struct origin_meta *meta)
{
    /* The proxy keeps nothing; an HTTP client gets the validators (http_front). */
    if (st == GF_OK)
        gfs_ctx_set_validators(arg, meta->etag, meta->last_modified);
    return gfs_send_header(arg, st, length);
}

static int ctx_data(void *arg, const void *buf, size_t n)
{
    return gfs_send(arg, buf, n);
}

static int ctx_cancelled(void *arg)
{
    return gfs_ctx_cancelled(arg);
}

int handle_with_curl(struct gfs_ctx *ctx, const char *path, size_t path_len,
                     struct origin_fetcher *f)
{
    const struct origin_sink sink = {ctx_header, ctx_data, ctx_cancelled, ctx};

    return origin_fetch(f, path, path_len, &sink);
}
