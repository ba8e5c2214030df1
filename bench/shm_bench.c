/* shm_bench.c - the data channel alone: a producer process streams files through one segment
 * (shm_chan.h) to the consumer, by segment size, against plain memcpy of the same chunks. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "log.h"
#include "peer.h"
#include "shm_chan.h"

#define MAX_SIZES 16
#define WAIT_MS   10000
#define DEF_SIZES "512,8192,65536,1048576,4194304"

static const char usage[] =
    "usage: shm_bench [-s sizes] [-f file_bytes] [-d seconds] [-a] [-2] [-h]\n"
    "  -s sizes       comma-separated segment sizes in bytes (default " DEF_SIZES ")\n"
    "  -f file_bytes  bytes per request (default 67108864, beyond the CPU caches like most\n"
    "                 files; at most 512 x the segment size)\n"
    "  -d seconds     time per segment size (default 1)\n"
    "  -a             the producer attaches and detaches for every request (as a cache that\n"
    "                 attaches per request would); default: attach once per size\n"
    "  -2             pin the consumer to CPU 0 and the producer to CPU 1\n"
    "A child process produces (memcpy from a file image into each slot), the parent consumes\n"
    "(memcpy from each slot into a buffer). Prints one line per size: shm_bench seg_size=\n"
    "nslots= slot_cap= requests= gbps= memcpy_gbps= ratio= verified= pinned=\n";

static int split_cpus; /* -2: set once in main before any fork */

static int pin_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

static void fill(unsigned char *p, size_t n)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)x;
    }
}

/* One request on the producer side: RESPONSE with the first bytes, then DATA. */
static int produce(struct shm_seg *seg, uint64_t gen, const unsigned char *src, uint64_t len,
                   int peer)
{
    uint64_t off = 0;
    int first = 1;

    /* A request restarts the slot sequence; shm_seg_attach starts at 0 too. */
    seg->seq = 0;
    while (first || off < len) {
        unsigned char *payload;
        uint64_t n = len - off < seg->slot_cap ? len - off : seg->slot_cap;
        int rc = shm_seg_reserve(seg, peer, WAIT_MS, NULL, &payload);

        if (rc < 0)
            return rc;
        memcpy(payload, src + off, (size_t)n);
        shm_seg_publish(seg, gen, first ? SHM_SLOT_RESPONSE : SHM_SLOT_DATA, SHM_STATUS_OK,
                        first ? len : 0, (uint32_t)n);
        off += n;
        first = 0;
    }
    return 0;
}

static int producer_main(const char *name, uint64_t size, int rfd, const unsigned char *src,
                         uint64_t len, int attach_each)
{
    struct shm_seg seg = {0};
    int peer = peer_open(getppid()), rc = 0;
    uint64_t gen;

    if (peer < 0) {
        log_err(-peer, "cannot open a pidfd for the consumer");
        return 1;
    }
    for (;;) {
        ssize_t n = read(rfd, &gen, sizeof(gen));

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(gen) || gen == 0)
            break;
        if (!seg.hdr) {
            rc = shm_seg_attach(&seg, name, size);
            if (rc < 0) {
                log_err(-rc, "cannot attach '%s'", name);
                break;
            }
        }
        rc = produce(&seg, gen, src, len, peer);
        if (rc < 0) {
            log_err(-rc, "producer failed on request %llu", (unsigned long long)gen);
            break;
        }
        if (attach_each)
            shm_seg_detach(&seg);
    }
    shm_seg_detach(&seg);
    close(peer);
    return rc < 0 ? 1 : 0;
}

/* One request on the consumer side; copies the content into dst. */
static int consume(struct shm_seg *seg, uint64_t gen, unsigned char *dst, uint64_t cap, int peer)
{
    uint64_t left = UINT64_MAX, off = 0;

    do {
        struct shm_chunk ch;
        int rc = shm_seg_next(seg, gen, left, peer, WAIT_MS, NULL, &ch);

        if (rc < 0)
            return rc;
        if (ch.kind == SHM_SLOT_RESPONSE) {
            if (ch.status != SHM_STATUS_OK || ch.file_len > cap) {
                shm_seg_release(seg);
                return -EBADMSG;
            }
            left = ch.file_len;
        }
        memcpy(dst + off, ch.data, ch.len);
        off += ch.len;
        left -= ch.len;
        shm_seg_release(seg);
    } while (left > 0);
    return 0;
}

static double memcpy_gbps(unsigned char *dst, const unsigned char *src, uint64_t len,
                          uint32_t chunk, double secs)
{
    int64_t t0 = clock_mono_ns(), end = t0 + (int64_t)(secs * 1e9), t;
    uint64_t bytes = 0;

    do {
        for (uint64_t off = 0; off < len; off += chunk) {
            uint64_t n = len - off < chunk ? len - off : chunk;

            memcpy(dst + off, src + off, (size_t)n);
        }
        bytes += len;
        t = clock_mono_ns();
    } while (t < end);
    return (double)bytes / ((double)(t - t0) / 1e9) / 1e9;
}

static int run_size(uint32_t serial, uint64_t size, const unsigned char *src, unsigned char *dst,
                    uint64_t len, unsigned secs, int attach_each)
{
    struct shm_seg seg = {0};
    int pfd[2], peer = -1, rc, status, verified = 0;
    uint64_t gen = 0, done = 0;
    int64_t t0, t = 0;
    pid_t pid;

    /* Small segments move small files, so that each size takes about the same time. */
    uint64_t cap = size * 512 > (256u << 10) ? size * 512 : (256u << 10);
    if (len > cap)
        len = cap;
    rc = shm_seg_create(&seg, serial, size);
    if (rc < 0) {
        log_err(-rc, "cannot create a segment of %llu bytes", (unsigned long long)size);
        return 1;
    }
    if (pipe(pfd) < 0) {
        rc = -errno;
        goto out_seg;
    }
    pid = fork();
    if (pid < 0) {
        rc = -errno;
        close(pfd[0]);
        close(pfd[1]);
        goto out_seg;
    }
    if (pid == 0) {
        close(pfd[1]);
        if (split_cpus && pin_cpu(1) < 0)
            _exit(1);
        _exit(producer_main(seg.name, size, pfd[0], src, len, attach_each));
    }
    close(pfd[0]);
    peer = peer_open(pid);
    t0 = clock_mono_ns();
    do {
        gen++;
        shm_seg_begin(&seg, gen);
        if (write(pfd[1], &gen, sizeof(gen)) != (ssize_t)sizeof(gen)) {
            rc = -EPIPE;
            break;
        }
        rc = consume(&seg, gen, dst, len, peer);
        if (rc < 0)
            break;
        if (gen == 1)
            verified = memcmp(dst, src, (size_t)len) == 0;
        done++;
        t = clock_mono_ns();
    } while (t - t0 < (int64_t)secs * 1000000000);
    close(pfd[1]); /* EOF: the producer exits */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (peer >= 0)
        close(peer);
    if (rc == 0) {
        double gbps = (double)(done * len) / ((double)(t - t0) / 1e9) / 1e9;
        double mc = memcpy_gbps(dst, src, len, seg.slot_cap, secs < 1 ? 1 : (double)secs / 2);

        printf("shm_bench seg_size=%llu nslots=%u slot_cap=%u requests=%llu gbps=%.3f "
               "memcpy_gbps=%.3f ratio=%.3f verified=%d pinned=%d\n",
               (unsigned long long)size, seg.nslots, seg.slot_cap, (unsigned long long)done, gbps,
               mc, gbps / mc, verified, split_cpus);
        fflush(stdout);
    } else {
        log_err(-rc, "segment size %llu: transfer failed", (unsigned long long)size);
    }
out_seg:
    shm_seg_destroy(&seg);
    return rc < 0 || !verified ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *sizes = DEF_SIZES;
    uint64_t len = 64u << 20, list[MAX_SIZES];
    unsigned secs = 1, n = 0;
    int opt, attach_each = 0, fails = 0, rc;
    unsigned char *src, *dst;

    log_set_role("shm_bench");
    while ((opt = getopt(argc, argv, "s:f:d:a2h")) != -1) {
        switch (opt) {
        case 's':
            sizes = optarg;
            break;
        case 'f':
            if (cli_parse_u64(optarg, 1, 1u << 30, &len) < 0)
                cli_die_range("shm_bench", usage, 'f', optarg, 1, 1u << 30);
            break;
        case 'd':
            if (cli_parse_uint(optarg, 1, 600, &secs) < 0)
                cli_die_range("shm_bench", usage, 'd', optarg, 1, 600);
            break;
        case 'a':
            attach_each = 1;
            break;
        case '2':
            split_cpus = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            cli_die_usage("shm_bench", usage, "unknown option");
        }
    }
    if (optind < argc)
        cli_die_usage("shm_bench", usage, "unexpected argument '%s'", argv[optind]);
    for (const char *p = sizes; *p && n < MAX_SIZES;) {
        char tok[24];
        size_t k = strcspn(p, ",");

        if (k == 0 || k >= sizeof(tok))
            cli_die_usage("shm_bench", usage, "-s: bad list '%s'", sizes);
        memcpy(tok, p, k);
        tok[k] = '\0';
        if (cli_parse_u64(tok, SHM_SEG_MIN, SHM_SEG_MAX, &list[n]) < 0)
            cli_die_range("shm_bench", usage, 's', tok, SHM_SEG_MIN, SHM_SEG_MAX);
        n++;
        p += k + (p[k] == ',');
    }
    src = malloc((size_t)len);
    dst = malloc((size_t)len);
    if (!src || !dst) {
        log_err(ENOMEM, "cannot allocate two buffers of %llu bytes", (unsigned long long)len);
        return 1;
    }
    fill(src, (size_t)len);
    memset(dst, 0, (size_t)len);
    signal(SIGPIPE, SIG_IGN);
    if (split_cpus && (rc = pin_cpu(0)) < 0) {
        log_err(-rc, "cannot pin to CPU 0");
        return 1;
    }
    for (unsigned i = 0; i < n; i++)
        fails += run_size(i + 1, list[i], src, dst, len, secs, attach_each);
    free(src);
    free(dst);
    return fails ? 1 : 0;
}
