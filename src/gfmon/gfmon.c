/* gfmon.c - the live monitor of simplecached and every webproxy of this user: an ncurses screen
 * refreshed every second, or one plain-text (--once) or JSON (--json) snapshot. */
/* SPDX-License-Identifier: MIT */
#include <curses.h>
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "instance_cli.h"
#include "ipc_rundir.h"
#include "monitor.h"
#include "signals.h"

#define PROG            "gfmon"
#define INTERVAL_MIN_MS 100u
#define INTERVAL_MAX_MS 60000u
#define ONCE_WIDTH      80u

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [options]\n"
    "Shows the live figures of simplecached and of every webproxy of this user and instance,\n"
    "read from their stats objects in /dev/shm (read-only: a monitor can never slow or stop\n"
    "a daemon):\n"
    "the command queue's depth and message rate, each segment's state (FREE, IN_USE,\n"
    "ABANDONED), worker and progress, throughput, active transfers, requests by outcome and\n"
    "the hit ratio. Daemons that start or stop are picked up at the next refresh.\n"
    "  -i, --interval MS   refresh interval, 100..60000 (default 1000)\n"
    "      --instance NAME show the daemons of instance NAME only (1 to 32 of A-Z a-z 0-9\n"
    "                      _ -); without it, those of the instance named default only\n"
    "      --once          print one plain-text snapshot and exit\n"
    "      --json          print one JSON object and exit: {\"instance\": NAME,\n"
    "                      \"cache\": {...} or null,\n"
    "                      \"proxies\": [{\"pid\": ..., \"segments\": [{\"state\": ...}, ...]}, ...]}\n"
    "  -h, --help          show this help and exit\n"
    "      --version       show the version and exit\n"
    "Keys: q quits (so do SIGINT and SIGTERM). The screen fits 80x24 and uses a larger\n"
    "terminal when it has one. In a snapshot, rates are averages since each daemon started.\n"
    "Exit status: 0 on success, 1 when /dev/shm cannot be read or there is no terminal, 2 for\n"
    "a bad option or value.\n";
/* clang-format on */

static volatile sig_atomic_t stop_requested;

enum mode { MODE_SCREEN, MODE_ONCE, MODE_JSON };
enum long_opt { OPT_ONCE = 256, OPT_JSON, OPT_VERSION, OPT_INSTANCE };

static const struct option long_opts[] = {
    {"interval", required_argument, NULL, 'i'},
    {"once", no_argument, NULL, OPT_ONCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {NULL, 0, NULL, 0},
};

static void parse_args(int argc, char **argv, enum mode *mode, unsigned *interval_ms)
{
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            if (cli_parse_uint(optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS, interval_ms) < 0)
                cli_fail_range(PROG, "-i", optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS);
            break;
        case OPT_ONCE:
            if (*mode == MODE_JSON)
                cli_fail(PROG, "--once and --json exclude each other");
            *mode = MODE_ONCE;
            break;
        case OPT_JSON:
            if (*mode == MODE_ONCE)
                cli_fail(PROG, "--once and --json exclude each other");
            *mode = MODE_JSON;
            break;
        case OPT_INSTANCE:
            instance_cli_option(PROG, optarg);
            break;
        case 'h':
            cli_print_help(usage);
        case OPT_VERSION:
            cli_print_version(PROG);
        default:
            cli_fail_getopt(PROG, c, argv);
        }
    }
    if (optind < argc)
        cli_fail(PROG, "unexpected argument '%s'", argv[optind]);
}

static void print_line(void *arg, unsigned row, const char *text, int emphasis)
{
    (void)arg;
    (void)row;
    (void)emphasis;
    puts(text);
}

static void screen_line(void *arg, unsigned row, const char *text, int emphasis)
{
    (void)arg;
    if (emphasis)
        attron(A_BOLD);
    mvaddstr((int)row, 0, text);
    if (emphasis)
        attroff(A_BOLD);
}

static int snapshot(enum mode mode)
{
    struct mon_sample s;
    int rc = mon_sample_take(&s, NULL);

    if (rc < 0) {
        fprintf(stderr, PROG ": cannot read /dev/shm: %s\n", strerror(-rc));
        return CLI_EXIT_FAILURE;
    }
    if (mode == MODE_JSON)
        rc = mon_json(&s, stdout);
    else
        mon_render(&s, ONCE_WIDTH, 0, 0, print_line, NULL);
    mon_sample_release(&s);
    if (rc < 0 || fflush(stdout) != 0) {
        fprintf(stderr, PROG ": cannot write the snapshot\n");
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

/* The screen: a sample every interval, drawn whole; keys are read in between. */
static int screen(unsigned interval_ms)
{
    struct mon_sample cur, prev;
    int have_prev = 0, fancy, status = CLI_EXIT_OK;

    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, PROG ": not a terminal; use --once or --json\n");
        return CLI_EXIT_FAILURE;
    }
    fancy = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    if (initscr() == NULL) {
        fprintf(stderr, PROG ": cannot initialise the terminal\n");
        return CLI_EXIT_FAILURE;
    }
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    while (!stop_requested) {
        int rc = mon_sample_take(&cur, have_prev ? &prev : NULL);
        if (rc < 0) {
            status = CLI_EXIT_FAILURE;
            break;
        }
        if (have_prev)
            mon_sample_release(&prev);
        prev = cur;
        have_prev = 1;
        erase();
        mon_render(&cur, (unsigned)COLS, (unsigned)LINES, fancy, screen_line, NULL);
        refresh();
        /* Keys until the next refresh; a resize redraws at once. */
        int64_t next = clock_mono_ms() + interval_ms;
        int quit = 0, redraw = 0;
        while (!stop_requested && !quit && !redraw) {
            int left = clock_ms_left(next);
            if (left == 0)
                break;
            timeout(left);
            int ch = getch();
            if (ch == 'q' || ch == 'Q')
                quit = 1;
            else if (ch == KEY_RESIZE)
                redraw = 1;
        }
        if (quit)
            break;
    }
    endwin();
    if (have_prev)
        mon_sample_release(&prev);
    if (status != CLI_EXIT_OK)
        fprintf(stderr, PROG ": cannot read /dev/shm\n");
    return status;
}

int main(int argc, char **argv)
{
    enum mode mode = MODE_SCREEN;
    unsigned interval_ms = 1000;

    setlocale(LC_ALL, "");
    parse_args(argc, argv, &mode, &interval_ms);
    if (mode != MODE_SCREEN)
        return snapshot(mode);
    if (signals_install_stop(&stop_requested) < 0) {
        fprintf(stderr, PROG ": cannot install signal handlers\n");
        return CLI_EXIT_FAILURE;
    }
    return screen(interval_ms);
}
