/* sock_msg.h - the messages of the socket backends (--ipc unix and fd; docs/ipc.md, "The unix
 * backend"): one request from the proxy, one response header from the cache, on a connection
 * that carries one request. Pure encoding and validation: no I/O, so it is fuzzed whole
 * (tests/fuzz/fuzz_sock_msg.c). Both sides run on one host: fields are in host byte order. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_SOCK_MSG_H
#define GF_SOCK_MSG_H

#include <stddef.h>
#include <stdint.h>

#define SOCK_REQ_MAGIC   0x51534647u /* "GFSQ" in memory */
#define SOCK_RESP_MAGIC  0x52534647u /* "GFSR" in memory */
#define SOCK_MSG_VERSION 1u
#define SOCK_PATH_MAX    4096u /* bytes of a request path (as CMDQ_PATH_MAX) */

/* The request: this header, then path_len bytes of path (no NUL). */
struct sock_req_hdr {
    uint32_t magic;    /* SOCK_REQ_MAGIC */
    uint16_t version;  /* SOCK_MSG_VERSION */
    uint16_t backend;  /* the sender's enum ipc_backend (unix or fd) */
    uint32_t path_len; /* 1..SOCK_PATH_MAX */
    uint32_t flags;    /* 0 or SOCK_REQ_GEN */
};
/* fd: the proxy asks for the cache's generation object (kind GEN) instead of a file; the path
 * is "/". */
#define SOCK_REQ_GEN      1u
#define SOCK_REQ_HDR_SIZE 16u
#define SOCK_REQ_MAX      (SOCK_REQ_HDR_SIZE + SOCK_PATH_MAX)

/* A decoded request. */
struct sock_req {
    unsigned backend;
    unsigned flags;
    uint32_t path_len;
    char path[SOCK_PATH_MAX + 1]; /* NUL-terminated; starts with '/', no NUL inside */
};

enum sock_resp_kind {
    SOCK_RESP_STREAM = 1, /* length body bytes follow on the connection (any status) */
    SOCK_RESP_FD = 2,     /* OK only: a read-only descriptor came with the header */
    SOCK_RESP_GEN = 3,    /* OK only: the generation object (sealed memfd) came with it */
};

/* The longest an FD answer may let the proxy keep its descriptor. */
#define SOCK_KEEP_MAX_MS 60000u

/* Answer status: the values of enum shm_status (shm_chan.h) and enum cache_status, but for
 * OTHER_BACKEND: a socket's name is its backend's, so no proxy of another one reaches it. */
enum sock_status {
    SOCK_STATUS_OK = 0,
    SOCK_STATUS_NOT_FOUND = 1,
    SOCK_STATUS_ERROR = 2,
    SOCK_STATUS_ORIGIN_NOT_FOUND = 3, /* the filling cache's origin said 404 */
};

/* The response header, always exactly SOCK_RESP_SIZE bytes. */
struct sock_resp {
    uint32_t magic;     /* SOCK_RESP_MAGIC */
    uint16_t version;   /* SOCK_MSG_VERSION */
    uint16_t kind;      /* enum sock_resp_kind */
    uint32_t status;    /* enum sock_status */
    uint32_t reserved;  /* 0 */
    uint64_t length;    /* body bytes; 0 unless OK */
    uint64_t offset;    /* FD: where the body starts in the file; else 0 */
    uint64_t file_size; /* FD: the file's size when the cache looked (>= offset + length) */
    int64_t mtime_ns;   /* FD: its modification time then, ns since the epoch */
    int64_t ctime_ns;   /* FD: its status change time then */
    uint32_t keep_ms;   /* FD: the proxy may keep the descriptor this long (0: do not keep) */
    uint32_t gen;       /* FD: the cache's generation before the lookup; GEN: now; else 0 */
};
#define SOCK_RESP_SIZE 64u

/* Writes the request for path (path_len bytes) into buf (cap bytes). Returns the message size,
 * or -EINVAL (path not valid, as sock_req_decode wants it) or -ENOSPC (cap too small). */
int sock_req_encode(void *buf, size_t cap, unsigned backend, const char *path, size_t path_len);

/* sock_req_encode with flags (0 or SOCK_REQ_GEN). */
int sock_req_encode_flags(void *buf, size_t cap, unsigned backend, unsigned flags, const char *path,
                          size_t path_len);

/* Validates a request header (the first SOCK_REQ_HDR_SIZE bytes of buf, len >= that) and stores
 * it: a reader knows from it how many path bytes follow. Returns 0, -EBADMSG (not ours, bad
 * length or reserved field), -EPROTO (ours, another version). */
int sock_req_decode_hdr(const void *buf, size_t len, struct sock_req_hdr *out);

/* Decodes a whole request of exactly len bytes. Returns 0 and *out, or -EBADMSG (also: a path
 * not starting with '/', holding a NUL, or a size other than header + path_len) or -EPROTO.
 * *out is untouched on error. */
int sock_req_decode(const void *buf, size_t len, struct sock_req *out);

/* Writes r (magic and version filled in here) into buf (cap >= SOCK_RESP_SIZE). Returns
 * SOCK_RESP_SIZE, -ENOSPC, or -EINVAL when r would not pass sock_resp_decode. */
int sock_resp_encode(void *buf, size_t cap, const struct sock_resp *r);

/* Decodes and validates a response header of exactly len bytes: known kind and status; a
 * non-OK answer is STREAM with length 0; STREAM has no offset, size, times, keep or gen; FD is
 * OK with offset + length <= file_size (no overflow) and keep_ms <= SOCK_KEEP_MAX_MS; GEN is OK
 * with nothing but gen. Returns 0 and *out, or -EBADMSG / -EPROTO; *out
 * untouched on error. */
int sock_resp_decode(const void *buf, size_t len, struct sock_resp *out);

#endif
