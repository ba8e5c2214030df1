/* clock.c - monotonic time and deadlines. */
/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <errno.h>
#include <stdint.h>

int64_t clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

int clock_ms_left(int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return -1;
    int64_t left = deadline_ms - clock_mono_ms();
    if (left < 0)
        return 0;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

#define NS_PER_S  1000000000L
#define NS_PER_MS 1000000L

struct timespec clock_span(int ms)
{
    if (ms < 0)
        ms = 0;
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * NS_PER_MS};
}

/* clock's time now plus ms milliseconds. */
static struct timespec clock_in(clockid_t clock, int ms)
{
    struct timespec ts, span = clock_span(ms);

    clock_gettime(clock, &ts);
    ts.tv_sec += span.tv_sec;
    ts.tv_nsec += span.tv_nsec;
    if (ts.tv_nsec >= NS_PER_S) {
        ts.tv_sec++;
        ts.tv_nsec -= NS_PER_S;
    }
    return ts;
}

struct timespec clock_mono_in(int ms)
{
    return clock_in(CLOCK_MONOTONIC, ms);
}

struct timespec clock_mono_at(int64_t deadline_ms)
{
    return (struct timespec){.tv_sec = (time_t)(deadline_ms / 1000),
                             .tv_nsec = (long)(deadline_ms % 1000) * NS_PER_MS};
}

struct timespec clock_realtime_in(int ms)
{
    return clock_in(CLOCK_REALTIME, ms);
}

void clock_sleep_ms(int ms)
{
    struct timespec ts = clock_span(ms);

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}
