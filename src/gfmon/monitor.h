/* monitor.h - gfmon's model: a sample of every daemon's stats object of this uid (the cache and
 * every proxy), per-second rates between two samples, and its renderings: plain text lines (the
 * screen and --once) and one JSON object (--json). No terminal code here. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_MONITOR_H
#define GF_MONITOR_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "stats.h"

#define MON_DAEMONS_MAX 64u /* stats objects looked at per sample */
#define MON_EVENTS_MAX  4u  /* "started"/"stopped" lines kept */
#define MON_LINE_MAX    256u

/* One daemon in one sample. */
struct mon_daemon {
    pid_t pid;
    int alive;                /* its process runs (a killed daemon's object stays until swept) */
    struct stats_snapshot s;  /* valid when ok */
    struct stats_slot *slots; /* s.nslots records */
    int ok;                   /* attached and read */
    /* Per second since the previous sample of the same daemon; rated is 0 on the first one,
     * then the rates below are averages since its start. */
    int rated;
    double msg_rate, req_rate, byte_rate;
};

struct mon_event {
    int64_t unix_ms;
    char text[96];
};

struct mon_sample {
    int64_t unix_ms, mono_ms;
    struct mon_daemon d[MON_DAEMONS_MAX];
    unsigned n;
    int cache; /* index in d of the cache shown (the newest running one), or -1 */
    struct mon_event events[MON_EVENTS_MAX]; /* newest last */
    unsigned nevents;
};

/* Takes a sample of every stats object of this euid and of this process's instance
 * (ipc_instance: the default instance unless gfmon --instance); other instances' are skipped. prev
 * (may be NULL) is the previous sample: rates are computed against it and its events carried over,
 * with a "started"/"stopped" event for each daemon that appeared or went. Returns 0, or -errno when
 * /dev/shm cannot be read. Free with mon_sample_release. */
int mon_sample_take(struct mon_sample *out, const struct mon_sample *prev);
void mon_sample_release(struct mon_sample *s);

/* Renders the sample as text lines of at most width columns (20..MON_LINE_MAX-1) and at most
 * rows lines (0: as many as needed), calling line(arg, row, text, emphasis) for each. fancy
 * uses block characters for the bars (a UTF-8 terminal). Returns the number of lines. */
typedef void (*mon_line_fn)(void *arg, unsigned row, const char *text, int emphasis);
unsigned mon_render(const struct mon_sample *s, unsigned width, unsigned rows, int fancy,
                    mon_line_fn line, void *arg);

/* Writes the sample as one JSON object and a newline:
 *   {"time_unix_ms": T, "uid": U, "instance": "NAME", "cache": {...} or null, "proxies": [{...},
 * ...]} Each daemon: pid, alive, uptime_ms, config, requests {hit, miss, ...}, bytes, messages,
 * queue {depth, capacity} (cache), store {entries, bytes} (cache), the other counters, active,
 * hit_ratio, latency_us {bounds, buckets, sum, count}, and its slots ("segments" of a proxy,
 * "workers" of the cache), each {state, ...}. Returns 0 or -EIO. */
int mon_json(const struct mon_sample *s, FILE *f);

#endif
