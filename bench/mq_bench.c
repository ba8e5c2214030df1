/* mq_bench.c - the request round trip of cache mode: cmdq request -> cache -> RESPONSE chunk in
 * the proxy's segment, for an empty file (no payload), median and p99. */
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
#include "cmdq.h"
#include "latency.h"
#include "log.h"
#include "peer.h"
#include "shm_chan.h"

#define WARMUP  200
#define WAIT_MS 2000

static const char usage[] =
    "usage: mq_bench [-n iterations] [-1 | -2] [-h]\n"
    "  -n iterations  round trips to time (default 20000)\n"
    "  -1             pin both processes to CPU 0 (the same-vCPU case)\n"
    "  -2             pin the proxy side to CPU 0 and the cache side to CPU 1 (across vCPUs)\n"
    "A child process runs the cache side (cmdq_server_*, shm_seg_attach/reserve/publish); the\n"
    "parent sends each request with cmdq_client_send and waits for the RESPONSE chunk with\n"
    "shm_seg_next. Run it where no simplecached of this uid runs (run.sh uses a private IPC\n"
    "namespace). Prints: mq_bench pinned=0|1|2 iterations= p50_us= p99_us= max_us=\n";

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int pin_cpu(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* The cache side: answers every request with an empty OK RESPONSE. */
static int cache_main(void)
{
    static unsigned char buf[sizeof(struct cmdq_request) + 1];
    struct cmdq_server srv;
    struct cmdq_request req;
    struct shm_seg seg = {0};
    struct sigaction sa = {.sa_handler = on_stop};
    pid_t holder = 0;
    int rc, peer = -1;

    sigaction(SIGTERM, &sa, NULL);
    rc = cmdq_server_open(&srv, &holder);
    if (rc < 0) {
        log_err(-rc, "cannot open the command queue (holder pid %d)", (int)holder);
        return 1;
    }
    while (!stop_requested) {
        unsigned char *payload;
        ssize_t n = cmdq_server_receive(&srv, buf, sizeof(buf), 100);

        if (n == -ETIMEDOUT || n == -EINTR)
            continue;
        if (n < 0) {
            log_err((int)-n, "receive failed");
            rc = (int)n;
            break;
        }
        rc = cmdq_request_decode(buf, (size_t)n, getuid(), &req);
        if (rc < 0)
            continue;
        if (!seg.hdr) { /* one proxy, one segment: attach once */
            rc = shm_seg_attach(&seg, req.seg_name, req.seg_size);
            if (rc < 0) {
                log_err(-rc, "cannot attach '%s'", req.seg_name);
                break;
            }
            peer = peer_open((pid_t)req.proxy_pid);
        }
        seg.seq = 0; /* a new request restarts the slot sequence */
        rc = shm_seg_reserve(&seg, peer, WAIT_MS, &stop_requested, &payload);
        if (rc < 0)
            continue;
        shm_seg_publish(&seg, req.generation, SHM_SLOT_RESPONSE, SHM_STATUS_OK, 0, 0);
    }
    shm_seg_detach(&seg);
    if (peer >= 0)
        close(peer);
    cmdq_server_close(&srv);
    return rc < 0 && !stop_requested ? 1 : 0;
}

int main(int argc, char **argv)
{
    static struct cmdq_request req;
    struct cmdq_client *cli = NULL;
    struct shm_seg seg = {0};
    struct lat_hist lat;
    unsigned iters = 20000;
    int opt, pinned = 0, rc, status;
    pid_t pid;

    log_set_role("mq_bench");
    while ((opt = getopt(argc, argv, "n:12h")) != -1) {
        switch (opt) {
        case 'n':
            if (cli_parse_uint(optarg, 1, 10000000, &iters) < 0)
                cli_die_range("mq_bench", usage, 'n', optarg, 1, 10000000);
            break;
        case '1':
            pinned = 1;
            break;
        case '2':
            pinned = 2;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            cli_die_usage("mq_bench", usage, "unknown option");
        }
    }
    if (optind < argc)
        cli_die_usage("mq_bench", usage, "unexpected argument '%s'", argv[optind]);
    if (pinned && (rc = pin_cpu(0)) < 0) {
        log_err(-rc, "cannot pin to CPU 0");
        return 1;
    }
    pid = fork();
    if (pid < 0) {
        log_err(errno, "fork failed");
        return 1;
    }
    if (pid == 0) {
        if (pinned == 2 && (rc = pin_cpu(1)) < 0) {
            log_err(-rc, "cannot pin to CPU 1");
            _exit(1);
        }
        _exit(cache_main());
    }

    rc = shm_seg_create(&seg, 1, 64 * 1024);
    if (rc == 0)
        rc = cmdq_client_new(&cli, NULL, 0);
    if (rc < 0) {
        log_err(-rc, "cannot set up the proxy side");
        goto out;
    }
    lat_init(&lat);
    /* The first sends fail with -ENOTCONN until the cache has opened its queue. */
    int64_t give_up = clock_mono_ms() + 10000;
    for (uint64_t gen = 1; gen <= (uint64_t)iters + WARMUP; gen++) {
        struct shm_chunk ch;
        int pidfd = -1;
        int64_t t0 = clock_mono_ns();

        shm_seg_begin(&seg, gen);
        rc = cmdq_request_init(&req, getpid(), seg.name, seg.size, gen, "/x", 2);
        if (rc == 0)
            rc = cmdq_client_send(cli, &req, WAIT_MS, &pidfd);
        if (rc == -ENOTCONN && clock_mono_ms() < give_up) {
            clock_sleep_ms(20);
            gen--;
            continue;
        }
        if (rc == 0)
            rc = shm_seg_next(&seg, gen, UINT64_MAX, pidfd, WAIT_MS, NULL, &ch);
        if (pidfd >= 0)
            close(pidfd);
        if (rc < 0) {
            log_err(-rc, "round trip %llu failed", (unsigned long long)gen);
            goto out;
        }
        shm_seg_release(&seg);
        if (gen > WARMUP)
            lat_add(&lat, (uint64_t)(clock_mono_ns() - t0));
    }
    printf("mq_bench pinned=%d iterations=%u p50_us=%.1f p99_us=%.1f max_us=%.1f\n", pinned, iters,
           (double)lat_quantile(&lat, 0.50) / 1e3, (double)lat_quantile(&lat, 0.99) / 1e3,
           (double)lat.max_ns / 1e3);
out:
    kill(pid, SIGTERM);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    cmdq_client_free(cli);
    shm_seg_destroy(&seg);
    return rc < 0 ? 1 : 0;
}
