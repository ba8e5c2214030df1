/* handshake.pml - model of the chunk handshake of src/ipc/shm_chan.h (docs/ipc.md).
 *
 * One proxy worker (the consumer) sends NREQ requests, one after another, over the command
 * queue; NWORKERS cache workers (producers) serve them, each writing a file of FLEN chunks into
 * the named segment, a ring of K slots counted by two semaphores (filled, free).
 *
 * Modelled failures: any wait of the consumer may end in a timeout or find the cache dead
 * (both: the consumer abandons the transfer); any wait of a producer may end in its stall
 * timeout or its death (it stops writing). A producer that is merely slow keeps writing after
 * the consumer gave up: that late writer is the danger.
 *
 * After an abandoned transfer the consumer sets the cancel word and then
 *   REPLACE 1: moves to a fresh segment (the real protocol: shm_seg_destroy + shm_seg_create);
 *   REPLACE 0: reuses the same segment, resetting its semaphores and cancel word.
 * GEN_CHECK 1: the consumer checks the generation in every slot header (the real protocol);
 * GEN_CHECK 0: only the sequence number.
 *
 * Properties: the consumer never accepts a chunk whose payload was written for another request
 * (assert); after a complete transfer the segment is idle (filled = 0, free = K) under REPLACE;
 * no invalid end state (spin's deadlock check). Slot header fields and payload are written in
 * separate steps, so two writers can interleave on one slot.
 *
 * spin -a [-DGEN_CHECK=0] [-DREPLACE=0] spin/handshake.pml && cc -O2 -o pan pan.c && ./pan -m100000
 */

#ifndef GEN_CHECK
#define GEN_CHECK 1
#endif
#ifndef REPLACE
#define REPLACE 1
#endif
#ifndef K
#define K 2
#endif
#define NREQ     3
#define FLEN     3              /* chunks per file: RESPONSE + 2 DATA, so the ring wraps */
#define NWORKERS 2
#define MAXSEG   (NREQ + 1)     /* a fresh segment per abandoned request, at most */
#define SLOT(s, q) ((s) * K + (q) % K)

byte filled[MAXSEG];            /* semaphore: chunks ready */
byte free[MAXSEG];              /* semaphore: slots to write */
bool cancel[MAXSEG];
byte hgen[MAXSEG * K];          /* slot header: generation */
byte hseq[MAXSEG * K];          /* slot header: sequence number */
byte porigin[MAXSEG * K];       /* ghost: which request's bytes the payload holds */

chan cmdq = [NREQ] of { byte, byte };  /* segment, generation */

proctype Worker()
{
    byte s, g, seq;

end_idle:
    do
    :: cmdq?s,g ->
        seq = 0;
        do
        :: seq == FLEN -> break
        :: seq < FLEN ->
            if
            :: cancel[s] -> break                       /* -ECANCELED */
            :: atomic { !cancel[s] && free[s] > 0 -> free[s]-- }
                porigin[SLOT(s, seq)] = g;              /* payload */
                hgen[SLOT(s, seq)] = g;                 /* header ... */
                hseq[SLOT(s, seq)] = seq;
                filled[s]++;                            /* post(filled) */
                seq++
            :: break                                    /* stall timeout, or death */
            fi
        od
    od
}

active proctype Proxy()
{
    byte cur = 0, nseg = 1, r = 0, g, seq, hg, hs;
    bool abandoned;

    free[0] = K;
    do
    :: r == NREQ -> break
    :: r < NREQ ->
        g = r + 1;                                      /* a generation never used before */
        cancel[cur] = 0;                                /* shm_seg_begin */
        cmdq!cur,g;
        seq = 0;
        abandoned = 0;
        do
        :: seq == FLEN -> break                         /* complete */
        :: seq < FLEN ->
            if
            :: atomic { filled[cur] > 0 -> filled[cur]-- }
                atomic { hg = hgen[SLOT(cur, seq)]; hs = hseq[SLOT(cur, seq)] } /* copy once */
                if
                :: (GEN_CHECK && hg != g) || hs != seq ->
                    abandoned = 1; break                /* -EBADMSG */
                :: else
                fi;
                /* The chunk was accepted: its bytes must be this request's. */
                assert(porigin[SLOT(cur, seq)] == g);
                free[cur]++;                            /* shm_seg_release */
                seq++
            :: abandoned = 1; break                     /* -ETIMEDOUT or -ESRCH */
            fi
        od;
        if
        :: abandoned ->
            cancel[cur] = 1;                            /* shm_seg_cancel */
#if REPLACE
            cur = nseg; nseg++;
            free[cur] = K
#else
            filled[cur] = 0; free[cur] = K              /* "reset" and reuse */
#endif
        :: else ->
#if REPLACE
            assert(filled[cur] == 0 && free[cur] == K)  /* idle again: reusable */
#else
            skip
#endif
        fi;
        r++
    od
}

init
{
    byte i;

    atomic {
        for (i : 1 .. NWORKERS) {
            run Worker()
        }
    }
}
