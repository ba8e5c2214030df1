/* fuzz_gf_request.c - libFuzzer target: gf_parse_request on arbitrary bytes must keep its
 * incremental contract, and what it accepts must be exactly what gf_format_request writes. */
/* SPDX-License-Identifier: MIT */
#include "fuzz_check.h"

#include <errno.h>
#include <string.h>

#include "getfile/gf_proto.h"

static ssize_t parse(const char *buf, size_t len)
{
    struct gf_request r;

    return gf_parse_request(buf, len, &r);
}

static void check_accepted(const char *buf, ssize_t n, const struct gf_request *r)
{
    static char out[GF_REQUEST_MAX];

    FUZZ_CHECK(n <= GF_REQUEST_MAX);
    FUZZ_CHECK(r->path == buf + 12);
    FUZZ_CHECK(gf_path_valid(r->path, r->path_len));
    FUZZ_CHECK(gf_format_request(out, sizeof out, r->path, r->path_len) == n);
    FUZZ_CHECK(memcmp(out, buf, (size_t)n) == 0);
    fuzz_check_prefixes_exact(parse, buf, (size_t)n);
}

/* The input as a path: the formatter takes exactly the valid paths, and the parser takes
 * back what the formatter wrote, into a buffer of exactly the header's size. */
static void check_as_path(const char *path, size_t len)
{
    static char out[GF_REQUEST_MAX];
    int valid = gf_path_valid(path, len);
    ssize_t n = gf_format_request(out, sizeof out, path, len);
    struct gf_request r;
    char *exact;

    if (!valid) {
        FUZZ_CHECK(n == -EINVAL);
        return;
    }
    FUZZ_CHECK(n == (ssize_t)(len + 16));
    exact = malloc((size_t)n);
    FUZZ_CHECK(exact != NULL);
    FUZZ_CHECK(gf_format_request(exact, (size_t)n - 1, path, len) == -ENOSPC);
    FUZZ_CHECK(gf_format_request(exact, (size_t)n, path, len) == n);
    FUZZ_CHECK(gf_parse_request(exact, (size_t)n, &r) == n);
    FUZZ_CHECK(r.path_len == len && memcmp(r.path, path, len) == 0);
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct gf_request r;
    ssize_t n = gf_parse_request(buf, size, &r);

    FUZZ_CHECK(n == 0 || n == -EBADMSG || (n > 0 && (size_t)n <= size));
    FUZZ_CHECK(size < GF_REQUEST_MAX || n != 0); /* bounded */
    if (n > 0)
        check_accepted(buf, n, &r);
    fuzz_check_incremental(parse, buf, size, n);
    check_as_path(buf, size);
    return 0;
}
