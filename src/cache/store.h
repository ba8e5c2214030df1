/* store.h - simplecached's store: entries filled from the origin, kept as files in a directory,
 * bounded in bytes with least-recently-used eviction, and the fills in progress, which any
 * number of requests read while they grow (docs/cache.md, "The store").
 *
 * An entry is one file, "e-" and 16 hex digits of a hash of its request path, holding a
 * 40-byte header (magic "GFSTORE4", the path's length, the lengths of the origin's ETag and
 * Last-Modified, the body's length, when it goes stale, the body's CRC-32, 4 bytes zero), the
 * path, the body, then the ETag and Last-Modified. A hit's reader checks the CRC-32 before its
 * last chunk goes out (store_drop_damaged); a revalidation checks it before copying the body. An
 * entry of an earlier format found at open is removed (logged). A stale entry with a validator is
 * revalidated: its fill asks the origin with If-None-Match / If-Modified-Since, and a 304 copies
 * the kept body into the fill (no body from the origin); a stale entry without one is fetched
 * again. Until the fill replaces it, the stale entry stays. A fill writes to
 * ".tmp-..." in the same directory and renames it when the body is complete and fsync'ed, so a file
 * with an entry's name is always complete; at open, temporary files (fills cut by a crash or a
 * kill) are removed and entries whose size does not match their header are removed too. All
 * functions are thread-safe. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_STORE_H
#define GF_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "gf_proto.h"
#include "origin_fetch.h"

#define STORE_HEADER_SIZE 40u

struct store;
struct fill;

/* Counters for logs and tests; approximately current while the store is used. */
struct store_stats {
    uint64_t entries;     /* complete entries kept */
    uint64_t bytes;       /* their files' bytes (header + path + body) */
    uint64_t hits;        /* requests answered from a kept entry */
    uint64_t fills;       /* fills started (origin fetches) */
    uint64_t coalesced;   /* requests that joined a fill in progress */
    uint64_t stored;      /* fills kept as entries */
    uint64_t too_big;     /* fills streamed through but not kept (larger than the bound) */
    uint64_t uncacheable; /* fills not kept: no-store, private, no-cache, no freshness */
    uint64_t expired;     /* entries found stale at a lookup, and fetched again or revalidated */
    uint64_t failed;      /* fills that failed */
    uint64_t stale;       /* fills that served a stale entry because the origin failed */
    uint64_t evictions;   /* entries dropped to stay under the bound */
    uint64_t discarded;   /* files found partial or damaged (at open, or by a reader), removed */
    uint64_t refused;     /* fills served from memory, not kept: the disk refused them */
};

/* Opens (creating it, mode 0700, if missing) the store in dir, bounded by max_bytes of entry
 * files, keeping responses that say nothing about their freshness for ttl_s seconds (0:
 * forever), and loads the entries found there, the least recently modified first in line for
 * eviction; removes temporary and damaged files (counted in discarded, each logged). Returns 0
 * and *out, or -errno (-ENOTDIR, -EACCES, ...: the directory cannot be used). */
int store_open(struct store **out, const char *dir, uint64_t max_bytes, unsigned ttl_s);

/* Frees the store (entries stay on disk). Every fill must have been put. NULL is a no-op. */
void store_close(struct store *st);

/* A request's view of an entry it reads. */
struct store_hit {
    int fd;              /* the entry's file, opened for this request (the caller closes it) */
    uint64_t offset;     /* where the body starts in it */
    uint64_t length;     /* the body's length */
    uint32_t crc;        /* the body's CRC-32 (zlib's crc32), as written when it was filled */
    uint64_t expires_ms; /* Unix ms after which the entry is stale; 0: never */
    int verify;          /* the file changed (or was never checked) since it last matched crc: the
                          * reader checks it (store_mark_verified when it did, store_drop_damaged
                          * when it does not match) */
};

enum store_result {
    STORE_HIT,  /* *hit is set: a complete entry (now the most recently used) */
    STORE_JOIN, /* *fill is set: a fill of this path is in progress; read it as it grows */
    STORE_LEAD, /* *fill is set: a new fill; the caller must run its fetch (fill_sink) */
};

/* Looks path up: a complete entry, a fill in progress, or a new fill when max_fills are not
 * already in progress. A fill returned holds a reference for the caller (fill_put); a
 * STORE_LEAD fill holds one more, for its fetch (fill_done). A fill whose temporary file the
 * disk refuses (full, read-only, unwritable directory) holds its body in memory instead: served,
 * never kept (logged; up to 64 MiB a body, 256 MiB in all, else the fetch fails: ERROR).
 * Returns the result, -EBUSY (too many fills), or -errno (-ENOMEM...). */
int store_get(struct store *st, const char *path, size_t path_len, unsigned max_fills,
              struct store_hit *hit, struct fill **fill);

/* What a reader knows of a fill. */
struct fill_state {
    int header;            /* the answer's status is known */
    enum gf_status status; /* GF_OK, GF_FILE_NOT_FOUND, GF_ERROR */
    uint64_t length;       /* GF_OK: the body's length */
    uint64_t written;      /* body bytes readable so far */
    int failed;            /* the fetch failed: the body will never be complete */
    int done;              /* the fetch ended (failed or not) */
};

/* Waits at most ms (>= 0) for the fill to change from what the caller has seen (have_header:
 * it knew the status; have: the body bytes it knew of), then takes a snapshot. */
void fill_wait(struct fill *f, int have_header, uint64_t have, int ms, struct fill_state *out);

/* Reads body bytes [off, off + n) that fill_wait reported as written. Returns n or -errno. */
ssize_t fill_read(struct fill *f, void *buf, size_t n, uint64_t off);

/* The path being filled (NUL-terminated). */
const char *fill_path(const struct fill *f);

/* A fill that revalidates an expired entry: sets the entry's validators (either may be NULL)
 * for origin_fetch_cond and returns non-zero; 0 for a plain fetch. Borrowed from the fill. */
int fill_validators(const struct fill *f, const char **etag, const char **last_modified);

/* The revalidation's 304 named another ETag than the kept entry's (fill_header returned
 * -ESTALE, before any header): the fetch forgets the kept entry's validators and asks again
 * without conditions. Only the fetch calls it, before fill_header succeeded. */
void fill_forget_old(struct fill *f);

/* Non-zero once the origin answered the fill's revalidation with 304 (the kept body is copied
 * into the fill, fresh again). */
int fill_revalidated(const struct fill *f);

/* Non-zero when the origin failed and the fill serves the stale entry behind it instead
 * (store_set_stale_if_error): set before its header is known to readers. */
int fill_stale(const struct fill *f);

/* --stale-if-error: while the origin fails (no answer after the retries, or a 5xx), a stale
 * entry at most seconds past its expiry is served instead of ERROR (not kept again: it stays
 * stale, and the next request asks the origin again). 0 (the default): never. */
void store_set_stale_if_error(struct store *st, unsigned seconds);

/* Drops a reference; the last one frees the fill. NULL is a no-op. */
void fill_put(struct store *st, struct fill *f);

/* The fetch's side, for origin_fetch's sink (origin_fetch.h): the answer's header, then the
 * body in order. Each returns 0 or -errno (a write failure: the fetch must stop). */
int fill_header(struct fill *f, enum gf_status st, uint64_t length, const struct origin_meta *meta);
int fill_data(struct fill *f, const void *buf, size_t n);

/* Ends the fetch: rc 0 with a complete OK body makes it an entry (fsync, rename, evicting the
 * least recently used entries to stay under the bound) unless it is larger than the bound;
 * a body the origin does not let us keep (meta of fill_header) is served, not kept;
 * anything else fails the fill (readers see failed; the temporary file is removed). The next
 * store_get of the path finds the entry, or starts a new fill. Drops the fetch's reference. */
void fill_done(struct store *st, struct fill *f, int rc);

void store_stats(struct store *st, struct store_stats *out);

/* A reader found that the body of path's entry does not match crc, its CRC-32: logs it and
 * drops the entry (if it is still the one with that CRC), so the next request fetches it. */
void store_drop_damaged(struct store *st, const char *path, size_t path_len, uint32_t crc);

/* A reader read the whole body of path's entry through fd and it matched crc: later hits skip
 * the check while the file keeps the inode and change time it had in *before (fstat before
 * the read). A file written meanwhile is not marked. */
void store_mark_verified(struct store *st, const char *path, size_t path_len, uint32_t crc, int fd,
                         const struct stat *before);

/* Drops the complete entry of path (prefix 0), or every complete entry whose path starts with
 * path (prefix 1), removing their files; requests already reading one keep their open file.
 * A matching fill in progress is cut from the store: its readers finish, but no new request
 * joins it (the next one starts a fill of its own) and its body is not kept. Returns the
 * entries dropped plus the fills cut (0 when none). */
uint64_t store_purge(struct store *st, const char *path, size_t path_len, int prefix);

#endif
