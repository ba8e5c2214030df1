/* log.c - one line per event on stderr. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* gettid */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOGL_INFO;
static const char *log_role = "getfile";

void log_set_role(const char *role)
{
    log_role = role;
}

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *const names[] = {"err", "warn", "info", "debug"};

    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_write(enum log_level lvl, int err, const char *fmt, ...)
{
    static const char level_char[] = "EWID";
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int saved_errno = errno;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, " %s %d:%d %c ", log_role, (int)getpid(),
                          (int)gettid(), level_char[lvl]);
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2; /* truncated: keep room for the newline */
    if (err > 0 && n < sizeof line - 2) {
        /* The GNU strerror_r returns a pointer that may not be buf. */
        char ebuf[128];
        const char *es = strerror_r(err, ebuf, sizeof ebuf);
        int k = snprintf(line + n, sizeof line - 1 - n, ": %s", es);
        if (k > 0)
            n += (size_t)k < sizeof line - 1 - n ? (size_t)k : sizeof line - 2 - n;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w; /* Nowhere left to report a failed log write. */
    errno = saved_errno;
}
