/* gf_proto.c - GETFILE header parsing and formatting: straight-line prefix checks, no I/O. */
/* SPDX-License-Identifier: MIT */
#include "gf_proto.h"

#include <errno.h>
#include <string.h>

#define LIT(s)       s, (sizeof(s) - 1)
#define REQ_PREFIX   "GETFILE GET "
#define REQ_PREFIX_N (sizeof(REQ_PREFIX) - 1)
#define RSP_PREFIX   "GETFILE "
#define RSP_PREFIX_N (sizeof(RSP_PREFIX) - 1)
#define OK_PREFIX_N  (RSP_PREFIX_N + 3) /* "GETFILE OK " */
#define TERM         "\r\n\r\n"
#define TERM_N       (sizeof(TERM) - 1)
#define U64_DIGITS   20

/* Compares buf[pos..len) with lit (pos < len). Returns 1 when all of lit is there, 0 when buf
 * ends inside a matching prefix of it, -1 when a byte differs. */
static int match(const char *buf, size_t len, size_t pos, const char *lit, size_t lit_len)
{
    size_t n = len - pos < lit_len ? len - pos : lit_len;

    if (memcmp(buf + pos, lit, n) != 0)
        return -1;
    return n == lit_len;
}

static int printable(char c)
{
    return (unsigned char)c >= 0x20 && (unsigned char)c <= 0x7e;
}

const char *gf_status_name(enum gf_status st)
{
    switch (st) {
    case GF_OK:
        return "OK";
    case GF_FILE_NOT_FOUND:
        return "FILE_NOT_FOUND";
    case GF_ERROR:
        return "ERROR";
    case GF_INVALID:
        return "INVALID";
    }
    return "?";
}

int gf_path_valid(const char *path, size_t len)
{
    if (len == 0 || len > GF_PATH_MAX || path[0] != '/' || path[len - 1] == ' ')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!printable(path[i]))
            return 0;
    return 1;
}

ssize_t gf_parse_request(const char *buf, size_t len, struct gf_request *out)
{
    size_t i;
    int m;

    if (len == 0)
        return 0;
    m = match(buf, len, 0, LIT(REQ_PREFIX));
    if (m <= 0)
        return m < 0 ? -EBADMSG : 0;
    if (len == REQ_PREFIX_N)
        return 0;
    if (buf[REQ_PREFIX_N] != '/')
        return -EBADMSG;
    /* The path runs to the first CR; every byte before it must be printable. Stopping at the
     * 4097th path byte also bounds the header by GF_REQUEST_MAX. */
    for (i = REQ_PREFIX_N + 1; i < len && buf[i] != '\r'; i++)
        if (i - REQ_PREFIX_N >= GF_PATH_MAX || !printable(buf[i]))
            return -EBADMSG;
    if (i == len)
        return 0;
    if (buf[i - 1] == ' ')
        return -EBADMSG;
    m = match(buf, len, i, LIT(TERM));
    if (m <= 0)
        return m < 0 ? -EBADMSG : 0;
    out->path = buf + REQ_PREFIX_N;
    out->path_len = i - REQ_PREFIX_N;
    return (ssize_t)(i + TERM_N);
}

/* Parses "<digits>\r\n\r\n" of an OK header from buf[OK_PREFIX_N..len). */
static ssize_t parse_ok_length(const char *buf, size_t len, struct gf_response *out)
{
    uint64_t v = 0;
    size_t i;
    int m;

    for (i = OK_PREFIX_N; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        unsigned d = (unsigned)(buf[i] - '0');

        if (i > OK_PREFIX_N && buf[OK_PREFIX_N] == '0')
            return -EBADMSG; /* a leading zero */
        if (v > (UINT64_MAX - d) / 10)
            return -EBADMSG; /* also ends a 21st digit: no leading zero means >= 10^20 */
        v = v * 10 + d;
    }
    if (i == len)
        return 0;
    if (i == OK_PREFIX_N)
        return -EBADMSG;
    m = match(buf, len, i, LIT(TERM));
    if (m <= 0)
        return m < 0 ? -EBADMSG : 0;
    out->status = GF_OK;
    out->length = v;
    return (ssize_t)(i + TERM_N);
}

ssize_t gf_parse_response(const char *buf, size_t len, struct gf_response *out)
{
    const char *rest;
    size_t rest_len;
    enum gf_status st;
    int m;

    if (len == 0)
        return 0;
    m = match(buf, len, 0, LIT(RSP_PREFIX));
    if (m <= 0)
        return m < 0 ? -EBADMSG : 0;
    if (len == RSP_PREFIX_N)
        return 0;
    /* The status words differ in their first byte, so it picks the only possible rest. */
    switch (buf[RSP_PREFIX_N]) {
    case 'O':
        m = match(buf, len, RSP_PREFIX_N, LIT("OK "));
        if (m <= 0)
            return m < 0 ? -EBADMSG : 0;
        return len == OK_PREFIX_N ? 0 : parse_ok_length(buf, len, out);
    case 'F':
        rest = "FILE_NOT_FOUND" TERM;
        st = GF_FILE_NOT_FOUND;
        break;
    case 'E':
        rest = "ERROR" TERM;
        st = GF_ERROR;
        break;
    case 'I':
        rest = "INVALID" TERM;
        st = GF_INVALID;
        break;
    default:
        return -EBADMSG;
    }
    rest_len = strlen(rest);
    m = match(buf, len, RSP_PREFIX_N, rest, rest_len);
    if (m <= 0)
        return m < 0 ? -EBADMSG : 0;
    out->status = st;
    out->length = 0;
    return (ssize_t)(RSP_PREFIX_N + rest_len);
}

ssize_t gf_format_request(char *buf, size_t cap, const char *path, size_t path_len)
{
    size_t n = REQ_PREFIX_N + path_len + TERM_N;

    if (!gf_path_valid(path, path_len))
        return -EINVAL;
    if (cap < n)
        return -ENOSPC;
    memcpy(buf, REQ_PREFIX, REQ_PREFIX_N);
    memcpy(buf + REQ_PREFIX_N, path, path_len);
    memcpy(buf + REQ_PREFIX_N + path_len, TERM, TERM_N);
    return (ssize_t)n;
}

ssize_t gf_format_response(char *buf, size_t cap, enum gf_status st, uint64_t length)
{
    char digits[U64_DIGITS];
    size_t nd = 0, word_len, n;
    const char *word;

    switch (st) {
    case GF_OK:
        word = "OK ";
        do {
            digits[sizeof digits - ++nd] = (char)('0' + length % 10);
            length /= 10;
        } while (length != 0);
        break;
    case GF_FILE_NOT_FOUND:
    case GF_ERROR:
    case GF_INVALID:
        word = gf_status_name(st);
        break;
    default:
        return -EINVAL;
    }
    word_len = strlen(word);
    n = RSP_PREFIX_N + word_len + nd + TERM_N;
    if (cap < n)
        return -ENOSPC;
    memcpy(buf, RSP_PREFIX, RSP_PREFIX_N);
    memcpy(buf + RSP_PREFIX_N, word, word_len);
    memcpy(buf + RSP_PREFIX_N + word_len, digits + sizeof digits - nd, nd);
    memcpy(buf + n - TERM_N, TERM, TERM_N);
    return (ssize_t)n;
}
