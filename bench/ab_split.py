#!/usr/bin/env python3
"""`splitdebug split` of two or more checkouts side by side: the same tree, fresh copies, alternating.

    python3 bench/ab_split.py TREE [--runs 3] [--floor] NAME=CHECKOUT... -- SPLIT ARGS…
    git worktree add /tmp/main main    # or: git archive main | tar -x -C /tmp/main
    python3 bench/ab_split.py /tmp/splitdebug-bench-run/tree-150 main=/tmp/main new=. -- --policy redhat \
        --package bench --version 1 --release 1 -j 2

Each round copies TREE afresh (cp -a, sync; not timed) and runs each checkout's `python3 -m splitdebug split
SPLIT ARGS… -q COPY` with PYTHONPATH=<checkout>/site_scons, in turn. Printed per checkout: median wall and
CPU seconds (user + sys of the process and all it waited for, wait4), every run with the load average then.
`--floor` adds bench/io_floor.py (the plain split's floor) to each round. On a shared machine the CPU
medians move less than the walls: compare those.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"ab_split: {' '.join(argv)} exited with status {status}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("tree", type=Path)
    ap.add_argument("checkouts", nargs="+", metavar="NAME=CHECKOUT")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--floor", action="store_true", help="also bench/io_floor.py in each round")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, split_args = ap.parse_args(argv[:cut]), argv[cut + 1:]
    named = [(name, Path(path).resolve()) for name, _, path in (c.partition("=") for c in args.checkouts)]
    for checkout in (p for _, p in named):  # as an installed package is: no compiling in the timed runs
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "site_scons/splitdebug")],
                       check=True, stdout=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ab-split-") as scratch:
        copy = Path(scratch) / "root"
        for _ in range(args.runs):
            for name, checkout in ([("io_floor", None)] if args.floor else []) + named:
                shutil.rmtree(copy, ignore_errors=True)
                subprocess.run(["cp", "-a", str(args.tree), str(copy)], check=True)
                os.sync()
                if checkout is None:
                    argv = [sys.executable, str(BENCH / "io_floor.py"), str(copy), "2"]
                    env, cwd = dict(os.environ), BENCH
                else:
                    argv = [sys.executable, "-m", "splitdebug", "split", *split_args, "-q", str(copy)]
                    env, cwd = dict(os.environ, PYTHONPATH=str(checkout / "site_scons")), checkout
                wall, cpu = timed(argv, env, cwd)
                results.setdefault(name, []).append((wall, cpu, os.getloadavg()[0]))
    for name, runs in results.items():
        print(f"{name:10} wall {statistics.median(w for w, _, _ in runs):6.2f} s  cpu "
              f"{statistics.median(c for _, c, _ in runs):6.2f} s   runs (wall/cpu@load): "
              + " ".join(f"{w:.2f}/{c:.2f}@{load:.1f}" for w, c, load in runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
