/* monitor.c - gfmon's samples of the stats objects, their rates, text and JSON renderings. */
/* SPDX-License-Identifier: MIT */
#include "monitor.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

static uint64_t requests_of(const struct stats_snapshot *s)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < STATS_OUTCOMES; i++)
        n += s->w[i];
    return n;
}

/* Hits over the requests that were looked up in a cache (hit, miss, fill, stale); -1: none. */
static double hit_ratio(const struct stats_snapshot *s)
{
    uint64_t looked = s->w[STATS_HIT] + s->w[STATS_MISS] + s->w[STATS_FILL] + s->w[STATS_STALE];

    return looked ? (double)(s->w[STATS_HIT] + s->w[STATS_STALE]) / (double)looked : -1.0;
}

static const struct mon_daemon *find_prev(const struct mon_sample *prev, const struct mon_daemon *d)
{
    if (prev == NULL)
        return NULL;
    for (unsigned i = 0; i < prev->n; i++)
        if (prev->d[i].pid == d->pid && prev->d[i].ok &&
            prev->d[i].s.start_unix_ms == d->s.start_unix_ms)
            return &prev->d[i];
    return NULL;
}

static void add_event(struct mon_sample *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_event(struct mon_sample *s, const char *fmt, ...)
{
    va_list ap;

    if (s->nevents == MON_EVENTS_MAX) {
        memmove(&s->events[0], &s->events[1], (MON_EVENTS_MAX - 1) * sizeof s->events[0]);
        s->nevents--;
    }
    struct mon_event *e = &s->events[s->nevents++];
    e->unix_ms = s->unix_ms;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof e->text, fmt, ap);
    va_end(ap);
}

static void rate(struct mon_daemon *d, const struct mon_daemon *p, int64_t dt_ms)
{
    double secs;
    uint64_t msg = d->s.w[STATS_C_MESSAGES], req = requests_of(&d->s), b = d->s.w[STATS_C_BYTES];

    if (p != NULL && dt_ms > 0) {
        secs = (double)dt_ms / 1000.0;
        d->rated = 1;
        msg -= p->s.w[STATS_C_MESSAGES] <= msg ? p->s.w[STATS_C_MESSAGES] : msg;
        req -= requests_of(&p->s) <= req ? requests_of(&p->s) : req;
        b -= p->s.w[STATS_C_BYTES] <= b ? p->s.w[STATS_C_BYTES] : b;
    } else {
        secs = d->s.uptime_ms > 0 ? (double)d->s.uptime_ms / 1000.0 : 1.0;
    }
    d->msg_rate = (double)msg / secs;
    d->req_rate = (double)req / secs;
    d->byte_rate = (double)b / secs;
}

static int read_daemon(struct mon_daemon *d, pid_t pid)
{
    struct stats_region *r = NULL;
    int rc;

    memset(d, 0, sizeof *d);
    d->pid = pid;
    d->alive = pid_alive(pid);
    rc = stats_attach(&r, pid);
    if (rc < 0)
        return rc;
    rc = stats_snapshot(r, &d->s);
    if (rc == 0 && strcmp(d->s.instance, ipc_instance()) != 0)
        rc = -ESRCH; /* another instance's */
    if (rc == 0 && d->s.nslots > 0) {
        d->slots = calloc(d->s.nslots, sizeof *d->slots);
        if (d->slots == NULL)
            rc = -ENOMEM;
        /* A slot whose writer stopped mid-update (-EAGAIN) stays blank (FREE): the daemon
         * and its other slots are still shown. */
        for (unsigned i = 0; rc == 0 && i < d->s.nslots; i++)
            if (stats_slot_read(r, i, &d->slots[i]) < 0)
                memset(&d->slots[i], 0, sizeof d->slots[i]);
    }
    stats_close(r);
    if (rc < 0) {
        free(d->slots);
        d->slots = NULL;
        return rc;
    }
    d->ok = 1;
    return 0;
}

int mon_sample_take(struct mon_sample *out, const struct mon_sample *prev)
{
    pid_t pids[MON_DAEMONS_MAX];
    int n;

    memset(out, 0, sizeof *out);
    out->cache = -1;
    out->unix_ms = now_ms(CLOCK_REALTIME);
    out->mono_ms = now_ms(CLOCK_MONOTONIC);
    if (prev != NULL) {
        memcpy(out->events, prev->events, sizeof out->events);
        out->nevents = prev->nevents;
    }
    n = stats_list(pids, MON_DAEMONS_MAX);
    if (n < 0)
        return n;
    if (n > (int)MON_DAEMONS_MAX)
        n = (int)MON_DAEMONS_MAX;
    for (int i = 0; i < n; i++) {
        struct mon_daemon *d = &out->d[out->n];
        /* Gone between the listing and the attach, or being created: not shown this time. */
        if (read_daemon(d, pids[i]) < 0)
            continue;
        out->n++;
        const struct mon_daemon *p = find_prev(prev, d);
        rate(d, p, p != NULL ? out->mono_ms - prev->mono_ms : 0);
        const char *role = stats_role_name(d->s.role);
        if (prev != NULL && p == NULL)
            add_event(out, "%s %ld started", role, (long)d->pid);
        if (p != NULL && p->alive && !d->alive)
            add_event(out, "%s %ld died (its stats object is left until swept)", role,
                      (long)d->pid);
        if (d->s.role == STATS_ROLE_CACHE) {
            const struct mon_daemon *c = out->cache >= 0 ? &out->d[out->cache] : NULL;
            if (c == NULL || (d->alive && !c->alive) ||
                (d->alive == c->alive && d->s.start_unix_ms > c->s.start_unix_ms))
                out->cache = (int)(out->n - 1);
        }
    }
    for (unsigned i = 0; prev != NULL && i < prev->n; i++) {
        int seen = 0;
        for (unsigned j = 0; j < out->n && !seen; j++)
            seen = out->d[j].pid == prev->d[i].pid;
        if (!seen)
            add_event(out, "%s %ld stopped", stats_role_name(prev->d[i].s.role),
                      (long)prev->d[i].pid);
    }
    return 0;
}

void mon_sample_release(struct mon_sample *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        free(s->d[i].slots);
        s->d[i].slots = NULL;
    }
    s->n = 0;
}

/* --- text ----------------------------------------------------------------------------------- */

struct out {
    mon_line_fn line;
    void *arg;
    unsigned width, rows, row;
};

static void emit(struct out *o, int emphasis, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void emit(struct out *o, int emphasis, const char *fmt, ...)
{
    char buf[MON_LINE_MAX];
    va_list ap;

    if (o->rows > 0 && o->row >= o->rows)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* Cut at width columns: a UTF-8 continuation byte (10xxxxxx) takes no column. */
    unsigned cols = 0;
    for (size_t i = 0; buf[i] != '\0'; i++) {
        if (((unsigned char)buf[i] & 0xc0) == 0x80)
            continue;
        if (cols++ == o->width) {
            buf[i] = '\0';
            break;
        }
    }
    o->line(o->arg, o->row++, buf, emphasis);
}

static const char *human(char *buf, size_t cap, double v, const char *unit)
{
    static const char *const pre[] = {"", "k", "M", "G", "T"};
    unsigned i = 0;

    while (v >= 1000.0 && i < 4) {
        v /= 1000.0;
        i++;
    }
    snprintf(buf, cap, i == 0 ? "%.0f %s%s" : "%.1f %s%s", v, pre[i], unit);
    return buf;
}

/* A size in binary units: 512 B, 8 KiB, 1 MiB. */
static const char *size_bin(char *buf, size_t cap, uint64_t v)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB"};
    unsigned i = 0;

    while (v >= 1024 && v % 1024 == 0 && i < 3) {
        v /= 1024;
        i++;
    }
    snprintf(buf, cap, "%llu %s", (unsigned long long)v, unit[i]);
    return buf;
}

static const char *duration(char *buf, size_t cap, uint64_t ms)
{
    uint64_t s = ms / 1000;

    if (s >= 3600)
        snprintf(buf, cap, "%lluh%02llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60));
    else
        snprintf(buf, cap, "%llum%02llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    return buf;
}

static const char *ratio(char *buf, size_t cap, const struct stats_snapshot *s)
{
    double r = hit_ratio(s);

    if (r < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.1f%%", r * 100.0);
    return buf;
}

/* A bar of cells cells, filled in proportion to v / max. */
static const char *bar(char *buf, size_t cap, uint64_t v, uint64_t max, unsigned cells, int fancy)
{
    unsigned fill = max ? (unsigned)((v > max ? max : v) * cells / max) : 0;
    size_t n = 0;

    for (unsigned i = 0; i < cells && n + 4 < cap; i++) {
        const char *c = fancy ? (i < fill ? "\u2593" : "\u2591") : (i < fill ? "#" : ".");
        size_t l = strlen(c);
        memcpy(buf + n, c, l);
        n += l;
    }
    buf[n] = '\0';
    return buf;
}

/* The path's end when it is longer than room. */
static const char *tail(const char *path, unsigned room)
{
    size_t n = strlen(path);

    return n <= room || room < 4 ? path : path + (n - room);
}

/* A segment size, short: 512, 64K, 1M (exact binary units only), else bytes. */
static const char *size_short(char *buf, size_t cap, uint64_t v)
{
    static const char units[] = "KMG";
    unsigned u = 0;

    while (u < 3 && v >= 1024 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu", (unsigned long long)v);
    else
        snprintf(buf, cap, "%llu%c", (unsigned long long)v, units[u - 1]);
    return buf;
}

/* Non-zero when a proxy's segments are not all of one size (webproxy --segments SIZE:COUNT). */
static int has_classes(const struct mon_daemon *d)
{
    for (unsigned i = 1; i < d->s.nslots; i++)
        if (d->slots[i].seg_size != d->slots[0].seg_size)
            return 1;
    return 0;
}

/* The size classes of a proxy's segments, "32x64K+8x1M" (slots are in class order). */
static void classes_text(char *buf, size_t cap, const struct mon_daemon *d)
{
    size_t n = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < d->s.nslots && n < cap;) {
        unsigned j = i;
        char sz[24];
        while (j < d->s.nslots && d->slots[j].seg_size == d->slots[i].seg_size)
            j++;
        int w = snprintf(buf + n, cap - n, "%s%ux%s", i ? "+" : "", j - i,
                         size_short(sz, sizeof sz, d->slots[i].seg_size));
        if (w < 0)
            break;
        n += (size_t)w;
        i = j;
    }
}

static unsigned pct(const struct stats_slot *sl)
{
    return sl->total ? (unsigned)(sl->done * 100 / sl->total) : 0;
}

static void slot_line(struct out *o, const struct mon_daemon *d, unsigned i)
{
    const struct stats_slot *sl = &d->slots[i];
    char head[64];
    int cache = d->s.role == STATS_ROLE_CACHE;

    if (cache)
        snprintf(head, sizeof head, "  [%u] worker", i);
    else if (has_classes(d)) {
        char sz[24];
        snprintf(head, sizeof head, "  [%u] seg%u %s", i, (unsigned)sl->serial,
                 size_short(sz, sizeof sz, sl->seg_size));
    } else
        snprintf(head, sizeof head, "  [%u] seg%u", i, (unsigned)sl->serial);
    if (sl->state != STATS_SLOT_IN_USE) {
        emit(o, 0, "%-16s %s", head, stats_slot_state_name(sl->state));
        return;
    }
    char who[32];
    if (cache)
        snprintf(who, sizeof who, "proxy %ld", (long)sl->peer);
    else
        snprintf(who, sizeof who, "thread %ld", (long)sl->worker);
    char prog[16];
    snprintf(prog, sizeof prog, sl->total ? "%3u%%" : "  -", pct(sl));
    int used = snprintf(NULL, 0, "%-16s %-9s (%s, %s xfer)  ", head, "IN_USE", who, prog);
    unsigned room = o->width > (unsigned)used + 4 ? o->width - (unsigned)used : 4;
    emit(o, 0, "%-16s %-9s (%s, %s xfer)  %s%s", head, "IN_USE", who, prog,
         strlen(sl->path) > room ? "..." : "", tail(sl->path, room > 3 ? room - 3 : room));
}

/* One line per segment state: "U" in use, "." free, "A" abandoned, wrapped. */
static void slot_map(struct out *o, const struct mon_daemon *d)
{
    char buf[MON_LINE_MAX];
    unsigned per = o->width > 16 ? o->width - 14 : 2, i = 0;

    while (i < d->s.nslots) {
        size_t n = 0;
        for (; i < d->s.nslots && n < per && n + 1 < sizeof buf; i++) {
            enum stats_slot_state st = d->slots[i].state;
            buf[n++] = st == STATS_SLOT_IN_USE ? 'U' : st == STATS_SLOT_ABANDONED ? 'A' : '.';
        }
        buf[n] = '\0';
        emit(o, 0, "  %-10s %s",
             i <= per ? (d->s.role == STATS_ROLE_CACHE ? "workers" : "segments") : "", buf);
    }
}

static unsigned count_state(const struct mon_daemon *d, enum stats_slot_state st)
{
    unsigned n = 0;

    for (unsigned i = 0; i < d->s.nslots; i++)
        n += d->slots[i].state == st;
    return n;
}

static unsigned map_lines(const struct mon_daemon *d, unsigned width)
{
    unsigned per = width > 16 ? width - 14 : 2;

    return d->s.nslots ? (d->s.nslots + per - 1) / per : 0;
}

/* The slots of d: every one when room allows (budget lines), else a map and the IN_USE ones
 * that fit. */
static void slots_block(struct out *o, const struct mon_daemon *d, unsigned budget, int all)
{
    unsigned shown = 0;

    if (d->s.nslots == 0)
        return;
    if (all) {
        for (unsigned i = 0; i < d->s.nslots; i++)
            slot_line(o, d, i);
        return;
    }
    slot_map(o, d);
    unsigned room = budget > map_lines(d, o->width) ? budget - map_lines(d, o->width) : 0;
    for (unsigned i = 0; i < d->s.nslots && shown < room; i++) {
        if (d->slots[i].state == STATS_SLOT_IN_USE) {
            slot_line(o, d, i);
            shown++;
        }
    }
}

static void counts_line(struct out *o, const struct mon_daemon *d)
{
    const uint64_t *w = d->s.w;
    char r[16], b[32], extra[64] = "";

    if (d->s.role == STATS_ROLE_PROXY)
        snprintf(extra, sizeof extra, " origin %llu  not found %llu ",
                 (unsigned long long)w[STATS_ORIGIN], (unsigned long long)w[STATS_NOT_FOUND]);
    emit(o, 0, "  hit ratio %s  hit %llu  miss %llu %s error %llu  cancelled %llu  out %s/s",
         ratio(r, sizeof r, &d->s), (unsigned long long)w[STATS_HIT],
         (unsigned long long)w[STATS_MISS], extra, (unsigned long long)w[STATS_ERROR],
         (unsigned long long)w[STATS_CANCELLED], human(b, sizeof b, d->byte_rate, "B"));
}

unsigned mon_render(const struct mon_sample *s, unsigned width, unsigned rows, int fancy,
                    mon_line_fn line, void *arg)
{
    struct out o = {line, arg,
                    width < 20              ? 20
                    : width >= MON_LINE_MAX ? MON_LINE_MAX - 1
                                            : width,
                    rows, 0};
    const struct mon_daemon *c = s->cache >= 0 ? &s->d[s->cache] : NULL;
    char t[32], u[32], b1[32], b2[32], q[128];
    time_t now = (time_t)(s->unix_ms / 1000);
    struct tm tm;
    unsigned nproxies = 0, fixed, slots_all = 0, slot_budget = 0;
    int all = 1;

    gmtime_r(&now, &tm);
    strftime(t, sizeof t, "%H:%M:%S UTC", &tm);
    for (unsigned i = 0; i < s->n; i++)
        if (s->d[i].s.role == STATS_ROLE_PROXY) {
            nproxies++;
            slots_all += s->d[i].s.nslots;
        }
    /* Lines that are always there: title and blank, cache (4), per proxy 3 and a blank,
     * events and a blank. */
    fixed = 2 + (c ? 4 : 1) + nproxies * 4 + (s->nevents ? s->nevents + 1 : 0);
    if (c != NULL)
        slots_all += count_state(c, STATS_SLOT_IN_USE);
    if (rows > 0) {
        slot_budget = rows > fixed ? rows - fixed : 0;
        all = slots_all <= slot_budget;
    }
    emit(&o, 1, "gfmon: getfile live figures, uid %ld, instance %s   %s   (q quits)",
         (long)geteuid(), ipc_instance(), t);
    emit(&o, 0, "%s", "");
    if (c == NULL) {
        emit(&o, 1, "cache: not running");
    } else {
        const uint64_t *w = c->s.w;
        emit(&o, 1, "cache  pid %ld%s  up %s  %u workers  %s", (long)c->pid,
             c->alive ? "" : " NOT RUNNING", duration(u, sizeof u, c->s.uptime_ms),
             c->s.config.threads, c->s.config.text);
        emit(&o, 0, "  Message queue  depth %llu/%llu  %s  rate %.0f msg/s   active %llu/%u",
             (unsigned long long)w[STATS_G_QUEUE_DEPTH], (unsigned long long)w[STATS_G_QUEUE_CAP],
             bar(q, sizeof q, w[STATS_G_QUEUE_DEPTH], w[STATS_G_QUEUE_CAP], 10, fancy), c->msg_rate,
             (unsigned long long)w[STATS_G_ACTIVE], c->s.nslots);
        counts_line(&o, c);
        emit(&o, 0, "  store %llu entries, %s   rejected %llu  evictions %llu  purges %llu",
             (unsigned long long)w[STATS_G_STORE_ENTRIES],
             human(b1, sizeof b1, (double)w[STATS_G_STORE_BYTES], "B"),
             (unsigned long long)w[STATS_C_REJECTED], (unsigned long long)w[STATS_C_EVICTIONS],
             (unsigned long long)w[STATS_C_PURGES]);
        if (all) {
            for (unsigned i = 0; i < c->s.nslots; i++)
                if (c->slots[i].state == STATS_SLOT_IN_USE)
                    slot_line(&o, c, i);
        } else {
            unsigned shown = 0;
            for (unsigned i = 0; i < c->s.nslots && shown < slot_budget / 4; i++)
                if (c->slots[i].state == STATS_SLOT_IN_USE) {
                    slot_line(&o, c, i);
                    shown++;
                }
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        const struct mon_daemon *d = &s->d[i];
        if (d->s.role != STATS_ROLE_PROXY)
            continue;
        emit(&o, 0, "%s", "");
        char segs[96] = "";
        if (d->s.config.segments > 0 && has_classes(d)) {
            char cl[64];
            classes_text(cl, sizeof cl, d);
            snprintf(segs, sizeof segs, "  segments %s", cl);
        } else if (d->s.config.segments > 0)
            snprintf(segs, sizeof segs, "  %u segments x %s", d->s.config.segments,
                     size_bin(b2, sizeof b2, d->s.config.segment_size));
        emit(&o, 1, "proxy  pid %ld%s  port %u  up %s  %u threads%s  %s", (long)d->pid,
             d->alive ? "" : " NOT RUNNING", d->s.config.port,
             duration(u, sizeof u, d->s.uptime_ms), d->s.config.threads, segs, d->s.config.text);
        emit(&o, 0, "  Throughput %s/s  %.1f req/s  %.1f msg/s  Active Transfers %llu",
             human(b1, sizeof b1, d->byte_rate, "B"), d->req_rate, d->msg_rate,
             (unsigned long long)d->s.w[STATS_G_ACTIVE]);
        counts_line(&o, d);
        unsigned share = nproxies ? slot_budget / nproxies : 0;
        slots_block(&o, d, share, all);
    }
    if (s->nevents > 0) {
        emit(&o, 0, "%s", "");
        for (unsigned i = 0; i < s->nevents; i++) {
            time_t et = (time_t)(s->events[i].unix_ms / 1000);
            gmtime_r(&et, &tm);
            strftime(t, sizeof t, "%H:%M:%S", &tm);
            emit(&o, 0, "%s %s", t, s->events[i].text);
        }
    }
    return o.row;
}

/* --- JSON ----------------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void json_daemon(FILE *f, const struct mon_daemon *d)
{
    const uint64_t *w = d->s.w;
    double hr = hit_ratio(&d->s);

    fprintf(f, "{\"pid\": %ld, \"alive\": %s, \"role\": ", (long)d->pid,
            d->alive ? "true" : "false");
    json_str(f, stats_role_name(d->s.role));
    fprintf(f, ", \"start_unix_ms\": %llu, \"uptime_ms\": %llu",
            (unsigned long long)d->s.start_unix_ms, (unsigned long long)d->s.uptime_ms);
    fprintf(f,
            ", \"config\": {\"threads\": %u, \"segments\": %u, \"segment_size\": %llu, "
            "\"port\": %u, \"delay_us\": %u, \"text\": ",
            d->s.config.threads, d->s.config.segments, (unsigned long long)d->s.config.segment_size,
            d->s.config.port, d->s.config.delay_us);
    json_str(f, d->s.config.text);
    fprintf(f, "}, \"requests\": {");
    for (unsigned i = 0; i < STATS_OUTCOMES; i++)
        fprintf(f, "%s\"%s\": %llu", i ? ", " : "", stats_word_name(i), (unsigned long long)w[i]);
    fprintf(f, "}, \"requests_total\": %llu", (unsigned long long)requests_of(&d->s));
    for (unsigned i = STATS_C_BYTES; i < STATS_COUNTERS_END; i++)
        fprintf(f, ", \"%s\": %llu", stats_word_name(i), (unsigned long long)w[i]);
    fprintf(f,
            ", \"queue\": {\"depth\": %llu, \"capacity\": %llu}, \"store\": {\"entries\": %llu, "
            "\"bytes\": %llu}, \"active\": %llu",
            (unsigned long long)w[STATS_G_QUEUE_DEPTH], (unsigned long long)w[STATS_G_QUEUE_CAP],
            (unsigned long long)w[STATS_G_STORE_ENTRIES],
            (unsigned long long)w[STATS_G_STORE_BYTES], (unsigned long long)w[STATS_G_ACTIVE]);
    if (hr < 0)
        fprintf(f, ", \"hit_ratio\": null");
    else
        fprintf(f, ", \"hit_ratio\": %.4f", hr);
    fprintf(f,
            ", \"rates\": {\"per_second_since\": \"%s\", \"messages\": %.2f, \"requests\": %.2f, "
            "\"bytes\": %.2f}",
            d->rated ? "last_sample" : "start", d->msg_rate, d->req_rate, d->byte_rate);
    fprintf(f, ", \"latency_us\": {\"bounds\": [");
    for (unsigned i = 0; i + 1 < STATS_LAT_BUCKETS; i++)
        fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)stats_latency_bounds_us[i]);
    fprintf(f, "], \"buckets\": [");
    for (unsigned i = 0; i < STATS_LAT_BUCKETS; i++)
        fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)w[STATS_W_LAT_BUCKET + i]);
    fprintf(f, "], \"sum\": %llu, \"count\": %llu}", (unsigned long long)w[STATS_W_LAT_SUM_US],
            (unsigned long long)w[STATS_W_LAT_COUNT]);
    fprintf(f, ", \"size_bytes\": {\"bounds\": [");
    for (unsigned i = 0; i + 1 < STATS_SIZE_BUCKETS; i++)
        fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)stats_size_bounds[i]);
    fprintf(f, "], \"buckets\": [");
    for (unsigned i = 0; i < STATS_SIZE_BUCKETS; i++)
        fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)w[STATS_W_SIZE_BUCKET + i]);
    fprintf(f, "], \"sum\": %llu, \"count\": %llu}", (unsigned long long)w[STATS_C_BYTES],
            (unsigned long long)w[STATS_W_LAT_COUNT]);
    if (d->s.role == STATS_ROLE_PROXY) {
        /* Size classes: runs of one size (the pool numbers its slots class by class). */
        fprintf(f, ", \"classes\": [");
        for (unsigned i = 0; i < d->s.nslots;) {
            unsigned j = i;
            while (j < d->s.nslots && d->slots[j].seg_size == d->slots[i].seg_size)
                j++;
            fprintf(f, "%s{\"size\": %llu, \"count\": %u}", i ? ", " : "",
                    (unsigned long long)d->slots[i].seg_size, j - i);
            i = j;
        }
        fprintf(f, "]");
    }
    fprintf(f, ", \"%s\": [", d->s.role == STATS_ROLE_CACHE ? "workers" : "segments");
    for (unsigned i = 0; i < d->s.nslots; i++) {
        const struct stats_slot *sl = &d->slots[i];
        fprintf(f, "%s{\"index\": %u, \"state\": ", i ? ", " : "", i);
        json_str(f, stats_slot_state_name(sl->state));
        fprintf(f,
                ", \"serial\": %u, \"worker\": %ld, \"peer\": %ld, \"done\": %llu, "
                "\"total\": %llu, \"size\": %llu, \"path\": ",
                (unsigned)sl->serial, (long)sl->worker, (long)sl->peer,
                (unsigned long long)sl->done, (unsigned long long)sl->total,
                (unsigned long long)sl->seg_size);
        json_str(f, sl->state == STATS_SLOT_IN_USE ? sl->path : "");
        fputc('}', f);
    }
    fprintf(f, "]}");
}

int mon_json(const struct mon_sample *s, FILE *f)
{
    unsigned first = 1;

    /* An instance name needs no JSON escaping: [A-Za-z0-9_-] only. */
    fprintf(f, "{\"time_unix_ms\": %lld, \"uid\": %ld, \"instance\": \"%s\", \"cache\": ",
            (long long)s->unix_ms, (long)geteuid(), ipc_instance());
    if (s->cache >= 0)
        json_daemon(f, &s->d[s->cache]);
    else
        fprintf(f, "null");
    fprintf(f, ", \"proxies\": [");
    for (unsigned i = 0; i < s->n; i++) {
        if (s->d[i].s.role != STATS_ROLE_PROXY)
            continue;
        if (!first)
            fprintf(f, ", ");
        first = 0;
        json_daemon(f, &s->d[i]);
    }
    fprintf(f, "]}\n");
    return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}
