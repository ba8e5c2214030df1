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

/* An absolute CLOCK_REALTIME timespec ms milliseconds from now, for sem_timedwait and
 * mq_timedsend, which only take that clock. */
struct timespec clock_realtime_in(int ms);

/* Sleeps ms milliseconds, resuming after signals. */
void clock_sleep_ms(int ms);

#endif
