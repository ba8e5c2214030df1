/* test_ipc_names.c - IPC names: formatting, the strict parser's accept/reject table, and the
 * sweep of dead owners' objects (in a private IPC namespace). */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/ipc_names.h"

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
    CHECK_EQ(ipc_name_format(buf, IPC_KIND_CMDQ, 1000, 42, 7), 0);
    CHECK(strcmp(buf, "/getfile-1000-42-cmd") == 0);
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
    CHECK_EQ(ipc_name_parse(buf, IPC_KIND_CMDQ, 7, &pid, NULL), 0);
    CHECK_EQ(pid, 1);
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

int main(void)
{
    static const struct test_case cases[] = {
        T(test_format),
        T(test_parse_roundtrip),
        T(test_parse_rejects),
        T(test_sweep),
    };

    isolate_rc = ipc_test_isolate_or_skip();
    if (isolate_rc != 0)
        fprintf(stderr, "cannot isolate IPC (%s): the sweep test needs root\n",
                strerror(-isolate_rc));
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
