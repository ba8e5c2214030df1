/* test_sysv.c - the System V primitives: keys and the sweep, message queue with bounded
 * waits, segments holding the shm_chan ring, and why the ring does not use SEM_UNDO. */
/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "ipc/sysv_keys.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/peer.h"
#include "ipc/sysv_msgq.h"
#include "ipc/sysv_pub.h"
#include "ipc/sysv_seg.h"
#include "ipc_testutil.h"
#include "test.h"

static int isolate_rc;

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_keys(void)
{
    enum sysv_kind kind;
    uint32_t low;
    key_t k = sysv_key_make(SYSV_KIND_CMD, 4242);

    CHECK(k != IPC_PRIVATE && k != (key_t)-1);
    CHECK_EQ(sysv_key_parse(k, &kind, &low), 0);
    CHECK_EQ(kind, SYSV_KIND_CMD);
    CHECK_EQ(low, 4242);
    k = sysv_key_make(SYSV_KIND_SEG, SYSV_KEY_LOW_MAX);
    CHECK_EQ(sysv_key_parse(k, &kind, &low), 0);
    CHECK_EQ(kind, SYSV_KIND_SEG);
    CHECK_EQ(low, SYSV_KEY_LOW_MAX);
    CHECK_EQ(sysv_key_make(SYSV_KIND_CMD, 0), -1);
    CHECK_EQ(sysv_key_make(SYSV_KIND_CMD, SYSV_KEY_LOW_MAX + 1), -1);
    CHECK_EQ(sysv_key_make((enum sysv_kind)3, 1), -1);
    CHECK_EQ(sysv_key_parse(IPC_PRIVATE, &kind, &low), -EINVAL);
    CHECK_EQ(sysv_key_parse((key_t)0x12345678, &kind, &low), -EINVAL);
    CHECK_EQ(sysv_key_parse((key_t)(int32_t)0x67c00001u, &kind, &low), -EINVAL); /* kind 3 */
    CHECK_EQ(sysv_key_parse((key_t)(int32_t)0x67000000u, &kind, &low), -EINVAL); /* low 0 */
    for (int i = 0; i < 1000; i++) {
        uint32_t s = sysv_random_serial();
        CHECK(s >= 1 && s <= SYSV_KEY_LOW_MAX);
    }
}

static void test_msgq_round_trip(void)
{
    struct sysv_msgq srv, cli, again;
    struct msqid_ds ds;
    char buf[SYSV_MSG_MAX], big[SYSV_MSG_MAX + 1];
    ssize_t n;

    CHECK_EQ(sysv_msgq_create(&srv, getpid()), 0);
    CHECK_EQ(msgctl(srv.id, IPC_STAT, &ds), 0);
    CHECK_EQ(ds.msg_perm.mode & 0777, 0600);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), 0);
    CHECK_EQ(sysv_msgq_send(&cli, "hello", 5, -1, 100), 0);
    n = sysv_msgq_receive(&srv, buf, sizeof buf, 100, NULL);
    CHECK_EQ(n, 5);
    CHECK_MEM(buf, "hello", 5);
    CHECK_EQ(sysv_msgq_send(&cli, buf, 0, -1, 100), -EINVAL);
    memset(big, 'x', sizeof big);
    CHECK_EQ(sysv_msgq_send(&cli, big, sizeof big, -1, 100), -EINVAL);
    /* A message longer than the reader's buffer is taken off, not left to wedge the queue. */
    CHECK_EQ(sysv_msgq_send(&cli, big, 64, -1, 100), 0);
    CHECK_EQ(sysv_msgq_send(&cli, "ok", 2, -1, 100), 0);
    CHECK_EQ(sysv_msgq_receive(&srv, buf, 16, 100, NULL), -EBADMSG);
    CHECK_EQ(sysv_msgq_receive(&srv, buf, 16, 100, NULL), 2);
    /* Empty: bounded. */
    double t0 = now_s();
    CHECK_EQ(sysv_msgq_receive(&srv, buf, sizeof buf, 200, NULL), -ETIMEDOUT);
    CHECK(now_s() - t0 >= 0.19 && now_s() - t0 < 2.0);
    volatile sig_atomic_t stop = 1;
    CHECK_EQ(sysv_msgq_receive(&srv, buf, sizeof buf, 5000, &stop), -ECANCELED);
    /* Another mode is refused. */
    CHECK_EQ(msgctl(srv.id, IPC_STAT, &ds), 0);
    ds.msg_perm.mode = 0644;
    CHECK_EQ(msgctl(srv.id, IPC_SET, &ds), 0);
    CHECK_EQ(sysv_msgq_open(&again, getpid()), -EPERM);
    sysv_msgq_close(&cli);
    sysv_msgq_close(&srv);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), -ENOENT);
    /* The queue was removed under a reader: -EIDRM, not a hang. */
    CHECK_EQ(sysv_msgq_create(&srv, getpid()), 0);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), 0);
    msgctl(srv.id, IPC_RMID, NULL);
    n = sysv_msgq_receive(&cli, buf, sizeof buf, 1000, NULL);
    CHECK(n == -EIDRM || n == -EINVAL);
    sysv_msgq_close(&cli);
    srv.owner = 0;
    sysv_msgq_close(&srv);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_CMD, 0), 0);
}

/* A queue's key belongs to a live pid that is not ours: create refuses and touches nothing. */
static void test_msgq_key_taken(void)
{
    struct sysv_msgq mine, other;
    pid_t ppid = getppid();

    /* ppid is alive (the test runner); make its key exist under our uid. */
    int id = msgget(sysv_key_make(SYSV_KIND_CMD, (uint32_t)ppid), IPC_CREAT | IPC_EXCL | 0600);
    CHECK(id >= 0);
    CHECK_EQ(sysv_msgq_create(&other, ppid), -EEXIST);
    CHECK_EQ(msgctl(id, IPC_STAT, &(struct msqid_ds){0}), 0);
    /* Our own pid's leftover (a reused pid) is replaced. */
    int mine_old =
        msgget(sysv_key_make(SYSV_KIND_CMD, (uint32_t)getpid()), IPC_CREAT | IPC_EXCL | 0600);
    CHECK(mine_old >= 0);
    CHECK_EQ(sysv_msgq_create(&mine, getpid()), 0);
    CHECK(mine.id != mine_old);
    sysv_msgq_close(&mine);
    msgctl(id, IPC_RMID, NULL);
}

/* Another process holds our pid key (a squatter of another uid, modelled by a live pid's key):
 * sysv_msgq_create_free takes a random SYSV_KIND_CMDR key instead of failing, publishes it
 * through sysv_pub (read back with every check), and a dead cache's published queue is swept. */
static int stop_first(key_t key, void *arg)
{
    (void)key;
    (void)arg;
    return -ENOSPC;
}

static int note_key(key_t key, void *arg)
{
    CHECK(msgget(key, 0) < 0); /* not made yet */
    *(key_t *)arg = key;
    return 0;
}

static void test_msgq_key_squatted(void)
{
    key_t noted = -1;
    char dir_path[] = "/tmp/test_sysv_pubXXXXXX", name[64];
    struct sysv_msgq q, cli;
    enum sysv_kind kind;
    uint32_t low;
    pid_t pid, dead = ipc_test_dead_pid();
    key_t key;
    int dir, fd;

    /* Mode 0666: not ours to remove, as another user's would not be. */
    int squat =
        msgget(sysv_key_make(SYSV_KIND_CMD, (uint32_t)getpid()), IPC_CREAT | IPC_EXCL | 0666);
    CHECK(squat >= 0);
    CHECK_EQ(sysv_msgq_create(&q, getpid()), -EEXIST);
    CHECK_EQ(sysv_msgq_create_free(&q, getpid(), stop_first, NULL), -ENOSPC);
    CHECK_EQ(sysv_msgq_create_free(&q, getpid(), note_key, &noted), 0);
    CHECK_EQ(noted, q.key); /* the hook saw the key before it was made */
    CHECK(q.id != squat);
    CHECK_EQ(sysv_key_parse(q.key, &kind, &low), 0);
    CHECK_EQ(kind, SYSV_KIND_CMDR);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), -EPERM); /* the squatter's queue is never used */

    CHECK(mkdtemp(dir_path) != NULL);
    dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dir >= 0);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), -ENOENT);
    CHECK_EQ(sysv_pub_write(dir, getpid(), q.key), 0);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), 0);
    CHECK_EQ(pid, getpid());
    CHECK_EQ(key, q.key);
    CHECK_EQ(sysv_msgq_open_key(&cli, key), 0);
    CHECK_EQ(cli.id, q.id);
    sysv_msgq_close(&cli);
    CHECK_EQ(sysv_msgq_open_key(&cli, IPC_PRIVATE), -EINVAL);
    snprintf(name, sizeof name, "getfile-%lu-sysv.key", (unsigned long)geteuid());
    CHECK_EQ(fchmodat(dir, name, 0644, 0), 0);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), -EPERM); /* anybody could have written it */
    CHECK_EQ(fchmodat(dir, name, 0600, 0), 0);
    fd = openat(dir, name, O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "x", 1), 1);
    close(fd);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), -EBADMSG); /* not exactly one record */
    CHECK_EQ(unlinkat(dir, name, 0), 0);
    CHECK_EQ(symlinkat("/etc/passwd", dir, name), 0);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), -EPERM);
    CHECK_EQ(unlinkat(dir, name, 0), 0);
    /* Our own live record is not swept; removal only when it names us. */
    CHECK_EQ(sysv_pub_write(dir, getpid(), q.key), 0);
    CHECK_EQ(sysv_pub_sweep(dir), 0);
    sysv_pub_remove(dir, getppid());
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), 0);
    /* A dead cache's record: its random-key queue is removed, and the record. */
    CHECK_EQ(sysv_pub_write(dir, dead, q.key), 0);
    CHECK_EQ(sysv_pub_sweep(dir), 1);
    CHECK(msgctl(q.id, IPC_STAT, &(struct msqid_ds){0}) < 0);
    CHECK_EQ(sysv_pub_read(dir, &pid, &key), -ENOENT);
    q.owner = 0;
    sysv_msgq_close(&q);
    /* The squatter's queue is still there, untouched. */
    CHECK_EQ(msgctl(squat, IPC_STAT, &(struct msqid_ds){0}), 0);
    msgctl(squat, IPC_RMID, NULL);
    close(dir);
    CHECK_EQ(rmdir(dir_path), 0);
}

/* msgmnb (16384) holds only a few 4200-byte requests: a full queue is a bounded wait,
 * -ETIMEDOUT while the reader lives, -ESRCH once it has died. */
static void test_msgq_full(void)
{
    struct sysv_msgq srv, cli;
    char req[4200];
    int sent = 0, rc, pidfd;
    pid_t child;

    memset(req, 'r', sizeof req);
    CHECK_EQ(sysv_msgq_create(&srv, getpid()), 0);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), 0);
    while ((rc = sysv_msgq_send(&cli, req, sizeof req, -1, 0)) == 0 && sent < 100)
        sent++;
    CHECK_EQ(rc, -ETIMEDOUT);
    printf("  msgmnb holds %d requests of %zu bytes\n", sent, sizeof req);
    CHECK(sent >= 1 && sent < 100);
    double t0 = now_s();
    CHECK_EQ(sysv_msgq_send(&cli, req, sizeof req, -1, 300), -ETIMEDOUT);
    CHECK(now_s() - t0 >= 0.29 && now_s() - t0 < 3.0);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    pidfd = peer_open(child);
    CHECK(pidfd >= 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    t0 = now_s();
    CHECK_EQ(sysv_msgq_send(&cli, req, sizeof req, pidfd, 10000), -ESRCH);
    CHECK(now_s() - t0 < 2.0);
    close(pidfd);
    CHECK_EQ(sysv_msgq_count(&srv), sent);
    sysv_msgq_close(&cli);
    sysv_msgq_close(&srv);
}

struct blocked_rx {
    struct sysv_msgq q;
    ssize_t rc;
};

static void *blocked_rx_main(void *arg)
{
    struct blocked_rx *r = arg;
    char buf[64];

    r->rc = sysv_msgq_receive(&r->q, buf, sizeof buf, -1, NULL);
    return NULL;
}

/* The owner's blocking receive: a message ends it at once, and so does the queue's removal
 * (EIDRM), which is how the cache's receiver is stopped. */
static void test_msgq_blocking(void)
{
    struct sysv_msgq srv, cli;
    struct blocked_rx r;
    pthread_t t;
    char buf[16];

    CHECK_EQ(sysv_msgq_create(&srv, getpid()), 0);
    CHECK_EQ(sysv_msgq_open(&cli, getpid()), 0);
    CHECK_EQ(sysv_msgq_send(&cli, "go", 2, -1, 100), 0);
    CHECK_EQ(sysv_msgq_receive(&srv, buf, sizeof buf, -1, NULL), 2);
    r.q = srv;
    r.q.owner = 0;
    r.rc = 1;
    CHECK_EQ(pthread_create(&t, NULL, blocked_rx_main, &r), 0);
    usleep(100 * 1000);
    double t0 = now_s();
    sysv_msgq_close(&srv); /* IPC_RMID */
    pthread_join(t, NULL);
    CHECK_EQ(r.rc, -EIDRM);
    CHECK(now_s() - t0 < 1.0);
    sysv_msgq_close(&cli);
}

/* The polled receive is cheap when idle; the figure is printed for docs/ipc-lab.md. */
static void test_msgq_idle_cpu(void)
{
    struct sysv_msgq srv;
    char buf[64];
    double c0, c1;

    CHECK_EQ(sysv_msgq_create(&srv, getpid()), 0);
    c0 = cpu_seconds();
    CHECK_EQ(sysv_msgq_receive(&srv, buf, sizeof buf, 2000, NULL), -ETIMEDOUT);
    c1 = cpu_seconds();
    printf("  idle polled receive: %.1f ms CPU per second\n", (c1 - c0) * 1000 / 2);
    CHECK(c1 - c0 < 0.2); /* 10 % of one core even under sanitizers and load */
    sysv_msgq_close(&srv);
}

/* System V objects outlive every process: a child's queue and a keyed segment stay after it
 * is killed, and the sweep removes exactly the dead owner's, not a live one's. */
static void test_outlive_and_sweep(void)
{
    struct sysv_sweep_stats st;
    struct sysv_msgq live;
    int pipefd[2];
    pid_t child;
    char c;

    CHECK_EQ(pipe(pipefd), 0);
    CHECK_EQ(sysv_msgq_create(&live, getpid()), 0);
    child = fork();
    if (child == 0) {
        struct sysv_msgq q;
        int ok = sysv_msgq_create(&q, getpid()) == 0 &&
                 shmget(sysv_key_make(SYSV_KIND_SEG, sysv_random_serial()), 4096,
                        IPC_CREAT | IPC_EXCL | 0600) >= 0;
        c = ok ? 'y' : 'n';
        if (write(pipefd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pipefd[1]);
    CHECK_EQ(read(pipefd[0], &c, 1), 1);
    CHECK_EQ(c, 'y');
    close(pipefd[0]);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    /* The child is gone; its queue and segment are not. */
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_CMD, 0), 2); /* the child's and ours */
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_SEG, 0), 1);
    CHECK_EQ(sysv_sweep_dead(geteuid(), SYSV_SWEEP_CMD | SYSV_SWEEP_SEG, &st), 2);
    CHECK_EQ(st.queues_removed, 1);
    CHECK_EQ(st.segs_removed, 1);
    CHECK_EQ(st.live_kept, 1);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_CMD, 0), 1);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_SEG, 0), 0);
    /* Another uid's object under our key pattern is not ours to remove. */
    int foreign = msgget(sysv_key_make(SYSV_KIND_CMD, (uint32_t)ipc_test_dead_pid()),
                         IPC_CREAT | IPC_EXCL | 0600);
    struct msqid_ds ds;
    CHECK(foreign >= 0);
    CHECK_EQ(msgctl(foreign, IPC_STAT, &ds), 0);
    ds.msg_perm.uid = 65534;
    CHECK_EQ(msgctl(foreign, IPC_SET, &ds), 0);
    CHECK_EQ(sysv_sweep_dead(geteuid(), SYSV_SWEEP_CMD, &st), 0);
    CHECK_EQ(msgctl(foreign, IPC_RMID, NULL), 0);
    sysv_msgq_close(&live);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_CMD | SYSV_SWEEP_SEG, 0), 0);
}

#define FILE_LEN (3u * 1024 * 1024 + 7)

static unsigned char pattern(uint64_t i)
{
    return (unsigned char)(i * 131 + (i >> 9));
}

/* Produces FILE_LEN bytes into segment shmid created by proxy, as the cache would. */
static int produce(int shmid, pid_t proxy, uint64_t gen)
{
    struct shm_seg seg;
    unsigned char *p;
    uint64_t off = 0;
    int pidfd = peer_open(proxy), rc;

    rc = sysv_seg_attach(&seg, shmid, proxy, 0);
    if (rc < 0 || pidfd < 0)
        return 1;
    for (uint64_t seq = 0; rc == 0 && (seq == 0 || off < FILE_LEN); seq++) {
        uint32_t len;

        rc = shm_seg_reserve(&seg, pidfd, 5000, NULL, &p);
        if (rc < 0)
            break;
        len = FILE_LEN - off < seg.slot_cap ? (uint32_t)(FILE_LEN - off) : seg.slot_cap;
        for (uint32_t i = 0; i < len; i++)
            p[i] = pattern(off + i);
        off += len;
        rc = shm_seg_publish(&seg, gen, seq ? SHM_SLOT_DATA : SHM_SLOT_RESPONSE, SHM_STATUS_OK,
                             seq ? 0 : FILE_LEN, len);
    }
    sysv_seg_detach(&seg);
    close(pidfd);
    return rc < 0;
}

/* A proxy-side segment through which a cache process writes a 3 MiB file, byte-exact; the
 * segment is already marked for removal, and nothing is left once both detach. */
static void test_seg_transfer(void)
{
    struct shm_seg seg, other;
    struct shmid_ds ds;
    struct shm_chunk ch;
    uint64_t got = 0, left = UINT64_MAX;
    int shmid, st, pidfd, bad = 0;
    pid_t child;

    CHECK_EQ(sysv_seg_create(&seg, &shmid, 64 * 1024), 0);
    CHECK_EQ(shmctl(shmid, IPC_STAT, &ds), 0);
    CHECK_EQ(ds.shm_perm.mode & 0777, 0600);
    CHECK(ds.shm_perm.mode & SHM_DEST); /* marked for removal already */
    CHECK(shm_seg_is_idle(&seg));
    /* The request carries the id as a segment name of ours; the cache gets it back. */
    int id_back = -1;
    CHECK_EQ(sysv_seg_id_of(seg.name, getpid(), &id_back), 0);
    CHECK_EQ(id_back, shmid);
    CHECK_EQ(sysv_seg_id_of(seg.name, getppid(), &id_back), -EPERM);
    CHECK_EQ(sysv_seg_id_of("/getfile-0-1-cmd", getpid(), &id_back), -EPERM);
    /* Attach checks. */
    CHECK_EQ(sysv_seg_attach(&other, shmid, getppid(), 0), -EPERM);
    CHECK_EQ(sysv_seg_attach(&other, shmid, getpid(), 64 * 1024 + 1), -EBADMSG);
    CHECK_EQ(sysv_seg_attach(&other, 0x7ffffff0, getpid(), 0), -EINVAL);
    CHECK_EQ(sysv_seg_attach(&other, shmid, getpid(), 64 * 1024), 0);
    sysv_seg_detach(&other);
    ds.shm_perm.mode = 0640;
    CHECK_EQ(shmctl(shmid, IPC_SET, &ds), 0);
    CHECK_EQ(sysv_seg_attach(&other, shmid, getpid(), 0), -EPERM);
    ds.shm_perm.mode = 0600;
    CHECK_EQ(shmctl(shmid, IPC_SET, &ds), 0);
    /* A segment with a bad header is refused. */
    seg.hdr->version = 99;
    CHECK_EQ(sysv_seg_attach(&other, shmid, getpid(), 0), -EBADMSG);
    seg.hdr->version = SHM_VERSION;

    shm_seg_begin(&seg, 7);
    child = fork();
    if (child == 0)
        _exit(produce(shmid, getppid(), 7));
    pidfd = peer_open(child);
    CHECK(pidfd >= 0);
    while (got < FILE_LEN || left == UINT64_MAX) {
        int rc = shm_seg_next(&seg, 7, left, pidfd, 10000, NULL, &ch);
        if (rc < 0) {
            CHECK_EQ(rc, 0);
            break;
        }
        if (ch.kind == SHM_SLOT_RESPONSE) {
            CHECK_EQ(ch.file_len, FILE_LEN);
            left = ch.file_len;
        }
        for (uint32_t i = 0; i < ch.len; i++)
            bad += ch.data[i] != pattern(got + i);
        got += ch.len;
        left -= ch.len;
        CHECK_EQ(shm_seg_release(&seg), 0);
    }
    CHECK_EQ(got, FILE_LEN);
    CHECK_EQ(bad, 0);
    CHECK(shm_seg_is_idle(&seg));
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(pidfd);
    sysv_seg_destroy(&seg);
    CHECK_EQ(shmctl(shmid, IPC_STAT, &ds), -1); /* freed at the last detach */
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_SEG, getpid()), 0);
}

/* The proxy is killed with -9 while the cache holds the segment: the cache's wait for a free
 * slot ends with -ESRCH, and the segment is freed at the cache's detach. Nothing survives. */
static void test_seg_kill_proxy(void)
{
    struct shm_seg seg;
    unsigned char *p;
    int pipefd[2], shmid = -1, pidfd, rc;
    pid_t child;

    CHECK_EQ(pipe(pipefd), 0);
    child = fork();
    if (child == 0) {
        struct shm_seg mine;
        int id = -1;
        if (sysv_seg_create(&mine, &id, 4096) == 0)
            shm_seg_begin(&mine, 1);
        if (write(pipefd[1], &id, sizeof id) != (ssize_t)sizeof id)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pipefd[1]);
    CHECK_EQ(read(pipefd[0], &shmid, sizeof shmid), (ssize_t)sizeof shmid);
    close(pipefd[0]);
    CHECK_EQ(sysv_seg_attach(&seg, shmid, child, 0), 0);
    pidfd = peer_open(child);
    /* Fill every slot, then kill the proxy: the next reserve ends with -ESRCH. */
    for (uint32_t i = 0; i < seg.nslots; i++) {
        CHECK_EQ(shm_seg_reserve(&seg, pidfd, 1000, NULL, &p), 0);
        CHECK_EQ(shm_seg_publish(&seg, 1, i ? SHM_SLOT_DATA : SHM_SLOT_RESPONSE, SHM_STATUS_OK,
                                 i ? 0 : 1u << 20, seg.slot_cap),
                 0);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    double t0 = now_s();
    rc = shm_seg_reserve(&seg, pidfd, 10000, NULL, &p);
    CHECK_EQ(rc, -ESRCH);
    CHECK(now_s() - t0 < 2.0);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_SEG, child), 1); /* still attached by us */
    sysv_seg_detach(&seg);
    close(pidfd);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_SEG, child), 0);
}

/* SEM_UNDO hazard 1: a producer posts with SEM_UNDO and exits; the kernel takes its posts
 * back, so the consumer never sees the chunks it was owed. The futex count keeps them. */
static void test_sem_undo_loses_posts(void)
{
    int semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
    struct shm_sem *fut =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t child;

    CHECK(semid >= 0);
    CHECK(fut != MAP_FAILED);
    shm_sem_init(fut, 0);
    child = fork();
    if (child == 0) {
        struct sembuf op = {.sem_num = 0, .sem_op = 3, .sem_flg = SEM_UNDO};
        int ok = semop(semid, &op, 1) == 0;
        for (int i = 0; i < 3; i++)
            ok &= shm_sem_post(fut) == 0;
        _exit(ok ? 0 : 1); /* wrote its last three chunks, done */
    }
    int st;
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(semctl(semid, 0, GETVAL), 0); /* the three posts were undone at exit */
    CHECK_EQ(shm_sem_value(fut), 3);       /* the ring's count keeps them */
    semctl(semid, 0, IPC_RMID);
    munmap(fut, 4096);
}

/* SEM_UNDO hazard 2: a one-way count (the producer only posts `filled`) accumulates semadj;
 * past 32768 posts semop fails with ERANGE, i.e. a file of more than 32768 chunks. */
static void test_sem_undo_erange(void)
{
    int semid = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600), i, rc = 0;
    struct sembuf post = {.sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO};
    struct sembuf take = {.sem_num = 0, .sem_op = -1, .sem_flg = 0}; /* the consumer's */

    CHECK(semid >= 0);
    for (i = 0; i < 40000; i++) {
        rc = semop(semid, &post, 1);
        if (rc < 0)
            break;
        semop(semid, &take, 1);
    }
    CHECK_EQ(rc, -1);
    CHECK_EQ(errno, ERANGE);
    CHECK(i >= 32767 && i <= 32768); /* SEMAEM: semadj stays within -32768..32767 */
    semctl(semid, 0, IPC_RMID);
}

static void test_nothing_left(void)
{
    CHECK_EQ(isolate_rc, 0);
    CHECK_EQ(sysv_count_ours(geteuid(), SYSV_SWEEP_CMD | SYSV_SWEEP_SEG, getpid()), 0);
}

int main(void)
{
    static const struct test_case cases[] = {
        T(test_keys),
        T(test_msgq_round_trip),
        T(test_msgq_key_taken),
        T(test_msgq_key_squatted),
        T(test_msgq_full),
        T(test_msgq_blocking),
        T(test_msgq_idle_cpu),
        T(test_outlive_and_sweep),
        T(test_seg_transfer),
        T(test_seg_kill_proxy),
        T(test_sem_undo_loses_posts),
        T(test_sem_undo_erange),
        T(test_nothing_left),
    };

    isolate_rc = ipc_test_isolate_or_skip();
    return test_run_all(cases, sizeof cases / sizeof cases[0]);
}
