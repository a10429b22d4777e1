#!/usr/bin/env python3
"""The I/O floor of an in-place split, to set the plain split's time against `cp -a`.

For each ELF file of a copy of TREE, the same system calls an in-place split makes, with no ELF
work at all: three quarters of the file copied (in the kernel, copy_file_range) to a new file in
TREE/dbg, the first quarter copied to a temporary file renamed over the original. JOBS forked
processes, as `splitdebug split` uses. It modifies TREE: give it a fresh copy.

    cp -a /tmp/…/tree-150 /tmp/floor && /usr/bin/time -f %e bench/io_floor.py /tmp/floor 2
"""

from __future__ import annotations

import os
import sys
import time


def split_like(files: list[str], dbg: str) -> None:
    for path in files:
        size = os.path.getsize(path)
        cut = size // 4
        with open(path, "rb") as src:
            for dest, start, end, mode in ((os.path.join(dbg, os.path.basename(path)), cut, size, 0o644),
                                           (path + ".tmp", 0, cut, 0o755)):
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                done = start
                while done < end:
                    done += os.copy_file_range(src.fileno(), fd, end - done, done)
                os.close(fd)
        os.replace(path + ".tmp", path)


def main() -> int:
    root, jobs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(root) for f in names)
    files = [f for f in files if not os.path.islink(f) and open(f, "rb").read(4) == b"\x7fELF"]
    dbg = os.path.join(root, "dbg")
    os.makedirs(dbg, exist_ok=True)
    t = time.perf_counter()
    pids = []
    for w in range(jobs):
        pid = os.fork()
        if pid == 0:
            split_like(files[w::jobs], dbg)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    print(f"{len(files)} files, {jobs} processes: {time.perf_counter() - t:.3f} s after the interpreter started")
    return 0


if __name__ == "__main__":
    sys.exit(main())
