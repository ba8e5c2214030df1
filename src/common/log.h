/* log.h - one line per event on stderr, level checked before formatting. */
/* SPDX-License-Identifier: MIT */
#ifndef GF_LOG_H
#define GF_LOG_H

enum log_level { LOGL_ERR, LOGL_WARN, LOGL_INFO, LOGL_DEBUG };

/* Set once in main before any thread starts; only read afterwards. */
extern enum log_level log_threshold;

/* Sets the process role shown in each line ("webproxy", "simplecached"). Borrowed pointer:
 * it must outlive every log call (a string literal). Call before threads start. */
void log_set_role(const char *role);

/* Parses "err", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Formats one line and writes it with a single write(2), so threads never interleave:
 *   2026-11-28T01:02:03Z simplecached 4121:4125 E message: strerror(err)
 * err is a positive errno to append, or 0. Never call from a signal handler. */
void log_write(enum log_level lvl, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_msg(lvl, err, ...)                    \
    do {                                          \
        if ((lvl) <= log_threshold)               \
            log_write((lvl), (err), __VA_ARGS__); \
    } while (0)

#define log_err(err, ...)  log_msg(LOGL_ERR, (err), __VA_ARGS__)
#define log_warn(err, ...) log_msg(LOGL_WARN, (err), __VA_ARGS__)
#define log_info(...)      log_msg(LOGL_INFO, 0, __VA_ARGS__)
#define log_debug(...)     log_msg(LOGL_DEBUG, 0, __VA_ARGS__)

#endif
