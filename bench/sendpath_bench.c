/* sendpath_bench.c - what the proxy's send path costs, per way of moving a chunk from the data
 * segment to the client's socket: the copy we use (the cache preads a file chunk into the
 * mapped segment, the proxy sends it from there) against the zero-copy alternative (the cache
 * pwrites the chunk into the segment's file, the proxy sendfile()s it from the segment's file
 * descriptor, then punches the chunk's pages out of the segment so the next chunk gets fresh
 * pages while the socket still holds the old ones).
 *
 * One process, one thread writing and sending, one thread receiving on loopback TCP; the
 * sender's CPU time per GB is the figure (both halves of the hand-off run on the same thread,
 * so it is their sum). With -v the receiver reads and checks every byte, slowly, and
 * "splice-nopunch" (zero-copy without the punch) shows why the punch is needed: the socket
 * sends pages the next chunk has already overwritten. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define NSLOTS   4
#define HDR_SIZE 4096 /* the payloads start page-aligned, as a punch needs */
#define SRC_SIZE (16u << 20)

static const char usage[] =
    "usage: sendpath_bench [-m mode] [-c chunk_bytes] [-t total_bytes] [-v] [-h]\n"
    "  -m mode   copy (pread into the mapped segment, send from it; what webproxy does),\n"
    "            splice (pwrite into the segment's file, sendfile from it, punch the pages),\n"
    "            splice-nopunch (the same without the punch: corrupts, see -v), or all\n"
    "            (default: copy and splice)\n"
    "  -c bytes  chunk size, a multiple of 4096 (default 262144, webproxy's slot size)\n"
    "  -t bytes  bytes to send per mode (default 4000000000; with -v 100000000)\n"
    "  -v        the receiver reads slowly and checks every byte (default: it discards them\n"
    "            in the kernel, recv MSG_TRUNC, as gfload -T does)\n"
    "Prints one line per mode: sendpath_bench mode= chunk= gbps= cpu_s_per_gb= verified=\n";

struct rx {
    int fd;
    int verify;
    size_t total;
    const unsigned char *src;
    size_t corrupt_at; /* SIZE_MAX: none */
};

static void *rx_main(void *arg)
{
    struct rx *r = arg;
    static unsigned char buf[1 << 20];
    size_t got = 0;

    while (got < r->total) {
        ssize_t n =
            r->verify ? recv(r->fd, buf, sizeof buf, 0) : recv(r->fd, NULL, 1 << 20, MSG_TRUNC);
        if (n <= 0) {
            perror("sendpath_bench: recv");
            exit(1);
        }
        if (r->verify) {
            for (ssize_t i = 0; i < n && r->corrupt_at == SIZE_MAX; i++)
                if (buf[i] != r->src[(got + (size_t)i) % SRC_SIZE])
                    r->corrupt_at = got + (size_t)i;
            usleep(200); /* a slow reader: the socket holds the pages for a while */
        }
        got += (size_t)n;
    }
    return NULL;
}

static double thread_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn static void die(const char *what)
{
    fprintf(stderr, "sendpath_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A connected loopback TCP pair: *tx sends, *rxfd receives. */
static void tcp_pair(int *tx, int *rxfd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int ls = socket(AF_INET, SOCK_STREAM, 0);

    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        die("listen");
    *rxfd = socket(AF_INET, SOCK_STREAM, 0);
    if (*rxfd < 0 || connect(*rxfd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    *tx = accept(ls, NULL, NULL);
    if (*tx < 0)
        die("accept");
    close(ls);
}

static void send_all(int s, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(s, p, len, 0);
        if (n < 0)
            die("send");
        p += n;
        len -= (size_t)n;
    }
}

static void sendfile_all(int s, int fd, off_t off, size_t len)
{
    while (len > 0) {
        ssize_t n = sendfile(s, fd, &off, len);
        if (n <= 0)
            die("sendfile");
        len -= (size_t)n;
    }
}

static void run(const char *mode, int srcfd, const unsigned char *src, size_t chunk, size_t total,
                int verify)
{
    size_t seg_size = HDR_SIZE + NSLOTS * chunk, sent = 0, soff = 0;
    int copy = strcmp(mode, "copy") == 0, punch = strcmp(mode, "splice") == 0;
    struct rx r = {.verify = verify, .total = total, .src = src, .corrupt_at = SIZE_MAX};
    unsigned char *map;
    unsigned slot = 0;
    double t0, c0, c1;
    pthread_t t;
    char name[64];
    int seg, tx;

    snprintf(name, sizeof name, "/sendpath-bench-%d", (int)getpid());
    seg = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (seg < 0)
        die("shm_open");
    shm_unlink(name);
    if (ftruncate(seg, (off_t)seg_size) < 0)
        die("ftruncate");
    map = mmap(NULL, seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, seg, 0);
    if (map == MAP_FAILED)
        die("mmap");
    memset(map, 0, seg_size); /* fault the pages in, as a kept attachment has them */
    tcp_pair(&tx, &r.fd);
    if (pthread_create(&t, NULL, rx_main, &r) != 0)
        die("pthread_create");
    t0 = now_s();
    c0 = thread_cpu_s();
    while (sent < total) {
        size_t len = chunk < total - sent ? chunk : total - sent;
        off_t at = HDR_SIZE + (off_t)slot * (off_t)chunk;

        if (len > SRC_SIZE - soff)
            len = SRC_SIZE - soff;
        if (copy) {
            if (pread(srcfd, map + at, len, (off_t)soff) != (ssize_t)len)
                die("pread");
            send_all(tx, map + at, len);
        } else {
            if (pwrite(seg, src + soff, len, at) != (ssize_t)len)
                die("pwrite");
            sendfile_all(tx, seg, at, len);
            if (punch && fallocate(seg, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at,
                                   (off_t)((len + 4095) & ~(size_t)4095)) < 0)
                die("fallocate");
        }
        sent += len;
        soff = (soff + len) % SRC_SIZE;
        slot = (slot + 1) % NSLOTS;
    }
    c1 = thread_cpu_s();
    pthread_join(t, NULL);
    printf("sendpath_bench mode=%s chunk=%zu gbps=%.3f cpu_s_per_gb=%.3f verified=%s\n", mode,
           chunk, (double)total / 1e9 / (now_s() - t0), (c1 - c0) / ((double)total / 1e9),
           !verify                    ? "no"
           : r.corrupt_at == SIZE_MAX ? "yes"
                                      : "CORRUPT");
    fflush(stdout);
    close(tx);
    close(r.fd);
    munmap(map, seg_size);
    close(seg);
}

int main(int argc, char **argv)
{
    const char *mode = NULL;
    uint64_t chunk = 262144, total = 0;
    char path[] = "/tmp/sendpath-bench-XXXXXX";
    unsigned char *src;
    int verify = 0, fd, c;

    while ((c = getopt(argc, argv, "m:c:t:vh")) != -1) {
        switch (c) {
        case 'm':
            mode = optarg;
            break;
        case 'c':
            if (cli_parse_u64(optarg, 4096, 64u << 20, &chunk) < 0)
                cli_die_range("sendpath_bench", usage, 'c', optarg, 4096, 64u << 20);
            if (chunk % 4096 != 0)
                cli_die_usage("sendpath_bench", usage, "-c: %s is not a multiple of 4096", optarg);
            break;
        case 't':
            if (cli_parse_u64(optarg, 1, 1ull << 40, &total) < 0)
                cli_die_range("sendpath_bench", usage, 't', optarg, 1, 1ull << 40);
            break;
        case 'v':
            verify = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            cli_die_usage("sendpath_bench", usage, "unknown option");
        }
    }
    if (optind != argc)
        cli_die_usage("sendpath_bench", usage, "unexpected argument '%s'", argv[optind]);
    if (total == 0)
        total = verify ? 100000000 : 4000000000ull;
    /* The source file: random bytes, read once so they are in the page cache. */
    fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp");
    unlink(path);
    src = malloc(SRC_SIZE);
    if (src == NULL)
        die("malloc");
    for (size_t i = 0; i < SRC_SIZE; i++)
        src[i] = (unsigned char)(rand() >> 7);
    if (pwrite(fd, src, SRC_SIZE, 0) != SRC_SIZE)
        die("pwrite source");
    if (mode == NULL || strcmp(mode, "all") == 0) {
        run("copy", fd, src, (size_t)chunk, (size_t)total, verify);
        run("splice", fd, src, (size_t)chunk, (size_t)total, verify);
        if (mode != NULL)
            run("splice-nopunch", fd, src, (size_t)chunk, (size_t)total, verify);
    } else if (strcmp(mode, "copy") == 0 || strcmp(mode, "splice") == 0 ||
               strcmp(mode, "splice-nopunch") == 0) {
        run(mode, fd, src, (size_t)chunk, (size_t)total, verify);
    } else {
        cli_die_usage("sendpath_bench", usage, "-m: copy, splice, splice-nopunch or all");
    }
    free(src);
    close(fd);
    return 0;
}
