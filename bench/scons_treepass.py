#!/usr/bin/env python3
"""The SCons stage's tree pass (dwz, (de)compression) alone, for two or more checkouts, alternating.

    python3 bench/scons_treepass.py [--runs 3] [--work DIR] NAME=CHECKOUT...

A with-tool project of the 150-file corpus (`scons_bench.make_project`) is built once in DIR (objects from
bench/run's cache, `--objects`), with the last checkout. Then, per round and checkout: the pass's record
(`.splitdebug/treepass-*.json`) removed and `scons -j2 --site-dir=<checkout>/site_scons` run again, which
re-stages nothing and reruns the pass. Wall and CPU (wait4; SCons' own start-up included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import corpus
import scons_bench


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("checkouts", nargs="+", metavar="NAME=CHECKOUT")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    ap.add_argument("--objects", type=Path, default=Path("/tmp/splitdebug-bench-run/obj"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/splitdebug-treepass"))
    args = ap.parse_args()
    named = [(name, Path(path).resolve()) for name, _, path in (c.partition("=") for c in args.checkouts)]
    units = corpus.compile_units(args.corpus, args.objects, 2)
    project = args.work / "with-tool"
    if not (project / "stage").exists():
        made = scons_bench.make_project(project, args.corpus, corpus.plan_links(units, 150), with_tool=True)
        subprocess.run(scons_bench.scons_argv(named[-1][1], 2), cwd=made.dir, check=True, stdout=subprocess.DEVNULL)
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for name, checkout in named:
            for record in (project / ".splitdebug").glob("treepass-*.json"):
                record.unlink()
            os.sync()
            start = time.perf_counter()
            proc = subprocess.Popen(scons_bench.scons_argv(checkout, 2), cwd=project, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            if status != 0:
                raise SystemExit(f"scons_treepass: scons with {checkout} exited with status {status}")
            results.setdefault(name, []).append((time.perf_counter() - start, usage.ru_utime + usage.ru_stime))
            print(f"{name}: {results[name][-1][0]:.2f} s wall, {results[name][-1][1]:.2f} s CPU, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    for name, runs in results.items():
        print(f"{name:8} median wall {statistics.median(w for w, _ in runs):.2f} s, "
              f"CPU {statistics.median(c for _, c in runs):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
