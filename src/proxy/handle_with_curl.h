/* handle_with_curl.h - origin mode: serve a GETFILE request with the body of BASE_URL/path,
 * fetched by origin_fetch and streamed to the client as it arrives (docs/origin.md). */
/* SPDX-License-Identifier: MIT */
#ifndef GF_HANDLE_WITH_CURL_H
#define GF_HANDLE_WITH_CURL_H

#include <stddef.h>

#include "gfserver.h"
#include "origin_fetch.h"

/* Serves path through ctx with origin_fetch (its answers and retries; the client is the sink,
 * so nothing is retried once the header went out). Returns 0 when answered, or -errno: before
 * the header the library then sends ERROR, after it the client sees a short transfer. */
int handle_with_curl(struct gfs_ctx *ctx, const char *path, size_t path_len,
                     struct origin_fetcher *f);

#endif
