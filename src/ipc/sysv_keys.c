/* sysv_keys.c - keys of ours and the sweep of a dead owner's System V objects. */
/* SPDX-License-Identifier: MIT */
#include "sysv_keys.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/random.h>
#include <sys/shm.h>
#include <unistd.h>

key_t sysv_key_make(enum sysv_kind kind, uint32_t low)
{
    if ((kind != SYSV_KIND_CMD && kind != SYSV_KIND_SEG && kind != SYSV_KIND_CMDR) || low == 0 ||
        low > SYSV_KEY_LOW_MAX)
        return (key_t)-1;
    return (key_t)(int32_t)((SYSV_KEY_MAGIC << 24) | ((uint32_t)kind << SYSV_KEY_LOW_BITS) | low);
}

int sysv_key_parse(key_t key, enum sysv_kind *kind, uint32_t *low)
{
    uint32_t k = (uint32_t)key, kd = (k >> SYSV_KEY_LOW_BITS) & 3u, lo = k & SYSV_KEY_LOW_MAX;

    if ((k >> 24) != SYSV_KEY_MAGIC || kd > SYSV_KIND_CMDR || lo == 0)
        return -EINVAL;
    *kind = (enum sysv_kind)kd;
    *low = lo;
    return 0;
}

uint32_t sysv_random_serial(void)
{
    uint32_t v = 0;

    for (;;) {
        if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
            v = (uint32_t)getpid() * 2654435761u ^ (uint32_t)v; /* never fails in practice */
        v &= SYSV_KEY_LOW_MAX;
        if (v != 0)
            return v;
    }
}

/* 1 when pid certainly no longer exists. */
static int pid_dead(uint32_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* One row of /proc/sysvipc/msg or /proc/sysvipc/shm, the columns we need. */
struct sysv_row {
    long long key;
    int id;
    unsigned perms;
    unsigned long long size; /* shm only */
    unsigned cpid;           /* shm only */
    unsigned uid, cuid;
};

/* Reads the next row (the header line is skipped by the caller). Returns 1, 0 at the end, or
 * -EBADMSG for a line that does not parse (skipped). */
static int read_row(FILE *f, int shm, struct sysv_row *r)
{
    char line[512];
    unsigned gid, cgid, lpid, nattch, qnum;
    unsigned long long cbytes;
    int n;

    if (!fgets(line, sizeof line, f))
        return 0;
    if (shm)
        n = sscanf(line, "%lld %d %o %llu %u %u %u %u %u %u %u", &r->key, &r->id, &r->perms,
                   &r->size, &r->cpid, &lpid, &nattch, &r->uid, &gid, &r->cuid, &cgid);
    else
        n = sscanf(line, "%lld %d %o %llu %u %u %u %u %u %u %u", &r->key, &r->id, &r->perms,
                   &cbytes, &qnum, &lpid, &nattch, &r->uid, &gid, &r->cuid, &cgid);
    return n == 11 ? 1 : -EBADMSG;
}

/* Calls fn(row, arg) for every row of /proc/sysvipc/<what>. Returns 0 or -errno. */
static int for_each_row(const char *what, int shm, void (*fn)(const struct sysv_row *, void *),
                        void *arg)
{
    char path[64], hdr[512];
    struct sysv_row r;
    FILE *f;
    int rc;

    snprintf(path, sizeof path, "/proc/sysvipc/%s", what);
    f = fopen(path, "re");
    if (!f)
        return -errno;
    if (!fgets(hdr, sizeof hdr, f)) {
        fclose(f);
        return 0;
    }
    while ((rc = read_row(f, shm, &r)) != 0)
        if (rc > 0)
            fn(&r, arg);
    fclose(f);
    return 0;
}

struct sweep_ctx {
    uid_t uid;
    unsigned kinds;
    int count_only;
    pid_t pid; /* count_only: also count removed segments this pid created */
    int removed, counted;
    struct sysv_sweep_stats *st;
};

static void sweep_msg(const struct sysv_row *r, void *arg)
{
    struct sweep_ctx *c = arg;
    enum sysv_kind kind;
    uint32_t low;

    if (!(c->kinds & SYSV_SWEEP_CMD) || r->uid != c->uid || r->cuid != c->uid ||
        sysv_key_parse((key_t)r->key, &kind, &low) < 0 || kind == SYSV_KIND_SEG)
        return;
    if (c->count_only) {
        c->counted++;
        return;
    }
    if (kind == SYSV_KIND_CMDR)
        return; /* no pid in the key: its owner is published (sysv_pub_sweep) */
    if (!pid_dead(low)) {
        c->st->live_kept++;
        return;
    }
    if (msgctl(r->id, IPC_RMID, NULL) == 0) {
        c->removed++;
        c->st->queues_removed++;
    }
}

static void sweep_shm(const struct sysv_row *r, void *arg)
{
    struct sweep_ctx *c = arg;
    enum sysv_kind kind;
    uint32_t low;

    if (!(c->kinds & SYSV_SWEEP_SEG) || r->uid != c->uid || r->cuid != c->uid)
        return;
    if (c->count_only && r->key == 0 && c->pid > 0 && r->cpid == (unsigned)c->pid) {
        c->counted++; /* marked for removal, still attached */
        return;
    }
    if (sysv_key_parse((key_t)r->key, &kind, &low) < 0 || kind != SYSV_KIND_SEG)
        return;
    if (c->count_only) {
        c->counted++;
        return;
    }
    if (!pid_dead(r->cpid)) {
        c->st->live_kept++;
        return;
    }
    if (shmctl(r->id, IPC_RMID, NULL) == 0) {
        c->removed++;
        c->st->segs_removed++;
    }
}

static int sweep_run(struct sweep_ctx *c)
{
    int rc = for_each_row("msg", 0, sweep_msg, c);

    if (rc == 0)
        rc = for_each_row("shm", 1, sweep_shm, c);
    return rc;
}

int sysv_sweep_dead(uid_t uid, unsigned kinds, struct sysv_sweep_stats *st)
{
    struct sysv_sweep_stats local = {0};
    struct sweep_ctx c = {.uid = uid, .kinds = kinds, .st = st ? st : &local};
    int rc;

    *c.st = (struct sysv_sweep_stats){0};
    rc = sweep_run(&c);
    return rc < 0 ? rc : c.removed;
}

int sysv_count_ours(uid_t uid, unsigned kinds, pid_t pid)
{
    struct sysv_sweep_stats unused = {0};
    struct sweep_ctx c = {.uid = uid, .kinds = kinds, .count_only = 1, .pid = pid, .st = &unused};
    int rc = sweep_run(&c);

    return rc < 0 ? rc : c.counted;
}
