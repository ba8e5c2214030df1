/* test_origin_url.c - origin mode's base URL check, path encoding and dot-segment rule. */
/* SPDX-License-Identifier: MIT */
#include "origin_fetch.h"

#include <curl/curl.h>
#include <errno.h>

#include "gf_proto.h"
#include "test.h"

static char out[ORIGIN_BASE_MAX + 3 * GF_PATH_MAX + 1];

/* Builds base + path; returns the length or -errno, the URL in out. */
static ssize_t build(const char *base, const char *path)
{
    return origin_url_build(out, sizeof out, base, strlen(base), path, strlen(path));
}

static int base_ok(const char *url, const char *want)
{
    const char *why = NULL;
    char buf[ORIGIN_BASE_MAX];
    ssize_t n = origin_base_parse(url, buf, sizeof buf, &why);

    if (n < 0) {
        fprintf(stderr, "  '%s' refused: %s\n", url, why);
        return 0;
    }
    if ((size_t)n != strlen(buf) || strcmp(buf, want) != 0) {
        fprintf(stderr, "  '%s' -> '%s', want '%s'\n", url, buf, want);
        return 0;
    }
    return 1;
}

static int base_bad(const char *url)
{
    const char *why = NULL;
    char buf[ORIGIN_BASE_MAX];
    ssize_t n = origin_base_parse(url, buf, sizeof buf, &why);

    return n == -EINVAL && why != NULL && why[0] != '\0';
}

static void test_base_normalized(void)
{
    CHECK(base_ok("http://127.0.0.1:8080", "http://127.0.0.1:8080"));
    CHECK(base_ok("http://127.0.0.1:8080/", "http://127.0.0.1:8080"));
    CHECK(base_ok("http://host/files", "http://host/files"));
    CHECK(base_ok("http://host/files/", "http://host/files"));
    CHECK(base_ok("https://host:8443/a/b/", "https://host:8443/a/b"));
    CHECK(base_ok("HTTP://Host/x", "http://Host/x"));
    CHECK(base_ok("http://[::1]:8080/", "http://[::1]:8080"));
}

static void test_base_refused(void)
{
    CHECK(base_bad("ftp://host/x"));
    CHECK(base_bad("file:///etc"));
    CHECK(base_bad("127.0.0.1:8080"));
    CHECK(base_bad("http://"));
    CHECK(base_bad("http://h/a b"));
    CHECK(base_bad("http://host:70000/"));
    CHECK(base_bad("http://host/x?a=1"));
    CHECK(base_bad("http://host/x#frag"));
    CHECK(base_bad("http://ho st/"));
    CHECK(base_bad(""));
    CHECK(base_bad("not a url"));
}

static void test_plain_concatenation(void)
{
    CHECK_EQ(build("http://h:1", "/a/b.txt"), strlen("http://h:1/a/b.txt"));
    CHECK(strcmp(out, "http://h:1/a/b.txt") == 0);
    CHECK(build("http://h/files", "/x") > 0);
    CHECK(strcmp(out, "http://h/files/x") == 0);
    CHECK(build("http://h", "/") > 0);
    CHECK(strcmp(out, "http://h/") == 0);
    CHECK(build("http://h", "/A-Z_a.z~0-9") > 0);
    CHECK(strcmp(out, "http://h/A-Z_a.z~0-9") == 0);
}

static void test_encoding(void)
{
    CHECK(build("http://h", "/sp ace.txt") > 0);
    CHECK(strcmp(out, "http://h/sp%20ace.txt") == 0);
    CHECK(build("http://h", "/a%41?b#c") > 0);
    CHECK(strcmp(out, "http://h/a%2541%3Fb%23c") == 0);
    CHECK(build("http://h", "/+&=;:@!$'()*,\"<>[]\\^`{|}") > 0);
    CHECK(
        strcmp(
            out,
            "http://h/%2B%26%3D%3B%3A%40%21%24%27%28%29%2A%2C%22%3C%3E%5B%5D%5C%5E%60%7B%7C%7D") ==
        0);
    /* Dots inside names are ordinary. */
    CHECK(build("http://h", "/...") > 0);
    CHECK(build("http://h", "/.hidden/a..b/..x/x..") > 0);
    CHECK(strcmp(out, "http://h/.hidden/a..b/..x/x..") == 0);
    CHECK(build("http://h", "/%2e%2e%2e") > 0);
}

static void test_dot_segments_refused(void)
{
    static const char *const refused[] = {
        "/..",         "/.",           "/../x",     "/a/../b", "/a/..",         "/a/./b",
        "/a/.",        "/%2e%2e/x",    "/%2E%2e/x", "/.%2e/x", "/%2e./x",       "/%2e",
        "/a/%2E",      "/..\\x",       "/a\\..\\b", "/a\\.",   "/%252e%252e/x", "/%25252e/x",
        "/%2%65%2e/x", "/x/%2e%2E%2F",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        ssize_t n = build("http://h/base", refused[i]);
        if (n != -ENOENT)
            fprintf(stderr, "  '%s' not refused (%zd)\n", refused[i], n);
        CHECK_EQ(n, -ENOENT);
    }
    /* Encoded separators split a segment for an origin that decodes. */
    CHECK_EQ(build("http://h", "/a%2F..%2Fb"), -ENOENT);
    CHECK_EQ(build("http://h", "/a%5c..%5Cb"), -ENOENT);
    CHECK_EQ(build("http://h", "/xyz%2F%2E"), -ENOENT);
    CHECK(build("http://h", "/a%2F...%2Fb") > 0);
    CHECK(build("http://h", "/a%2Fb") > 0);
    /* Still encoded after 8 decodings: refused rather than guessed. */
    CHECK_EQ(build("http://h", "/%2525252525252525252e"), -ENOENT);
    CHECK(build("http://h", "/%25252525252e") == -ENOENT);
}

static void test_bounds(void)
{
    char path[GF_PATH_MAX + 1];
    char small[32];

    memset(path, ' ', GF_PATH_MAX);
    path[0] = '/';
    path[GF_PATH_MAX] = '\0';
    /* The worst case fits: every byte encoded. */
    ssize_t n = build("http://h", path);
    CHECK_EQ(n, strlen("http://h") + 1 + 3 * (GF_PATH_MAX - 1));
    CHECK_EQ(origin_url_build(small, sizeof small, "http://h", 8, "/abc def ghi jkl mno", 20),
             -ENOSPC);
    CHECK_EQ(origin_url_build(small, sizeof small, "http://h", 8, "", 0), -ENOENT);
    CHECK_EQ(origin_url_build(small, sizeof small, "http://h", 8, "x", 1), -ENOENT);
}

static void test_fetcher_new(void)
{
    struct origin_fetcher *f = NULL;
    struct origin_options bad = {.base_url = "gopher://h/"};
    struct origin_options good = {.base_url = "http://127.0.0.1:1/x/"};
    uint64_t r = 1, c = 1;

    CHECK_EQ(origin_fetcher_new(&f, &bad), -EINVAL);
    CHECK_EQ(origin_fetcher_new(&f, &good), 0);
    origin_fetcher_stats(f, &r, &c, NULL);
    CHECK_EQ(r, 0);
    CHECK_EQ(c, 0);
    origin_fetcher_free(f);
    origin_fetcher_free(NULL);
}

static void global_init(void)
{
    CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
}

static void global_cleanup(void)
{
    curl_global_cleanup();
}

TEST_MAIN(T(global_init), T(test_base_normalized), T(test_base_refused),
          T(test_plain_concatenation), T(test_encoding), T(test_dot_segments_refused),
          T(test_bounds), T(test_fetcher_new), T(global_cleanup))
