/* clock.h - monotonic time and deadlines. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_CLOCK_H
#define GF_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds / milliseconds on CLOCK_MONOTONIC. */
int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);

/* Milliseconds left until deadline_ms (a clock_mono_ms() value), clamped to [0, INT32_MAX].
 * A deadline of -1 means "none" and returns -1 (poll's "wait forever"). */
int clock_ms_left(int64_t deadline_ms);

/* The timespec of a span of ms milliseconds (ppoll, nanosleep); negative ms counts as 0. */
struct timespec clock_span(int ms);

/* An absolute CLOCK_MONOTONIC timespec ms milliseconds from now (negative: now), for
 * sem_clockwait and condition variables set to that clock. */
struct timespec clock_mono_in(int ms);

/* The absolute CLOCK_MONOTONIC timespec of deadline_ms, a clock_mono_ms() value (>= 0). */
struct timespec clock_mono_at(int64_t deadline_ms);

/* An absolute CLOCK_REALTIME timespec ms milliseconds from now (negative: now), for
 * sem_timedwait and mq_timedsend, which only take that clock. */
struct timespec clock_realtime_in(int ms);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int ms);

#endif
