/* test_gfserver.c - the GETFILE server library in-process, driven by raw socket clients. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* pipe2 */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "getfile/gfserver.h"

#define WAIT_MS   10000 /* bound on every wait for a condition */
#define CLIENT_MS 10000 /* client socket timeouts: a hung server fails the test, not the run */
#define HELLO     "GETFILE OK 5\r\n\r\nhello"

/* Shared by the handler and the test body; every field is atomic or set before the run. */
struct tstate {
    atomic_int started;  /* handler calls that reached their wait point */
    atomic_int release;  /* the /gate handler may finish */
    atomic_int finished; /* handler calls that returned */
    atomic_int send_rc;  /* the last failed gfs_send's code in /big, /ignore */
    atomic_int saw_stopping;
    atomic_int saw_cancelled;
    atomic_int api_errors; /* contract checks in /api that failed */
    atomic_int events[4];
    atomic_int last_event_value;
    /* on_done: a count, and the last record (path copied; read after the count moved) */
    atomic_int done;
    pthread_mutex_t done_lock;
    struct gfs_done last;
    struct sockaddr_storage last_peer;
    char last_path[64];
};

static void pattern(char *buf, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (off + i) % 26);
}

/* Sends len bytes of the pattern in chunks; returns the first error. */
static int send_pattern(struct gfs_ctx *ctx, uint64_t len, size_t chunk, int pause_ms)
{
    char buf[64 * 1024];
    uint64_t off = 0;

    while (off < len) {
        size_t n = len - off < chunk ? (size_t)(len - off) : chunk;
        pattern(buf, n, off);
        int rc = gfs_send(ctx, buf, n);
        if (rc < 0)
            return rc;
        off += n;
        if (pause_ms)
            clock_sleep_ms(pause_ms);
    }
    return 0;
}

static int wait_flag(atomic_int *flag, int want, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;

    while (atomic_load(flag) < want && clock_mono_ms() < end)
        clock_sleep_ms(1);
    return atomic_load(flag) >= want;
}

static void api_check(struct tstate *st, int ok)
{
    if (!ok)
        atomic_fetch_add(&st->api_errors, 1);
}

/* The contract of gfs_send_header / gfs_send, and the workers' signal mask. */
static int handle_api(struct gfs_ctx *ctx, struct tstate *st)
{
    sigset_t cur;

    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    api_check(st, sigismember(&cur, SIGINT) && sigismember(&cur, SIGTERM) &&
                      sigismember(&cur, SIGPIPE));
    api_check(st, gfs_send(ctx, "x", 1) == -EPROTO);
    api_check(st, gfs_send_header(ctx, GF_INVALID, 0) == -EINVAL);
    api_check(st, gfs_send_header(ctx, GF_OK, 4) == 0);
    api_check(st, gfs_send_header(ctx, GF_OK, 4) == -EALREADY);
    api_check(st, gfs_send(ctx, "abcde", 5) == -EMSGSIZE);
    api_check(st, gfs_send(ctx, "ab", 2) == 0);
    api_check(st, gfs_send(ctx, "cd", 2) == 0);
    api_check(st, gfs_send(ctx, "e", 1) == -EMSGSIZE);
    api_check(st, gfs_ctx_sent(ctx) == 4);
    api_check(st, !gfs_ctx_stopping(ctx) && !gfs_ctx_cancelled(ctx));
    return 0;
}

static int dispatch(struct gfs_ctx *ctx, const char *path, struct tstate *st)
{
    int rc;

    if (strcmp(path, "/hello") == 0) {
        gfs_ctx_set_note(ctx, "first");
        gfs_ctx_set_note(ctx, "HELLO"); /* the last one counts */
        rc = gfs_send_header(ctx, GF_OK, 5);
        return rc ? rc : gfs_send(ctx, "hello", 5);
    }
    if (strcmp(path, "/one") == 0 || strcmp(path, "/two") == 0 || strcmp(path, "/big-ok") == 0) {
        /* 1000 bytes with gfs_send_ok, or header then body; /big-ok: past GFS_SMALL_MAX. */
        static char body[GFS_SMALL_MAX + 1000];
        size_t len = path[1] == 'b' ? sizeof body : 1000;
        pattern(body, len, 0);
        if (path[1] == 't') {
            rc = gfs_send_header(ctx, GF_OK, len);
            return rc ? rc : gfs_send(ctx, body, len);
        }
        rc = gfs_send_ok(ctx, body, len);
        api_check(st, gfs_send_ok(ctx, body, len) == -EALREADY);
        api_check(st, rc != 0 || gfs_ctx_sent(ctx) == len);
        return rc;
    }
    if (strcmp(path, "/empty-ok") == 0)
        return gfs_send_ok(ctx, NULL, 0);
    if (strcmp(path, "/nf") == 0)
        return gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
    if (strcmp(path, "/api") == 0)
        return handle_api(ctx, st);
    if (strcmp(path, "/fail-before") == 0)
        return -EIO;
    if (strcmp(path, "/no-header") == 0)
        return 0; /* a buggy handler */
    if (strcmp(path, "/fail-after") == 0 || strcmp(path, "/short-ok") == 0) {
        rc = gfs_send_header(ctx, GF_OK, 1000);
        if (rc == 0)
            rc = send_pattern(ctx, 500, 500, 0);
        /* /short-ok claims success after half the bytes: still a failure on the wire. */
        return rc ? rc : path[1] == 'f' ? -EIO : 0;
    }
    if (strcmp(path, "/gate") == 0) {
        rc = gfs_send_header(ctx, GF_OK, 2000);
        if (rc == 0)
            rc = send_pattern(ctx, 1000, 1000, 0);
        atomic_fetch_add(&st->started, 1);
        wait_flag(&st->release, 1, WAIT_MS);
        return rc ? rc : send_pattern(ctx, 1000, 1000, 0);
    }
    if (strcmp(path, "/slow") == 0) {
        /* 1 MiB in 16 slices with pauses: in flight when the test stops the server. */
        rc = gfs_send_header(ctx, GF_OK, 1 << 20);
        atomic_fetch_add(&st->started, 1);
        for (int i = 0; rc == 0 && i < 16; i++) {
            char buf[1 << 16];
            pattern(buf, sizeof buf, (uint64_t)i << 16);
            rc = gfs_send(ctx, buf, sizeof buf);
            clock_sleep_ms(20);
        }
        atomic_store(&st->saw_stopping, gfs_ctx_stopping(ctx));
        atomic_store(&st->saw_cancelled, gfs_ctx_cancelled(ctx));
        return rc;
    }
    if (strcmp(path, "/ignore") == 0 || strcmp(path, "/big") == 0) {
        /* Announces 1 GiB and sends until a send fails, never checking for a stop. */
        int pause = path[1] == 'i' ? 5 : 0;
        rc = gfs_send_header(ctx, GF_OK, (uint64_t)1 << 30);
        atomic_fetch_add(&st->started, 1);
        if (rc == 0)
            rc = send_pattern(ctx, (uint64_t)1 << 30, 16384, pause);
        atomic_store(&st->send_rc, rc);
        atomic_store(&st->saw_cancelled, gfs_ctx_cancelled(ctx));
        return rc;
    }
    return gfs_send_header(ctx, GF_FILE_NOT_FOUND, 0);
}

static int handler(struct gfs_ctx *ctx, const char *path, size_t path_len, void *arg)
{
    struct tstate *st = arg;
    int rc;

    if (strlen(path) != path_len)
        atomic_fetch_add(&st->api_errors, 1);
    rc = dispatch(ctx, path, st);
    atomic_fetch_add(&st->finished, 1);
    return rc;
}

static void on_event(enum gfs_event ev, int value, void *arg)
{
    struct tstate *st = arg;

    atomic_fetch_add(&st->events[ev], 1);
    atomic_store(&st->last_event_value, value);
}

static void on_done(const struct gfs_done *d, void *arg)
{
    struct tstate *st = arg;

    pthread_mutex_lock(&st->done_lock);
    st->last = *d;
    if (d->peer != NULL && d->peer_len <= sizeof st->last_peer)
        memcpy(&st->last_peer, d->peer, d->peer_len);
    snprintf(st->last_path, sizeof st->last_path, "%s", d->path != NULL ? d->path : "(null)");
    pthread_mutex_unlock(&st->done_lock);
    atomic_fetch_add(&st->done, 1);
}

/* A server running gfs_run in its own thread. */
struct fixture {
    struct tstate st;
    struct gfs_options opt;
    void *args[8];
    struct gfserver *srv;
    uint16_t port;
    pthread_t tid;
    atomic_int run_done;
    int run_rc;
};

static void *run_thread(void *p)
{
    struct fixture *f = p;

    f->run_rc = gfs_run(f->srv);
    atomic_store(&f->run_done, 1);
    return NULL;
}

/* Fills the options every test shares; the test adjusts them before fixture_start. */
static void fixture_init(struct fixture *f, unsigned nthreads)
{
    memset(f, 0, sizeof *f);
    for (unsigned i = 0; i < 8; i++)
        f->args[i] = &f->st;
    f->opt = (struct gfs_options){
        .host = "127.0.0.1",
        .nthreads = nthreads,
        .header_timeout_ms = 5000,
        .send_timeout_ms = 5000,
        .shutdown_grace_ms = 5000,
        .handler = handler,
        .worker_args = f->args,
        .on_event = on_event,
        .event_arg = &f->st,
    };
}

static int fixture_start(struct fixture *f)
{
    int rc = gfs_new(&f->srv, &f->opt);

    CHECK_EQ(rc, 0);
    if (rc < 0)
        return rc;
    f->port = gfs_port(f->srv);
    CHECK(f->port != 0);
    CHECK_EQ(pthread_create(&f->tid, NULL, run_thread, f), 0);
    return 0;
}

/* Stops the server (unless already stopping) and joins it; fails the test if gfs_run does
 * not return in time (the thread is then left behind: the test is failing anyway). */
static void fixture_stop(struct fixture *f, int do_stop)
{
    if (do_stop)
        gfs_stop(f->srv);
    if (!wait_flag(&f->run_done, 1, WAIT_MS)) {
        CHECK(!"gfs_run did not return");
        return;
    }
    pthread_join(f->tid, NULL);
    CHECK_EQ(f->run_rc, 0);
    gfs_free(f->srv);
}

static int cli_connect(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = CLIENT_MS / 1000};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static int cli_send(int fd, const char *s, size_t len)
{
    return send(fd, s, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

static int cli_request(uint16_t port, const char *req)
{
    int fd = cli_connect(port);

    if (fd >= 0 && cli_send(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct reply {
    char data[4096]; /* the first bytes */
    size_t total;    /* all bytes received */
    int end;         /* 0: end of stream; else -errno (-EAGAIN: client timeout) */
};

static void read_reply(int fd, struct reply *r)
{
    char buf[65536];

    memset(r, 0, sizeof *r);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->end = n == 0 ? 0 : -errno;
            break;
        }
        if (r->total < sizeof r->data - 1) {
            size_t k = sizeof r->data - 1 - r->total;
            memcpy(r->data + r->total, buf, (size_t)n < k ? (size_t)n : k);
        }
        r->total += (size_t)n;
    }
}

/* Connects, sends req, reads the whole reply, closes. */
static void fetch(uint16_t port, const char *req, struct reply *r)
{
    int fd = cli_request(port, req);

    memset(r, 0, sizeof *r);
    CHECK(fd >= 0);
    if (fd < 0) {
        r->end = -EIO;
        return;
    }
    read_reply(fd, r);
    close(fd);
}

static int reply_is(const struct reply *r, const char *want)
{
    size_t n = strlen(want);

    if (r->end != 0 || r->total != n || memcmp(r->data, want, n) != 0) {
        fprintf(stderr, "  reply (%zu bytes, end %d): '%.60s' want '%s'\n", r->total, r->end,
                r->data, want);
        return 0;
    }
    return 1;
}

static void test_basic_responses(void)
{
    struct fixture f;
    struct reply r;

    fixture_init(&f, 2);
    if (fixture_start(&f) < 0)
        return;
    fetch(f.port, "GETFILE GET /hello\r\n\r\n", &r);
    CHECK(reply_is(&r, HELLO));
    fetch(f.port, "GETFILE GET /nf\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE FILE_NOT_FOUND\r\n\r\n"));
    fetch(f.port, "GETFILE GET /api\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE OK 4\r\n\r\nabcd"));
    CHECK_EQ(atomic_load(&f.st.api_errors), 0);
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_INCOMPLETE]), 0);
    fixture_stop(&f, 1);
}

/* Segments with data the client's socket received (tcpi_data_segs_in of Linux's struct
 * tcp_info, since 4.6: glibc's struct stops before it); -1 when unknown. */
static long data_segs_in(int fd)
{
    unsigned char ti[256];
    socklen_t len = sizeof ti;
    uint32_t v;

    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) < 0 || len < 156)
        return -1;
    memcpy(&v, ti + 152, sizeof v);
    return (long)v;
}

/* Fetches req; the reply's size and the data segments it came in. */
static long fetch_segs(uint16_t port, const char *req, size_t *total)
{
    struct reply r;
    int fd = cli_request(port, req);
    long segs = -1;

    *total = 0;
    if (fd < 0)
        return -1;
    read_reply(fd, &r);
    if (r.end == 0) {
        *total = r.total;
        segs = data_segs_in(fd);
    }
    close(fd);
    return segs;
}

/* gfs_send_ok: a small response is one write, so one segment; a large one is whole. */
static void test_send_ok(void)
{
    struct fixture f;
    struct reply r;
    size_t total;

    fixture_init(&f, 2);
    if (fixture_start(&f) < 0)
        return;
    long one = fetch_segs(f.port, "GETFILE GET /one\r\n\r\n", &total);
    CHECK_EQ(total, strlen("GETFILE OK 1000\r\n\r\n") + 1000);
    long two = fetch_segs(f.port, "GETFILE GET /two\r\n\r\n", &total);
    CHECK_EQ(total, strlen("GETFILE OK 1000\r\n\r\n") + 1000);
    /* Header then body: two segments (TCP_NODELAY), which shows the count works. */
    CHECK_EQ(two, 2);
    CHECK_EQ(one, 1);
    (void)fetch_segs(f.port, "GETFILE GET /big-ok\r\n\r\n", &total);
    CHECK_EQ(total, strlen("GETFILE OK 17384\r\n\r\n") + GFS_SMALL_MAX + 1000);
    fetch(f.port, "GETFILE GET /empty-ok\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE OK 0\r\n\r\n"));
    CHECK_EQ(atomic_load(&f.st.api_errors), 0);
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_INCOMPLETE]), 0);
    fixture_stop(&f, 1);
}

/* Waits for the n-th on_done, then checks the record it got. */
static void check_done(struct fixture *f, int n, const char *path, int status, uint64_t sent,
                       const char *note)
{
    struct tstate *st = &f->st;

    CHECK(wait_flag(&st->done, n, WAIT_MS));
    pthread_mutex_lock(&st->done_lock);
    CHECK(strcmp(st->last_path, path) == 0);
    CHECK_EQ(st->last.status, status);
    CHECK_EQ(st->last.sent, sent);
    CHECK(note == NULL ? st->last.note == NULL
                       : st->last.note != NULL && strcmp(st->last.note, note) == 0);
    CHECK(st->last.peer != NULL && st->last_peer.ss_family == AF_INET &&
          ((struct sockaddr_in *)&st->last_peer)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(st->last.duration_ns > 0 && st->last.duration_ns < (int64_t)WAIT_MS * 1000000);
    if (strcmp(st->last_path, path) != 0 || st->last.status != status || st->last.sent != sent)
        fprintf(stderr, "  done %d: '%s' status %d sent %llu\n", n, st->last_path, st->last.status,
                (unsigned long long)st->last.sent);
    pthread_mutex_unlock(&st->done_lock);
}

/* on_done: once per connection, with what went out whoever sent it, and the handler's note. */
static void test_on_done(void)
{
    struct fixture f;
    struct reply r;

    fixture_init(&f, 2);
    pthread_mutex_init(&f.st.done_lock, NULL);
    f.opt.on_done = on_done;
    f.opt.done_arg = &f.st;
    if (fixture_start(&f) < 0)
        return;
    fetch(f.port, "GETFILE GET /hello\r\n\r\n", &r);
    CHECK(reply_is(&r, HELLO));
    check_done(&f, 1, "/hello", GF_OK, 5, "HELLO");
    fetch(f.port, "GETFILE GET /nf\r\n\r\n", &r);
    check_done(&f, 2, "/nf", GF_FILE_NOT_FOUND, 0, NULL);
    fetch(f.port, "GETFILE GET /fail-before\r\n\r\n", &r);
    check_done(&f, 3, "/fail-before", GF_ERROR, 0, NULL);
    fetch(f.port, "GETFILE GET /fail-after\r\n\r\n", &r);
    check_done(&f, 4, "/fail-after", GF_OK, 500, NULL);
    fetch(f.port, "GETFILE PUT /x\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE INVALID\r\n\r\n"));
    check_done(&f, 5, "(null)", GF_INVALID, 0, NULL);
    fixture_stop(&f, 1);
    CHECK_EQ(atomic_load(&f.st.done), 5);
    pthread_mutex_destroy(&f.st.done_lock);
}

static void test_handler_failures(void)
{
    struct fixture f;
    struct reply r;
    const char *ok1000 = "GETFILE OK 1000\r\n\r\n";

    fixture_init(&f, 2);
    if (fixture_start(&f) < 0)
        return;
    /* Before a header: the library answers ERROR. */
    fetch(f.port, "GETFILE GET /fail-before\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE ERROR\r\n\r\n"));
    /* After a header: the connection ends early, cleanly, after the bytes sent. */
    fetch(f.port, "GETFILE GET /fail-after\r\n\r\n", &r);
    CHECK_EQ(r.end, 0);
    CHECK_EQ(r.total, strlen(ok1000) + 500);
    CHECK_MEM(r.data, ok1000, strlen(ok1000));
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_INCOMPLETE]), 0);
    /* A handler that gives up half-way but returns 0: the same short transfer, reported. */
    fetch(f.port, "GETFILE GET /short-ok\r\n\r\n", &r);
    CHECK_EQ(r.end, 0);
    CHECK_EQ(r.total, strlen(ok1000) + 500);
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_INCOMPLETE]), 1);
    /* A handler that returns 0 without any header: ERROR, reported. */
    fetch(f.port, "GETFILE GET /no-header\r\n\r\n", &r);
    CHECK(reply_is(&r, "GETFILE ERROR\r\n\r\n"));
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_INCOMPLETE]), 2);
    fixture_stop(&f, 1);
}

/* GF_FRAMING_LEGACY: every status in the older framing, to a request sent in the four writes
 * of the course's clients; the server still closes after the response (read_reply reads to
 * the end of stream). */
static void test_legacy_framing(void)
{
    static const struct {
        const char *path, *want;
    } cases[] = {
        {"/hello", "GETFILE OK 5 hello"},      {"/nf", "GETFILE FILE_NOT_FOUND 0\n"},
        {"/fail-before", "GETFILE ERROR 0\n"}, {"/no-header", "GETFILE ERROR 0\n"},
        {"x", "GETFILE INVALID 0\n"}, /* no leading '/': a malformed request */
    };
    struct fixture f;
    struct reply r;

    fixture_init(&f, 2);
    f.opt.framing = GF_FRAMING_LEGACY;
    if (fixture_start(&f) < 0)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *parts[] = {"GETFILE GET ", cases[i].path, "\r\n", "\r\n"};
        int fd = cli_connect(f.port);

        CHECK(fd >= 0);
        if (fd < 0)
            continue;
        for (size_t k = 0; k < 4; k++) {
            CHECK_EQ(cli_send(fd, parts[k], strlen(parts[k])), 0);
            clock_sleep_ms(2); /* separate segments, like separate writes usually are */
        }
        read_reply(fd, &r);
        close(fd);
        if (!reply_is(&r, cases[i].want))
            fprintf(stderr, "  case %zu\n", i);
        CHECK(reply_is(&r, cases[i].want));
    }
    /* Content that came from /fail-after is cut short the same way as in the documented form. */
    fetch(f.port, "GETFILE GET /fail-after\r\n\r\n", &r);
    CHECK_EQ(r.end, 0);
    CHECK_EQ(r.total, strlen("GETFILE OK 1000 ") + 500);
    CHECK_MEM(r.data, "GETFILE OK 1000 ", strlen("GETFILE OK 1000 "));
    fixture_stop(&f, 1);
}

/* The header may come one byte per send. */
static void test_header_byte_by_byte(void)
{
    const char *req = "GETFILE GET /hello\r\n\r\n";
    struct fixture f;
    struct reply r;
    int fd;

    fixture_init(&f, 1);
    if (fixture_start(&f) < 0)
        return;
    fd = cli_connect(f.port);
    CHECK(fd >= 0);
    if (fd < 0)
        goto out;
    for (size_t i = 0; req[i]; i++) {
        CHECK_EQ(cli_send(fd, req + i, 1), 0);
        clock_sleep_ms(3);
    }
    read_reply(fd, &r);
    CHECK(reply_is(&r, HELLO));
    close(fd);
out:
    fixture_stop(&f, 1);
}

/* Bad headers get INVALID (or a plain close) from one worker while the other is mid-transfer. */
static void test_malformed_while_serving(void)
{
    static const char *const bad[] = {
        "GETFILE GTE /hello\r\n\r\n",  "HTTP/1.1 GET /\r\n\r\n", "GETFILE GET hello\r\n\r\n",
        "GETFILE  GET /hello\r\n\r\n", "GETFILE GET /hello\n\n",
    };
    struct fixture f;
    struct reply r;
    int fd_a, fd;

    fixture_init(&f, 2);
    f.opt.header_timeout_ms = 300;
    if (fixture_start(&f) < 0)
        return;
    fd_a = cli_request(f.port, "GETFILE GET /gate\r\n\r\n");
    CHECK(fd_a >= 0);
    CHECK(wait_flag(&f.st.started, 1, WAIT_MS));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fetch(f.port, bad[i], &r);
        if (!reply_is(&r, "GETFILE INVALID\r\n\r\n"))
            CHECK(!bad[i]);
    }
    /* An incomplete header when the deadline passes: INVALID. */
    fd = cli_request(f.port, "GETFILE GET /hel");
    CHECK(fd >= 0);
    if (fd >= 0) {
        read_reply(fd, &r);
        CHECK(reply_is(&r, "GETFILE INVALID\r\n\r\n"));
        close(fd);
    }
    /* A peer that hangs up before the terminator: closed without a word. */
    fd = cli_request(f.port, "GETFILE GET /hel");
    CHECK(fd >= 0);
    if (fd >= 0) {
        shutdown(fd, SHUT_WR);
        read_reply(fd, &r);
        CHECK_EQ(r.end, 0);
        CHECK_EQ(r.total, 0);
        close(fd);
    }
    /* The first client was held all along and now completes. */
    CHECK_EQ(atomic_load(&f.st.finished), 0);
    atomic_store(&f.st.release, 1);
    if (fd_a >= 0) {
        read_reply(fd_a, &r);
        CHECK_EQ(r.end, 0);
        CHECK_EQ(r.total, strlen("GETFILE OK 2000\r\n\r\n") + 2000);
        close(fd_a);
    }
    fixture_stop(&f, 1);
}

/* Unread request bytes must not turn the close into a reset that destroys the response. */
static void test_lingering_close(void)
{
    char req[32768];
    const char *hdr = "GETFILE GET /fail-after\r\n\r\n";
    struct fixture f;
    struct reply r;
    int fd;

    fixture_init(&f, 1);
    if (fixture_start(&f) < 0)
        return;
    memset(req, 'x', sizeof req);
    memcpy(req, hdr, strlen(hdr));
    fd = cli_connect(f.port);
    CHECK(fd >= 0);
    if (fd < 0)
        goto out;
    CHECK_EQ(cli_send(fd, req, sizeof req), 0);
    /* Let the server finish and close before we read anything. */
    CHECK(wait_flag(&f.st.finished, 1, WAIT_MS));
    clock_sleep_ms(100);
    read_reply(fd, &r);
    CHECK_EQ(r.end, 0);
    CHECK_EQ(r.total, strlen("GETFILE OK 1000\r\n\r\n") + 500);
    close(fd);
out:
    fixture_stop(&f, 1);
}

/* gfs_stop during a transfer: the transfer completes within the grace period; new
 * connections are refused. */
static void test_stop_lets_inflight_finish(void)
{
    struct fixture f;
    struct reply r;
    int fd;

    fixture_init(&f, 2);
    if (fixture_start(&f) < 0)
        return;
    fd = cli_request(f.port, "GETFILE GET /slow\r\n\r\n");
    CHECK(fd >= 0);
    CHECK(wait_flag(&f.st.started, 1, WAIT_MS));
    gfs_stop(f.srv);
    if (fd >= 0) {
        read_reply(fd, &r);
        CHECK_EQ(r.end, 0);
        CHECK_EQ(r.total, strlen("GETFILE OK 1048576\r\n\r\n") + (1 << 20));
        close(fd);
    }
    fixture_stop(&f, 0);
    CHECK_EQ(atomic_load(&f.st.saw_stopping), 1);
    CHECK_EQ(atomic_load(&f.st.saw_cancelled), 0);
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_CUT]), 0);
    fd = cli_connect(f.port);
    CHECK_EQ(fd, -ECONNREFUSED);
    if (fd >= 0)
        close(fd);
}

/* Connections waiting in the kernel's accept queue of the listener on 127.0.0.1:port (for a
 * listening socket, the rx_queue column of /proc/net/tcp), or -1. */
static int accept_backlog(uint16_t port)
{
    char line[512], want[32];
    int n = -1;
    FILE *f = fopen("/proc/net/tcp", "re");

    if (f == NULL)
        return -1;
    snprintf(want, sizeof want, "0100007F:%04X", port);
    while (fgets(line, sizeof line, f)) {
        char local[64], remote[64];
        unsigned st, txq, rxq;
        if (sscanf(line, " %*d: %63s %63s %x %x:%x", local, remote, &st, &txq, &rxq) == 5 &&
            st == 0x0A && strcmp(local, want) == 0)
            n = (int)rxq;
    }
    fclose(f);
    return n;
}

/* At the end of the grace period every active connection is cut: a handler that ignores the
 * stop but keeps sending, one blocked on a client that does not read, and a worker waiting
 * for a header. The stall and header timeouts are far longer than the test waits. */
static void test_stop_cuts_after_grace(void)
{
    struct fixture f;
    struct reply r;
    int fd_a, fd_b, fd_c;

    fixture_init(&f, 3);
    f.opt.shutdown_grace_ms = 300;
    f.opt.send_timeout_ms = 60000;
    f.opt.header_timeout_ms = 60000;
    if (fixture_start(&f) < 0)
        return;
    fd_a = cli_request(f.port, "GETFILE GET /ignore\r\n\r\n");
    fd_b = cli_request(f.port, "GETFILE GET /big\r\n\r\n");
    fd_c = cli_request(f.port, "GETFILE GET /x");
    CHECK(fd_a >= 0 && fd_b >= 0 && fd_c >= 0);
    CHECK(wait_flag(&f.st.started, 2, WAIT_MS));
    /* c accepted (by the idle worker, which hands it to the boss): not reset with the backlog. */
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (accept_backlog(f.port) != 0 && clock_mono_ms() < end)
        clock_sleep_ms(1);
    gfs_stop(f.srv);
    if (fd_a >= 0) {
        read_reply(fd_a, &r); /* keeps reading, so only the cut can end it */
        CHECK(r.end == 0 || r.end == -ECONNRESET);
        CHECK(r.total < ((size_t)1 << 30));
        close(fd_a);
    }
    fixture_stop(&f, 0); /* fails unless gfs_run returns within WAIT_MS */
    CHECK_EQ(atomic_load(&f.st.saw_cancelled), 1);
    CHECK(atomic_load(&f.st.send_rc) < 0);
    CHECK_EQ(atomic_load(&f.st.events[GFS_EV_CUT]), 1);
    CHECK_EQ(atomic_load(&f.st.last_event_value), 3);
    if (fd_c >= 0) {
        read_reply(fd_c, &r); /* cut, not answered */
        CHECK_EQ(r.total, 0);
        close(fd_c);
    }
    if (fd_b >= 0)
        close(fd_b);
}

/* A client that never reads holds the only worker at most send_timeout_ms. */
static void test_stalled_client_released(void)
{
    struct fixture f;
    struct reply r;
    int fd_a;

    fixture_init(&f, 1);
    f.opt.send_timeout_ms = 300;
    if (fixture_start(&f) < 0)
        return;
    fd_a = cli_request(f.port, "GETFILE GET /big\r\n\r\n");
    CHECK(fd_a >= 0);
    CHECK(wait_flag(&f.st.started, 1, WAIT_MS));
    fetch(f.port, "GETFILE GET /hello\r\n\r\n", &r); /* queued behind the stuck one */
    CHECK(reply_is(&r, HELLO));
    CHECK_EQ(atomic_load(&f.st.send_rc), -ETIMEDOUT);
    if (fd_a >= 0)
        close(fd_a);
    fixture_stop(&f, 1);
}

/* Only an idle worker accepts: with the one worker busy, new connections stay in the backlog
 * (none would, without back-pressure); the waiting clients are all served later. */
static void test_backpressure(void)
{
    struct fixture f;
    struct reply r;
    int fd_a, fds[5];

    fixture_init(&f, 1);
    f.opt.queue_depth = 1;
    if (fixture_start(&f) < 0)
        return;
    fd_a = cli_request(f.port, "GETFILE GET /gate\r\n\r\n");
    CHECK(fd_a >= 0);
    CHECK(wait_flag(&f.st.started, 1, WAIT_MS));
    for (int i = 0; i < 5; i++) {
        fds[i] = cli_request(f.port, "GETFILE GET /hello\r\n\r\n");
        CHECK(fds[i] >= 0);
    }
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (accept_backlog(f.port) != 5 && clock_mono_ms() < end)
        clock_sleep_ms(1);
    CHECK_EQ(accept_backlog(f.port), 5);
    clock_sleep_ms(50);
    CHECK_EQ(accept_backlog(f.port), 5); /* and they stay there */
    atomic_store(&f.st.release, 1);
    if (fd_a >= 0) {
        read_reply(fd_a, &r);
        CHECK_EQ(r.total, strlen("GETFILE OK 2000\r\n\r\n") + 2000);
        close(fd_a);
    }
    for (int i = 0; i < 5; i++) {
        if (fds[i] < 0)
            continue;
        read_reply(fds[i], &r);
        CHECK(reply_is(&r, HELLO));
        close(fds[i]);
    }
    fixture_stop(&f, 1);
}

static volatile sig_atomic_t test_stop_flag;

static void on_sigterm(int sig)
{
    (void)sig;
    test_stop_flag = 1;
}

struct sig_run {
    struct gfserver *srv;
    int rc;
    int term_blocked_after; /* SIGTERM in the mask after gfs_run returned */
    atomic_int done;
};

static void *sig_run_thread(void *p)
{
    struct sig_run *a = p;
    sigset_t cur;

    a->rc = gfs_run(a->srv);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    a->term_blocked_after = sigismember(&cur, SIGTERM);
    atomic_store(&a->done, 1);
    return NULL;
}

/* A signal handler that sets stop_flag wakes the boss; the caller's mask comes back. */
static void test_stop_flag_signal(void)
{
    struct sigaction sa = {.sa_handler = on_sigterm}, old_sa;
    struct tstate st = {0};
    void *args[1] = {&st};
    struct gfs_options o = {.host = "127.0.0.1",
                            .nthreads = 1,
                            .handler = handler,
                            .worker_args = args,
                            .stop_flag = &test_stop_flag};
    struct sig_run a = {0};
    struct reply r;
    pthread_t t;

    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGTERM, &sa, &old_sa), 0);
    test_stop_flag = 0;
    CHECK_EQ(gfs_new(&a.srv, &o), 0);
    if (a.srv == NULL)
        goto out;
    CHECK_EQ(pthread_create(&t, NULL, sig_run_thread, &a), 0);
    fetch(gfs_port(a.srv), "GETFILE GET /hello\r\n\r\n", &r); /* the boss is up */
    CHECK(reply_is(&r, HELLO));
    pthread_kill(t, SIGTERM); /* thread-directed: only the boss can take it */
    if (wait_flag(&a.done, 1, WAIT_MS)) {
        pthread_join(t, NULL);
        CHECK_EQ(a.rc, 0);
        CHECK_EQ(a.term_blocked_after, 0);
        CHECK_EQ(test_stop_flag, 1);
        gfs_free(a.srv);
    } else {
        CHECK(!"gfs_run did not return after SIGTERM");
    }
out:
    sigaction(SIGTERM, &old_sa, NULL);
}

/* A client still sending its header holds no worker: with one worker, another client is
 * served meanwhile, and the slow one is served once its header is complete. With
 * max_per_client 3 and three connections from 127.0.0.1 waiting, a fourth is reset at once. */
static void test_header_wait_holds_no_worker(void)
{
    struct fixture f;
    struct reply r;
    int fd_a, fd_b, fd_c, fd_d;

    fixture_init(&f, 1);
    f.opt.header_timeout_ms = 60000;
    f.opt.max_per_client = 3;
    if (fixture_start(&f) < 0)
        return;
    fd_a = cli_request(f.port, "GETFILE GET /hel");
    fd_b = cli_request(f.port, "GETFILE");
    CHECK(fd_a >= 0 && fd_b >= 0);
    fetch(f.port, "GETFILE GET /hello\r\n\r\n", &r); /* not behind a or b */
    CHECK(reply_is(&r, HELLO));
    fd_c = cli_request(f.port, "GETFILE GET");
    CHECK(fd_c >= 0);
    fd_d = cli_request(f.port, "GETFILE GET /h"); /* the fourth waiting one */
    if (fd_d >= 0) {
        read_reply(fd_d, &r);
        CHECK_EQ(r.total, 0);
        CHECK(r.end == -ECONNRESET || r.end == 0);
        close(fd_d);
    }
    if (fd_a >= 0) {
        CHECK_EQ(write(fd_a, "lo\r\n\r\n", 6), 6);
        read_reply(fd_a, &r);
        CHECK(reply_is(&r, HELLO));
        close(fd_a);
    }
    if (fd_b >= 0)
        close(fd_b);
    if (fd_c >= 0)
        close(fd_c);
    fixture_stop(&f, 1);
}

static void test_options_and_lifecycle(void)
{
    struct gfs_options o = {.host = "127.0.0.1", .nthreads = 1, .handler = handler};
    struct gfserver *s = NULL, *s2 = NULL;

    o.nthreads = 0;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.nthreads = 1;
    o.handler = NULL;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.handler = handler;
    o.send_timeout_ms = -1;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.send_timeout_ms = 0;
    o.response_timeout_ms = -1;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.response_timeout_ms = 0;
    o.max_waiting = 65537;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.max_waiting = 0;
    o.framing = (enum gf_framing)2;
    CHECK_EQ(gfs_new(&s, &o), -EINVAL);
    o.framing = GF_FRAMING_LEGACY;
    CHECK_EQ(gfs_new(&s, &o), 0);
    if (s == NULL)
        return;
    o.port = gfs_port(s);
    CHECK_EQ(gfs_new(&s2, &o), -EADDRINUSE);
    /* A stop before the run makes the run return at once. */
    gfs_stop(s);
    CHECK_EQ(gfs_run(s), 0);
    CHECK_EQ(gfs_run(s), -EALREADY);
    gfs_free(s);
    gfs_free(NULL);
}

/* Out of file descriptors, the boss pauses accepting instead of spinning, says so (once a
 * second at most), and recovers when descriptors come back. Runs in a child process whose
 * descriptor limit can be exhausted without disturbing the test runner. */
static int emfile_child(int ctl, int res)
{
    struct tstate st = {0};
    void *args[1] = {&st};
    struct gfs_options o = {.host = "127.0.0.1",
                            .nthreads = 1,
                            .handler = handler,
                            .worker_args = args,
                            .on_event = on_event,
                            .event_arg = &st};
    struct sig_run a = {0};
    struct rlimit rl;
    struct rusage ru0, ru1;
    int fill[256], nfill = 0;
    char c;
    pthread_t t;
    int64_t out[3];

    if (gfs_new(&a.srv, &o) < 0)
        return 1;
    uint16_t port = gfs_port(a.srv);
    if (write(res, &port, sizeof port) != sizeof port)
        return 1;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1;
    while (nfill < 256) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        fill[nfill++] = fd;
    }
    if (pthread_create(&t, NULL, sig_run_thread, &a) != 0)
        return 1;
    if (read(ctl, &c, 1) != 1) /* the clients are waiting in the backlog now */
        return 1;
    int64_t t0 = clock_mono_ms();
    getrusage(RUSAGE_SELF, &ru0);
    clock_sleep_ms(500);
    getrusage(RUSAGE_SELF, &ru1);
    out[0] = clock_mono_ms() - t0;
    out[1] =
        (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) *
            1000 +
        (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
         ru0.ru_stime.tv_usec) /
            1000;
    out[2] = atomic_load(&st.events[GFS_EV_ACCEPT_PAUSED]);
    for (int i = 0; i < 8 && nfill > 0; i++)
        close(fill[--nfill]);
    if (write(res, out, sizeof out) != sizeof out)
        return 1;
    if (read(ctl, &c, 1) != 1) /* the clients were served */
        return 1;
    gfs_stop(a.srv);
    pthread_join(t, NULL);
    gfs_free(a.srv);
    while (nfill > 0)
        close(fill[--nfill]);
    return a.rc == 0 ? 0 : 1;
}

static void test_accept_pauses_on_emfile(void)
{
    int ctl[2], res[2], fds[2], status = -1;
    uint16_t port = 0;
    int64_t out[3] = {0};
    struct reply r;
    pid_t pid;

    CHECK_EQ(pipe2(ctl, O_CLOEXEC), 0);
    CHECK_EQ(pipe2(res, O_CLOEXEC), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(ctl[1]);
        close(res[0]);
        _exit(emfile_child(ctl[0], res[1]));
    }
    close(ctl[0]);
    close(res[1]);
    CHECK_EQ(read(res[0], &port, sizeof port), (ssize_t)sizeof port);
    for (int i = 0; i < 2; i++) {
        fds[i] = cli_request(port, "GETFILE GET /hello\r\n\r\n");
        CHECK(fds[i] >= 0);
    }
    CHECK_EQ(write(ctl[1], "g", 1), 1);
    CHECK_EQ(read(res[0], out, sizeof out), (ssize_t)sizeof out);
    /* Paused, the boss sleeps: far less CPU than a spin over the whole window. */
    CHECK(out[1] * 4 < out[0]);
    CHECK(out[2] >= 1 && out[2] <= 2);
    if (out[1] * 4 >= out[0] || out[2] < 1 || out[2] > 2)
        fprintf(stderr, "  window %lld ms, cpu %lld ms, events %lld\n", (long long)out[0],
                (long long)out[1], (long long)out[2]);
    for (int i = 0; i < 2; i++) {
        if (fds[i] < 0)
            continue;
        read_reply(fds[i], &r);
        CHECK(reply_is(&r, HELLO));
        close(fds[i]);
    }
    CHECK_EQ(write(ctl[1], "s", 1), 1);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ctl[1]);
    close(res[0]);
}

/* A sink ctx: the library's checks stay, what passes them goes to the sink's functions. */
struct rec_sink {
    int headers, status, cancelled, fail_send;
    uint64_t length, sent;
    char etag[32], lastmod[48];
};

static int rec_header(void *arg, enum gf_status st, uint64_t length)
{
    struct rec_sink *r = arg;
    r->headers++;
    r->status = (int)st;
    r->length = length;
    return 0;
}

static int rec_send(void *arg, const void *buf, size_t len)
{
    struct rec_sink *r = arg;
    (void)buf;
    if (r->fail_send)
        return -EPIPE;
    r->sent += len;
    return 0;
}

static int rec_cancelled(void *arg)
{
    return ((struct rec_sink *)arg)->cancelled;
}

static void rec_validators(void *arg, const char *etag, const char *last_modified)
{
    struct rec_sink *r = arg;
    snprintf(r->etag, sizeof r->etag, "%s", etag ? etag : "");
    snprintf(r->lastmod, sizeof r->lastmod, "%s", last_modified ? last_modified : "");
}

static const struct gfs_sink_ops rec_ops = {
    .header = rec_header,
    .send = rec_send,
    .stopping = rec_cancelled,
    .cancelled = rec_cancelled,
    .validators = rec_validators,
};

static void test_sink_ctx(void)
{
    struct rec_sink r = {0};
    struct gfs_ctx *ctx = NULL;
    char buf[10] = {0};

    CHECK_EQ(gfs_ctx_sink_new(&ctx, &rec_ops, &r), 0);
    CHECK_EQ(gfs_ctx_status(ctx), -1);
    CHECK_EQ(gfs_send(ctx, buf, 1), -EPROTO); /* no header yet */
    gfs_ctx_set_validators(ctx, "\"v1\"", "Tue, 01 Dec 2026 10:00:00 GMT");
    CHECK(strcmp(r.etag, "\"v1\"") == 0);
    CHECK_EQ(gfs_send_header(ctx, GF_INVALID, 0), -EINVAL);
    CHECK_EQ(gfs_send_header(ctx, GF_OK, 15), 0);
    CHECK_EQ(gfs_send_header(ctx, GF_OK, 15), -EALREADY);
    CHECK_EQ(r.headers, 1);
    CHECK_EQ(r.length, 15);
    CHECK_EQ(gfs_ctx_status(ctx), GF_OK);
    CHECK(gfs_ctx_header_sent(ctx));
    CHECK_EQ(gfs_send(ctx, buf, 10), 0);
    CHECK_EQ(gfs_send(ctx, buf, 10), -EMSGSIZE); /* past the announced length */
    CHECK_EQ(gfs_ctx_sent(ctx), 10);
    CHECK_EQ(r.sent, 10);
    CHECK(!gfs_ctx_cancelled(ctx));
    r.cancelled = 1;
    CHECK(gfs_ctx_cancelled(ctx) && gfs_ctx_stopping(ctx));
    r.fail_send = 1;
    CHECK_EQ(gfs_send(ctx, buf, 2), -EPIPE);
    r.fail_send = 0;
    CHECK_EQ(gfs_send(ctx, buf, 2), -EPIPE); /* broken for good */
    CHECK_EQ(r.sent, 10);
    gfs_ctx_sink_free(ctx);
    gfs_ctx_sink_free(NULL);
}

/* A sink's send_fd: taken when it accepts, the copy path on -ENOTSUP. */
struct fd_sink {
    struct rec_sink rec;
    int refuse, calls;
    uint64_t offset, len;
};

static int fd_send_fd(void *arg, int fd, uint64_t offset, uint64_t len)
{
    struct fd_sink *f = arg;
    (void)fd;
    f->calls++;
    if (f->refuse)
        return -ENOTSUP;
    f->offset = offset;
    f->len = len;
    return 0;
}

static const struct gfs_sink_ops fd_ops = {
    .header = rec_header,
    .send = rec_send,
    .stopping = rec_cancelled,
    .cancelled = rec_cancelled,
    .send_fd = fd_send_fd,
};

static void test_sink_send_fd(void)
{
    char path[] = "/tmp/test_gfserver_fd.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    for (int refuse = 0; refuse <= 1; refuse++) {
        struct fd_sink f = {.refuse = refuse};
        struct gfs_ctx *ctx = NULL;
        CHECK_EQ(gfs_ctx_sink_new(&ctx, &fd_ops, &f), 0);
        CHECK_EQ(gfs_send_header(ctx, GF_OK, 6), 0);
        CHECK_EQ(gfs_send_file(ctx, fd, 2, 6), 0);
        CHECK_EQ(f.calls, 1);
        CHECK_EQ(gfs_ctx_sent(ctx), 6);
        /* taken: the sink had the descriptor, no bytes copied; refused: the bytes copied */
        CHECK_EQ(f.rec.sent, refuse ? 6 : 0);
        CHECK_EQ(f.len, refuse ? 0 : 6);
        CHECK_EQ(f.offset, refuse ? 0 : 2);
        CHECK_EQ(gfs_send_file(ctx, fd, 0, 1), -EMSGSIZE);
        CHECK_EQ(f.calls, 1);
        gfs_ctx_sink_free(ctx);
    }
    close(fd);
}

TEST_MAIN(T(test_basic_responses), T(test_send_ok), T(test_on_done), T(test_handler_failures),
          T(test_legacy_framing), T(test_header_byte_by_byte), T(test_malformed_while_serving),
          T(test_lingering_close), T(test_stop_lets_inflight_finish), T(test_stop_cuts_after_grace),
          T(test_stalled_client_released), T(test_backpressure), T(test_stop_flag_signal),
          T(test_header_wait_holds_no_worker), T(test_options_and_lifecycle),
          T(test_accept_pauses_on_emfile), T(test_sink_ctx), T(test_sink_send_fd))
