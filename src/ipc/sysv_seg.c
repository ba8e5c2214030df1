/* sysv_seg.c - System V shared memory holding the shm_chan ring. */
/* SPDX-License-Identifier: MIT */
#include "sysv_seg.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include "sysv_keys.h"

int sysv_seg_create(struct shm_seg *seg, int *shmid, uint64_t size)
{
    uint32_t k, cap;
    void *mem;
    int id = -1, rc;

    memset(seg, 0, sizeof *seg);
    *shmid = -1;
    rc = shm_geometry(size, &k, &cap);
    if (rc < 0)
        return rc;
    for (int attempt = 0; attempt < SYSV_SEG_CREATE_ATTEMPTS; attempt++) {
        key_t key = sysv_key_make(SYSV_KIND_SEG, sysv_random_serial());

        id = shmget(key, (size_t)size, IPC_CREAT | IPC_EXCL | 0600);
        if (id >= 0 || errno != EEXIST)
            break;
    }
    if (id < 0)
        return -errno;
    mem = shmat(id, NULL, 0);
    rc = mem == (void *)-1 ? -errno : 0;
    /* Marked at once: freed at the last detach, whoever dies. */
    if (shmctl(id, IPC_RMID, NULL) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0)
        goto err_detach;
    rc = shm_seg_layout_init(seg, mem, size);
    if (rc < 0)
        goto err_detach;
    rc = ipc_name_format(seg->name, IPC_KIND_SEGMENT, geteuid(), getpid(), (uint32_t)id);
    if (rc < 0)
        goto err_detach;
    *shmid = id;
    return 0;

err_detach:
    if (mem != (void *)-1)
        shmdt(mem);
    memset(seg, 0, sizeof *seg);
    return rc;
}

void sysv_seg_destroy(struct shm_seg *seg)
{
    sysv_seg_detach(seg);
}

int sysv_seg_attach(struct shm_seg *seg, int shmid, pid_t creator, uint64_t claimed_size)
{
    struct shmid_ds ds;
    uid_t me = geteuid();
    uint64_t size;
    uint32_t k, cap;
    void *mem;
    int rc;

    memset(seg, 0, sizeof *seg);
    if (shmid < 0 || creator <= 0)
        return -EINVAL;
    if (shmctl(shmid, IPC_STAT, &ds) < 0)
        return -errno;
    if (ds.shm_perm.uid != me || ds.shm_perm.cuid != me || (ds.shm_perm.mode & 0777) != 0600 ||
        ds.shm_cpid != creator)
        return -EPERM;
    size = (uint64_t)ds.shm_segsz;
    if (size < SHM_SEG_MIN || size > SHM_SEG_MAX || size < claimed_size)
        return -EBADMSG;
    mem = shmat(shmid, NULL, 0);
    if (mem == (void *)-1)
        return -errno;
    rc = shm_seg_hdr_check(mem, size, &k, &cap);
    if (rc < 0) {
        shmdt(mem);
        return rc;
    }
    seg->hdr = mem;
    seg->size = (size_t)size;
    seg->nslots = k;
    seg->slot_cap = cap;
    (void)ipc_name_format(seg->name, IPC_KIND_SEGMENT, me, creator, (uint32_t)shmid);
    return 0;
}

int sysv_seg_id_of(const char *name, pid_t creator, int *shmid)
{
    uint32_t serial;
    pid_t pid;

    if (ipc_name_parse(name, IPC_KIND_SEGMENT, geteuid(), &pid, &serial) < 0 || pid != creator ||
        serial > INT_MAX)
        return -EPERM;
    *shmid = (int)serial;
    return 0;
}

void sysv_seg_detach(struct shm_seg *seg)
{
    if (seg->hdr)
        shmdt(seg->hdr);
    memset(seg, 0, sizeof *seg);
}
