#!/usr/bin/env python3
"""Start-up on a small package: `dh_splitdebug` against `dh_dwz && dh_strip` (issue 14, item 4).

    python3 bench/dh_small.py [--runs 5] [--work /tmp/splitdebug-dh-small]

A built source package with 3 ELF files (two programs sharing types, so dwz makes a multifile, and a
shared library) and a static archive, in three binary packages. Each run starts from a fresh copy;
prints every time, the medians and their ratio (below 1: dh_splitdebug is faster). dh_splitdebug
is this checkout's (`python3 -m splitdebug.cli.dh` with site_scons/ on PYTHONPATH).
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
MA = "x86_64-linux-gnu"
CONTROL = """\
Source: demo
Maintainer: Bench <bench@example.org>
Build-Depends: debhelper-compat (= 13)

Package: demo
Architecture: any
Description: programs
 programs

Package: libdemo1
Architecture: any
Description: library
 library

Package: libdemo-dev
Architecture: any
Description: static library
 static library
"""
TYPES = "".join(f"struct s{i} {{ int a{i}; long b; char c[{i + 1}]; struct s{i} *next; }};\n"
                f"struct s{i} v{i};\n" for i in range(40))


def gcc(out: Path, source: str, *flags: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id", "-x", "c", "-o", str(out), "-", *flags],
                   input=source, text=True, check=True)


def make_package(src: Path) -> None:
    (src / "debian").mkdir(parents=True)
    (src / "debian/control").write_text(CONTROL)
    for i, name in enumerate(("prog", "prog2")):
        gcc(src / f"debian/demo/usr/bin/{name}", TYPES + f"int main(void) {{ return v{i}.a{i}; }}\n")
    lib = src / f"debian/libdemo1/usr/lib/{MA}/libdemo.so.1"
    gcc(lib, TYPES + "int demo_add(int a, int b) { return a + b + v3.a3; }\n", "-shared", "-fPIC")
    lib.chmod(0o644)
    obj = src.parent / "demo.o"
    gcc(obj, "int demo_static(int x) { return x * 7; }\n", "-c")
    archive = src / f"debian/libdemo-dev/usr/lib/{MA}/libdemo.a"
    archive.parent.mkdir(parents=True)
    subprocess.run(["ar", "rcs", str(archive), str(obj)], check=True)


def timed(src: Path, work: Path, contenders: list[list[list[str]]], env: dict[str, str],
          runs: int) -> list[list[float]]:
    """Wall time of each contender's commands on a fresh copy; runs interleaved, so that a change in
    the machine's load (other jobs on a shared machine) falls on both alike."""
    out: list[list[float]] = [[] for _ in contenders]
    for i in range(runs):
        for n, commands in enumerate(contenders):
            tree = work / f"run{i}-{n}"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(src, tree, symlinks=True)
            start = time.perf_counter()
            for argv in commands:
                subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True)
            out[n].append(time.perf_counter() - start)
            shutil.rmtree(tree)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", type=Path, default=Path("/tmp/splitdebug-dh-small"))
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    src = args.work / "src"
    make_package(src)
    env = {k: v for k, v in os.environ.items() if k not in ("DEB_BUILD_OPTIONS", "DH_OPTIONS", "DH_VERBOSE")}
    env["PYTHONPATH"] = str(REPO / "site_scons")
    stock, ours = timed(src, args.work, [[["dh_dwz"], ["dh_strip"]], [[sys.executable, "-m", "splitdebug.cli.dh"]]],
                        env, args.runs)
    for name, times in (("dh_dwz && dh_strip", stock), ("dh_splitdebug", ours)):
        print(f"{name:20} median {statistics.median(times):.3f} s  runs " + " ".join(f"{t:.3f}" for t in times))
    print(f"ratio dh_splitdebug / (dh_dwz && dh_strip): {statistics.median(ours) / statistics.median(stock):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
