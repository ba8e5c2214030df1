/* test_gfclient.c - the GETFILE client library against a scripted fake server thread. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* SIOCOUTQ, FIONREAD */
#include "gfclient.h"
#include "clock.h"
#include "netio.h"
#include "test.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum fake_mode {
    FAKE_SEND,     /* send the response, close */
    FAKE_BYTEWISE, /* send one byte at a time, each once the client has read the one before */
    FAKE_SPLIT,    /* send [0, split), wait until the client has read it, send the rest, close */
    FAKE_HOLD,     /* send the response, then wait for the client to close first */
    FAKE_LATE,     /* send [0, split), wait for the client to close, then send the rest */
};

/* A server for nconn connections, one at a time, each answered the same way. */
struct fake {
    int lfd;
    uint16_t port;
    pthread_t th;
    enum fake_mode mode;
    const char *resp;
    size_t resp_len, split;
    int nconn;
    /* Written by the server thread, read after join. */
    char req[GF_REQUEST_MAX];
    size_t req_len;
    int served;
    int synced; /* waits that saw the client read everything before the next send */
};

/* The client's end of the connection: a socket in this process whose local port is the
 * server side's peer port. Lets the server wait until the client has read what was sent. */
static int find_client_fd(int sfd, int lfd)
{
    struct sockaddr_in peer, me;
    socklen_t len = sizeof peer;

    if (getpeername(sfd, (struct sockaddr *)&peer, &len) < 0)
        return -1;
    for (int fd = 0; fd < 1024; fd++) {
        len = sizeof me;
        if (fd == sfd || fd == lfd || getsockname(fd, (struct sockaddr *)&me, &len) < 0)
            continue;
        if (me.sin_family == AF_INET && me.sin_port == peer.sin_port)
            return fd;
    }
    return -1;
}

/* Waits (bounded) until every byte sent on sfd is acknowledged and the client fd has none
 * left unread, or the client has closed its end (done with the response). Returns 1 when
 * that was seen. */
static int wait_consumed(int sfd, int cfd)
{
    int64_t deadline = clock_mono_ms() + 5000;
    int n;

    if (cfd < 0)
        return 0;
    while (clock_mono_ms() < deadline) {
        if (ioctl(cfd, FIONREAD, &n) < 0)
            return errno == EBADF; /* the client has closed its end */
        if (n == 0 && ioctl(sfd, SIOCOUTQ, &n) == 0 && n == 0 && ioctl(cfd, FIONREAD, &n) == 0 &&
            n == 0)
            return 1;
        usleep(100);
    }
    return 0;
}

/* Returns 0, or -1 when the client is gone (which some tests want). */
static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads until the client closes (bounded). */
static void wait_client_close(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[256];

    while (poll(&pfd, 1, 10000) > 0 && read(fd, buf, sizeof buf) > 0)
        continue;
}

static void fake_serve(struct fake *f, int sfd)
{
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};

    f->req_len = 0;
    while (f->req_len < 4 || memcmp(f->req + f->req_len - 4, "\r\n\r\n", 4) != 0) {
        if (f->req_len == sizeof f->req || poll(&pfd, 1, 5000) <= 0)
            return;
        ssize_t n = read(sfd, f->req + f->req_len, sizeof f->req - f->req_len);
        if (n <= 0)
            return;
        f->req_len += (size_t)n;
    }
    int cfd = f->mode == FAKE_SPLIT || f->mode == FAKE_BYTEWISE ? find_client_fd(sfd, f->lfd) : -1;
    switch (f->mode) {
    case FAKE_SEND:
        (void)send_all(sfd, f->resp, f->resp_len);
        break;
    case FAKE_HOLD:
        (void)send_all(sfd, f->resp, f->resp_len);
        wait_client_close(sfd);
        break;
    case FAKE_LATE:
        if (send_all(sfd, f->resp, f->split) < 0)
            break;
        wait_client_close(sfd);
        (void)send_all(sfd, f->resp + f->split, f->resp_len - f->split);
        break;
    case FAKE_BYTEWISE:
        for (size_t i = 0; i < f->resp_len; i++) {
            if (send_all(sfd, f->resp + i, 1) < 0)
                break;
            f->synced += wait_consumed(sfd, cfd);
        }
        break;
    case FAKE_SPLIT:
        if (send_all(sfd, f->resp, f->split) < 0)
            break;
        f->synced += wait_consumed(sfd, cfd);
        (void)send_all(sfd, f->resp + f->split, f->resp_len - f->split);
        break;
    }
}

static void *fake_main(void *p)
{
    struct fake *f = p;
    struct pollfd pfd = {.fd = f->lfd, .events = POLLIN};

    for (int i = 0; i < f->nconn; i++) {
        if (poll(&pfd, 1, 10000) <= 0)
            break;
        int sfd = accept(f->lfd, NULL, NULL);
        if (sfd < 0)
            break;
        fake_serve(f, sfd);
        close(sfd);
        f->served++;
    }
    return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode, const char *resp, size_t len)
{
    f->mode = mode;
    f->resp = resp;
    f->resp_len = len;
    if (f->nconn == 0)
        f->nconn = 1;
    if (netio_listen_tcp("127.0.0.1", 0, 64, &f->lfd) != 0)
        abort();
    f->port = (uint16_t)netio_local_port(f->lfd);
    if (pthread_create(&f->th, NULL, fake_main, f) != 0)
        abort();
}

static void fake_join(struct fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
}

/* What the callbacks saw. */
struct sink {
    int header_calls, write_calls;
    struct gf_response hdr;
    char *data;
    size_t len, cap;
    int header_rc, write_rc; /* returned by the callbacks */
};

static int on_header(const struct gf_response *hdr, void *arg)
{
    struct sink *s = arg;

    s->header_calls++;
    s->hdr = *hdr;
    return s->header_rc;
}

static int on_write(const void *buf, size_t len, void *arg)
{
    struct sink *s = arg;

    s->write_calls++;
    if (len == 0)
        return -EINVAL; /* the library promises len > 0 */
    if (s->len + len > s->cap) {
        size_t ncap = (s->len + len) * 2;
        char *p = realloc(s->data, ncap);
        if (p == NULL)
            return -ENOMEM;
        s->data = p;
        s->cap = ncap;
    }
    memcpy(s->data + s->len, buf, len);
    s->len += len;
    return s->write_rc;
}

static struct gfcrequest *client(uint16_t port, const char *path, struct sink *s, int idle_ms)
{
    struct gfcrequest *r = gfc_create();

    if (r == NULL)
        abort();
    CHECK_EQ(gfc_set_server(r, "127.0.0.1"), 0);
    CHECK_EQ(gfc_set_port(r, port), 0);
    CHECK_EQ(gfc_set_path(r, path), 0);
    gfc_set_headerfunc(r, on_header, s);
    gfc_set_writefunc(r, on_write, s);
    gfc_set_timeouts(r, 5000, idle_ms);
    return r;
}

/* Runs one request against a fake server answering resp with mode. */
static int run(enum fake_mode mode, const char *resp, size_t len, size_t split, struct sink *s,
               struct fake *f, struct gfcrequest **out)
{
    f->split = split;
    fake_start(f, mode, resp, len);
    struct gfcrequest *r = client(f->port, "/a/b.txt", s, 5000);
    int rc = gfc_perform(r);
    fake_join(f);
    *out = r;
    return rc;
}

#define OK10 "GETFILE OK 10\r\n\r\n0123456789"

static void test_ok_bytewise(void)
{
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;
    int rc = run(FAKE_BYTEWISE, OK10, strlen(OK10), 0, &s, &f, &r);

    CHECK_EQ(rc, 0);
    CHECK_EQ(f.req_len, strlen("GETFILE GET /a/b.txt\r\n\r\n"));
    CHECK_MEM(f.req, "GETFILE GET /a/b.txt\r\n\r\n", f.req_len);
    CHECK_EQ(f.synced, (int)strlen(OK10)); /* each byte was read on its own */
    CHECK_EQ(gfc_get_status(r), GF_OK);
    CHECK_EQ(gfc_get_filelen(r), 10);
    CHECK_EQ(gfc_get_bytesreceived(r), 10);
    CHECK_EQ(s.header_calls, 1);
    CHECK_EQ(s.hdr.status, GF_OK);
    CHECK_EQ(s.hdr.length, 10);
    CHECK_EQ(s.write_calls, 10); /* one piece per read */
    CHECK_EQ(s.len, 10);
    CHECK_MEM(s.data, "0123456789", 10);
    gfc_cleanup(r);
    free(s.data);
}

/* Two pieces, split at every offset: header pieces, header+content, content pieces. */
static void test_ok_split_everywhere(void)
{
    for (size_t k = 1; k < strlen(OK10); k++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc = run(FAKE_SPLIT, OK10, strlen(OK10), k, &s, &f, &r);

        CHECK_EQ(rc, 0);
        CHECK_EQ(f.synced, 1);
        CHECK_EQ(gfc_get_bytesreceived(r), 10);
        CHECK_EQ(s.len, 10);
        if (s.len == 10)
            CHECK_MEM(s.data, "0123456789", 10);
        gfc_cleanup(r);
        free(s.data);
    }
}

static void test_header_and_body_one_packet(void)
{
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;
    int rc = run(FAKE_SEND, OK10, strlen(OK10), 0, &s, &f, &r);

    CHECK_EQ(rc, 0);
    CHECK_EQ(s.header_calls, 1);
    CHECK_EQ(s.write_calls, 1); /* all content came with the header, in one read */
    CHECK_EQ(s.len, 10);
    CHECK_MEM(s.data, "0123456789", 10);
    gfc_cleanup(r);
    free(s.data);
}

/* 3 MiB: several reads of the 256 KiB buffer, content intact and in order. */
static void test_large_body(void)
{
    size_t n = 3u << 20, hl;
    char *resp = malloc(n + 64);
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;

    hl = (size_t)snprintf(resp, 64, "GETFILE OK %zu\r\n\r\n", n);
    for (size_t i = 0; i < n; i++)
        resp[hl + i] = (char)(i * 7 + i / 251);
    int rc = run(FAKE_SEND, resp, hl + n, 0, &s, &f, &r);
    CHECK_EQ(rc, 0);
    CHECK_EQ(gfc_get_bytesreceived(r), n);
    CHECK_EQ(s.len, n);
    CHECK(s.len == n && memcmp(s.data, resp + hl, n) == 0);
    CHECK(s.write_calls > 1);
    gfc_cleanup(r);
    free(s.data);
    free(resp);
}

static void test_ok_empty(void)
{
    const char *resp = "GETFILE OK 0\r\n\r\n";
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;
    int rc = run(FAKE_SEND, resp, strlen(resp), 0, &s, &f, &r);

    CHECK_EQ(rc, 0);
    CHECK_EQ(gfc_get_status(r), GF_OK);
    CHECK_EQ(gfc_get_filelen(r), 0);
    CHECK_EQ(gfc_get_bytesreceived(r), 0);
    CHECK_EQ(s.header_calls, 1);
    CHECK_EQ(s.write_calls, 0);
    gfc_cleanup(r);
}

/* Statuses without content, in both framings, from a server that closes and from one that
 * waits for the client to close first (the older servers do). */
static void test_other_statuses(void)
{
    static const struct {
        const char *resp;
        enum gf_status st;
        enum gf_framing fr;
    } cases[] = {
        {"GETFILE FILE_NOT_FOUND\r\n\r\n", GF_FILE_NOT_FOUND, GF_FRAMING_DOCUMENTED},
        {"GETFILE ERROR\r\n\r\n", GF_ERROR, GF_FRAMING_DOCUMENTED},
        {"GETFILE INVALID\r\n\r\n", GF_INVALID, GF_FRAMING_DOCUMENTED},
        {"GETFILE FILE_NOT_FOUND 0\n", GF_FILE_NOT_FOUND, GF_FRAMING_LEGACY},
        {"GETFILE ERROR 0\n", GF_ERROR, GF_FRAMING_LEGACY},
        {"GETFILE INVALID 0\n", GF_INVALID, GF_FRAMING_LEGACY},
    };
    static const enum fake_mode modes[] = {FAKE_BYTEWISE, FAKE_HOLD};

    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct sink s = {0};
            struct fake f = {0};
            struct gfcrequest *r;
            int rc = run(modes[m], cases[i].resp, strlen(cases[i].resp), 0, &s, &f, &r);

            if (rc != 0)
                fprintf(stderr, "mode %zu, case %zu: rc %d\n", m, i, rc);
            CHECK_EQ(rc, 0);
            CHECK_EQ(gfc_get_status(r), cases[i].st);
            CHECK_EQ(gfc_get_framing(r), cases[i].fr);
            CHECK_EQ(gfc_get_filelen(r), 0);
            CHECK_EQ(gfc_get_bytesreceived(r), 0);
            CHECK(gfc_get_error(r) == NULL);
            CHECK_EQ(s.header_calls, 1);
            CHECK_EQ(s.hdr.status, cases[i].st);
            CHECK_EQ(s.hdr.framing, cases[i].fr);
            CHECK_EQ(s.write_calls, 0);
            gfc_cleanup(r);
        }
    }
}

#define OLD10 "GETFILE OK 10 0123456789"

/* The older framing: content right after the space after the length, byte by byte. */
static void test_legacy_ok_bytewise(void)
{
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;
    int rc = run(FAKE_BYTEWISE, OLD10, strlen(OLD10), 0, &s, &f, &r);

    CHECK_EQ(rc, 0);
    CHECK_EQ(f.synced, (int)strlen(OLD10));
    CHECK_EQ(gfc_get_status(r), GF_OK);
    CHECK_EQ(gfc_get_framing(r), GF_FRAMING_LEGACY);
    CHECK_EQ(gfc_get_filelen(r), 10);
    CHECK_EQ(gfc_get_bytesreceived(r), 10);
    CHECK_EQ(s.hdr.framing, GF_FRAMING_LEGACY);
    CHECK_EQ(s.write_calls, 10);
    CHECK_EQ(s.len, 10);
    CHECK_MEM(s.data, "0123456789", 10);
    gfc_cleanup(r);
    free(s.data);
}

/* Content that looks like a header or a terminator stays content, split at every offset. */
static void test_legacy_ok_split_everywhere(void)
{
    static const char resp[] = "GETFILE OK 11  \r\n\r\nOK 5\r\n";

    for (size_t k = 1; k < sizeof resp - 1; k++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc = run(FAKE_SPLIT, resp, sizeof resp - 1, k, &s, &f, &r);

        CHECK_EQ(rc, 0);
        CHECK_EQ(gfc_get_framing(r), GF_FRAMING_LEGACY);
        CHECK_EQ(s.len, 11);
        if (s.len == 11)
            CHECK_MEM(s.data, " \r\n\r\nOK 5\r\n", 11);
        gfc_cleanup(r);
        free(s.data);
    }
}

/* A server that sends the whole response and then waits for the client to close (the older
 * servers): complete at the length, in either framing, well before the idle timeout. */
static void test_complete_at_length(void)
{
    static const char *const resps[] = {OK10, OLD10, "GETFILE OK 0 ", "GETFILE OK 0\r\n\r\n"};
    const int idle_ms = 20000;

    for (size_t i = 0; i < sizeof resps / sizeof resps[0]; i++) {
        struct sink s = {0};
        struct fake f = {0};

        fake_start(&f, FAKE_HOLD, resps[i], strlen(resps[i]));
        struct gfcrequest *r = client(f.port, "/x", &s, idle_ms);
        int64_t t0 = clock_mono_ms();
        int rc = gfc_perform(r);
        int64_t took = clock_mono_ms() - t0;
        fake_join(&f);
        CHECK_EQ(rc, 0);
        CHECK(took < idle_ms / 2); /* a hang check: the old client waited out idle_ms */
        CHECK_EQ(gfc_get_status(r), GF_OK);
        CHECK_EQ(gfc_get_bytesreceived(r), gfc_get_filelen(r));
        CHECK_EQ(s.len, gfc_get_filelen(r));
        CHECK_EQ(f.served, 1);
        gfc_cleanup(r);
        free(s.data);
    }
}

/* A malformed header: -EPROTO, status INVALID, and gfc_get_error says what was wrong. */
static void test_malformed_header(void)
{
    static const struct {
        const char *resp, *why;
    } cases[] = {
        {"GETFILE OK abc\r\n\r\n", "OK without an unsigned decimal length"},
        {"HTTP/1.1 200 OK\r\n\r\n", "does not start with \"GETFILE \""},
        {"GETFILE OK 10\n\n0123456789", "after the length"},
        {"GETFILE OK -1\r\n\r\n", "OK without an unsigned decimal length"},
        {"GETFILE OK 99999999999999999999999\r\n\r\n", "over 18446744073709551615"},
        {"GETFILE OK 007 abcdefg", "leading zero"},
        {"GETFILE FILE_NOT_FOUND 0\r\n\r\n", "after FILE_NOT_FOUND"},
        {"GETFILE ERROR 1\n", "after ERROR"},
        {"GETFILE NOT_FOUND 0\n", "unknown status"},
        {"GETFILE GET /a\r\n\r\n", "unknown status"},
        {"GETFILE OK 1111111111111111111111111111111111111111111111111111111111111111111111",
         "over 18446744073709551615"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc = run(FAKE_SEND, cases[i].resp, strlen(cases[i].resp), 0, &s, &f, &r);
        const char *why = gfc_get_error(r);

        if (rc != -EPROTO || why == NULL || strstr(why, cases[i].why) == NULL)
            fprintf(stderr, "case %zu: '%s': rc %d, '%s'\n", i, cases[i].resp, rc,
                    why ? why : "(null)");
        CHECK_EQ(rc, -EPROTO);
        CHECK(why != NULL && strstr(why, cases[i].why) != NULL);
        CHECK_EQ(gfc_get_status(r), GF_INVALID);
        CHECK_EQ(s.header_calls, 0);
        CHECK_EQ(s.write_calls, 0);
        gfc_cleanup(r);
    }
}

static void test_short_body(void)
{
    char resp[128];
    int hl = snprintf(resp, sizeof resp, "GETFILE OK 100\r\n\r\n");
    struct sink s = {0};
    struct fake f = {0};
    struct gfcrequest *r;

    memset(resp + hl, 'x', 40);
    int rc = run(FAKE_SEND, resp, (size_t)hl + 40, 0, &s, &f, &r);
    CHECK_EQ(rc, -ECONNRESET);
    CHECK_EQ(gfc_get_status(r), GF_OK);
    CHECK_EQ(gfc_get_filelen(r), 100);
    CHECK_EQ(gfc_get_bytesreceived(r), 40);
    CHECK_EQ(s.len, 40);
    gfc_cleanup(r);
    free(s.data);
}

static void test_close_before_header(void)
{
    static const char *const cases[] = {"", "GETFILE OK", "GETFILE OK 5\r\n"};

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc = run(FAKE_SEND, cases[i], strlen(cases[i]), 0, &s, &f, &r);

        CHECK_EQ(rc, -ECONNRESET);
        CHECK_EQ(gfc_get_status(r), GF_INVALID);
        CHECK_EQ(s.header_calls, 0);
        gfc_cleanup(r);
    }
}

/* Bytes beyond the announced length that are here when the last content byte is read (in
 * the same read, or already waiting on the socket), and content after a status that has
 * none: protocol errors, in both framings. */
static void test_extra_bytes(void)
{
    static const struct {
        const char *resp;
        enum fake_mode mode;
        size_t split;
        uint64_t received;
        const char *why;
    } cases[] = {
        {"GETFILE OK 3\r\n\r\nabcX", FAKE_SEND, 0, 3, "beyond the announced length"},
        {"GETFILE OK 3\r\n\r\nabcXYZ", FAKE_SPLIT, 17, 3, "beyond the announced length"},
        {"GETFILE OK 3\r\n\r\nabcXYZ", FAKE_SPLIT, 18, 3, "beyond the announced length"},
        {"GETFILE OK 0\r\n\r\nX", FAKE_SEND, 0, 0, "beyond the announced length"},
        {"GETFILE OK 3 abcX", FAKE_SEND, 0, 3, "beyond the announced length"},
        {"GETFILE OK 3 abcX", FAKE_SPLIT, 13, 3, "beyond the announced length"},
        {"GETFILE FILE_NOT_FOUND\r\n\r\nxyz", FAKE_SEND, 0, 0, "content after a status"},
        {"GETFILE ERROR\r\n\r\nxyz", FAKE_SPLIT, 15, 0, "content after a status"},
        {"GETFILE FILE_NOT_FOUND 0\nxyz", FAKE_SEND, 0, 0, "content after a status"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc =
            run(cases[i].mode, cases[i].resp, strlen(cases[i].resp), cases[i].split, &s, &f, &r);
        const char *why = gfc_get_error(r);

        if (rc != -EPROTO)
            fprintf(stderr, "case %zu: rc %d\n", i, rc);
        CHECK_EQ(rc, -EPROTO);
        CHECK(why != NULL && strstr(why, cases[i].why) != NULL);
        CHECK_EQ(gfc_get_status(r), GF_INVALID);
        CHECK_EQ(gfc_get_bytesreceived(r), cases[i].received);
        CHECK_EQ(s.len, cases[i].received);
        gfc_cleanup(r);
        free(s.data);
    }
}

/* Bytes the server would send only after the client's close are not waited for: the
 * transfer is complete at the length (one request per connection). */
static void test_late_extra_bytes(void)
{
    static const struct {
        const char *resp;
        size_t split;
        enum gf_status st;
    } cases[] = {
        {"GETFILE OK 3\r\n\r\nabcX", 19, GF_OK},
        {"GETFILE OK 3 abcX", 16, GF_OK},
        {"GETFILE ERROR\r\n\r\nxyz", 17, GF_ERROR},
        {"GETFILE ERROR 0\nxyz", 16, GF_ERROR},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sink s = {0};
        struct fake f = {0};
        struct gfcrequest *r;
        int rc = run(FAKE_LATE, cases[i].resp, strlen(cases[i].resp), cases[i].split, &s, &f, &r);

        CHECK_EQ(rc, 0);
        CHECK_EQ(gfc_get_status(r), cases[i].st);
        CHECK_EQ(s.len, gfc_get_filelen(r));
        gfc_cleanup(r);
        free(s.data);
    }
}

/* A server that accepts and never answers: -ETIMEDOUT after the idle timeout, not before. */
static void test_silent_server(void)
{
    struct sink s = {0};
    struct fake f = {0};

    fake_start(&f, FAKE_HOLD, "", 0);
    struct gfcrequest *r = client(f.port, "/x", &s, 300);
    int64_t t0 = clock_mono_ms();
    int rc = gfc_perform(r);
    int64_t took = clock_mono_ms() - t0;
    fake_join(&f);
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK(took >= 290);
    CHECK(took < 5000);
    CHECK_EQ(gfc_get_status(r), GF_INVALID);
    CHECK_EQ(f.served, 1);
    gfc_cleanup(r);
}

/* A server that sends part of the content and then stalls: the idle timeout is renewed by
 * each read, and a stall after the last read still times out. */
static void test_stall_mid_body(void)
{
    const char *resp = "GETFILE OK 10\r\n\r\n01234";
    struct sink s = {0};
    struct fake f = {0};

    fake_start(&f, FAKE_HOLD, resp, strlen(resp));
    struct gfcrequest *r = client(f.port, "/x", &s, 300);
    int rc = gfc_perform(r);
    fake_join(&f);
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK_EQ(gfc_get_bytesreceived(r), 5);
    gfc_cleanup(r);
    free(s.data);
}

static void test_refused(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    struct sink s = {0};
    /* Bound but not listening: the port stays ours and refuses connections. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    CHECK(fd >= 0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    struct gfcrequest *r = client(ntohs(sa.sin_port), "/x", &s, 1000);
    CHECK_EQ(gfc_perform(r), -ECONNREFUSED);
    CHECK_EQ(gfc_get_status(r), GF_INVALID);
    CHECK_EQ(s.header_calls, 0);
    gfc_cleanup(r);
    close(fd);
}

static void test_callback_errors(void)
{
    struct sink s = {.header_rc = -ECANCELED};
    struct fake f = {0};
    struct gfcrequest *r;
    int rc = run(FAKE_SEND, OK10, strlen(OK10), 0, &s, &f, &r);

    CHECK_EQ(rc, -ECANCELED);
    CHECK_EQ(s.write_calls, 0);
    gfc_cleanup(r);

    struct sink s2 = {.write_rc = -ENOSPC};
    struct fake f2 = {0};
    rc = run(FAKE_BYTEWISE, OK10, strlen(OK10), 0, &s2, &f2, &r);
    CHECK_EQ(rc, -ENOSPC);
    CHECK_EQ(s2.write_calls, 1);
    gfc_cleanup(r);
    free(s2.data);
}

static void test_setters(void)
{
    struct gfcrequest *r = gfc_create();

    CHECK(r != NULL);
    CHECK_EQ(gfc_get_status(r), GF_INVALID);
    CHECK_EQ(gfc_perform(r), -EINVAL); /* no path yet */
    CHECK_EQ(gfc_set_path(r, "noslash"), -EINVAL);
    CHECK_EQ(gfc_set_path(r, ""), -EINVAL);
    CHECK_EQ(gfc_set_path(r, "/a\nb"), -EINVAL);
    CHECK_EQ(gfc_set_path(r, NULL), -EINVAL);
    CHECK_EQ(gfc_set_port(r, 0), -EINVAL);
    CHECK_EQ(gfc_set_server(r, ""), -EINVAL);
    CHECK_EQ(gfc_set_server(r, NULL), -EINVAL);
    CHECK_EQ(gfc_set_path(r, "/ok"), 0);
    gfc_cleanup(r);
    gfc_cleanup(NULL);
}

/* The same request performed twice: a new connection and fresh results each time. */
static void test_reuse(void)
{
    struct sink s = {0};
    struct fake f = {.nconn = 2};

    fake_start(&f, FAKE_SEND, OK10, strlen(OK10));
    struct gfcrequest *r = client(f.port, "/x", &s, 5000);
    CHECK_EQ(gfc_perform(r), 0);
    CHECK_EQ(gfc_perform(r), 0);
    fake_join(&f);
    CHECK_EQ(f.served, 2);
    CHECK_EQ(gfc_get_bytesreceived(r), 10);
    CHECK_EQ(s.len, 20);
    CHECK_EQ(s.header_calls, 2);
    gfc_cleanup(r);
    free(s.data);
}

#define CONC_THREADS 4
#define CONC_EACH    10

static uint16_t conc_port;

static void *conc_main(void *arg)
{
    int *ok = arg;
    struct sink s = {0};
    struct gfcrequest *r = gfc_create();

    gfc_set_server(r, "127.0.0.1");
    gfc_set_port(r, conc_port);
    gfc_set_path(r, "/c");
    gfc_set_writefunc(r, on_write, &s);
    for (int i = 0; i < CONC_EACH; i++)
        if (gfc_perform(r) == 0 && gfc_get_bytesreceived(r) == 10)
            (*ok)++;
    gfc_cleanup(r);
    free(s.data);
    return NULL;
}

/* Separate requests in separate threads need no locking (run under TSan too). */
static void test_concurrent(void)
{
    struct fake f = {.nconn = CONC_THREADS * CONC_EACH};
    pthread_t th[CONC_THREADS];
    int ok[CONC_THREADS] = {0}, total = 0;

    fake_start(&f, FAKE_SEND, OK10, strlen(OK10));
    conc_port = f.port;
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_create(&th[i], NULL, conc_main, &ok[i]);
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += ok[i];
    }
    fake_join(&f);
    CHECK_EQ(total, CONC_THREADS * CONC_EACH);
}

TEST_MAIN(T(test_ok_bytewise), T(test_ok_split_everywhere), T(test_header_and_body_one_packet),
          T(test_large_body), T(test_ok_empty), T(test_other_statuses), T(test_legacy_ok_bytewise),
          T(test_legacy_ok_split_everywhere), T(test_complete_at_length), T(test_malformed_header),
          T(test_short_body), T(test_close_before_header), T(test_extra_bytes),
          T(test_late_extra_bytes), T(test_silent_server), T(test_stall_mid_body), T(test_refused),
          T(test_callback_errors), T(test_setters), T(test_reuse), T(test_concurrent))
