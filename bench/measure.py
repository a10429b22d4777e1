"""Timing one command: wall time, peak memory, exit status; and sizing result trees.

Peak memory is measured two ways:
- `tree_maxrss_kb`: ru_maxrss from wait4() of the command, which the kernel reports as the largest
  resident set of the command and every descendant it waited for (what `/usr/bin/time -f %M`
  prints); concurrently running children are not added up;
- `main_hwm_kb`: VmHWM of the command's own process, polled from /proc every 20 ms (for a Python
  command, the interpreter's own peak without the tools it runs).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sample:
    wall: float
    rc: int
    tree_maxrss_kb: int
    main_hwm_kb: int
    log: str
    cpu: float = 0.0  # user + system seconds of the command and every descendant it waited for


def _hwm(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None  # a zombie has no VmHWM line


def timed(argv: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | str | None = None,
          poll: float = 0.02) -> Sample:
    """Run argv (stdout and stderr to `log`), timing it from fork to reaping."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        best = [0]
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                kb = _hwm(proc.pid)
                if kb is not None:
                    best[0] = max(best[0], kb)
                stop.wait(poll)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        stop.set()
        watcher.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return Sample(wall, proc.returncode, usage.ru_maxrss, best[0], str(log), usage.ru_utime + usage.ru_stime)


def tail(path: str | Path, lines: int = 8) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def bytes_of(paths: Iterable[Path]) -> int:
    """Bytes of the regular files among `paths` (missing files count 0)."""
    total = 0
    for p in paths:
        try:
            st = p.lstat()
        except OSError:
            continue
        if not os.path.islink(p):
            total += st.st_size
    return total


def tree_bytes(roots: Iterable[Path]) -> tuple[int, int]:
    """(regular files, bytes) under the roots, each inode counted once, symlinks not followed."""
    seen: set[tuple[int, int]] = set()
    n = size = 0
    for root in roots:
        for dirpath, _, names in os.walk(root):
            for name in names:
                st = os.lstat(os.path.join(dirpath, name))
                if not (st.st_mode & 0o170000 == 0o100000):
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                n += 1
                size += st.st_size
    return n, size


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
