/* access_log.h - webproxy's access log: one line per request, appended with one write(2), so
 * lines from many workers never interleave; reopened on request (SIGUSR1, for logrotate).
 *
 * A line (fields separated by one space; docs/observability.md):
 *   2026-12-04T15:30:00.123Z 127.0.0.1:40312 /a/b.txt OK 1234 0.002 HIT
 * time (UTC, at the end of the response), client address:port, path, GETFILE status sent,
 * content bytes sent, duration in seconds from the accept, cache result. A field that does not
 * apply is "-". */
/* SPDX-License-Identifier: MIT */
#ifndef GF_ACCESS_LOG_H
#define GF_ACCESS_LOG_H

#include <stdatomic.h>

#include "gfserver.h"

/* The cache result of a request (the note the handler sets, gfs_ctx_set_note). */
#define ALOG_HIT    "HIT"    /* served from the cache */
#define ALOG_MISS   "MISS"   /* the cache did not have it; answered FILE_NOT_FOUND */
#define ALOG_ORIGIN "ORIGIN" /* answered from the origin (also after the cache could not) */
#define ALOG_ERROR  "ERROR"  /* failed: ERROR sent, or the transfer was cut short */
/* Reserved for a revalidating cache: FILL, STALE, REVALIDATED. */

struct access_log;

/* Opens path for appending (created 0644 if missing), or uses stderr for "-". reopen is the
 * flag a signal handler sets (signals_install_reopen); each line checks it first and, when
 * set, clears it and reopens path (never for stderr). Returns 0 and *out, or -errno. */
int access_log_open(struct access_log **out, const char *path, atomic_int *reopen);

/* Writes the line for one request: a gfs_done_fn, arg being the struct access_log. A failed
 * reopen keeps the old file; a failed write loses that line only. Thread-safe. */
void access_log_done(const struct gfs_done *d, void *arg);

/* Closes the file. NULL is a no-op. */
void access_log_close(struct access_log *l);

#endif
