/* fuzz_shm_chunk.c - libFuzzer harness for the consumer's chunk validation: a segment laid out
 * in ordinary memory whose next slot header (and the consumer's expectations) come from the
 * input; shm_seg_next must never hand out a chunk that breaks the protocol's promises. */
/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <semaphore.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "ipc/peer.h"
#include "ipc/shm_chan.h"

/* Input: [0] segment size selector, [1] consumer position (seq), [2..9] generation expected,
 * [10..17] bytes still owed, [18..57] the slot header as the producer left it, [58..65] a size
 * for shm_geometry. Missing bytes are zero. */
#define IN_LEN (18 + sizeof(struct shm_slot_hdr) + 8)

static unsigned char mem[65536] __attribute__((aligned(64)));

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
    return v;
}

static void check_geometry(uint64_t size)
{
    uint32_t k = 0, cap = 0;
    int rc = shm_geometry(size, &k, &cap);

    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    FUZZ_CHECK((rc == 0) == (size >= SHM_SEG_MIN && size <= SHM_SEG_MAX));
    if (rc == 0) {
        FUZZ_CHECK(k >= 1 && k <= SHM_SLOTS_MAX);
        FUZZ_CHECK(cap >= 64 && cap % 64 == 0);
        FUZZ_CHECK(SHM_HDR_SPACE + (uint64_t)k * (cap + SHM_SLOT_HDR_SPACE) <= size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t sizes[] = {512, 700, 4096, 8192, 65536};
    static int self = -1;
    unsigned char in[IN_LEN] = {0};
    struct shm_slot_hdr h;
    struct shm_chunk ch;
    struct shm_seg seg;
    uint64_t seg_size, gen, left, pos;
    unsigned char *slot;
    int rc, free_before, free_after;

    if (self < 0)
        self = peer_open(getpid());
    FUZZ_CHECK(self >= 0);
    memcpy(in, data, size < IN_LEN ? size : IN_LEN);
    seg_size = sizes[in[0] % (sizeof sizes / sizeof sizes[0])];
    pos = in[1] % 16;
    gen = get64(in + 2);
    left = get64(in + 10);
    memcpy(&h, in + 18, sizeof h);
    check_geometry(get64(in + 18 + sizeof h));

    memset(mem, 0, (size_t)seg_size);
    FUZZ_CHECK(shm_seg_layout_init(&seg, mem, seg_size) == 0);
    FUZZ_CHECK(seg.size == seg_size && seg.nslots >= 1);
    seg.seq = pos;
    slot = mem + SHM_HDR_SPACE + (size_t)(pos % seg.nslots) * (seg.slot_cap + SHM_SLOT_HDR_SPACE);
    memcpy(slot, &h, sizeof h);
    shm_sem_post(&seg.hdr->filled);
    free_before = (int)shm_sem_value(&seg.hdr->free);

    rc = shm_seg_next(&seg, gen, left, self, 0, NULL, &ch);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
    FUZZ_CHECK((rc == 0) == (shm_chunk_validate(&h, gen, pos, seg.slot_cap, left) == 0));
    if (rc != 0) {
        FUZZ_CHECK(seg.seq == pos); /* a rejected chunk is not consumed */
        return 0;
    }
    /* Accepted: exactly the promises of the protocol. */
    FUZZ_CHECK(h.generation == gen && h.seq == pos);
    FUZZ_CHECK(ch.len == h.len && ch.len <= seg.slot_cap);
    FUZZ_CHECK(ch.data == slot + SHM_SLOT_HDR_SPACE);
    FUZZ_CHECK(ch.data + ch.len <= mem + seg_size);
    if (pos == 0) {
        FUZZ_CHECK(ch.kind == SHM_SLOT_RESPONSE);
        FUZZ_CHECK(ch.status == SHM_STATUS_OK || ch.status == SHM_STATUS_NOT_FOUND ||
                   ch.status == SHM_STATUS_ERROR || ch.status == SHM_STATUS_ORIGIN_NOT_FOUND ||
                   ch.status == SHM_STATUS_OTHER_BACKEND);
        FUZZ_CHECK(ch.file_len == h.file_len && ch.len <= ch.file_len);
        if (ch.status != SHM_STATUS_OK)
            FUZZ_CHECK(ch.len == 0 && ch.file_len == 0);
    } else {
        FUZZ_CHECK(ch.kind == SHM_SLOT_DATA && ch.status == SHM_STATUS_OK);
        FUZZ_CHECK(ch.len >= 1 && ch.len <= left);
    }
    FUZZ_CHECK(seg.seq == pos + 1);
    shm_seg_release(&seg);
    free_after = (int)shm_sem_value(&seg.hdr->free);
    FUZZ_CHECK(free_after == free_before + 1);
    return 0;
}
