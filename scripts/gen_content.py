#!/usr/bin/env python3
"""gen_content.py DIR - generates the demo's file set: stand-ins of the classic files (same
sizes, deterministic bytes), a few larger ones, locals.txt / content.txt and workload.txt."""
import hashlib
import os
import sys

FILES = [(f"1kb-sample-file-{i}.{ext}", 1024) for i, ext in enumerate(["png", "html", "png", "jpg", "png"])]
FILES += [("yellowstone.jpg", 104244), ("road.jpg", 138177), ("paraglider.jpg", 233174),
          ("moranabovejacksonlake.jpg", 452231), ("empty.txt", 0), ("big-1m.bin", 1 << 20),
          ("big-10m.bin", 10 << 20)]
PREFIX = "/courses/ud923/filecorpus/"


def fill(path, size):
    seed = hashlib.sha256(path.encode()).digest()
    with open(path, "wb") as f:
        i = 0
        while size > 0:
            block = hashlib.sha256(seed + i.to_bytes(8, "little")).digest() * 2048
            n = min(size, len(block))
            f.write(block[:n])
            size -= n
            i += 1


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "cached_files"), exist_ok=True)
    with open(os.path.join(out, "locals.txt"), "w") as idx, \
            open(os.path.join(out, "workload.txt"), "w") as wl:
        for name, size in FILES:
            local = os.path.join("cached_files", name)
            fill(os.path.join(out, local), size)
            idx.write(f"{PREFIX}{name} {local}\n")
            wl.write(f"{PREFIX}{name}\n")
        wl.write(f"{PREFIX}not-in-the-cache.jpg\n")
    os.link(os.path.join(out, "locals.txt"), os.path.join(out, "content.txt"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
