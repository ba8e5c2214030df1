/* test_map_keep.c - unit tests of the kept file mappings: a hit reuses the mapping, a changed
 * file gets a new one, the bytes and files bounds hold, and a held mapping is never dropped. */
/* SPDX-License-Identifier: MIT */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/map_keep.h"

/* A temp file of n bytes of c, opened read-only; its fstat in *st. */
static int temp_file(char c, size_t n, struct stat *st)
{
    char path[] = "/tmp/test_map_keep.XXXXXX";
    char *buf = malloc(n);
    int fd = mkstemp(path), rfd;

    if (fd < 0 || buf == NULL)
        abort();
    memset(buf, c, n);
    if (write(fd, buf, n) != (ssize_t)n)
        abort();
    rfd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path);
    close(fd);
    free(buf);
    if (rfd < 0 || fstat(rfd, st) < 0)
        abort();
    return rfd;
}

static void test_hit_and_change(void)
{
    struct map_keep *mk = NULL;
    struct stat st, st2;
    const unsigned char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    int fd = temp_file('a', 10000, &st);

    CHECK_EQ(map_keep_new(&mk, 0, 4), -EINVAL);
    CHECK_EQ(map_keep_new(&mk, 1 << 20, 4), 0);
    struct map_entry *e1 = map_keep_get(mk, fd, &st, &b1);
    CHECK(e1 != NULL);
    CHECK(b1 != NULL && b1[0] == 'a' && b1[9999] == 'a');
    struct map_entry *e2 = map_keep_get(mk, fd, &st, &b2);
    CHECK(e2 == e1 && b2 == b1); /* the same file: the same mapping */
    map_keep_put(mk, e1);
    map_keep_put(mk, e2);
    /* Changed (another mtime): another mapping. */
    st2 = st;
    st2.st_mtim.tv_nsec ^= 1;
    struct map_entry *e3 = map_keep_get(mk, fd, &st2, &b3);
    CHECK(e3 != NULL && e3 != e1);
    map_keep_put(mk, e3);
    /* Not a regular file, or empty: never mapped. */
    st2.st_mode = S_IFIFO | 0600;
    CHECK(map_keep_get(mk, fd, &st2, &b3) == NULL);
    map_keep_free(mk);
    close(fd);
}

static void test_bounds(void)
{
    struct map_keep *mk = NULL;
    struct stat st[3];
    const unsigned char *b;
    int fd[3];

    for (int i = 0; i < 3; i++)
        fd[i] = temp_file((char)('a' + i), 6000, &st[i]);
    CHECK_EQ(map_keep_new(&mk, 12000, 8), 0); /* room for two */
    struct map_entry *a = map_keep_get(mk, fd[0], &st[0], &b);
    struct map_entry *bb = map_keep_get(mk, fd[1], &st[1], &b);
    CHECK(a != NULL && bb != NULL);
    /* Both held: the third does not fit. */
    CHECK(map_keep_get(mk, fd[2], &st[2], &b) == NULL);
    map_keep_put(mk, a);
    /* a is free now: dropped for the third, whose bytes are its own. */
    struct map_entry *c = map_keep_get(mk, fd[2], &st[2], &b);
    CHECK(c != NULL && b[0] == 'c' && b[5999] == 'c');
    /* bb is still held and still right. */
    const unsigned char *b1;
    CHECK(map_keep_get(mk, fd[1], &st[1], &b1) == bb && b1[0] == 'b');
    map_keep_put(mk, bb);
    map_keep_put(mk, bb);
    map_keep_put(mk, c);
    /* A file over the byte bound is never mapped. */
    struct map_keep *small = NULL;
    CHECK_EQ(map_keep_new(&small, 5000, 8), 0);
    CHECK(map_keep_get(small, fd[0], &st[0], &b) == NULL);
    map_keep_free(small);
    /* The files bound: one slot, the held entry stays. */
    struct map_keep *one = NULL;
    CHECK_EQ(map_keep_new(&one, 1 << 20, 1), 0);
    struct map_entry *x = map_keep_get(one, fd[0], &st[0], &b);
    CHECK(x != NULL);
    CHECK(map_keep_get(one, fd[1], &st[1], &b) == NULL);
    map_keep_put(one, x);
    struct map_entry *y = map_keep_get(one, fd[1], &st[1], &b);
    CHECK(y != NULL && b[0] == 'b');
    map_keep_put(one, y);
    map_keep_free(one);
    map_keep_free(mk);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
}

TEST_MAIN(T(test_hit_and_change), T(test_bounds))
