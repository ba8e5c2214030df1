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

const char *gf_framing_name(enum gf_framing fr)
{
    switch (fr) {
    case GF_FRAMING_DOCUMENTED:
        return "documented";
    case GF_FRAMING_LEGACY:
        return "legacy";
    }
    return "?";
}

int gf_framing_parse(const char *name, enum gf_framing *out)
{
    if (strcmp(name, "documented") == 0)
        *out = GF_FRAMING_DOCUMENTED;
    else if (strcmp(name, "legacy") == 0)
        *out = GF_FRAMING_LEGACY;
    else
        return -EINVAL;
    return 0;
}

/* A -EBADMSG verdict with its reason. */
static ssize_t bad(const char **why, const char *reason)
{
    *why = reason;
    return -EBADMSG;
}

/* Parses the end of a header at buf[pos..len) (pos < len): TERM (documented) when buf[pos] is
 * CR, else legacy_end (the older framing's, which starts with a space). Returns the header
 * length with out->framing set, 0 for more, or -EBADMSG with *why = reason. */
static ssize_t parse_end(const char *buf, size_t len, size_t pos, const char *legacy_end,
                         struct gf_response *out, const char **why, const char *reason)
{
    const char *end = buf[pos] == '\r' ? TERM : legacy_end;
    size_t end_len = strlen(end);
    int m = match(buf, len, pos, end, end_len);

    if (m < 0)
        return bad(why, reason);
    if (m == 0)
        return 0;
    out->framing = end == legacy_end ? GF_FRAMING_LEGACY : GF_FRAMING_DOCUMENTED;
    return (ssize_t)(pos + end_len);
}

/* Parses "<digits>" and the end of an OK header from buf[OK_PREFIX_N..len). */
static ssize_t parse_ok_length(const char *buf, size_t len, struct gf_response *out,
                               const char **why)
{
    struct gf_response r = {.status = GF_OK};
    uint64_t v = 0;
    size_t i;
    ssize_t n;

    for (i = OK_PREFIX_N; i < len && buf[i] >= '0' && buf[i] <= '9'; i++) {
        unsigned d = (unsigned)(buf[i] - '0');

        if (i > OK_PREFIX_N && buf[OK_PREFIX_N] == '0')
            return bad(why, "the length has a leading zero");
        if (v > (UINT64_MAX - d) / 10) /* also ends a 21st digit: no leading zero means >= 10^20 */
            return bad(why, "the length is over 18446744073709551615");
        v = v * 10 + d;
    }
    if (i == len)
        return 0;
    if (i == OK_PREFIX_N)
        return bad(why, "OK without an unsigned decimal length");
    r.length = v;
    n = parse_end(buf, len, i, " ", &r, why,
                  "after the length: neither \"\\r\\n\\r\\n\" (documented form) nor one space "
                  "(older form)");
    if (n > 0)
        *out = r;
    return n;
}

/* For each status without content: its word and the reason when what follows it is wrong. */
static const struct {
    const char *word, *bad_end;
} no_content[] = {
    [GF_FILE_NOT_FOUND] = {"FILE_NOT_FOUND", "after FILE_NOT_FOUND: neither \"\\r\\n\\r\\n\" "
                                             "(documented form) nor \" 0\\n\" (older form)"},
    [GF_ERROR] =
        {"ERROR",
         "after ERROR: neither \"\\r\\n\\r\\n\" (documented form) nor \" 0\\n\" (older form)"},
    [GF_INVALID] = {"INVALID", "after INVALID: neither \"\\r\\n\\r\\n\" (documented form) nor "
                               "\" 0\\n\" (older form)"},
};

#define UNKNOWN_STATUS "unknown status: not OK, FILE_NOT_FOUND, ERROR or INVALID"

ssize_t gf_parse_response(const char *buf, size_t len, struct gf_response *out, const char **why)
{
    const char *unused;
    enum gf_status st;
    size_t word_len, pos;
    ssize_t n;
    int m;

    if (why == NULL)
        why = &unused;
    if (len == 0)
        return 0;
    m = match(buf, len, 0, LIT(RSP_PREFIX));
    if (m <= 0)
        return m < 0 ? bad(why, "does not start with \"GETFILE \"") : 0;
    if (len == RSP_PREFIX_N)
        return 0;
    /* The status words differ in their first byte, so it picks the only possible rest. */
    switch (buf[RSP_PREFIX_N]) {
    case 'O':
        m = match(buf, len, RSP_PREFIX_N, LIT("OK"));
        if (m <= 0)
            return m < 0 ? bad(why, UNKNOWN_STATUS) : 0;
        if (len == RSP_PREFIX_N + 2)
            return 0;
        if (buf[RSP_PREFIX_N + 2] != ' ')
            return bad(why, buf[RSP_PREFIX_N + 2] == '\r' ? "OK without a length" : UNKNOWN_STATUS);
        return len == OK_PREFIX_N ? 0 : parse_ok_length(buf, len, out, why);
    case 'F':
        st = GF_FILE_NOT_FOUND;
        break;
    case 'E':
        st = GF_ERROR;
        break;
    case 'I':
        st = GF_INVALID;
        break;
    default:
        return bad(why, UNKNOWN_STATUS);
    }
    word_len = strlen(no_content[st].word);
    m = match(buf, len, RSP_PREFIX_N, no_content[st].word, word_len);
    if (m <= 0)
        return m < 0 ? bad(why, UNKNOWN_STATUS) : 0;
    pos = RSP_PREFIX_N + word_len;
    if (len == pos)
        return 0;
    struct gf_response r = {.status = st, .length = 0};
    n = parse_end(buf, len, pos, " 0\n", &r, why, no_content[st].bad_end);
    if (n > 0)
        *out = r;
    return n;
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

ssize_t gf_format_response(char *buf, size_t cap, enum gf_status st, uint64_t length,
                           enum gf_framing fr)
{
    char digits[U64_DIGITS];
    size_t nd = 0, word_len, end_len, n;
    const char *word, *end;

    switch (st) {
    case GF_OK:
        word = "OK ";
        do {
            digits[sizeof digits - ++nd] = (char)('0' + length % 10);
            length /= 10;
        } while (length != 0);
        end = fr == GF_FRAMING_LEGACY ? " " : TERM;
        break;
    case GF_FILE_NOT_FOUND:
    case GF_ERROR:
    case GF_INVALID:
        word = gf_status_name(st);
        end = fr == GF_FRAMING_LEGACY ? " 0\n" : TERM;
        break;
    default:
        return -EINVAL;
    }
    if (fr != GF_FRAMING_DOCUMENTED && fr != GF_FRAMING_LEGACY)
        return -EINVAL;
    word_len = strlen(word);
    end_len = strlen(end);
    n = RSP_PREFIX_N + word_len + nd + end_len;
    if (cap < n)
        return -ENOSPC;
    memcpy(buf, RSP_PREFIX, RSP_PREFIX_N);
    memcpy(buf + RSP_PREFIX_N, word, word_len);
    memcpy(buf + RSP_PREFIX_N + word_len, digits + sizeof digits - nd, nd);
    memcpy(buf + n - end_len, end, end_len);
    return (ssize_t)n;
}
