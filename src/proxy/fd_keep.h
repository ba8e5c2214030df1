/* fd_keep.h - the proxy's kept descriptors (--ipc fd; docs/ipc.md, "Kept descriptors"): the
 * read-only descriptor of a file the cache answered with is kept for the next request of the
 * same path, so a hit needs no round trip to the cache. An entry is used only while all of
 * these hold, checked before every use:
 *   - its expiry (the answer's keep_ms) has not passed;
 *   - the cache that gave it is the one whose generation object is mapped, that cache still
 *     runs (pidfd), and its generation word still has the value the answer carried (the cache
 *     adds one after every reload, purge, ban, and at its stop);
 *   - the file still has the size, mtime and ctime the cache saw, and a link (a file replaced
 *     by a rename or removed has none).
 * Anything else drops the entry, and the request asks the cache as before. At most max entries
 * are kept (least recently used first out). Thread-safe. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_FD_KEEP_H
#define GF_FD_KEEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sock_msg.h"

#define FD_KEEP_MAX 1024u /* entries at most; fewer when RLIMIT_NOFILE is low (fd_keep_limit) */

struct fd_keep;

/* One kept descriptor, held by a request between fd_keep_get and fd_keep_release. */
struct fd_kept {
    int fd;             /* read-only, regular file */
    struct sock_resp r; /* the answer it came with: offset, length, size, times */
};

/* The number of entries to keep: FD_KEEP_MAX, or a quarter of RLIMIT_NOFILE when that is
 * less (the rest is for clients, segments, and sockets). */
unsigned fd_keep_limit(void);

/* A table of at most max entries (0: keeps nothing). Returns 0 or -ENOMEM. */
int fd_keep_new(struct fd_keep **out, unsigned max);

/* Closes every descriptor; after every request ended. NULL is a no-op. */
void fd_keep_free(struct fd_keep *k);

/* 1 when the generation object of the cache pid is mapped, else 0. */
int fd_keep_has_gen(struct fd_keep *k, pid_t pid);

/* Maps memfd (taken: closed here in every case) as the generation object of the cache pid,
 * after checking it is sealed against writes and resizes, and drops every entry of another
 * cache. Returns 0, -EBADMSG (not a sealed object of the right size) or -errno. */
int fd_keep_set_gen(struct fd_keep *k, pid_t pid, int memfd);

/* Keeps fd (taken: closed here when it is not kept) for path, as answered in r by the cache
 * pid, now (clock_mono_ms) + r->keep_ms at most; replaces an entry of the same path. */
void fd_keep_put(struct fd_keep *k, const char *path, size_t path_len, int fd,
                 const struct sock_resp *r, pid_t pid);

/* The valid entry of path, held for this request, or NULL (none; or one that failed a check,
 * now dropped). */
struct fd_kept *fd_keep_get(struct fd_keep *k, const char *path, size_t path_len);

/* Ends a request's hold on e; bad: the file turned out changed while sent, drop the entry. */
void fd_keep_release(struct fd_keep *k, struct fd_kept *e, int bad);

/* Counters for the closing log line and the tests. */
struct fd_keep_stats {
    uint64_t hits;    /* requests served from a kept descriptor */
    uint64_t kept;    /* descriptors put in */
    uint64_t dropped; /* entries dropped by a failed check (gen, expiry, file, cache death) */
    unsigned entries; /* entries now */
};
void fd_keep_stats(struct fd_keep *k, struct fd_keep_stats *out);

#endif
