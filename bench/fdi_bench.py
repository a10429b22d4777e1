#!/usr/bin/env python3
"""Benchmark: `splitdebug find-debuginfo` against find-debuginfo, each inside rpmbuild's %__debug_install_post.

    python3 bench/fdi_bench.py [--corpus /work/corpus] [--work DIR] [--files 150] [--runs 5]

The 150-file tree of bench/corpus.py (zlib, lua5.4, libyaml: `../shared/corpus/fetch.sh DIR`), compiled
from a private copy of the sources (the build directory debugedit maps, and the sources -debugsource
copies), is installed by a spec's %install (`cp -a`) and `rpmbuild -bi` runs rpm's own
%__debug_install_post with Fedora's options (-j2 -m --build-id-seed --unique-debug-suffix
--unique-debug-src-base --run-dwz -S debugsourcefiles.list). `%__find_debuginfo` is the tool behind a
timer that records its wall time alone (not %install's copy, not the brp steps). The tools alternate,
--runs times each; the medians and their ratio are printed. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import build_tree, tree_stats  # noqa: E402  (the corpus builder, shared with bench/run)

SPEC = """\
Name: bench
Version: 1
Release: 1
Summary: benchmark tree
License: MIT
%global _debugsource_packages 1
%global _include_minidebuginfo 1
%global _find_debuginfo_dwz_opts --run-dwz
%description
Benchmark.
%debug_package
%prep
%setup -q -T -D -n {subdir}
%install
cp -a {tree}/. %{{buildroot}}/
%files
/
"""
TIMER = """\
#!/bin/sh
start=$(date +%s.%N)
"$@"
rc=$?
echo "$start $(date +%s.%N)" >> "{times}"
exit $rc
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path("/work/corpus"), help="fetch.sh's DEST")
    ap.add_argument("--work", type=Path, default=Path("/tmp/splitdebug-fdi-bench"))
    ap.add_argument("--files", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    work = args.work.resolve()
    sources = work / "src"  # the build directory: a copy, since find-debuginfo writes its lists there
    if not sources.is_dir():
        sources.mkdir(parents=True)
        for pkg in ("src-zlib", "src-lua5.4", "src-libyaml"):
            subprocess.run(["cp", "-a", str(args.corpus / pkg), str(sources / pkg)], check=True)
    tree = build_tree(sources, work, args.files, args.jobs)
    n, size = tree_stats(tree)
    print(f"tree: {n} files, {size / 1e6:.1f} MB unstripped ({tree})")
    spec = work / "bench.spec"
    spec.write_text(SPEC.format(subdir=sources.name, tree=tree))
    times = work / "times"
    timer = work / "timer.sh"
    timer.write_text(TIMER.format(times=times))
    timer.chmod(0o755)
    ours = f"{timer} env PYTHONPATH={REPO / 'site_scons'} {sys.executable} -m splitdebug find-debuginfo"
    tools = {"find-debuginfo": f"{timer} /usr/bin/find-debuginfo", "splitdebug find-debuginfo": ours}
    walls: dict[str, list[float]] = {name: [] for name in tools}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPM_")}
    for run in range(args.runs):
        for name, command in tools.items():
            times.unlink(missing_ok=True)
            shutil.rmtree(work / "top/BUILDROOT", ignore_errors=True)
            proc = subprocess.run(["rpmbuild", "-bi", "--nodeps", "--define", f"_topdir {work / 'top'}",
                                   "--define", f"_builddir {sources.parent}",
                                   "--define", f"_smp_build_ncpus {args.jobs}",
                                   "--define", f"__find_debuginfo {command}", str(spec)],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"bench: {name}: rpmbuild failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            start, end = map(float, times.read_text().split())
            walls[name].append(end - start)
            print(f"run {run + 1}: {name}: {end - start:.2f} s", flush=True)
    print(f"\n{'tool':<28} {'median s':>8}  runs")
    for name, t in walls.items():
        print(f"{name:<28} {statistics.median(t):8.2f}  {' '.join(f'{x:.2f}' for x in t)}")
    ratio = statistics.median(walls["splitdebug find-debuginfo"]) / statistics.median(walls["find-debuginfo"])
    print(f"\nratio splitdebug find-debuginfo / find-debuginfo (medians) = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
