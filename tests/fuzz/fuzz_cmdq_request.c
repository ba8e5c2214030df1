/* fuzz_cmdq_request.c - libFuzzer harness for cmdq_request_decode and cmdq_ctl_decode: any bytes a
 * queue could deliver; an accepted message must satisfy every promise the cache relies on. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>

#include "fuzz_check.h"
#include "ipc/cmdq.h"
#include "ipc/shm_chan.h"

#define FUZZ_UID 1000 /* fixed, so the seeds mean the same for every runner */

/* The same bytes as a control message (gfctl): an accepted one is exactly what the cache
 * relies on (a known op, a path with nothing after it). */
static void check_ctl(const uint8_t *data, size_t size)
{
    struct cmdq_ctl out;
    int rc;

    memset(&out, 0xee, sizeof out);
    rc = cmdq_ctl_decode(data, size, &out);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO);
    if (rc != 0) {
        for (size_t i = 0; i < sizeof out; i++)
            FUZZ_CHECK(((const unsigned char *)&out)[i] == 0xee);
        return;
    }
    FUZZ_CHECK(size == sizeof out && memcmp(&out, data, size) == 0);
    FUZZ_CHECK(cmdq_is_ctl(data, size));
    FUZZ_CHECK(out.size == sizeof out && out.sender_pid > 0 && out.sender_pid <= INT_MAX);
    FUZZ_CHECK(strlen(out.path) == out.path_len);
    if (out.op == CMDQ_CTL_RELOAD)
        FUZZ_CHECK(out.path_len == 0);
    else
        FUZZ_CHECK((out.op == CMDQ_CTL_PURGE || out.op == CMDQ_CTL_BAN) && out.path[0] == '/');
    for (size_t i = out.path_len; i < sizeof out.path; i++)
        FUZZ_CHECK(out.path[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cmdq_request out;
    char prefix[32];
    pid_t pid = 0;
    uint32_t magic = 0;
    int rc, n;

    check_ctl(data, size);
    memset(&out, 0xee, sizeof out);
    rc = cmdq_request_decode(data, size, FUZZ_UID, &out);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EPERM);
    if (size >= sizeof magic)
        memcpy(&magic, data, sizeof magic);
    if (rc == -EPROTO)
        FUZZ_CHECK(size >= 6 && magic == CMDQ_MAGIC);
    if (rc != 0) {
        /* Nothing is copied out of a rejected message. */
        for (size_t i = 0; i < sizeof out; i++)
            FUZZ_CHECK(((const unsigned char *)&out)[i] == 0xee);
        return 0;
    }
    FUZZ_CHECK(size == sizeof out);
    FUZZ_CHECK(memcmp(&out, data, size) == 0);
    FUZZ_CHECK(out.magic == CMDQ_MAGIC && out.version == CMDQ_VERSION);
    FUZZ_CHECK(out.size == sizeof out);
    FUZZ_CHECK(out.proxy_pid > 0 && out.proxy_pid <= INT_MAX);
    FUZZ_CHECK(out.path_len >= 1 && out.path_len <= CMDQ_PATH_MAX);
    /* strlen stays inside the struct (ASan would see it leave) and matches. */
    FUZZ_CHECK(strlen(out.path) == out.path_len);
    FUZZ_CHECK(out.path[0] == '/');
    FUZZ_CHECK(out.seg_size >= SHM_SEG_MIN && out.seg_size <= SHM_SEG_MAX);
    for (size_t i = 0; i < sizeof out.pad_; i++)
        FUZZ_CHECK(out.pad_[i] == 0);
    /* The segment name: ours, of that pid, safe to hand to shm_open. */
    FUZZ_CHECK(strlen(out.seg_name) < sizeof out.seg_name);
    FUZZ_CHECK(ipc_name_parse(out.seg_name, IPC_KIND_SEGMENT, FUZZ_UID, &pid, NULL) == 0);
    FUZZ_CHECK(pid == (pid_t)out.proxy_pid);
    n = snprintf(prefix, sizeof prefix, "/getfile-%u-%u-seg", FUZZ_UID, out.proxy_pid);
    FUZZ_CHECK(n > 0 && strncmp(out.seg_name, prefix, (size_t)n) == 0);
    FUZZ_CHECK(strchr(out.seg_name + 1, '/') == NULL);
    for (const char *p = out.seg_name + n; *p; p++)
        FUZZ_CHECK(*p >= '0' && *p <= '9');
    FUZZ_CHECK(out.seg_name[n] != '\0' && (out.seg_name[n] != '0' || out.seg_name[n + 1] == '\0'));
    return 0;
}
