/* test_fd_keep.c - unit tests of the proxy's kept descriptors (src/proxy/fd_keep.c): the
 * generation object is refused unless sealed; an entry is used only while the generation,
 * the cache's life, the expiry and the file's metadata and link all hold; the LRU bound; a held
 * entry dropped meanwhile is closed by its last release; threads hitting and replacing at once
 * (also under TSan). */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "proxy/fd_keep.h"

#define GEN_SIZE 4096

static char dir[] = "/tmp/test_fd_keep.XXXXXX";

/* A generation object as the cache makes it: *word is its writable word; sealed unless not. */
static int make_gen(_Atomic uint32_t **word, int sealed)
{
    int fd = memfd_create("gen", MFD_CLOEXEC | MFD_ALLOW_SEALING);

    if (fd < 0 || ftruncate(fd, GEN_SIZE) < 0)
        return -1;
    *word = mmap(NULL, GEN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (*word == MAP_FAILED)
        return -1;
    atomic_store(*word, 5);
    if (sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE) < 0)
        return -1;
    return fd;
}

/* A file of n bytes named name in dir, and the answer the cache would give for it. */
static int make_file(const char *name, size_t n, uint32_t gen, struct sock_resp *r)
{
    char path[128], buf[256];
    struct stat st;
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(buf, 'x', sizeof buf);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, n) != (ssize_t)n || fstat(fd, &st) < 0)
        return -1;
    close(fd);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    memset(r, 0, sizeof *r);
    r->kind = SOCK_RESP_FD;
    r->length = n;
    r->file_size = (uint64_t)st.st_size;
    r->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    r->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    r->keep_ms = 60000;
    r->gen = gen;
    return fd;
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* One request of path: 1 when it was a kept hit (held, then released). */
static int hit(struct fd_keep *k, const char *path)
{
    struct fd_kept *e = fd_keep_get(k, path, strlen(path));

    if (e == NULL)
        return 0;
    fd_keep_release(k, e, 0);
    return 1;
}

static void test_gen_object_checked(void)
{
    struct fd_keep *k;
    _Atomic uint32_t *w;

    CHECK_EQ(fd_keep_new(&k, 4), 0);
    int fd = make_gen(&w, 0); /* not sealed: the proxy could not trust it */
    CHECK(fd >= 0);
    CHECK_EQ(fd_keep_set_gen(k, getpid(), fd), -EBADMSG);
    CHECK(!fd_open(fd)); /* taken even when refused */
    CHECK_EQ(fd_keep_has_gen(k, getpid()), 0);
    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_EQ(fd_keep_set_gen(k, getpid(), file), -EBADMSG);
    fd = make_gen(&w, 1);
    CHECK_EQ(fd_keep_set_gen(k, getpid(), fd), 0);
    CHECK_EQ(fd_keep_has_gen(k, getpid()), 1);
    CHECK_EQ(fd_keep_has_gen(k, getpid() + 1), 0);
    munmap(w, GEN_SIZE);
    fd_keep_free(k);
}

static void test_checks(void)
{
    struct fd_keep *k;
    struct sock_resp r;
    _Atomic uint32_t *w;
    struct fd_kept *e;
    char path[128];

    CHECK_EQ(fd_keep_new(&k, 8), 0);
    CHECK_EQ(fd_keep_set_gen(k, getpid(), make_gen(&w, 1)), 0);
    /* Kept and used. */
    int fd = make_file("a", 100, 5, &r);
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    e = fd_keep_get(k, "/a", 2);
    CHECK(e != NULL);
    if (e != NULL) {
        CHECK_EQ(e->fd, fd);
        CHECK_EQ(e->r.length, 100);
        fd_keep_release(k, e, 0);
    }
    CHECK(fd_keep_get(k, "/b", 2) == NULL);
    /* The generation moves: dropped, and closed. */
    atomic_fetch_add(w, 1);
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    CHECK(!fd_open(fd));
    /* An answer read before a change carries the old gen: never used. */
    fd = make_file("a", 100, 5, &r);
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    /* The file rewritten with another size. */
    fd = make_file("a", 100, 6, &r);
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    CHECK(hit(k, "/a"));
    snprintf(path, sizeof path, "%s/a", dir);
    CHECK_EQ(truncate(path, 50), 0);
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    /* Replaced by a rename: no link left on the kept one. */
    fd = make_file("a", 100, 6, &r);
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    struct sock_resp r2;
    close(make_file("a2", 100, 6, &r2));
    char path2[128];
    snprintf(path2, sizeof path2, "%s/a2", dir);
    CHECK(hit(k, "/a"));
    CHECK_EQ(rename(path2, path), 0);
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    /* Expired. */
    fd = make_file("a", 100, 6, &r);
    r.keep_ms = 50;
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    CHECK(hit(k, "/a"));
    clock_sleep_ms(80);
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    /* keep_ms 0, or another cache's answer: not kept. */
    fd = make_file("a", 100, 6, &r);
    r.keep_ms = 0;
    fd_keep_put(k, "/a", 2, fd, &r, getpid());
    CHECK(!fd_open(fd));
    fd = make_file("a", 100, 6, &r);
    fd_keep_put(k, "/a", 2, fd, &r, getpid() + 1);
    CHECK(!fd_open(fd));
    CHECK(fd_keep_get(k, "/a", 2) == NULL);
    struct fd_keep_stats ks;
    fd_keep_stats(k, &ks);
    CHECK_EQ(ks.entries, 0);
    munmap(w, GEN_SIZE);
    fd_keep_free(k);
}

/* The cache dies: every entry goes. */
static void test_cache_death(void)
{
    struct fd_keep *k;
    struct sock_resp r;
    _Atomic uint32_t *w;
    int gen = make_gen(&w, 1), status;
    pid_t child = fork();

    if (child == 0) {
        pause();
        _exit(0);
    }
    CHECK(child > 0);
    CHECK_EQ(fd_keep_new(&k, 8), 0);
    CHECK_EQ(fd_keep_set_gen(k, child, gen), 0);
    int fd = make_file("d", 10, 5, &r);
    fd_keep_put(k, "/d", 2, fd, &r, child);
    struct fd_kept *e = fd_keep_get(k, "/d", 2);
    CHECK(e != NULL);
    if (e != NULL)
        fd_keep_release(k, e, 0);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    CHECK(fd_keep_get(k, "/d", 2) == NULL);
    CHECK(!fd_open(fd));
    CHECK_EQ(fd_keep_has_gen(k, child), 0);
    munmap(w, GEN_SIZE);
    fd_keep_free(k);
}

/* At most max entries, least recently used out first; a held one dropped meanwhile is closed
 * by its release. */
static void test_bound(void)
{
    struct fd_keep *k;
    struct sock_resp r;
    _Atomic uint32_t *w;
    int fds[6];
    char name[16];

    CHECK_EQ(fd_keep_new(&k, 3), 0);
    CHECK_EQ(fd_keep_set_gen(k, getpid(), make_gen(&w, 1)), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "/f%d", i);
        fds[i] = make_file(name + 1, 10, 5, &r);
        fd_keep_put(k, name, strlen(name), fds[i], &r, getpid());
    }
    struct fd_kept *held = fd_keep_get(k, "/f0", 3); /* f0 most recent: f1 goes first */
    CHECK(held != NULL);
    fds[3] = make_file("f3", 10, 5, &r);
    fd_keep_put(k, "/f3", 3, fds[3], &r, getpid());
    CHECK(!fd_open(fds[1]));
    CHECK(fd_open(fds[0]) && fd_open(fds[2]));
    for (int i = 4; i < 6; i++) {
        snprintf(name, sizeof name, "/f%d", i);
        fds[i] = make_file(name + 1, 10, 5, &r);
        fd_keep_put(k, name, strlen(name), fds[i], &r, getpid());
    }
    struct fd_keep_stats ks;
    fd_keep_stats(k, &ks);
    CHECK_EQ(ks.entries, 3);
    CHECK(fd_open(fds[0])); /* out of the table, but held */
    CHECK(fd_keep_get(k, "/f0", 3) == NULL);
    if (held != NULL)
        fd_keep_release(k, held, 0);
    CHECK(!fd_open(fds[0]));
    CHECK(fd_open(fds[5])); /* (f2's number may be f5's now: not checked) */
    CHECK(fd_keep_limit() >= 1 && fd_keep_limit() <= FD_KEEP_MAX);
    munmap(w, GEN_SIZE);
    fd_keep_free(k);
    CHECK(!fd_open(fds[5]));
}

struct stress {
    struct fd_keep *k;
    atomic_int stop;
    atomic_int bad;
};

static void *hitter(void *arg)
{
    struct stress *s = arg;

    while (!atomic_load(&s->stop)) {
        struct fd_kept *e = fd_keep_get(s->k, "/s", 2);
        if (e == NULL)
            continue;
        char c;
        if (pread(e->fd, &c, 1, 0) != 1 || c != 'x')
            atomic_fetch_add(&s->bad, 1);
        fd_keep_release(s->k, e, 0);
    }
    return NULL;
}

static void test_threads(void)
{
    struct stress s = {0};
    struct sock_resp r;
    _Atomic uint32_t *w;
    pthread_t th[3];

    CHECK_EQ(fd_keep_new(&s.k, 2), 0);
    CHECK_EQ(fd_keep_set_gen(s.k, getpid(), make_gen(&w, 1)), 0);
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, hitter, &s);
    for (int i = 0; i < 300; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i); /* a new file each time: readers keep theirs */
        int fd = make_file(name, 10, atomic_load(w), &r);
        fd_keep_put(s.k, "/s", 2, fd, &r, getpid());
        if (i % 7 == 0)
            atomic_fetch_add(w, 1);
        clock_sleep_ms(1);
    }
    atomic_store(&s.stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(atomic_load(&s.bad), 0);
    munmap(w, GEN_SIZE);
    fd_keep_free(s.k);
}

static void setup(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static void teardown(void)
{
    char cmd[160];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

TEST_MAIN(T(setup), T(test_gen_object_checked), T(test_checks), T(test_cache_death), T(test_bound),
          T(test_threads), T(teardown))
