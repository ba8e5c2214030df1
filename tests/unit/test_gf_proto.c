/* test_gf_proto.c - unit tests of the GETFILE header parsers and formatters; every input ends
 * exactly at a PROT_NONE page, so reading one byte too far crashes the test. */
/* SPDX-License-Identifier: MIT */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "test.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "getfile/gf_proto.h"

#define S(lit)    lit, (sizeof(lit) - 1) /* a string literal as <bytes, length> */
#define GUARD_CAP (2 * GF_REQUEST_MAX)   /* the longest input any test places */

static char *guard_mem; /* guard_cap read-write bytes, then one PROT_NONE page */
static size_t guard_cap;

static void guard_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p;

    guard_cap = (GUARD_CAP + page - 1) / page * page;
    p = mmap(NULL, guard_cap + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p + guard_cap, page, PROT_NONE) != 0) {
        perror("guard page");
        exit(1);
    }
    guard_mem = p;
}

/* Copies data[0..len) so that it ends right before the guard page; returns where it starts.
 * The copy is valid until the next call. */
static char *at_guard(const void *data, size_t len)
{
    char *p;

    if (!guard_mem)
        guard_init();
    if (len > guard_cap) {
        fprintf(stderr, "at_guard: %zu bytes do not fit\n", len);
        exit(1);
    }
    p = guard_mem + guard_cap - len;
    if (len)
        memmove(p, data, len);
    return p;
}

static ssize_t req_at(const char *s, size_t len, struct gf_request *r)
{
    return gf_parse_request(at_guard(s, len), len, r);
}

static ssize_t rsp_at(const char *s, size_t len, struct gf_response *r)
{
    return gf_parse_response(at_guard(s, len), len, r, NULL);
}

/* A request header for a path of n bytes: "/" then 'a'..'z' repeated. Returns its length. */
static size_t long_request(char *buf, size_t n)
{
    size_t len = 0;

    memcpy(buf, "GETFILE GET /", 13);
    len = 13;
    for (size_t i = 1; i < n; i++)
        buf[len++] = (char)('a' + i % 26);
    memcpy(buf + len, "\r\n\r\n", 4);
    return len + 4;
}

static void on_segv(int sig)
{
    (void)sig;
    _exit(42);
}

/* The harness itself: a read of the byte after an input must fault, or the other tests prove
 * nothing about over-reads. */
static void test_guard_page_faults(void)
{
    const volatile char *p = at_guard("x", 1);
    int status = 0;
    pid_t pid;

    CHECK_EQ(p[0], 'x');
    fflush(NULL);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        (void)p[1];
        _exit(0);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

static void test_request_valid(void)
{
    static const struct {
        const char *in;
        size_t len;
    } cases[] = {
        {S("GETFILE GET /\r\n\r\n")},
        {S("GETFILE GET /a/b.txt\r\n\r\n")},
        {S("GETFILE GET /a b\r\n\r\n")},                                 /* spaces inside a path */
        {S("GETFILE GET / ~!\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~\r\n\r\n")}, /* all punctuation */
        {S("GETFILE GET //\r\n\r\n")},
    };
    struct gf_request r;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *in = cases[c].in;
        size_t len = cases[c].len;

        for (size_t k = 0; k < len; k++) {
            r.path = NULL;
            r.path_len = 99;
            CHECK_EQ(req_at(in, k, &r), 0);
            CHECK(r.path == NULL && r.path_len == 99); /* *out untouched */
        }
        const char *p = at_guard(in, len);
        CHECK_EQ(gf_parse_request(p, len, &r), len);
        CHECK(r.path == p + 12);
        CHECK_EQ(r.path_len, len - 16);
        CHECK_MEM(r.path, in + 12, len - 16);
    }
}

/* The header arrives in chunks of various sizes, followed by content bytes in the same reads;
 * the parser answers 0 until the header is complete, then its exact length. */
static void test_request_chunked_with_body(void)
{
    static const char in[] = "GETFILE GET /x/y\r\n\r\n\0\xff GETFILE GET /z\r\n\r\n";
    static const size_t chunks[] = {1, 2, 3, 5, 7, 19, 20, 21, sizeof in - 1};
    const size_t hdr = 20;
    struct gf_request r;

    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t have = 0;
        ssize_t got = 0;

        while (got == 0 && have < sizeof in - 1) {
            have += chunks[c];
            if (have > sizeof in - 1)
                have = sizeof in - 1;
            const char *p = at_guard(in, have);
            got = gf_parse_request(p, have, &r);
            if (got > 0) {
                CHECK(r.path == p + 12);
                CHECK_EQ(r.path_len, 4);
                CHECK_MEM(r.path, "/x/y", 4);
            }
        }
        CHECK_EQ(got, hdr);
        CHECK(have >= hdr && have < hdr + chunks[c]); /* answered on the first read that had it */
    }
}

struct bad_case {
    const char *in;
    size_t len;
    size_t bad; /* index of the first byte that makes a header impossible */
};

/* Prefixes shorter than bad are valid prefixes (0); from bad on the answer is -EBADMSG. */
static void check_bad_requests(const struct bad_case *cases, size_t n)
{
    struct gf_request r;

    for (size_t c = 0; c < n; c++) {
        for (size_t k = 0; k <= cases[c].len; k++) {
            ssize_t want = k <= cases[c].bad ? 0 : -EBADMSG;
            ssize_t got = req_at(cases[c].in, k, &r);

            if (got != want)
                fprintf(stderr, "request case %zu, prefix %zu:\n", c, k);
            CHECK_EQ(got, want);
        }
    }
}

static void test_request_malformed(void)
{
    static const struct bad_case cases[] = {
        {S("GETFILX GET /a\r\n\r\n"), 6},   /* wrong scheme */
        {S("getfile GET /a\r\n\r\n"), 0},   /* lower-case scheme */
        {S("GETFILEGET /a\r\n\r\n"), 7},    /* missing space */
        {S("GETFILE\tGET /a\r\n\r\n"), 7},  /* tab for space */
        {S("GETFILE  GET /a\r\n\r\n"), 8},  /* doubled space */
        {S("GETFILE get /a\r\n\r\n"), 8},   /* lower-case method */
        {S("GETFILE PUT /a\r\n\r\n"), 8},   /* other method */
        {S("GETFILE GETS /a\r\n\r\n"), 11}, /* longer method */
        {S("GETFILE GET  /a\r\n\r\n"), 12}, /* doubled space */
        {S("GETFILE GET a\r\n\r\n"), 12},   /* path without '/' */
        {S("GETFILE GET \r\n\r\n"), 12},    /* empty path */
        {S("GETFILE GET\r\n\r\n"), 11},     /* no path at all */
        {S("GETFILE GET /a\n\n"), 14},      /* bare LF terminator */
        {S("GETFILE GET /a\r\n\n"), 16},    /* half CRLF */
        {S("GETFILE GET /a\r\r\n\r\n"), 15},
        {S("GETFILE GET /a\r\nX\r\n"), 16},
        {S("GETFILE GET /a \r\n\r\n"), 15},       /* trailing space, seen at the CR */
        {S("GETFILE GET /a\0b\r\n\r\n"), 14},     /* NUL in the path */
        {S("GETFILE GET /\xc3\xa9\r\n\r\n"), 13}, /* 8-bit byte */
        {S("GETFILE GET /a\tb\r\n\r\n"), 14},     /* control byte */
        {S("GETFILE GET /a\x7f\r\n\r\n"), 14},    /* DEL */
        {S("GETFILE GET /a\nb\r\n\r\n"), 14},     /* LF in the path */
    };

    check_bad_requests(cases, sizeof cases / sizeof cases[0]);
}

static void test_request_path_limits(void)
{
    static char buf[GF_REQUEST_MAX + 64];
    struct gf_request r;
    size_t len;
    const char *p;

    /* 4096 bytes, the '/' included: accepted; the header is exactly GF_REQUEST_MAX. */
    len = long_request(buf, GF_PATH_MAX);
    CHECK_EQ(len, GF_REQUEST_MAX);
    p = at_guard(buf, len);
    CHECK_EQ(gf_parse_request(p, len, &r), GF_REQUEST_MAX);
    CHECK_EQ(r.path_len, GF_PATH_MAX);
    CHECK(r.path == p + 12);
    for (size_t k = 0; k < len; k++)
        CHECK_EQ(req_at(buf, k, &r), 0);

    /* 4097 bytes: rejected at the 4097th path byte, before any terminator. */
    len = long_request(buf, GF_PATH_MAX + 1);
    CHECK_EQ(req_at(buf, 12 + GF_PATH_MAX, &r), 0);
    CHECK_EQ(req_at(buf, 12 + GF_PATH_MAX + 1, &r), -EBADMSG);
    CHECK_EQ(req_at(buf, len, &r), -EBADMSG);

    /* An endless header (a path that never ends): a verdict by GF_REQUEST_MAX bytes. */
    memcpy(buf, "GETFILE GET /", 13);
    memset(buf + 13, 'a', sizeof buf - 13);
    CHECK_EQ(req_at(buf, GF_REQUEST_MAX, &r), -EBADMSG);
    CHECK_EQ(req_at(buf, sizeof buf, &r), -EBADMSG);
}

#define DOC GF_FRAMING_DOCUMENTED
#define OLD GF_FRAMING_LEGACY

struct rsp_case {
    const char *in;
    size_t len;
    enum gf_status st;
    uint64_t length;
    enum gf_framing fr;
};

/* Both framings, each told apart by the byte after the length or status word. */
static void test_response_valid(void)
{
    static const struct rsp_case cases[] = {
        {S("GETFILE OK 0\r\n\r\n"), GF_OK, 0, DOC},
        {S("GETFILE OK 1\r\n\r\n"), GF_OK, 1, DOC},
        {S("GETFILE OK 104244\r\n\r\n"), GF_OK, 104244, DOC},
        {S("GETFILE OK 4294967296\r\n\r\n"), GF_OK, 4294967296u, DOC}, /* over 4 GiB */
        {S("GETFILE OK 18446744073709551615\r\n\r\n"), GF_OK, UINT64_MAX, DOC},
        {S("GETFILE FILE_NOT_FOUND\r\n\r\n"), GF_FILE_NOT_FOUND, 0, DOC},
        {S("GETFILE ERROR\r\n\r\n"), GF_ERROR, 0, DOC},
        {S("GETFILE INVALID\r\n\r\n"), GF_INVALID, 0, DOC},
        {S("GETFILE OK 0 "), GF_OK, 0, OLD},
        {S("GETFILE OK 104244 "), GF_OK, 104244, OLD},
        {S("GETFILE OK 18446744073709551615 "), GF_OK, UINT64_MAX, OLD},
        {S("GETFILE FILE_NOT_FOUND 0\n"), GF_FILE_NOT_FOUND, 0, OLD},
        {S("GETFILE ERROR 0\n"), GF_ERROR, 0, OLD},
        {S("GETFILE INVALID 0\n"), GF_INVALID, 0, OLD},
    };
    struct gf_response r;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t k = 0; k < cases[c].len; k++) {
            r.status = GF_ERROR;
            r.length = 77;
            r.framing = (enum gf_framing)9;
            CHECK_EQ(rsp_at(cases[c].in, k, &r), 0);
            CHECK(r.status == GF_ERROR && r.length == 77 && r.framing == 9); /* *out untouched */
        }
        r.length = 77;
        CHECK_EQ(rsp_at(cases[c].in, cases[c].len, &r), cases[c].len);
        CHECK_EQ(r.status, cases[c].st);
        CHECK(r.length == cases[c].length);
        CHECK_EQ(r.framing, cases[c].fr);
        CHECK(cases[c].len <= GF_RESPONSE_MAX);
    }
}

/* Content in the same reads as the header, including content that starts with digits or
 * looks like another header: the count stops at the terminator. */
static void test_response_chunked_with_body(void)
{
    static const struct {
        const char *in;
        size_t len, hdr;
        uint64_t length;
    } cases[] = {
        {S("GETFILE OK 5\r\n\r\nhello"), 16, 5},
        {S("GETFILE OK 3\r\n\r\n789"), 16, 3},
        {S("GETFILE OK 20\r\n\r\nGETFILE OK 1\r\n\r\n\0\xff\r\n"), 17, 20},
        {S("GETFILE FILE_NOT_FOUND\r\n\r\nGETFILE OK 1"), 26, 0},
        /* The older framing: content right after the space, even digits, spaces, CRLFs. */
        {S("GETFILE OK 5 hello"), 13, 5},
        {S("GETFILE OK 3 789"), 13, 3},
        {S("GETFILE OK 6  \r\n\r\n "), 13, 6},
        {S("GETFILE ERROR 0\nGETFILE OK 1 x"), 16, 0},
    };
    static const size_t chunks[] = {1, 2, 3, 4, 9, 64};
    struct gf_response r;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t s = 0; s < sizeof chunks / sizeof chunks[0]; s++) {
            size_t have = 0;
            ssize_t got = 0;

            while (got == 0 && have < cases[c].len) {
                have += chunks[s];
                if (have > cases[c].len)
                    have = cases[c].len;
                got = rsp_at(cases[c].in, have, &r);
            }
            CHECK_EQ(got, cases[c].hdr);
            CHECK(r.length == cases[c].length);
            CHECK(have < cases[c].hdr + chunks[s]);
        }
    }
}

struct bad_rsp {
    const char *in;
    size_t len;
    size_t bad;      /* index of the first byte that makes a header impossible */
    const char *why; /* what the parser must say then (a substring of it) */
};

#define NOT_GETFILE "does not start with \"GETFILE \""
#define UNKNOWN     "unknown status"
#define AFTER_LEN   "after the length: neither \"\\r\\n\\r\\n\" (documented form) nor one space"
#define AFTER(w) \
    "after " w ": neither \"\\r\\n\\r\\n\" (documented form) nor \" 0\\n\" (older form)"

/* Prefixes up to bad are valid prefixes (0); from bad on the answer is -EBADMSG with why. */
static void test_response_malformed(void)
{
    static const struct bad_rsp cases[] = {
        {S("GETFILE OK 18446744073709551616\r\n\r\n"), 30, "over 18446744073709551615"},
        {S("GETFILE OK 99999999999999999999\r\n\r\n"), 30, "over 18446744073709551615"},
        {S("GETFILE OK 100000000000000000000\r\n\r\n"), 31, "over 18446744073709551615"},
        {S("GETFILE OK 18446744073709551616 "), 30, "over 18446744073709551615"},
        {S("GETFILE OK 01\r\n\r\n"), 12, "leading zero"},
        {S("GETFILE OK 00\r\n\r\n"), 12, "leading zero"},
        {S("GETFILE OK 01 "), 12, "leading zero"},
        {S("GETFILE OK +1\r\n\r\n"), 11, "OK without an unsigned decimal length"},
        {S("GETFILE OK -1\r\n\r\n"), 11, "OK without an unsigned decimal length"},
        {S("GETFILE OK 1x\r\n\r\n"), 12, AFTER_LEN},
        {S("GETFILE OK\r\n\r\n"), 10, "OK without a length"},
        {S("GETFILE OK \r\n\r\n"), 11, "OK without an unsigned decimal length"},
        {S("GETFILE OK  5\r\n\r\n"), 11, "OK without an unsigned decimal length"},
        {S("GETFILE OK 5\n\n"), 12, AFTER_LEN},
        {S("GETFILE OK 5\r\n\n"), 14, AFTER_LEN},
        {S("GETFILE OK 5\t"), 12, AFTER_LEN},
        {S("GETFILE OK 5\r "), 13, AFTER_LEN},
        {S("GETFILE FILE_NOT_FOUND 0\r\n\r\n"), 24, AFTER("FILE_NOT_FOUND")},
        {S("GETFILE FILE_NOT_FOUND 1\n"), 23, AFTER("FILE_NOT_FOUND")}, /* length on non-OK */
        {S("GETFILE FILE_NOT_FOUND  0\n"), 23, AFTER("FILE_NOT_FOUND")},
        {S("GETFILE FILE_NOT_FOUND 00\n"), 24, AFTER("FILE_NOT_FOUND")},
        {S("GETFILE FILE_NOT_FOUND\n"), 22, AFTER("FILE_NOT_FOUND")},
        {S("GETFILE FILE_NOT_FOUND \r\n\r\n"), 23, AFTER("FILE_NOT_FOUND")},
        {S("GETFILE ERROR 0\r\n\r\n"), 15, AFTER("ERROR")},
        {S("GETFILE ERROR 0 "), 15, AFTER("ERROR")},
        {S("GETFILE ERROR\r\n\n"), 15, AFTER("ERROR")},
        {S("GETFILE INVALID 5\r\n\r\n"), 16, AFTER("INVALID")},
        {S("GETFILE INVALID\t"), 15, AFTER("INVALID")},
        {S("GETFILE FILE_NOT_FOUN\r\n\r\n"), 21, UNKNOWN}, /* bad status words */
        {S("GETFILE ERRORS\r\n\r\n"), 13, AFTER("ERROR")},
        {S("GETFILE NOPE\r\n\r\n"), 8, UNKNOWN},
        {S("GETFILE ok 5\r\n\r\n"), 8, UNKNOWN},
        {S("GETFILE OKAY 5\r\n\r\n"), 10, UNKNOWN},
        {S("GETFILE Ok 5\r\n\r\n"), 9, UNKNOWN},
        {S("GETFILE  OK 5\r\n\r\n"), 8, UNKNOWN},
        {S("GETFILES OK 5\r\n\r\n"), 7, NOT_GETFILE},
        {S("getfile OK 5\r\n\r\n"), 0, NOT_GETFILE},
        {S("HTTP/1.1 200 OK\r\n\r\n"), 0, NOT_GETFILE},
        {S("GETFILE GET /a\r\n\r\n"), 8, UNKNOWN}, /* a request is no response */
        {S("GETFILE\r\n\r\n"), 7, NOT_GETFILE},
    };
    struct gf_response r;

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t k = 0; k <= cases[c].len; k++) {
            ssize_t want = k <= cases[c].bad ? 0 : -EBADMSG;
            const char *why = NULL;
            ssize_t got = gf_parse_response(at_guard(cases[c].in, k), k, &r, &why);

            if (got != want || (got < 0 && (why == NULL || !strstr(why, cases[c].why))))
                fprintf(stderr, "response case %zu, prefix %zu: %zd, '%s'\n", c, k, got,
                        why ? why : "(null)");
            CHECK_EQ(got, want);
            if (got < 0)
                CHECK(why != NULL && strstr(why, cases[c].why) != NULL);
        }
    }
}

/* Every prefix of GF_RESPONSE_MAX bytes of anything gets a verdict: no header is longer. */
static void test_response_bounded(void)
{
    char buf[GF_RESPONSE_MAX];
    struct gf_response r;

    memcpy(buf, "GETFILE OK 1", 12);
    memset(buf + 12, '0', sizeof buf - 12);
    CHECK_EQ(rsp_at(buf, sizeof buf, &r), -EBADMSG);
}

static void test_path_valid(void)
{
    static char big[GF_PATH_MAX + 1];

    CHECK(gf_path_valid(S("/")));
    CHECK(gf_path_valid(S("/a b/c")));
    CHECK(gf_path_valid(S("/~")));
    CHECK(!gf_path_valid(NULL, 0));
    CHECK(!gf_path_valid(S("")));
    CHECK(!gf_path_valid(S("a")));
    CHECK(!gf_path_valid(S(" /a")));
    CHECK(!gf_path_valid(S("/a ")));
    CHECK(!gf_path_valid(S("/ ")));
    CHECK(!gf_path_valid(S("/a\0b")));
    CHECK(!gf_path_valid(S("/a\r")));
    CHECK(!gf_path_valid(S("/a\nb")));
    CHECK(!gf_path_valid(S("/\x7f")));
    CHECK(!gf_path_valid(S("/\x80")));
    CHECK(!gf_path_valid(S("/\xff")));
    memset(big, 'a', sizeof big);
    big[0] = '/';
    CHECK(gf_path_valid(at_guard(big, GF_PATH_MAX), GF_PATH_MAX));
    CHECK(!gf_path_valid(at_guard(big, GF_PATH_MAX + 1), GF_PATH_MAX + 1));
}

static void test_status_name(void)
{
    CHECK(strcmp(gf_status_name(GF_OK), "OK") == 0);
    CHECK(strcmp(gf_status_name(GF_FILE_NOT_FOUND), "FILE_NOT_FOUND") == 0);
    CHECK(strcmp(gf_status_name(GF_ERROR), "ERROR") == 0);
    CHECK(strcmp(gf_status_name(GF_INVALID), "INVALID") == 0);
    CHECK(strcmp(gf_status_name((enum gf_status)4), "?") == 0);
    CHECK(strcmp(gf_status_name((enum gf_status) - 1), "?") == 0);
}

/* Formats into a buffer of exactly cap bytes that ends at the guard page. */
static char *out_at_guard(size_t cap)
{
    return at_guard("", 0) - cap;
}

static void test_format_request(void)
{
    static char big[GF_PATH_MAX + 1];
    static const char *paths[] = {"/", "/a b", "/x/y.jpg", "/~!@#$%^&*()"};
    struct gf_request r;
    char *out;

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        size_t pl = strlen(paths[i]), need = 12 + pl + 4;
        char expect[64];

        memcpy(expect, "GETFILE GET ", 12);
        memcpy(expect + 12, paths[i], pl);
        memcpy(expect + 12 + pl, "\r\n\r\n", 4);
        out = out_at_guard(need);
        CHECK_EQ(gf_format_request(out, need, paths[i], pl), need);
        CHECK_MEM(out, expect, need);
        CHECK_EQ(gf_parse_request(out, need, &r), need); /* round trip */
        CHECK_EQ(r.path_len, pl);
        CHECK_MEM(r.path, paths[i], pl);
        CHECK_EQ(gf_format_request(out_at_guard(need - 1), need - 1, paths[i], pl), -ENOSPC);
        CHECK_EQ(gf_format_request(out_at_guard(0), 0, paths[i], pl), -ENOSPC);
    }

    memset(big, 'q', sizeof big);
    big[0] = '/';
    out = out_at_guard(GF_REQUEST_MAX);
    CHECK_EQ(gf_format_request(out, GF_REQUEST_MAX, big, GF_PATH_MAX), GF_REQUEST_MAX);
    CHECK_EQ(gf_parse_request(out, GF_REQUEST_MAX, &r), GF_REQUEST_MAX);

    char buf[GF_REQUEST_MAX + 8];
    CHECK_EQ(gf_format_request(buf, sizeof buf, big, GF_PATH_MAX + 1), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("")), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, NULL, 0), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("a")), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("/a ")), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("/a\r\n\r\nGETFILE GET /b")), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("/a\0b")), -EINVAL);
    CHECK_EQ(gf_format_request(buf, sizeof buf, S("/\xe9")), -EINVAL);
}

static void test_format_response(void)
{
    static const struct rsp_case cases[] = {
        {S("GETFILE OK 0\r\n\r\n"), GF_OK, 0, DOC},
        {S("GETFILE OK 9\r\n\r\n"), GF_OK, 9, DOC},
        {S("GETFILE OK 10\r\n\r\n"), GF_OK, 10, DOC},
        {S("GETFILE OK 1000000\r\n\r\n"), GF_OK, 1000000, DOC},
        {S("GETFILE OK 9999999999999999999\r\n\r\n"), GF_OK, 9999999999999999999u, DOC},
        {S("GETFILE OK 10000000000000000000\r\n\r\n"), GF_OK, 10000000000000000000u, DOC},
        {S("GETFILE OK 18446744073709551615\r\n\r\n"), GF_OK, UINT64_MAX, DOC},
        {S("GETFILE FILE_NOT_FOUND\r\n\r\n"), GF_FILE_NOT_FOUND, 0, DOC},
        {S("GETFILE FILE_NOT_FOUND\r\n\r\n"), GF_FILE_NOT_FOUND, 123, DOC}, /* length ignored */
        {S("GETFILE ERROR\r\n\r\n"), GF_ERROR, 0, DOC},
        {S("GETFILE INVALID\r\n\r\n"), GF_INVALID, 0, DOC},
        {S("GETFILE OK 0 "), GF_OK, 0, OLD},
        {S("GETFILE OK 138177 "), GF_OK, 138177, OLD},
        {S("GETFILE OK 18446744073709551615 "), GF_OK, UINT64_MAX, OLD},
        {S("GETFILE FILE_NOT_FOUND 0\n"), GF_FILE_NOT_FOUND, 0, OLD},
        {S("GETFILE FILE_NOT_FOUND 0\n"), GF_FILE_NOT_FOUND, 123, OLD}, /* length ignored */
        {S("GETFILE ERROR 0\n"), GF_ERROR, 0, OLD},
        {S("GETFILE INVALID 0\n"), GF_INVALID, 0, OLD},
    };
    struct gf_response r;
    char buf[GF_RESPONSE_MAX];

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t need = cases[c].len;
        char *out = out_at_guard(need);
        enum gf_status st = cases[c].st;
        enum gf_framing fr = cases[c].fr;

        CHECK_EQ(gf_format_response(out, need, st, cases[c].length, fr), need);
        CHECK_MEM(out, cases[c].in, need);
        CHECK_EQ(gf_parse_response(out, need, &r, NULL), need); /* round trip */
        CHECK_EQ(r.status, st);
        CHECK(r.length == (st == GF_OK ? cases[c].length : 0));
        CHECK_EQ(r.framing, fr);
        CHECK_EQ(gf_format_response(out_at_guard(need - 1), need - 1, st, cases[c].length, fr),
                 -ENOSPC);
        CHECK_EQ(gf_format_response(out_at_guard(0), 0, st, cases[c].length, fr), -ENOSPC);
    }
    CHECK_EQ(gf_format_response(buf, sizeof buf, (enum gf_status)4, 0, DOC), -EINVAL);
    CHECK_EQ(gf_format_response(buf, sizeof buf, (enum gf_status) - 1, 0, OLD), -EINVAL);
    CHECK_EQ(gf_format_response(buf, sizeof buf, GF_OK, 1, (enum gf_framing)2), -EINVAL);
    CHECK_EQ(gf_format_response(buf, sizeof buf, GF_ERROR, 0, (enum gf_framing) - 1), -EINVAL);
    CHECK_EQ(gf_format_response(buf, GF_RESPONSE_MAX, GF_OK, UINT64_MAX, DOC), 35);
    CHECK_EQ(gf_format_response(buf, GF_RESPONSE_MAX, GF_OK, UINT64_MAX, OLD), 32);
}

static void test_framing_names(void)
{
    enum gf_framing fr = (enum gf_framing)9;

    CHECK(strcmp(gf_framing_name(DOC), "documented") == 0);
    CHECK(strcmp(gf_framing_name(OLD), "legacy") == 0);
    CHECK(strcmp(gf_framing_name((enum gf_framing)2), "?") == 0);
    CHECK_EQ(gf_framing_parse("legacy", &fr), 0);
    CHECK_EQ(fr, OLD);
    CHECK_EQ(gf_framing_parse("documented", &fr), 0);
    CHECK_EQ(fr, DOC);
    CHECK_EQ(gf_framing_parse("Legacy", &fr), -EINVAL);
    CHECK_EQ(gf_framing_parse("", &fr), -EINVAL);
    CHECK_EQ(gf_framing_parse("legacyx", &fr), -EINVAL);
    CHECK_EQ(fr, DOC); /* untouched by a refusal */
}

TEST_MAIN(T(test_guard_page_faults), T(test_request_valid), T(test_request_chunked_with_body),
          T(test_request_malformed), T(test_request_path_limits), T(test_response_valid),
          T(test_response_chunked_with_body), T(test_response_malformed), T(test_response_bounded),
          T(test_path_valid), T(test_status_name), T(test_format_request), T(test_format_response),
          T(test_framing_names))
