/* test_simplecache.c - unit tests of the cache index: load warnings, per-request opens. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/simplecache.h"

static char dir[64];

struct warns {
    int lines[16]; /* line numbers of bad lines */
    int nlines;
    char reqs[16][32]; /* request paths of unusable entries */
    int nreqs;
};

static void on_warn(const char *index, unsigned lineno, const char *req, const char *local,
                    const char *what, void *arg)
{
    struct warns *w = arg;

    CHECK(index != NULL && what != NULL && *what != '\0');
    if (req == NULL) {
        CHECK(local == NULL);
        if (w->nlines < 16)
            w->lines[w->nlines++] = (int)lineno;
    } else {
        CHECK(local != NULL);
        CHECK_EQ(lineno, 0);
        if (w->nreqs < 16)
            snprintf(w->reqs[w->nreqs++], sizeof w->reqs[0], "%s", req);
    }
}

static void write_file(const char *name, const char *text)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int has_req(const struct warns *w, const char *req)
{
    for (int i = 0; i < w->nreqs; i++)
        if (strcmp(w->reqs[i], req) == 0)
            return 1;
    return 0;
}

static struct simplecache *load_fixture(struct warns *w, size_t *readable)
{
    char index[128], text[1024], sub[128], fifo[128];
    struct simplecache *c = NULL;

    snprintf(sub, sizeof sub, "%s/adir", dir);
    mkdir(sub, 0700);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    mkfifo(fifo, 0600);
    write_file("a.txt", "hello, cache\n");
    snprintf(text, sizeof text,
             "# comment\n"               /* 1 */
             "/a %s/a.txt\n"             /* 2 good */
             "just-one-field\n"          /* 3 bad */
             "/missing %s/missing.txt\n" /* 4 kept, warned */
             "\n"                        /* 5 blank */
             "/dir %s/adir\n"            /* 6 kept, warned */
             "noslash %s/a.txt\n"        /* 7 bad */
             "/fifo %s/fifo\n"           /* 8 kept, warned; the open must not block */
             "/a %s/other.txt\n",        /* 9 duplicate: the first wins */
             dir, dir, dir, dir, dir, dir);
    write_file("locals.txt", text);
    snprintf(index, sizeof index, "%s/locals.txt", dir);
    memset(w, 0, sizeof *w);
    CHECK_EQ(simplecache_load(index, on_warn, w, &c, readable), 0);
    return c;
}

static void test_load_warnings(void)
{
    struct warns w;
    size_t readable = 99;
    struct simplecache *c = load_fixture(&w, &readable);

    if (c == NULL)
        return;
    CHECK_EQ(simplecache_count(c), 4); /* /a, /missing, /dir, /fifo */
    CHECK_EQ(readable, 1);
    CHECK_EQ(w.nlines, 3); /* lines 3, 7 and the duplicate 9 */
    CHECK_EQ(w.lines[0], 3);
    CHECK_EQ(w.lines[1], 7);
    CHECK_EQ(w.lines[2], 9);
    CHECK_EQ(w.nreqs, 3);
    CHECK(has_req(&w, "/missing"));
    CHECK(has_req(&w, "/dir"));
    CHECK(has_req(&w, "/fifo"));
    simplecache_free(c);
}

static void test_open(void)
{
    struct warns w;
    struct simplecache *c = load_fixture(&w, NULL);
    uint64_t len = 0;
    int fd = -1;
    char buf[32];

    if (c == NULL)
        return;
    CHECK_EQ(simplecache_open(c, "/a", 2, &fd, &len), 0);
    CHECK_EQ(len, 13);
    CHECK_EQ(pread(fd, buf, sizeof buf, 0), 13);
    CHECK_MEM(buf, "hello, cache\n", 13);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    /* The path need not be NUL-terminated. */
    CHECK_EQ(simplecache_open(c, "/abc", 2, &fd, &len), 0);
    close(fd);
    CHECK_EQ(simplecache_open(c, "/b", 2, &fd, &len), -ENOENT);
    CHECK_EQ(simplecache_open(c, "/missing", 8, &fd, &len), -ENOENT);
    CHECK_EQ(simplecache_open(c, "/dir", 4, &fd, &len), -ENOENT);
    CHECK_EQ(simplecache_open(c, "/fifo", 5, &fd, &len), -ENOENT);
    /* A kept entry is served once its file appears. */
    write_file("missing.txt", "now here");
    CHECK_EQ(simplecache_open(c, "/missing", 8, &fd, &len), 0);
    CHECK_EQ(len, 8);
    close(fd);
    simplecache_free(c);
}

static void test_unreadable_index(void)
{
    struct simplecache *c = NULL;
    char index[128];

    snprintf(index, sizeof index, "%s/nope.txt", dir);
    CHECK_EQ(simplecache_load(index, NULL, NULL, &c, NULL), -ENOENT);
    CHECK(c == NULL);
    CHECK_EQ(simplecache_load(dir, NULL, NULL, &c, NULL) < 0, 1); /* a directory */
}

struct reader {
    struct simplecache *c;
    int bad;
};

static void *read_thread(void *arg)
{
    struct reader *r = arg;

    for (int i = 0; i < 200; i++) {
        uint64_t len;
        int fd;
        char buf[16];
        if (simplecache_open(r->c, "/big", 4, &fd, &len) != 0) {
            r->bad++;
            continue;
        }
        /* Each request reads from its own offset: no shared file position. */
        uint64_t off = (uint64_t)(i * 4099) % (len - 16);
        if (pread(fd, buf, sizeof buf, (off_t)off) != 16)
            r->bad++;
        for (int k = 0; k < 16; k++)
            if ((unsigned char)buf[k] != (unsigned char)((off + (uint64_t)k) % 251))
                r->bad++;
        close(fd);
    }
    return NULL;
}

static void test_concurrent_opens(void)
{
    char path[128], index[128], text[256];
    struct simplecache *c = NULL;
    pthread_t th[4];
    struct reader r[4];
    unsigned char *data = malloc(1 << 20);
    FILE *f;

    if (data == NULL)
        return;
    for (int i = 0; i < 1 << 20; i++)
        data[i] = (unsigned char)(i % 251);
    snprintf(path, sizeof path, "%s/big.bin", dir);
    f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        fwrite(data, 1, 1 << 20, f);
        fclose(f);
    }
    free(data);
    snprintf(text, sizeof text, "/big %s\n", path);
    write_file("big.txt", text);
    snprintf(index, sizeof index, "%s/big.txt", dir);
    CHECK_EQ(simplecache_load(index, NULL, NULL, &c, NULL), 0);
    if (c == NULL)
        return;
    for (int i = 0; i < 4; i++) {
        r[i] = (struct reader){c, 0};
        pthread_create(&th[i], NULL, read_thread, &r[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(r[i].bad, 0);
    }
    simplecache_free(c);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_simplecache.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
}

static void test_setup(void)
{
    setup();
}

static void test_teardown(void)
{
    teardown();
}

TEST_MAIN(T(test_setup), T(test_load_warnings), T(test_open), T(test_unreadable_index),
          T(test_concurrent_opens), T(test_teardown))
