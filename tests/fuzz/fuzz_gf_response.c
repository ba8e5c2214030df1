/* fuzz_gf_response.c - libFuzzer target: gf_parse_response on arbitrary bytes must keep its
 * incremental contract in both framings (documented and legacy), say why it rejects, and what
 * it accepts must be exactly what gf_format_response writes for that framing. */
/* SPDX-License-Identifier: MIT */
#include "fuzz_check.h"

#include <errno.h>
#include <string.h>

#include "getfile/gf_proto.h"

static ssize_t parse(const char *buf, size_t len)
{
    struct gf_response r;

    return gf_parse_response(buf, len, &r, NULL);
}

static void check_accepted(const char *buf, ssize_t n, const struct gf_response *r)
{
    char out[GF_RESPONSE_MAX];

    FUZZ_CHECK(n <= GF_RESPONSE_MAX);
    FUZZ_CHECK(r->status == GF_OK || r->status == GF_FILE_NOT_FOUND || r->status == GF_ERROR ||
               r->status == GF_INVALID);
    FUZZ_CHECK(r->status == GF_OK || r->length == 0);
    FUZZ_CHECK(r->framing == GF_FRAMING_DOCUMENTED || r->framing == GF_FRAMING_LEGACY);
    /* The framing is the header's last byte: LF for the documented form and for the older
     * non-OK form, the space for the older OK form. */
    FUZZ_CHECK(buf[n - 1] == (r->framing == GF_FRAMING_LEGACY && r->status == GF_OK ? ' ' : '\n'));
    FUZZ_CHECK(gf_format_response(out, sizeof out, r->status, r->length, r->framing) == n);
    FUZZ_CHECK(memcmp(out, buf, (size_t)n) == 0);
    fuzz_check_prefixes_exact(parse, buf, (size_t)n);
}

/* The first 9 input bytes as a status, a framing and a length: formatting into a buffer of
 * exactly the header's size and parsing it back gives the same values. */
static void check_format(const uint8_t *data, size_t size)
{
    enum gf_status st;
    enum gf_framing fr;
    struct gf_response r;
    uint64_t length;
    char out[GF_RESPONSE_MAX], *exact;
    ssize_t n;

    if (size < 9)
        return;
    st = (enum gf_status)(data[0] % 5);        /* 4 is no status */
    fr = (enum gf_framing)((data[0] / 5) % 3); /* 2 is no framing */
    memcpy(&length, data + 1, sizeof length);
    n = gf_format_response(out, sizeof out, st, length, fr);
    if (st == 4 || fr == 2) {
        FUZZ_CHECK(n == -EINVAL);
        return;
    }
    FUZZ_CHECK(n > 0 && n <= GF_RESPONSE_MAX);
    exact = malloc((size_t)n);
    FUZZ_CHECK(exact != NULL);
    FUZZ_CHECK(gf_format_response(exact, (size_t)n - 1, st, length, fr) == -ENOSPC);
    FUZZ_CHECK(gf_format_response(exact, (size_t)n, st, length, fr) == n);
    FUZZ_CHECK(gf_parse_response(exact, (size_t)n, &r, NULL) == n);
    FUZZ_CHECK(r.status == st && r.length == (st == GF_OK ? length : 0) && r.framing == fr);
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct gf_response r;
    const char *why = NULL;
    ssize_t n = gf_parse_response(buf, size, &r, &why);

    FUZZ_CHECK(n == 0 || n == -EBADMSG || (n > 0 && (size_t)n <= size));
    FUZZ_CHECK((n == -EBADMSG) == (why != NULL && why[0] != '\0')); /* a reason with each verdict */
    FUZZ_CHECK(size < GF_RESPONSE_MAX || n != 0);                   /* bounded */
    if (n > 0)
        check_accepted(buf, n, &r);
    fuzz_check_incremental(parse, buf, size, n);
    check_format(data, size);
    return 0;
}
