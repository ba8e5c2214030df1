/* gf_proto.h - the GETFILE wire format: incremental header parsers and formatters.
 * No I/O, no allocation; docs/protocol.md is the grammar these functions implement. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_PROTO_H
#define GF_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Longest request path, leading '/' included (the Unix PATH_MAX). */
#define GF_PATH_MAX 4096
/* Longest request header: "GETFILE GET " + path + "\r\n\r\n". */
#define GF_REQUEST_MAX (12 + GF_PATH_MAX + 4)
/* Longest response header: "GETFILE OK " + 20 digits + "\r\n\r\n" (= 35; the older framing's
 * longest is 32); rounded up. */
#define GF_RESPONSE_MAX 64

enum gf_status {
    GF_OK = 0,
    GF_FILE_NOT_FOUND = 1, /* well formed, but nothing to serve (the client's side) */
    GF_ERROR = 2,          /* the server failed (its side) */
    GF_INVALID = 3,        /* malformed or incomplete request header */
};

/* The status token as sent on the wire ("OK", "FILE_NOT_FOUND", ...), or "?" */
const char *gf_status_name(enum gf_status st);

/* The two forms of a response header (requests are the same in both; docs/protocol.md):
 *   documented  "GETFILE OK <len>\r\n\r\n"  "GETFILE FILE_NOT_FOUND\r\n\r\n" ...
 *   legacy      "GETFILE OK <len> "  (content right after the space)  "GETFILE ERROR 0\n" ...
 * The legacy form is what the course's prebuilt PR3 clients expect. */
enum gf_framing {
    GF_FRAMING_DOCUMENTED = 0,
    GF_FRAMING_LEGACY = 1,
};

/* "documented" or "legacy" (as an option value names them), or "?" */
const char *gf_framing_name(enum gf_framing fr);
/* Sets *out from a name gf_framing_name gives. Returns 0, or -EINVAL for any other string. */
int gf_framing_parse(const char *name, enum gf_framing *out);

struct gf_request {
    const char *path; /* borrowed: points into the parsed buffer; NOT NUL-terminated */
    size_t path_len;  /* 1..GF_PATH_MAX */
};

/* Parses a request header at the start of buf[0..len).
 * Returns the header length (> 0: bytes consumed, terminator included) and fills *out;
 * 0 when buf is a valid prefix and more bytes are needed; -EBADMSG when buf can no longer
 * become a valid header (reported at the first bad byte; a path byte that is neither CR nor
 * within GF_PATH_MAX is one, so GF_REQUEST_MAX bytes always get a verdict other than 0).
 * Stateless: call again from the start of the buffer as it grows. Reads no byte at or past
 * buf[len], nor past the header; writes *out only when it returns > 0. */
ssize_t gf_parse_request(const char *buf, size_t len, struct gf_request *out);

struct gf_response {
    enum gf_status status;
    uint64_t length;         /* content length for GF_OK, else 0 */
    enum gf_framing framing; /* the form the header came in */
};

/* Parses a response header in either framing, told apart by the bytes after the length (or
 * the status word): CR starts the documented terminator, a space the legacy one. Same return
 * contract as gf_parse_request (every header, and every verdict, fits in GF_RESPONSE_MAX
 * bytes). Content bytes after the header are not touched: the caller keeps buf[ret..len).
 * On -EBADMSG, when why is not NULL, *why says what is wrong (a static string). */
ssize_t gf_parse_response(const char *buf, size_t len, struct gf_response *out, const char **why);

/* Writes "GETFILE GET <path>\r\n\r\n" into buf (cap bytes; not NUL-terminated). Returns the
 * length, -EINVAL when path is not a valid GETFILE path, or -ENOSPC. */
ssize_t gf_format_request(char *buf, size_t cap, const char *path, size_t path_len);

/* Writes a response header for st in framing fr (length only for GF_OK). Returns the length,
 * -EINVAL for an unknown status or framing, or -ENOSPC. */
ssize_t gf_format_response(char *buf, size_t cap, enum gf_status st, uint64_t length,
                           enum gf_framing fr);

/* Non-zero when path[0..len) is a path we accept: starts with '/', 1..GF_PATH_MAX bytes,
 * printable ASCII only (0x20..0x7e), and no trailing space. */
int gf_path_valid(const char *path, size_t len);

#endif
