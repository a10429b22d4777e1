#!/usr/bin/env python3
"""Benchmark: `splitdebug check` against `find-debuginfo -j2` on the same tree of real binaries.

    python3 bench/check_bench.py [--corpus /work/corpus] [--work DIR] [--files 150] [--repeat 3]

Builds (once, cached in --work) a staging tree of ~150 distinct unstripped ELF files from the Debian
sources of zlib, lua5.4 and libyaml (`../shared/corpus/fetch.sh DIR` fetches them) with corpus.py,
shared with bench/run: every program of those sources linked statically against its package's
objects, and each package as a shared library, in several variants (a one-line tag object gives
each its own contents and build-id). Then:

- `cp -a` of the unstripped tree (the floor);
- `find-debuginfo -j2` on a fresh copy (RPM_BUILD_ROOT=copy, as rpmbuild runs it);
- `splitdebug split` of a copy with each policy (debian; redhat with --version 1 --release 1);
- `splitdebug check` of each split tree (read-only, so repeated on the same tree).

Prints a table of wall times (best of --repeat) and the ratio check / find-debuginfo. Not run by the
test suite: it takes about a minute the first time, mostly compiling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITE_SCONS = REPO / "site_scons"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import build_tree, run, tree_stats  # noqa: E402  (the corpus builder, shared with bench/run)


def copy(src: Path, dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(["cp", "-a", str(src), str(dest)], check=True)
    return time.perf_counter() - t


def timed(argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> float:
    t = time.perf_counter()
    # From the repository: `--policy debian` must not find a directory named debian in the cwd.
    proc = run(argv, env=env, cwd=REPO)
    dt = time.perf_counter() - t
    if proc.returncode not in ok:
        tail = proc.stdout[-2000:] + proc.stderr[-2000:]
        raise SystemExit(f"bench: {' '.join(argv[:4])}… exited {proc.returncode}:\n{tail}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"), help="fetch.sh's DEST")
    ap.add_argument("--work", type=Path, default=Path("/tmp/splitdebug-bench"))
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not (args.corpus / "src-zlib").is_dir():
        raise SystemExit(f"bench: no sources in {args.corpus}: run ../shared/corpus/fetch.sh {args.corpus}")
    for tool in ("gcc", "find-debuginfo", "eu-strip", "objcopy"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench: {tool} not found (./bootstrap installs it)")
    args.work.mkdir(parents=True, exist_ok=True)
    unstripped = build_tree(args.corpus.resolve(), args.work.resolve(), args.files, args.jobs)
    n, size = tree_stats(unstripped)
    print(f"tree: {n} files, {size / 1e6:.1f} MB unstripped ({unstripped})")

    env = dict(os.environ, PYTHONPATH=str(SITE_SCONS) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cli = [sys.executable, "-m", "splitdebug"]
    rh = ["--version", "1", "--release", "1"]
    rows: list[tuple[str, list[float]]] = []

    cp_times = [copy(unstripped, args.work / "cp") for _ in range(args.repeat)]
    rows.append(("cp -a (floor)", cp_times))

    fdi = []
    for _ in range(args.repeat):
        root = args.work / "fdi"
        copy(unstripped, root)
        builddir = args.work / "fdi-build"
        shutil.rmtree(builddir, ignore_errors=True)
        builddir.mkdir()
        fenv = dict(os.environ, RPM_BUILD_ROOT=str(root), RPM_BUILD_DIR=str(builddir),
                    RPM_PACKAGE_NAME="bench", RPM_PACKAGE_VERSION="1", RPM_PACKAGE_RELEASE="1",
                    RPM_ARCH="x86_64")
        fdi.append(timed(["find-debuginfo", "-j2", "--unique-debug-suffix", "-1-1.x86_64",
                          str(builddir)], env=fenv))
    rows.append(("find-debuginfo -j2", fdi))

    split_roots = {"debian": args.work / "debian", "redhat": args.work / "redhat"}
    for policy, root in split_roots.items():
        copy(unstripped, root)
        extra = rh if policy == "redhat" else []
        rows.append((f"splitdebug split --policy {policy} -j{args.jobs}",
                     [timed(cli + ["split", "--policy", policy, *extra, "-q", "-j", str(args.jobs), str(root)],
                            env=env)]))
    checks = {}
    for policy, root in split_roots.items():
        extra = rh if policy == "redhat" else []
        for jobs in (1, args.jobs):
            argv = cli + ["check", "--policy", policy, *extra, "-j", str(jobs), "--format", "json",
                          "--output", str(args.work / f"check-{policy}.json"), str(root)]
            times = [timed(argv, env=env) for _ in range(args.repeat)]
            rows.append((f"splitdebug check --policy {policy} -j{jobs}", times))
            checks[(policy, jobs)] = min(times)

    width = max(len(r[0]) for r in rows)
    print(f"\n{'run':<{width}}  {'best s':>7}  {'median s':>8}  runs")
    for name, times in rows:
        print(f"{name:<{width}}  {min(times):7.2f}  {statistics.median(times):8.2f}  {len(times)}")
    best_fdi = min(fdi)
    print()
    for (policy, jobs), t in checks.items():
        print(f"ratio check({policy}, -j{jobs}) / find-debuginfo -j2 = {t / best_fdi:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
