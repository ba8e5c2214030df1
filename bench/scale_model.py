#!/usr/bin/env python3
# scale_model.py - the scale-out model of docs/scale-out.md, by simulation: N nodes on a
# consistent-hash ring (160 points per node, like HAProxy's hash-type consistent at weight 1),
# each an LRU cache of C bytes filling from the origin on a miss; requests drawn from a working
# set of W files of one size with Zipf(s) popularity (s=0: uniform). Prints, per (N, W), the
# hit ratio, the origin load (misses per 1000 requests), the memory each node holds (bytes of
# its cache in use: mean and max over nodes) and the share of paths a node's loss moves.
# SPDX-License-Identifier: MIT
"""Usage: scale_model.py [--nodes 1,2,4,8] [--files 1000,10000,100000] [--cache-mib 64]
                      [--size-kib 64] [--zipf 0.8] [--requests 200000] [--seed 1]
       scale_model.py --selftest   checks the model's claims on a small run (exit 1 if not)"""

import argparse
import bisect
import hashlib
import random
import sys
from collections import OrderedDict


def h32(s):
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "big")


class Ring:
    def __init__(self, nodes, points=160):
        self.keys, self.owner = [], []
        for k, n in sorted((h32("node%d-%d" % (n, p)), n) for n in nodes for p in range(points)):
            self.keys.append(k)
            self.owner.append(n)

    def node(self, path):
        i = bisect.bisect(self.keys, h32(path)) % len(self.keys)
        return self.owner[i]


def zipf_sampler(w, s, rng):
    weights = [1.0 / (i + 1) ** s for i in range(w)]
    cum, t = [], 0.0
    for x in weights:
        t += x
        cum.append(t)
    return lambda: bisect.bisect(cum, rng.random() * t)


def run(n, w, cache, size, s, requests, seed):
    rng = random.Random(seed)
    ring = Ring(range(n))
    draw = zipf_sampler(w, s, rng)
    lru = [OrderedDict() for _ in range(n)]
    used = [0] * n
    hits = misses = 0
    warm = requests // 2  # the first half warms the caches up
    for r in range(requests):
        f = draw()
        p = "/f%d" % f
        k = ring.node(p)
        c = lru[k]
        if p in c:
            c.move_to_end(p)
            hit = True
        else:
            hit = False
            c[p] = size
            used[k] += size
            while used[k] > cache:
                _, sz = c.popitem(last=False)
                used[k] -= sz
        if r >= warm:
            hits += hit
            misses += not hit
    # Share of paths that move when node 0 goes: exactly its own share on a consistent ring.
    moved = 0
    if n > 1:
        ring2 = Ring(range(1, n))
        sample = ["/f%d" % i for i in range(min(w, 20000))]
        moved = sum(ring.node(p) != ring2.node(p) for p in sample) / len(sample)
    return hits / (hits + misses), 1000 * misses / (hits + misses), sum(used) / n, max(used), moved


def selftest():
    mib, kib = 2**20, 2**10
    bad = []
    # A working set that fits one node: all hits after warm-up, memory per node about W/N.
    for n in (1, 2, 4):
        hr, org, avg, mx, mv = run(n, 500, 64 * mib, 64 * kib, 0.8, 20000, 1)
        if hr != 1.0 or org != 0:
            bad.append("fitting set, %d nodes: hit ratio %.3f" % (n, hr))
        if abs(avg - 500 * 64 * kib / n) > 0.05 * 500 * 64 * kib / n:
            bad.append("fitting set, %d nodes: %.1f MiB per node" % (n, avg / mib))
        if n > 1 and abs(mv - 1 / n) > 0.1:
            bad.append("%d nodes: a node's loss moves %.2f of the paths, not about 1/N" % (n, mv))
    # A set larger than one node: more nodes, more hits.
    hrs = [run(n, 5000, 32 * mib, 64 * kib, 0.8, 40000, 1)[0] for n in (1, 2, 4, 8)]
    if hrs != sorted(hrs) or hrs[-1] <= hrs[0]:
        bad.append("hit ratio does not grow with the nodes: %s" % hrs)
    for b in bad:
        print("scale_model selftest: FAIL:", b)
    print("scale_model selftest:", "ok" if not bad else "%d failed" % len(bad))
    return 1 if bad else 0


def main():
    if sys.argv[1:] == ["--selftest"]:
        sys.exit(selftest())
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--nodes", default="1,2,4,8")
    ap.add_argument("--files", default="1000,10000,100000")
    ap.add_argument("--cache-mib", type=float, default=64)
    ap.add_argument("--size-kib", type=float, default=64)
    ap.add_argument("--zipf", type=float, default=0.8)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    cache, size = int(a.cache_mib * 2**20), int(a.size_kib * 2**10)
    print("# %s KiB files, %s MiB cache per node, Zipf s=%s, %d requests (second half measured)"
          % (a.size_kib, a.cache_mib, a.zipf, a.requests))
    print("%6s %8s %10s %9s %14s %12s %12s %8s" % ("nodes", "files", "set MiB", "hit %",
          "origin/1000", "mem MiB avg", "mem MiB max", "moved %"))
    for w in (int(x) for x in a.files.split(",")):
        for n in (int(x) for x in a.nodes.split(",")):
            hr, org, avg, mx, mv = run(n, w, cache, size, a.zipf, a.requests, a.seed)
            print("%6d %8d %10.0f %9.1f %14.1f %12.1f %12.1f %8.1f" % (
                n, w, w * size / 2**20, 100 * hr, org, avg / 2**20, mx / 2**20, 100 * mv))


if __name__ == "__main__":
    main()
