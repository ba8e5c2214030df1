/* fuzz_gf_response.c - libFuzzer target: gf_parse_response on arbitrary bytes must keep its
 * incremental contract, and what it accepts must be exactly what gf_format_response writes. */
/* SPDX-License-Identifier: MIT */
#include "fuzz_check.h"

#include <errno.h>
#include <string.h>

#include "getfile/gf_proto.h"

static ssize_t parse(const char *buf, size_t len)
{
    struct gf_response r;

    return gf_parse_response(buf, len, &r);
}

static void check_accepted(const char *buf, ssize_t n, const struct gf_response *r)
{
    char out[GF_RESPONSE_MAX];

    FUZZ_CHECK(n <= GF_RESPONSE_MAX);
    FUZZ_CHECK(r->status == GF_OK || r->status == GF_FILE_NOT_FOUND || r->status == GF_ERROR ||
               r->status == GF_INVALID);
    FUZZ_CHECK(r->status == GF_OK || r->length == 0);
    FUZZ_CHECK(gf_format_response(out, sizeof out, r->status, r->length) == n);
    FUZZ_CHECK(memcmp(out, buf, (size_t)n) == 0);
    fuzz_check_prefixes_exact(parse, buf, (size_t)n);
}

/* The first 9 input bytes as a status and a length: formatting into a buffer of exactly the
 * header's size and parsing it back gives the same values. */
static void check_format(const uint8_t *data, size_t size)
{
    enum gf_status st;
    struct gf_response r;
    uint64_t length;
    char out[GF_RESPONSE_MAX], *exact;
    ssize_t n;

    if (size < 9)
        return;
    st = (enum gf_status)(data[0] % 5); /* 4 is no status */
    memcpy(&length, data + 1, sizeof length);
    n = gf_format_response(out, sizeof out, st, length);
    if (st == 4) {
        FUZZ_CHECK(n == -EINVAL);
        return;
    }
    FUZZ_CHECK(n > 0 && n <= GF_RESPONSE_MAX);
    exact = malloc((size_t)n);
    FUZZ_CHECK(exact != NULL);
    FUZZ_CHECK(gf_format_response(exact, (size_t)n - 1, st, length) == -ENOSPC);
    FUZZ_CHECK(gf_format_response(exact, (size_t)n, st, length) == n);
    FUZZ_CHECK(gf_parse_response(exact, (size_t)n, &r) == n);
    FUZZ_CHECK(r.status == st && r.length == (st == GF_OK ? length : 0));
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct gf_response r;
    ssize_t n = gf_parse_response(buf, size, &r);

    FUZZ_CHECK(n == 0 || n == -EBADMSG || (n > 0 && (size_t)n <= size));
    FUZZ_CHECK(size < GF_RESPONSE_MAX || n != 0); /* bounded */
    if (n > 0)
        check_accepted(buf, n, &r);
    fuzz_check_incremental(parse, buf, size, n);
    check_format(data, size);
    return 0;
}
