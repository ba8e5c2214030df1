/* fuzz_sock_msg.c - libFuzzer harness for the socket backends' decoders (src/ipc/sock_msg.c):
 * any bytes a peer could send as a request or a response header; an accepted one must satisfy
 * every promise its reader relies on, and encode back to the same bytes. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "fuzz_check.h"
#include "ipc/sock_msg.h"

static void check_request(const uint8_t *data, size_t size)
{
    static struct sock_req out;
    static unsigned char again[SOCK_REQ_MAX];
    struct sock_req_hdr h;
    int rc = sock_req_decode(data, size, &out);

    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
    if (sock_req_decode_hdr(data, size, &h) == 0)
        FUZZ_CHECK(h.path_len >= 1 && h.path_len <= SOCK_PATH_MAX &&
                   (h.flags & ~SOCK_REQ_GEN) == 0);
    if (rc != 0)
        return;
    FUZZ_CHECK(size == SOCK_REQ_HDR_SIZE + out.path_len);
    FUZZ_CHECK(out.path_len >= 1 && out.path_len <= SOCK_PATH_MAX);
    FUZZ_CHECK(strlen(out.path) == out.path_len && out.path[0] == '/');
    FUZZ_CHECK((out.flags & ~SOCK_REQ_GEN) == 0);
    FUZZ_CHECK(sock_req_encode_flags(again, sizeof again, out.backend, out.flags, out.path,
                                     out.path_len) == (int)size);
    FUZZ_CHECK(memcmp(again, data, size) == 0);
}

static void check_response(const uint8_t *data, size_t size)
{
    unsigned char again[SOCK_RESP_SIZE];
    struct sock_resp out;
    int rc = sock_resp_decode(data, size, &out);

    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
    if (rc != 0)
        return;
    FUZZ_CHECK(size == SOCK_RESP_SIZE);
    FUZZ_CHECK(out.status <= SOCK_STATUS_ORIGIN_NOT_FOUND);
    FUZZ_CHECK(out.kind == SOCK_RESP_STREAM || out.kind == SOCK_RESP_FD ||
               out.kind == SOCK_RESP_GEN);
    if (out.status != SOCK_STATUS_OK)
        FUZZ_CHECK(out.kind == SOCK_RESP_STREAM && out.length == 0);
    if (out.kind == SOCK_RESP_FD)
        FUZZ_CHECK(out.offset + out.length <= out.file_size &&
                   out.offset + out.length >= out.offset && out.keep_ms <= SOCK_KEEP_MAX_MS);
    else
        FUZZ_CHECK(out.offset == 0 && out.file_size == 0 && out.keep_ms == 0);
    if (out.kind == SOCK_RESP_GEN)
        FUZZ_CHECK(out.length == 0 && out.mtime_ns == 0 && out.ctime_ns == 0);
    if (out.kind == SOCK_RESP_STREAM)
        FUZZ_CHECK(out.gen == 0);
    FUZZ_CHECK(sock_resp_encode(again, sizeof again, &out) == (int)SOCK_RESP_SIZE);
    FUZZ_CHECK(memcmp(again, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_request(data, size);
    check_response(data, size);
    return 0;
}
