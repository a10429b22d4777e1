#!/usr/bin/env python3
"""Benchmark (issue 19 item 3): gdb's time to `info line` a function of the largest binary of the
150-file tree, through the staged tree, with and without the policy's gdb_index.

    python3 bench/gdb_index_bench.py [--corpus /work/corpus] [--work DIR] [--files 150] [--runs 5]
                                     [--extra UNSTRIPPED_ELF --function NAME]

Builds (once, cached in --work) the corpus tree of bench/corpus.py (the one bench/run splits), splits
two copies with the redhat policy (dwz multifile, zlib): as shipped (gdb_index: false), and with
`gdb_index: true` appended. Then, round-robin for --runs rounds (one run of each per round, the order
alternating), `gdb -batch -nx` with the debug-file-directory of each tree: `file` the largest
shipped binary and `info line` its main(). gdb finds the debug file by build-id and the dwz multifile
through the altlink, as it would installed. Prints the medians, the ratio with/without (the anchor is
gdb on the tree without the index, measured in the same run), the split times and debug bytes of both
trees, the load averages before and after, and whether gdb used the index (`maint print objfiles`).
Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITE_SCONS = REPO / "site_scons"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import build_tree, tree_stats  # noqa: E402  (the corpus builder, shared with bench/run)

RH_ARGS = ["--package", "bench", "--version", "1", "--release", "1", "--arch", "x86_64"]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(SITE_SCONS) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def split_copy(unstripped: Path, dest: Path, policy: str, jobs: int) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["cp", "-a", str(unstripped), str(dest)], check=True)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "splitdebug", "split", "--policy", policy, "--jobs", str(jobs),
                           *RH_ARGS, str(dest)], env=env(), cwd=REPO, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"bench: split {policy} failed: {proc.stderr.strip()}")
    return dt


def largest_binary(tree: Path) -> Path:
    """The largest ELF file of the unstripped tree (the most DWARF for gdb to index), first by name."""
    files = [p for p in tree.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"]
    return min(files, key=lambda p: (-p.stat().st_size, str(p)))


def gdb(tree: Path, binary: Path, *commands: str) -> tuple[float, str]:
    argv = ["gdb", "-batch", "-nx", "-iex", "set debuginfod enabled off",
            "-iex", f"set debug-file-directory {tree / 'usr/lib/debug'}", "-ex", f"file {binary}"]
    for c in commands:
        argv += ["-ex", c]
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    return time.perf_counter() - t, proc.stdout + proc.stderr


def debug_bytes(tree: Path) -> int:
    return tree_stats(tree / "usr/lib/debug")[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/splitdebug-bench-gdb-index"))
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--function", default="main")
    ap.add_argument("--extra", type=Path, help="instead of the corpus tree: this unstripped ELF alone, as "
                                                "/usr/bin/<name> of a tree of one file (a large C++ program)")
    args = ap.parse_args()
    if shutil.which("gdb") is None:
        sys.exit("bench: gdb is not installed (apt-get install gdb)")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"load before: {loadavg()}", flush=True)
    if args.extra is not None:
        unstripped = args.work / "extra"
        shutil.rmtree(unstripped, ignore_errors=True)
        (unstripped / "usr/bin").mkdir(parents=True)
        shutil.copy2(args.extra, unstripped / "usr/bin" / args.extra.name)
    else:
        unstripped = build_tree(args.corpus, args.work, args.files, args.jobs)
    n, size = tree_stats(unstripped)
    print(f"tree: {n} files, {size / 2**20:.1f} MiB", flush=True)
    indexed_policy = args.work / "redhat-gdb-index.yaml"
    text = (REPO / "configs/redhat.yaml").read_text()
    indexed_policy.write_text(re.sub(r"^gdb_index: false$", "gdb_index: true", text, flags=re.MULTILINE))
    trees = {"without": args.work / "split-plain", "with": args.work / "split-indexed"}
    split_s = {"without": split_copy(unstripped, trees["without"], "redhat", args.jobs),
               "with": split_copy(unstripped, trees["with"], str(indexed_policy), args.jobs)}
    binary_rel = largest_binary(unstripped).relative_to(unstripped)
    print(f"largest binary: /{binary_rel} ({(trees['without'] / binary_rel).stat().st_size / 2**20:.1f} MiB "
          f"stripped, {(unstripped / binary_rel).stat().st_size / 2**20:.1f} MiB unstripped)", flush=True)
    used: dict[str, str] = {}
    for name, tree in trees.items():
        _, out = gdb(tree, tree / binary_rel, f"info line {args.function}", "maint print objfiles")
        if not re.search(r'^Line \d+ of "', out, re.MULTILINE):
            sys.exit(f"bench: gdb did not resolve {args.function} through the {name} tree:\n{out}")
        used[name] = ("index" if re.search(r"^\.gdb_index: version", out, re.MULTILINE)
                      else "cooked" if "Cooked index in use" in out else "?")
        print(f"{name} index: gdb says {used[name]}; info line: {out.splitlines()[0]}", flush=True)
    times: dict[str, list[float]] = {k: [] for k in trees}
    for r in range(args.runs):
        for name in (list(trees) if r % 2 == 0 else list(reversed(trees))):
            dt, _ = gdb(trees[name], trees[name] / binary_rel, f"info line {args.function}")
            times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"load after: {loadavg()}")
    print(f"gdb info line {args.function}, median of {args.runs} (s): without {med['without']:.3f} "
          f"[{' '.join(f'{t:.3f}' for t in times['without'])}], with {med['with']:.3f} "
          f"[{' '.join(f'{t:.3f}' for t in times['with'])}]")
    print(f"ratio with/without: {med['with'] / med['without']:.3f} x")
    print(f"split --jobs {args.jobs} (s): without {split_s['without']:.2f}, with {split_s['with']:.2f} "
          f"({split_s['with'] / split_s['without']:.2f} x)")
    b = {k: debug_bytes(t) for k, t in trees.items()}
    print(f"debug tree bytes: without {b['without']:,}, with {b['with']:,} ({b['with'] / b['without']:.3f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
