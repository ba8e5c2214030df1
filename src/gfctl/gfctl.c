/* gfctl.c - tells the running simplecached to purge an entry, ban a prefix or reload its index,
 * over the command queue, and prints what it did (docs/cache.md, "Purge and ban"). */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "cmdq.h"
#include "instance_cli.h"
#include "ipc_names.h"
#include "peer.h"

#define PROG             "gfctl"
#define TIMEOUT_MIN_MS   1u
#define TIMEOUT_MAX_MS   600000u
#define WAIT_SLICE_MS    50
#define REPLY_NAME_TRIES 16u /* names tried for the reply queue (the first one plain) */

/* clang-format off */
static const char usage[] =
    "usage: " PROG " [options] purge PATH | ban PREFIX | reload\n"
    "Tells the running simplecached of this user what to do, over its command queue:\n"
    "  purge PATH     drop the store entry of PATH (the next request fetches it again);\n"
    "                 an index entry is pinned and cannot be purged\n"
    "  ban PREFIX     drop every store entry whose path starts with PREFIX\n"
    "  reload         read the index again (as SIGHUP does)\n"
    "PATH and PREFIX start with '/' and are at most 4096 bytes.\n"
    "  -t, --timeout MS    longest wait for the cache's answer, 1..600000 (default 5000)\n"
    "      --instance NAME talk to the simplecached of instance NAME (1 to 32 of A-Z a-z\n"
    "                      0-9 _ -) (default: the instance named default)\n"
    "  -h, --help          show this help and exit\n"
    "      --version       show the version and exit\n"
    "Only a process of the cache's own uid is obeyed (the cache checks the sender's\n"
    "credentials); others get no answer.\n"
    "Exit status: 0 when done, 1 for a failure (no answer in time, the cache refused or\n"
    "failed: a pinned index path, no store, an unreadable index), 2 for a bad option, command\n"
    "or path, 3 when no cache is running.\n";
/* clang-format on */

enum long_opt { OPT_VERSION = 256, OPT_INSTANCE };

static const struct option long_opts[] = {
    {"timeout", required_argument, NULL, 't'},
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

struct args {
    enum cmdq_ctl_op op;
    const char *path; /* NULL for reload */
    unsigned timeout_ms;
};

static void parse_args(int argc, char **argv, struct args *a)
{
    const char *cmd;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (cli_parse_uint(optarg, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, &a->timeout_ms) < 0)
                cli_fail_range(PROG, "-t", optarg, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS);
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
    if (optind >= argc)
        cli_fail(PROG, "missing command (purge, ban or reload)");
    cmd = argv[optind++];
    if (strcmp(cmd, "reload") == 0) {
        a->op = CMDQ_CTL_RELOAD;
        if (optind != argc)
            cli_fail(PROG, "reload takes no argument");
        return;
    }
    if (strcmp(cmd, "purge") == 0)
        a->op = CMDQ_CTL_PURGE;
    else if (strcmp(cmd, "ban") == 0)
        a->op = CMDQ_CTL_BAN;
    else
        cli_fail(PROG, "unknown command '%s' (purge, ban or reload)", cmd);
    if (optind >= argc)
        cli_fail(PROG, "%s needs a path", cmd);
    if (optind + 1 != argc)
        cli_fail(PROG, "%s takes one path", cmd);
    a->path = argv[optind];
    if (a->path[0] != '/')
        cli_fail(PROG, "bad path '%s': it must start with '/'", a->path);
    if (strlen(a->path) > CMDQ_PATH_MAX)
        cli_fail(PROG, "bad path: longer than %d bytes", CMDQ_PATH_MAX);
}

/* Waits for the reply, at most timeout_ms, giving up early when the cache exits. Returns 0,
 * -ETIMEDOUT, -ESRCH (the cache exited), -EBADMSG, or -errno. */
static int wait_reply(mqd_t rq, int cache_pidfd, unsigned timeout_ms, struct cmdq_reply *r)
{
    int64_t deadline = clock_mono_ms() + timeout_ms;
    char buf[sizeof *r + 1];

    for (;;) {
        int left = clock_ms_left(deadline);
        struct timespec ts = clock_realtime_in(left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
        ssize_t n = mq_timedreceive(rq, buf, sizeof buf, NULL, &ts);

        if (n == (ssize_t)sizeof *r) {
            memcpy(r, buf, sizeof *r);
            if (r->magic != CMDQ_REPLY_MAGIC || r->version != CMDQ_VERSION || r->size != sizeof *r)
                return -EBADMSG;
            return 0;
        }
        if (n >= 0)
            return -EBADMSG;
        if (errno == EINTR)
            continue;
        if (errno != ETIMEDOUT)
            return -errno;
        if (peer_alive(cache_pidfd) != 1)
            return -ESRCH;
        if (left == 0)
            return -ETIMEDOUT;
    }
}

static int report(const struct args *a, const struct cmdq_reply *r)
{
    const char *what = a->op == CMDQ_CTL_BAN ? "ban" : a->op == CMDQ_CTL_PURGE ? "purge" : "reload";

    if (r->status == 0) {
        if (a->op == CMDQ_CTL_RELOAD)
            printf("reloaded index: %" PRIu64 " entries\n", r->count);
        else
            printf("%s %s (%" PRIu64 " entr%s)\n", a->op == CMDQ_CTL_BAN ? "banned" : "purged",
                   a->path, r->count, r->count == 1 ? "y" : "ies");
        return CLI_EXIT_OK;
    }
    if (r->status == -EPERM)
        fprintf(stderr, PROG ": %s %s: an index entry is pinned and cannot be purged\n", what,
                a->path);
    else if (r->status == -ENOTSUP)
        fprintf(stderr, PROG ": %s: the cache has no %s\n", what,
                a->op == CMDQ_CTL_RELOAD ? "index to reload" : "store (no --store-dir)");
    else if (a->op == CMDQ_CTL_RELOAD)
        fprintf(stderr, PROG ": reload failed: %s (the cache keeps its index; see its log)\n",
                strerror(-r->status));
    else
        fprintf(stderr, PROG ": %s %s failed: %s\n", what, a->path, strerror(-r->status));
    return CLI_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    struct args a = {.timeout_ms = 5000};
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = sizeof(struct cmdq_reply) + 1};
    struct cmdq_client *client = NULL;
    char rundir[PATH_MAX], rname[IPC_NAME_MAX];
    struct cmdq_reply reply = {0};
    struct cmdq_ctl ctl;
    int cache_pidfd = -1, rc, status = CLI_EXIT_FAILURE;
    mqd_t rq = (mqd_t)-1;

    parse_args(argc, argv, &a);
    rc = cmdq_ctl_init(&ctl, a.op, getpid(), a.path, a.path ? strlen(a.path) : 0);
    if (rc < 0)
        cli_fail(PROG, "bad path '%s': %s", a.path ? a.path : "", strerror(-rc));
    rc = cmdq_client_new(&client, rundir, sizeof rundir);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot use the runtime directory '%s': %s\n", rundir,
                strerror(-rc));
        return CLI_EXIT_CANNOT_START;
    }
    /* Our reply queue, before the command can be answered. Ours alone: O_EXCL, mode 0600; a name
     * someone else took first is never opened: another random serial is (ipc_names.h). */
    for (unsigned tries = 0; tries < REPLY_NAME_TRIES; tries++) {
        uint32_t serial = 0;

        if (tries > 0 && (rc = ipc_random_serial(&serial)) < 0)
            break;
        rc = cmdq_reply_name(rname, geteuid(), getpid(), serial);
        if (rc < 0)
            break;
        rq = mq_open(rname, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
        if (rq != (mqd_t)-1) {
            ctl.reply_serial = serial;
            break;
        }
        rc = -errno;
        if (rc != -EEXIST)
            break;
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the reply queue '%s': %s\n", rname, strerror(-rc));
        goto out;
    }
    rc = cmdq_client_send_ctl(client, &ctl, (int)a.timeout_ms, &cache_pidfd);
    if (rc == -ENOTCONN) {
        fprintf(stderr, PROG ": no cache running (no simplecached registered in '%s')\n", rundir);
        status = CLI_EXIT_CANNOT_START;
        goto out;
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot send to the cache: %s\n", strerror(-rc));
        goto out;
    }
    rc = wait_reply(rq, cache_pidfd, a.timeout_ms, &reply);
    if (rc == -ETIMEDOUT)
        fprintf(stderr, PROG ": no answer from the cache within %u ms\n", a.timeout_ms);
    else if (rc == -ESRCH)
        fprintf(stderr, PROG ": the cache exited before it answered\n");
    else if (rc < 0)
        fprintf(stderr, PROG ": bad answer from the cache: %s\n", strerror(-rc));
    else
        status = report(&a, &reply);
out:
    if (cache_pidfd >= 0)
        close(cache_pidfd);
    if (rq != (mqd_t)-1) {
        mq_close(rq);
        mq_unlink(rname);
    }
    cmdq_client_free(client);
    return status;
}
