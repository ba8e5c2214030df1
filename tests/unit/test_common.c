/* test_common.c - unit tests of the common modules: cli, pathmap, clock. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "common/pathmap.h"

static void test_cli_parse(void)
{
    uint64_t v = 7;
    unsigned u = 0;
    uint16_t port = 0;

    CHECK_EQ(cli_parse_u64("0", 0, 10, &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(cli_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    CHECK(v == UINT64_MAX);
    CHECK_EQ(cli_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    CHECK_EQ(cli_parse_u64("", 0, 10, &v), -EINVAL);
    CHECK_EQ(cli_parse_u64("-1", 0, 10, &v), -EINVAL);
    CHECK_EQ(cli_parse_u64("+1", 0, 10, &v), -EINVAL);
    CHECK_EQ(cli_parse_u64(" 1", 0, 10, &v), -EINVAL);
    CHECK_EQ(cli_parse_u64("1x", 0, 10, &v), -EINVAL);
    CHECK_EQ(cli_parse_u64("11", 0, 10, &v), -ERANGE);
    CHECK_EQ(cli_parse_uint("0", 1, 100, &u), -ERANGE);
    CHECK_EQ(cli_parse_uint("100", 1, 100, &u), 0);
    CHECK_EQ(u, 100);
    CHECK_EQ(cli_parse_port("0", &port), -ERANGE);
    CHECK_EQ(cli_parse_port("65536", &port), -ERANGE);
    CHECK_EQ(cli_parse_port("65535", &port), 0);
    CHECK_EQ(port, 65535);
}

struct warn_log {
    unsigned lines[8];
    int n;
};

static void record_warn(const char *file, unsigned lineno, const char *what, void *arg)
{
    struct warn_log *w = arg;

    (void)file;
    (void)what;
    if (w->n < 8)
        w->lines[w->n++] = lineno;
}

static char *write_tmp(const char *text)
{
    static char path[64];
    FILE *f;

    snprintf(path, sizeof path, "/tmp/test_common.%d.txt", (int)getpid());
    f = fopen(path, "w");
    if (f == NULL)
        return NULL;
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_pathmap_load(void)
{
    struct pathmap *m = NULL;
    struct warn_log w = {0};
    const char *idx = "# comment\n"
                      "/a.txt files/a.txt\n"
                      "\n"
                      "/b\tfiles/b\r\n"
                      "noslash files/x\n"
                      "/only-one-field\n"
                      "/c files/c extra\n"
                      "/a.txt files/dup\n"
                      "  /d   files/d  \n";
    char *path = write_tmp(idx);

    CHECK(path != NULL);
    CHECK_EQ(pathmap_load(path, 0, record_warn, &w, &m), 0);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    CHECK_EQ(pathmap_count(m), 3);
    CHECK(pathmap_get(m, "/a.txt", 6) && strcmp(pathmap_get(m, "/a.txt", 6), "files/a.txt") == 0);
    CHECK(pathmap_get(m, "/b", 2) && strcmp(pathmap_get(m, "/b", 2), "files/b") == 0);
    CHECK(pathmap_get(m, "/d", 2) != NULL);
    CHECK(pathmap_get(m, "/A.txt", 6) == NULL);  /* case sensitive */
    CHECK(pathmap_get(m, "/a.tx", 5) == NULL);   /* exact */
    CHECK(pathmap_get(m, "/a.txtx", 6) != NULL); /* length-delimited: "/a.txt" */
    CHECK_EQ(w.n, 4);                            /* lines 5, 6, 7 and the duplicate on 8 */
    CHECK_EQ(w.lines[0], 5);
    CHECK_EQ(w.lines[1], 6);
    CHECK_EQ(w.lines[2], 7);
    CHECK_EQ(w.lines[3], 8);
    pathmap_free(m);

    m = NULL;
    CHECK_EQ(pathmap_load(path, 1, NULL, NULL, &m), -EINVAL);
    CHECK(m == NULL);
    unlink(path);
    CHECK_EQ(pathmap_load("/nonexistent/index", 0, NULL, NULL, &m), -ENOENT);
    pathmap_free(NULL);
}

static void test_pathmap_many(void)
{
    char path[64];
    FILE *f;
    struct pathmap *m = NULL;

    snprintf(path, sizeof path, "/tmp/test_common_many.%d.txt", (int)getpid());
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    for (int i = 20000; i > 0; i--)
        fprintf(f, "/file/%d local/%d\n", i, i);
    fclose(f);
    CHECK_EQ(pathmap_load(path, 1, NULL, NULL, &m), 0);
    unlink(path);
    if (m == NULL)
        return;
    CHECK_EQ(pathmap_count(m), 20000);
    for (int i = 1; i <= 20000; i += 997) {
        char req[32], want[32];
        int n = snprintf(req, sizeof req, "/file/%d", i);
        snprintf(want, sizeof want, "local/%d", i);
        const char *got = pathmap_get(m, req, (size_t)n);
        CHECK(got && strcmp(got, want) == 0);
    }
    CHECK(pathmap_get(m, "/file/0", 7) == NULL);
    pathmap_free(m);
}

/* Lines too long or holding a NUL are malformed lines, not memory growth or silent truncation. */
static void test_pathmap_bounded_lines(void)
{
    char path[64];
    FILE *f;
    struct pathmap *m = NULL;
    struct warn_log w = {0};

    snprintf(path, sizeof path, "/tmp/test_common_long.%d.txt", (int)getpid());
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    fputs("/a files/a\n/long files/", f);
    for (int i = 0; i < PATHMAP_LINE_MAX; i++)
        fputc('x', f);
    static const char tail[] = "\n/n files/n\0ul\n/b files/b"; /* no final newline */
    fwrite(tail, 1, sizeof tail - 1, f);
    fclose(f);
    CHECK_EQ(pathmap_load(path, 0, record_warn, &w, &m), 0);
    if (m != NULL) {
        CHECK_EQ(pathmap_count(m), 2);
        CHECK(pathmap_get(m, "/a", 2) != NULL);
        CHECK(pathmap_get(m, "/b", 2) != NULL);
    }
    CHECK_EQ(w.n, 2);
    CHECK_EQ(w.lines[0], 2);
    CHECK_EQ(w.lines[1], 3);
    pathmap_free(m);
    m = NULL;
    CHECK_EQ(pathmap_load(path, 1, NULL, NULL, &m), -EINVAL);
    CHECK(m == NULL);
    unlink(path);
}

/* The index must be a regular file of bounded size; a FIFO must not block the load. */
static void test_pathmap_not_regular(void)
{
    char path[64];
    struct pathmap *m = NULL;
    FILE *f;

    CHECK_EQ(pathmap_load("/dev/zero", 0, NULL, NULL, &m), -ENODEV);
    CHECK_EQ(pathmap_load("/tmp", 0, NULL, NULL, &m), -ENODEV);
    snprintf(path, sizeof path, "/tmp/test_common_fifo.%d", (int)getpid());
    CHECK_EQ(mkfifo(path, 0600), 0);
    CHECK_EQ(pathmap_load(path, 0, NULL, NULL, &m), -ENODEV); /* no writer: would block */
    unlink(path);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK_EQ(ftruncate(fileno(f), (off_t)PATHMAP_FILE_MAX + 1), 0); /* sparse */
        fclose(f);
        CHECK_EQ(pathmap_load(path, 0, NULL, NULL, &m), -EFBIG);
        unlink(path);
    }
    CHECK(m == NULL);
    CHECK(strcmp(pathmap_strerror(-ENODEV), "not a regular file") == 0);
    CHECK(strstr(pathmap_strerror(-EFBIG), PATHMAP_FILE_MAX_STR) != NULL);
    CHECK(strcmp(pathmap_strerror(-ENOENT), strerror(ENOENT)) == 0);
}

static void test_clock(void)
{
    int64_t a = clock_mono_ms();

    clock_sleep_ms(20);
    CHECK(clock_mono_ms() - a >= 20);
    CHECK_EQ(clock_ms_left(-1), -1);
    CHECK_EQ(clock_ms_left(clock_mono_ms() - 5), 0);
    CHECK(clock_ms_left(clock_mono_ms() + 10000) > 9000);
}

static int64_t ts_ns(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The deadline helpers: normalised timespecs, at the right distance from now on the right
 * clock, across a second boundary, and negative spans clamped to now. */
static void test_clock_deadlines(void)
{
    struct timespec s = clock_span(2345), z = clock_span(-7), r, now;

    CHECK_EQ(s.tv_sec, 2);
    CHECK_EQ(s.tv_nsec, 345000000L);
    CHECK_EQ(z.tv_sec, 0);
    CHECK_EQ(z.tv_nsec, 0);
    s = clock_mono_at(12345);
    CHECK_EQ(s.tv_sec, 12);
    CHECK_EQ(s.tv_nsec, 345000000L);
    for (int ms = 0; ms < 2000; ms += 137) {
        int64_t before = clock_mono_ns();
        struct timespec m = clock_mono_in(ms);
        int64_t after = clock_mono_ns();

        CHECK(m.tv_nsec >= 0 && m.tv_nsec < 1000000000L);
        CHECK(ts_ns(m) >= before + (int64_t)ms * 1000000);
        CHECK(ts_ns(m) <= after + (int64_t)ms * 1000000);
    }
    {
        int64_t before = clock_mono_ns();
        struct timespec m = clock_mono_in(-50);
        CHECK(ts_ns(m) >= before && ts_ns(m) <= clock_mono_ns());
    }
    clock_gettime(CLOCK_REALTIME, &now);
    r = clock_realtime_in(999);
    CHECK(r.tv_nsec >= 0 && r.tv_nsec < 1000000000L);
    CHECK(ts_ns(r) >= ts_ns(now) + 999000000LL);
    /* clock_mono_at reads the same clock as clock_mono_ms: a deadline taken before is not later
     * than clock_mono_in of the same span taken after. */
    {
        struct timespec a = clock_mono_at(clock_mono_ms() + 1500), b = clock_mono_in(1500);
        CHECK(ts_ns(a) <= ts_ns(b));
    }
}

TEST_MAIN(T(test_cli_parse), T(test_pathmap_load), T(test_pathmap_many),
          T(test_pathmap_bounded_lines), T(test_pathmap_not_regular), T(test_clock),
          T(test_clock_deadlines))
