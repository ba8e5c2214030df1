/* test_ipc_names.c - IPC names: formatting, the strict parser's accept/reject table, random
 * serials, the sweep of dead owners' objects, and the runtime directory's resolution and checks
 * (in private mount and IPC namespaces). */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/ipc_names.h"
#include "ipc/ipc_rundir.h"

#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <sys/mman.h>

#include "ipc_testutil.h"
#include "test.h"

static int isolate_rc = -1; /* ipc_test_isolate_or_skip() result, from main */

static void test_format(void)
{
    char buf[IPC_NAME_MAX];

    CHECK_EQ(ipc_name_format(buf, IPC_KIND_REGISTRY, 1000, 0, 0), 0);
    CHECK(strcmp(buf, "/getfile-1000-cache") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_REGISTRY, 0, 0, 0), 0);
    CHECK(strcmp(buf, "/getfile-0-cache") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 1000, 42, 0), 0);
    CHECK(strcmp(buf, "/getfile-1000-42-cmd") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 1000, 42, 7), 0);
    CHECK(strcmp(buf, "/getfile-1000-42-cmd7") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 4294967294u, INT_MAX, UINT32_MAX), 0);
    CHECK(strcmp(buf, "/getfile-4294967294-2147483647-cmd4294967295") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_SEGMENT, 1000, 42, 0), 0);
    CHECK(strcmp(buf, "/getfile-1000-42-seg0") == 0);
    /* The longest name of all still fits. */
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_SEGMENT, 4294967294u, INT_MAX, UINT32_MAX), 0);
    CHECK(strcmp(buf, "/getfile-4294967294-2147483647-seg4294967295") == 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 1000, 0, 0), -EINVAL);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_SEGMENT, 1000, -5, 0), -EINVAL);
    CHECK_EQ(ipc_name_format(buf, (enum ipc_kind)9, 1000, 1, 0), -EINVAL);
}

static void test_parse_roundtrip(void)
{
    char buf[IPC_NAME_MAX];
    pid_t pid = -1;
    uint32_t serial = 1;

    CHECK_EQ(ipc_name_format(buf, IPC_KIND_SEGMENT, 1000, 31337, 0), 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_SEGMENT, 1000, &pid, &serial), 0);
    CHECK_EQ(pid, 31337);
    CHECK_EQ(serial, 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_SEGMENT, 0, INT_MAX, UINT32_MAX), 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_SEGMENT, 0, &pid, &serial), 0);
    CHECK_EQ(pid, INT_MAX);
    CHECK_EQ(serial, UINT32_MAX);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 7, 1, 0), 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_CMDQ, 7, &pid, &serial), 0);
    CHECK_EQ(pid, 1);
    CHECK_EQ(serial, 0);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 7, 99, 123456), 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_CMDQ, 7, &pid, &serial), 0);
    CHECK_EQ(pid, 99);
    CHECK_EQ(serial, 123456);
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 7, INT_MAX, UINT32_MAX), 0);
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_CMDQ, 7, &pid, &serial), 0);
    CHECK_EQ(serial, UINT32_MAX);
    CHECK_EQ(ipc_name_parse("/getfile-0-cache", IPC_KIND_REGISTRY, 0, NULL, NULL), 0);
}

static void test_parse_rejects(void)
{
    static const struct {
        const char *name;
        enum ipc_kind kind;
    } bad[] = {
        {"getfile-1000-cache", IPC_KIND_REGISTRY}, /* no slash */
        {"//getfile-1000-cache", IPC_KIND_REGISTRY},
        {"/getfile-1000-cache/", IPC_KIND_REGISTRY},
        {"/getfile-1000-cachex", IPC_KIND_REGISTRY},
        {"/getfile-01000-cache", IPC_KIND_REGISTRY}, /* leading zero */
        {"/getfile-100-cache", IPC_KIND_REGISTRY},   /* another uid */
        {"/getfile-10000-cache", IPC_KIND_REGISTRY},
        {"/getfile--cache", IPC_KIND_REGISTRY},
        {"/getfile-1000-", IPC_KIND_REGISTRY},
        {"/Getfile-1000-cache", IPC_KIND_REGISTRY},
        {"", IPC_KIND_REGISTRY},
        {"/", IPC_KIND_REGISTRY},
        {"/getfile-1000-42-cmd", IPC_KIND_REGISTRY}, /* another kind */
        {"/getfile-1000-0-cmd", IPC_KIND_CMDQ},      /* pid 0 owns nothing */
        {"/getfile-1000-042-cmd", IPC_KIND_CMDQ},
        {"/getfile-1000-+42-cmd", IPC_KIND_CMDQ},
        {"/getfile-1000- 42-cmd", IPC_KIND_CMDQ},
        {"/getfile-1000--42-cmd", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmdx", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd\n", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cm", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd0", IPC_KIND_CMDQ}, /* serial 0 is the plain name */
        {"/getfile-1000-42-cmd07", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd-7", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd 7", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd7x", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd4294967296", IPC_KIND_CMDQ},
        {"/getfile-1000-42-cmd12345678901", IPC_KIND_CMDQ},
        {"/getfile-1000-2147483648-cmd", IPC_KIND_CMDQ},  /* > INT_MAX */
        {"/getfile-1000-12345678901-cmd", IPC_KIND_CMDQ}, /* 11 digits */
        {"/getfile-1000-42-seg1", IPC_KIND_CMDQ},
        {"/getfile-1000-cache", IPC_KIND_CMDQ},
        {"/getfile-1000-42-seg", IPC_KIND_SEGMENT}, /* no serial */
        {"/getfile-1000-42-seg01", IPC_KIND_SEGMENT},
        {"/getfile-1000-42-seg4294967296", IPC_KIND_SEGMENT},
        {"/getfile-1000-42-seg1x", IPC_KIND_SEGMENT},
        {"/getfile-1000-42-seg-1", IPC_KIND_SEGMENT},
        {"/getfile-1000-42-seg 1", IPC_KIND_SEGMENT},
        {"//getfile-1000-42-seg1", IPC_KIND_SEGMENT},
        {"/getfile-1000-42-seg1/", IPC_KIND_SEGMENT},
        {"/x/getfile-1000-42-seg1", IPC_KIND_SEGMENT},
        {"/getfile-1001-42-seg1", IPC_KIND_SEGMENT}, /* foreign uid */
        {"/getfile-1000-42-cmd", IPC_KIND_SEGMENT},
    };
    char longname[100];
    pid_t pid = 99;
    uint32_t serial = 99;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ipc_name_parse(bad[i].name, bad[i].kind, 1000, &pid, &serial);

        if (rc != -EINVAL)
            fprintf(stderr, "accepted: '%s'\n", bad[i].name);
        CHECK_EQ(rc, -EINVAL);
    }
    /* Outputs untouched on failure. */
    CHECK_EQ(pid, 99);
    CHECK_EQ(serial, 99);
    /* Overlong: no NUL within IPC_NAME_MAX bytes, even if a valid prefix. */
    memset(longname, '1', sizeof longname);
    memcpy(longname, "/getfile-1000-42-seg", 20);
    longname[sizeof longname - 1] = '\0';
    CHECK_EQ(ipc_name_parse(longname, IPC_KIND_SEGMENT, 1000, NULL, NULL), -EINVAL);
    longname[IPC_NAME_MAX - 1] = '\0'; /* 63 chars: parses, but the serial is too long */
    CHECK_EQ(ipc_name_parse(longname, IPC_KIND_SEGMENT, 1000, NULL, NULL), -EINVAL);
}

static int shm_make(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);

    if (fd < 0)
        return -errno;
    close(fd);
    return 0;
}

static int mq_make(const char *name)
{
    struct mq_attr attr = {.mq_maxmsg = 1, .mq_msgsize = 8};
    mqd_t q = mq_open(name, O_RDONLY | O_CREAT | O_EXCL, 0600, &attr);

    if (q == (mqd_t)-1)
        return -errno;
    mq_close(q);
    return 0;
}

static int shm_exists(const char *name)
{
    char path[128];

    snprintf(path, sizeof path, "/dev/shm%s", name);
    return access(path, F_OK) == 0;
}

static int mq_exists(const char *name)
{
    mqd_t q = mq_open(name, O_RDONLY);

    if (q == (mqd_t)-1)
        return 0;
    mq_close(q);
    return 1;
}

static void test_sweep(void)
{
    uid_t uid = geteuid();
    pid_t self = getpid(), dead = ipc_test_dead_pid();
    char seg_dead1[IPC_NAME_MAX], seg_dead2[IPC_NAME_MAX], seg_live[IPC_NAME_MAX];
    char reg[IPC_NAME_MAX], q_dead[IPC_NAME_MAX], q_live[IPC_NAME_MAX];
    char seg_other_uid[IPC_NAME_MAX], seg_chowned[IPC_NAME_MAX], malformed[IPC_NAME_MAX];
    char cmd_in_shm[IPC_NAME_MAX];
    const unsigned both = (1u << IPC_KIND_CMDQ) | (1u << IPC_KIND_SEGMENT);
    int fd;

    CHECK_EQ(isolate_rc, 0); /* needs root: a private /dev/shm and /dev/mqueue */
    if (isolate_rc != 0)
        return;
    CHECK(dead > 0);
    CHECK_EQ(ipc_mqueue_listable(), 1);
    ipc_name_format(seg_dead1, IPC_KIND_SEGMENT, uid, dead, 1);
    ipc_name_format(seg_dead2, IPC_KIND_SEGMENT, uid, dead, 2);
    ipc_name_format(seg_live, IPC_KIND_SEGMENT, uid, self, 1);
    ipc_name_format(reg, IPC_KIND_REGISTRY, uid, 0, 0);
    ipc_name_format(q_dead, IPC_KIND_CMDQ, uid, dead, 0);
    ipc_name_format(q_live, IPC_KIND_CMDQ, uid, self, 0);
    ipc_name_format(seg_other_uid, IPC_KIND_SEGMENT, uid + 1, dead, 1);
    ipc_name_format(seg_chowned, IPC_KIND_SEGMENT, uid, dead, 3);
    ipc_name_format(cmd_in_shm, IPC_KIND_CMDQ, uid, dead, 0);
    snprintf(malformed, sizeof malformed, "/getfile-%u-0%d-seg1", (unsigned)uid, (int)dead);

    CHECK_EQ(shm_make(seg_dead1), 0);
    CHECK_EQ(shm_make(seg_dead2), 0);
    CHECK_EQ(shm_make(seg_live), 0);
    CHECK_EQ(shm_make(reg), 0);
    CHECK_EQ(shm_make(seg_other_uid), 0);
    CHECK_EQ(shm_make(malformed), 0);
    CHECK_EQ(shm_make(cmd_in_shm), 0); /* a queue-like name in /dev/shm is no segment */
    CHECK_EQ(shm_make(seg_chowned), 0);
    fd = shm_open(seg_chowned, O_RDWR, 0);
    CHECK(fd >= 0 && fchown(fd, 4242, 4242) == 0);
    if (fd >= 0)
        close(fd);
    CHECK_EQ(mq_make(q_dead), 0);
    CHECK_EQ(mq_make(q_live), 0);

    /* Segments only: the two dead ones go, the queue stays. */
    CHECK_EQ(ipc_sweep_dead(uid, 1u << IPC_KIND_SEGMENT), 2);
    CHECK(!shm_exists(seg_dead1) && !shm_exists(seg_dead2));
    CHECK(shm_exists(seg_live) && shm_exists(reg) && shm_exists(seg_other_uid));
    CHECK(shm_exists(malformed) && shm_exists(cmd_in_shm) && shm_exists(seg_chowned));
    CHECK(mq_exists(q_dead) && mq_exists(q_live));
    /* Queues: the dead one goes. A second sweep finds nothing. */
    CHECK_EQ(ipc_sweep_dead(uid, both), 1);
    CHECK(!mq_exists(q_dead) && mq_exists(q_live));
    CHECK_EQ(ipc_sweep_dead(uid, both), 0);
    CHECK_EQ(ipc_sweep_dead(uid, 1u << IPC_KIND_REGISTRY), -EINVAL);

    /* Without the mqueue mount queues are skipped, not an error. */
    CHECK_EQ(mq_make(q_dead), 0);
    /* The host may have its own mqueue mount below ours: remove every layer. */
    CHECK_EQ(umount("/dev/mqueue"), 0);
    while (umount2("/dev/mqueue", MNT_DETACH) == 0)
        ;
    CHECK_EQ(ipc_mqueue_listable(), 0);
    CHECK_EQ(ipc_sweep_dead(uid, both), 0);
    CHECK(mq_exists(q_dead));
    CHECK_EQ(mount("mqueue", "/dev/mqueue", "mqueue", 0, NULL), 0);
    CHECK_EQ(ipc_sweep_dead(uid, both), 1);

    mq_unlink(q_live);
    shm_unlink(seg_live);
    shm_unlink(reg);
    shm_unlink(seg_other_uid);
    shm_unlink(malformed);
    shm_unlink(cmd_in_shm);
    shm_unlink(seg_chowned);
    CHECK_EQ(ipc_test_objects_of(self), 0);
    CHECK_EQ(ipc_test_objects_of(dead), 0);
    CHECK_EQ(ipc_test_count("/dev/shm", "getfile-"), 0);
}

static void test_random_serial(void)
{
    uint32_t a = 0, b = 0;
    int differ = 0;

    for (int i = 0; i < 64; i++) {
        CHECK_EQ(ipc_random_serial(&b), 0);
        CHECK(b != 0);
        if (i > 0 && b != a)
            differ = 1;
        a = b;
    }
    CHECK(differ);
}

/* Runs fn as uid (and gid) in a child; returns its exit status (0: every step passed, else the
 * number of the first step that failed). */
static int as_user(uid_t uid, int (*fn)(void))
{
    int status = -1;
    pid_t pid = fork();

    if (pid == 0) {
        if (setgid(uid) < 0 || setuid(uid) < 0)
            _exit(100);
        _exit(fn());
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

#define VICTIM   4242 /* a user without a runtime directory */
#define SQUATTER 65534

/* Opens the runtime directory and checks path, source and the directory's mode. */
static int rundir_is(const char *path, enum ipc_rundir_source source)
{
    struct ipc_rundir rd;
    struct stat st;
    int ok;

    if (ipc_rundir_open(&rd) < 0)
        return 0;
    ok = strcmp(rd.path, path) == 0 && rd.source == source && fstat(rd.fd, &st) == 0 &&
         S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid();
    ipc_rundir_close(&rd);
    return ok;
}

/* rundir's -errno, with the refused path. */
static int rundir_fails(int want, const char *path)
{
    struct ipc_rundir rd;
    int rc = ipc_rundir_open(&rd);

    if (rc == 0)
        ipc_rundir_close(&rd);
    return rc == want && strcmp(rd.path, path) == 0;
}

/* The victim: XDG_RUNTIME_DIR is used only when it is its own and private; otherwise the last
 * resort in /dev/shm, which is refused when it is not its own. */
static int victim_steps(void)
{
    char want[64];

    snprintf(want, sizeof want, "/dev/shm/getfile-%d", VICTIM);
    setenv("XDG_RUNTIME_DIR", "/tmp/gf-rundir-test/xdg-ours", 1);
    if (!rundir_is("/tmp/gf-rundir-test/xdg-ours/getfile", IPC_RUNDIR_XDG))
        return 1;
    /* A runtime directory somebody else owns, or that others may write, is not used. */
    setenv("XDG_RUNTIME_DIR", "/tmp/gf-rundir-test/xdg-theirs", 1);
    if (!rundir_is(want, IPC_RUNDIR_SHM))
        return 2;
    setenv("XDG_RUNTIME_DIR", "/tmp/gf-rundir-test/xdg-wide", 1);
    if (!rundir_is(want, IPC_RUNDIR_SHM))
        return 3;
    setenv("XDG_RUNTIME_DIR", "relative/dir", 1);
    if (!rundir_is(want, IPC_RUNDIR_SHM))
        return 4;
    unsetenv("XDG_RUNTIME_DIR");
    /* Our own last resort with a wider mode is narrowed back to 0700. */
    if (chmod(want, 0777) < 0 || !rundir_is(want, IPC_RUNDIR_SHM))
        return 5;
    if (rmdir(want) < 0)
        return 6;
    return 0;
}

/* The squatter takes the victim's last-resort name: a directory, then a symlink, then a file. */
static int squat_dir(void)
{
    return mkdir("/dev/shm/getfile-4242", 0777) == 0 && chmod("/dev/shm/getfile-4242", 0777) == 0
               ? 0
               : 1;
}

static int squat_link(void)
{
    return symlink("/tmp/gf-rundir-test/xdg-theirs", "/dev/shm/getfile-4242") == 0 ? 0 : 1;
}

static int squat_file(void)
{
    int fd = open("/dev/shm/getfile-4242", O_WRONLY | O_CREAT | O_EXCL, 0666);

    if (fd < 0)
        return 1;
    close(fd);
    return 0;
}

static int victim_refused_eperm(void)
{
    return rundir_fails(-EPERM, "/dev/shm/getfile-4242") ? 0 : 1;
}

static int victim_refused_eloop(void)
{
    return rundir_fails(-ELOOP, "/dev/shm/getfile-4242") ? 0 : 1;
}

static int victim_refused_enotdir(void)
{
    return rundir_fails(-ENOTDIR, "/dev/shm/getfile-4242") ? 0 : 1;
}

static int victim_explicit(void)
{
    setenv(IPC_RUNDIR_ENV, "/tmp/gf-rundir-test/xdg-ours/explicit/", 1);
    return rundir_is("/tmp/gf-rundir-test/xdg-ours/explicit/", IPC_RUNDIR_ENV_VAR) ? 0 : 1;
}

static void test_rundir(void)
{
    struct stat st;

    CHECK_EQ(isolate_rc, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "    (skipped: needs root to act as other users)\n");
        return;
    }
    unsetenv(IPC_RUNDIR_ENV);
    unsetenv("XDG_RUNTIME_DIR");
    /* root: /run/getfile (ipc_test_isolate mounted it 0755: narrowed). */
    CHECK(rundir_is("/run/getfile", IPC_RUNDIR_ROOT));
    setenv("XDG_RUNTIME_DIR", "/tmp", 1);
    CHECK(rundir_is("/run/getfile", IPC_RUNDIR_ROOT)); /* not for root */
    unsetenv("XDG_RUNTIME_DIR");
    /* A /run that others may write (some containers): root takes the last resort. */
    CHECK_EQ(mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777"), 0);
    CHECK(rundir_is("/dev/shm/getfile-0", IPC_RUNDIR_SHM));
    CHECK_EQ(rmdir("/dev/shm/getfile-0"), 0);
    CHECK_EQ(umount2("/run", MNT_DETACH), 0);
    CHECK(rundir_is("/run/getfile", IPC_RUNDIR_ROOT));
    /* $GETFILE_RUNTIME_DIR: created, or checked and narrowed; refused when unusable. */
    CHECK_EQ(mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777"), 0);
    CHECK_EQ(mkdir("/tmp/gf-rundir-test", 0755), 0);
    setenv(IPC_RUNDIR_ENV, "/tmp/gf-rundir-test/mine", 1);
    CHECK(rundir_is("/tmp/gf-rundir-test/mine", IPC_RUNDIR_ENV_VAR));
    CHECK_EQ(chmod("/tmp/gf-rundir-test/mine", 0755), 0);
    CHECK(rundir_is("/tmp/gf-rundir-test/mine", IPC_RUNDIR_ENV_VAR));
    CHECK_EQ(symlink("/tmp/gf-rundir-test/mine", "/tmp/gf-rundir-test/link"), 0);
    setenv(IPC_RUNDIR_ENV, "/tmp/gf-rundir-test/link", 1);
    CHECK(rundir_fails(-ELOOP, "/tmp/gf-rundir-test/link"));
    CHECK_EQ(mkdir("/tmp/gf-rundir-test/theirs", 0700), 0);
    CHECK_EQ(chown("/tmp/gf-rundir-test/theirs", SQUATTER, SQUATTER), 0);
    setenv(IPC_RUNDIR_ENV, "/tmp/gf-rundir-test/theirs", 1);
    CHECK(rundir_fails(-EPERM, "/tmp/gf-rundir-test/theirs"));
    CHECK(stat("/tmp/gf-rundir-test/theirs", &st) == 0 && (st.st_mode & 07777) == 0700);
    setenv(IPC_RUNDIR_ENV, "relative", 1);
    CHECK(rundir_fails(-EINVAL, "relative"));
    setenv(IPC_RUNDIR_ENV, "/", 1);
    CHECK(rundir_fails(-EINVAL, "/"));
    unsetenv(IPC_RUNDIR_ENV);

    /* Another user: its XDG_RUNTIME_DIR, or the last resort. */
    CHECK_EQ(chmod("/tmp/gf-rundir-test", 0755), 0);
    CHECK_EQ(mkdir("/tmp/gf-rundir-test/xdg-ours", 0700), 0);
    CHECK_EQ(chown("/tmp/gf-rundir-test/xdg-ours", VICTIM, VICTIM), 0);
    CHECK_EQ(mkdir("/tmp/gf-rundir-test/xdg-theirs", 0700), 0);
    CHECK_EQ(chown("/tmp/gf-rundir-test/xdg-theirs", SQUATTER, SQUATTER), 0);
    CHECK_EQ(mkdir("/tmp/gf-rundir-test/xdg-wide", 0777), 0);
    CHECK_EQ(chmod("/tmp/gf-rundir-test/xdg-wide", 0777), 0);
    CHECK_EQ(chown("/tmp/gf-rundir-test/xdg-wide", VICTIM, VICTIM), 0);
    CHECK_EQ(as_user(VICTIM, victim_steps), 0);
    CHECK_EQ(as_user(VICTIM, victim_explicit), 0);
    /* The last resort taken first by somebody else: refused, never used. */
    CHECK_EQ(as_user(SQUATTER, squat_dir), 0);
    CHECK_EQ(as_user(VICTIM, victim_refused_eperm), 0);
    CHECK(stat("/dev/shm/getfile-4242", &st) == 0 && st.st_uid == SQUATTER &&
          (st.st_mode & 07777) == 0777);
    CHECK_EQ(rmdir("/dev/shm/getfile-4242"), 0);
    CHECK_EQ(as_user(SQUATTER, squat_link), 0);
    CHECK_EQ(as_user(VICTIM, victim_refused_eloop), 0);
    CHECK_EQ(unlink("/dev/shm/getfile-4242"), 0);
    CHECK_EQ(as_user(SQUATTER, squat_file), 0);
    CHECK_EQ(as_user(VICTIM, victim_refused_enotdir), 0);
    CHECK_EQ(unlink("/dev/shm/getfile-4242"), 0);
    CHECK_EQ(umount2("/tmp", MNT_DETACH), 0);
    CHECK_EQ(ipc_test_count("/dev/shm", "getfile-"), 0);
}

static void test_instance_names(void)
{
    static const char *const good[] = {
        "default", "a", "Z",        "0",
        "_",       "-", "blue-2_B", "abcdefghijklmnopqrstuvwxyz012345"};               /* 32 */
    static const char *const bad[] = {"",         "abcdefghijklmnopqrstuvwxyz0123456", /* 33 */
                                      "a/b",      "..",
                                      ".",        "a.b",
                                      "a b",      "a\tb",
                                      "\xc3\xa9", "a:b",
                                      "a*",       "a\nb"};

    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_EQ(ipc_instance_valid(good[i]), 0);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(ipc_instance_valid(bad[i]), -EINVAL);
        CHECK_EQ(ipc_instance_set(bad[i]), -EINVAL);
    }
    CHECK_EQ(ipc_instance_valid(NULL), -EINVAL);
    CHECK(strcmp(ipc_instance(), IPC_INSTANCE_DEFAULT) == 0); /* refusals changed nothing */
    CHECK_EQ(ipc_instance_set("blue"), 0);
    CHECK(strcmp(ipc_instance(), "blue") == 0);
    CHECK_EQ(ipc_instance_set("a/b"), -EINVAL);
    CHECK(strcmp(ipc_instance(), "blue") == 0);
    CHECK_EQ(ipc_instance_set(IPC_INSTANCE_DEFAULT), 0);
}

/* The default instance uses the runtime directory itself; another its subdirectory, created
 * 0700 and checked like the directory (a symlink or another owner's refused). */
static void test_instance_rundir(void)
{
    struct stat st;

    CHECK_EQ(isolate_rc, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "    (skipped: needs root for /run/getfile)\n");
        return;
    }
    unsetenv(IPC_RUNDIR_ENV);
    unsetenv("XDG_RUNTIME_DIR");
    CHECK(rundir_is("/run/getfile", IPC_RUNDIR_ROOT));
    CHECK_EQ(ipc_instance_set("blue"), 0);
    CHECK(rundir_is("/run/getfile/instance-blue", IPC_RUNDIR_ROOT));
    CHECK(stat("/run/getfile/instance-blue", &st) == 0 && S_ISDIR(st.st_mode) &&
          (st.st_mode & 07777) == 0700 && st.st_uid == 0);
    CHECK_EQ(symlink("/tmp", "/run/getfile/instance-link"), 0);
    CHECK_EQ(ipc_instance_set("link"), 0);
    CHECK(rundir_fails(-ELOOP, "/run/getfile/instance-link"));
    CHECK_EQ(mkdir("/run/getfile/instance-theirs", 0700), 0);
    CHECK_EQ(chown("/run/getfile/instance-theirs", SQUATTER, SQUATTER), 0);
    CHECK_EQ(ipc_instance_set("theirs"), 0);
    CHECK(rundir_fails(-EPERM, "/run/getfile/instance-theirs"));
    CHECK_EQ(ipc_instance_set(IPC_INSTANCE_DEFAULT), 0);
    CHECK(rundir_is("/run/getfile", IPC_RUNDIR_ROOT));
    CHECK_EQ(rmdir("/run/getfile/instance-blue"), 0);
    CHECK_EQ(unlink("/run/getfile/instance-link"), 0);
    CHECK_EQ(rmdir("/run/getfile/instance-theirs"), 0);
}

int main(void)
{
    static const struct test_case cases[] = {
        T(test_format),         T(test_parse_roundtrip), T(test_parse_rejects),
        T(test_sweep),          T(test_random_serial),   T(test_rundir),
        T(test_instance_names), T(test_instance_rundir),
    };

    isolate_rc = ipc_test_isolate_or_skip();
    if (isolate_rc != 0)
        fprintf(stderr, "cannot isolate IPC (%s): the sweep test needs root\n",
                strerror(-isolate_rc));
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
