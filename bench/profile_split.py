#!/usr/bin/env python3
"""Where `splitdebug split` spends its time: one in-process run, instrumented from outside.

    python3 bench/profile_split.py [--top 25] [--json F] [--py-spy] TREE [SPLIT ARGS…]

TREE (unstripped) is copied to a temporary directory and the copy split in this process with
SPLIT ARGS (default `--policy debian --package bench -j 2`). Nothing in site_scons/ is modified: the run goes
through `splitdebug.cli.main`, and this script only wraps things from outside:

- every external tool run (`subprocess.run`), timed and classified (objcopy --only-keep-debug,
  the strip pass, compression, minidebuginfo, eu-strip, dwz, …), summed over threads;
- the phases, by wrapping module functions when they exist (scan, split pool, dwz pass, CRCs…);
- cProfile in every thread (threading.setprofile starts one profiler per worker thread; the
  main thread's cProfile alone would not see the workers), merged, top functions by own time;
- CPU of the Python process against CPU of the tools it ran (getrusage).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

_lock = threading.Lock()
_tools: dict[str, list[float]] = defaultdict(list)
_phases: dict[str, list[float]] = defaultdict(list)
_profiles: list[cProfile.Profile] = []

# (module, function, label): wall time of each call, wrapped from outside when the function exists.
PHASES = [
    ("tree", "split_tree", "split_tree (all)"),
    ("tree", "scan_tree", "  scan (classify, read ELF headers)"),
    ("tree", "plan", "  plan (layout)"),
    ("dwz", "run_dwz", "  tree-level dwz pass (dwz, compression)"),
    ("dwz", "_dwz", "    of which: dwz itself"),
    ("dwz", "fix_crcs", "  fix CRCs"),
    ("rewrite", "split_binary", "split_binary (per file, summed over threads)"),
    ("rewrite", "Deferred.finish", "  stripped binaries written while dwz runs (summed)"),
    ("elfsplit", "write_debug", "  in-process debug files (summed)"),
    ("elfsplit", "write_stripped", "  in-process stripped binaries (summed)"),
    ("elfsplit", "mini_debuginfo_stream", "  minidebuginfo ELF: choice and count (summed)"),
    ("rewrite", "_xz", "  minidebuginfo xz, with the ELF's pieces it takes (summed)"),
    ("rewrite", "add_minidebuginfo", "  minidebuginfo with objcopy (summed)"),
    ("rewrite", "recompress_debug", "recompress_debug (summed over threads)"),
    ("elfread", "read_elf", "read_elf (summed)"),
    ("elfread", "crc32_file", "crc32_file (summed)"),
]


def classify(argv: list[str]) -> str:
    tool = os.path.basename(str(argv[0]))
    args = [str(a) for a in argv[1:]]
    if tool.startswith("objcopy") or tool.endswith("-objcopy"):
        if "--only-keep-debug" in args:
            comp = next((a.split("=", 1)[1] for a in args if a.startswith("--compress-debug-sections")), None)
            return f"objcopy --only-keep-debug{' (' + comp + ')' if comp else ''}"
        if any(a.startswith("--add-gnu-debuglink") for a in args):
            return "objcopy strip + --add-gnu-debuglink"
        if "--decompress-debug-sections" in args:
            return "objcopy --decompress-debug-sections"
        if any(a.startswith("--compress-debug-sections") for a in args):
            return "objcopy --compress-debug-sections " + next(
                a.split("=", 1)[-1] for a in args if a.startswith("--compress-debug-sections"))
        if any(a.startswith("--keep-symbols") for a in args):
            return "objcopy minidebuginfo symtab"
        if any(a.startswith("--add-section=.gnu_debugdata") for a in args):
            return "objcopy --add-section .gnu_debugdata"
        return "objcopy (other)"
    if tool in ("eu-strip", "strip"):
        return f"{tool} {'-f (split)' if '-f' in args else '(strip)'}"
    return tool


def _wrap_subprocess() -> None:
    real = subprocess.run

    @functools.wraps(real)
    def run(argv: Any, *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return real(argv, *a, **kw)
        finally:
            key = classify(list(argv)) if isinstance(argv, (list, tuple)) else str(argv).split()[0]
            with _lock:
                _tools[key].append(time.perf_counter() - t)

    subprocess.run = run  # type: ignore[assignment]


def _wrap_phase(module: Any, name: str, label: str) -> None:
    func = getattr(module, name, None)
    if func is None or not callable(func):
        return

    @functools.wraps(func)
    def timed(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return func(*a, **kw)
        finally:
            with _lock:
                _phases[label].append(time.perf_counter() - t)

    # Also where it was imported by name (`from .tree import split_tree`).
    for mod in list(sys.modules.values()):
        if getattr(mod, "__name__", "").startswith("splitdebug"):
            for attr, value in list(vars(mod).items()):
                if value is func:
                    setattr(mod, attr, timed)


def _thread_profiler(frame: Any, event: str, arg: Any) -> None:
    """Installed by threading.setprofile: the first event of a new thread starts its own cProfile."""
    prof = cProfile.Profile()
    with _lock:
        _profiles.append(prof)
    sys.setprofile(None)
    prof.enable()


def profile_split(tree: Path, split_args: list[str], top: int = 25) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "site_scons"))
    from splitdebug import cli  # noqa: PLC0415
    from splitdebug.cli import split as main_split  # noqa: PLC0415
    from splitdebug.elf import read as elfread, write as elfsplit  # noqa: PLC0415
    from splitdebug.tree import dwz, rewrite, split as tree_mod  # noqa: PLC0415

    _wrap_subprocess()
    modules = {"tree": tree_mod, "dwz": dwz, "rewrite": rewrite, "elfread": elfread, "elfsplit": elfsplit}
    for mod, name, label in PHASES:
        owner_name, _, attr = name.rpartition(".")
        _wrap_phase(getattr(modules[mod], owner_name) if owner_name else modules[mod], attr, label)
    # The command line forks its workers; threads keep every split in this process, where it is seen.
    split_tree = main_split.split_tree
    main_split.split_tree = functools.partial(split_tree, processes=False)  # type: ignore[assignment]
    argv = ["split", *split_args, str(tree)]
    before_self = resource.getrusage(resource.RUSAGE_SELF)
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    main_prof = cProfile.Profile()
    threading.setprofile(_thread_profiler)
    t0 = time.perf_counter()
    main_prof.enable()
    try:
        rc = cli.main(argv)
    finally:
        main_prof.disable()
        wall = time.perf_counter() - t0
        threading.setprofile(None)
    after_self = resource.getrusage(resource.RUSAGE_SELF)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    for prof in _profiles:
        prof.disable()
    stats = pstats.Stats(main_prof)
    for prof in _profiles:
        stats.add(prof)
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    cum = io.StringIO()
    stats.stream = cum  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(top)
    py_cpu = (after_self.ru_utime - before_self.ru_utime) + (after_self.ru_stime - before_self.ru_stime)
    tool_cpu = (after_children.ru_utime - before_children.ru_utime) + \
        (after_children.ru_stime - before_children.ru_stime)
    return {
        "argv": argv, "rc": rc, "wall": wall, "threads_profiled": len(_profiles) + 1,
        "python_cpu": py_cpu, "tools_cpu": tool_cpu,
        "tools": {k: {"runs": len(v), "seconds": sum(v), "ms_each": 1000 * sum(v) / len(v)}
                  for k, v in sorted(_tools.items(), key=lambda kv: -sum(kv[1]))},
        "phases": {label: {"calls": len(_phases[label]), "seconds": sum(_phases[label])}
                   for _, _, label in PHASES if label in _phases},
        "top_tottime": out.getvalue(), "top_cumulative": cum.getvalue(),
    }


def render(r: dict[str, Any]) -> str:
    lines = [f"splitdebug {' '.join(r['argv'][:-1])} TREE: wall {r['wall']:.2f} s (profiled), exit {r['rc']}",
             f"CPU: Python process {r['python_cpu']:.2f} s (profiler overhead included), "
             f"external tools {r['tools_cpu']:.2f} s", "", "phases (wall; per-file rows summed over threads):"]
    for k, v in r["phases"].items():
        lines.append(f"  {k:<54} {v['seconds']:7.2f} s  ({v['calls']} calls)")
    lines += ["", "external tools (wall of each run, summed over threads):"]
    total = 0.0
    for k, v in r["tools"].items():
        total += v["seconds"]
        lines.append(f"  {k:<52} {v['seconds']:7.2f} s  {v['runs']:5d} runs  {v['ms_each']:7.1f} ms each")
    lines.append(f"  {'all tools':<52} {total:7.2f} s")
    lines += ["", "Python functions by own time (all threads merged; waits in subprocess count here):",
              r["top_tottime"].split("\n", 6)[-1] if r["top_tottime"] else ""]
    return "\n".join(lines)


def py_spy(tree: Path, split_args: list[str], rate: int, out: Path) -> dict[str, Any] | None:
    """Sample a real (not in-process) run with py-spy, idle threads included; None without py-spy.

    Samples are summed per deepest splitdebug frame (where the code is, or what it waits on) and per
    innermost frame; seconds = samples / rate, summed over threads.
    """
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    env = dict(os.environ, PYTHONPATH=str(REPO / "site_scons"))
    argv = [spy, "record", "--idle", "-r", str(rate), "-f", "raw", "-o", str(out), "--",
            sys.executable, "-m", "splitdebug", "split", *split_args, str(tree)]
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t
    if proc.returncode != 0 or not out.exists():
        return {"error": (proc.stderr or proc.stdout).strip()[-500:]}
    deepest: dict[str, int] = defaultdict(int)
    innermost: dict[str, int] = defaultdict(int)
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        ours = [f for f in frames if "splitdebug/" in f]
        deepest[re.sub(r":\d+\)$", ")", ours[-1]) if ours else frames[-1]] += int(count)
        innermost[frames[-1]] += int(count)

    def top(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / rate) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:15]]

    return {"wall": wall, "rate": rate, "deepest_splitdebug_frame": top(deepest), "innermost_frame": top(innermost)}


def render_spy(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"py-spy failed: {r['error']}"
    lines = [f"py-spy (a separate run, {r['wall']:.2f} s under py-spy, {r['rate']} Hz, all threads, idle included):",
             "  by deepest splitdebug function (thread-seconds; waits on tools and threads included):"]
    lines += [f"    {v:7.2f} s  {k}" for k, v in r["deepest_splitdebug_frame"]]
    lines.append("  by innermost frame (thread-seconds):")
    lines += [f"    {v:7.2f} s  {k}" for k, v in r["innermost_frame"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--top", type=int, default=25, help="functions listed (default 25)")
    ap.add_argument("--json", type=Path, help="write the numbers to this file")
    ap.add_argument("--py-spy", action="store_true", help="also sample a separate run with py-spy (pip install py-spy)")
    ap.add_argument("tree", type=Path, help="an unstripped tree: it is copied, never modified")
    ap.add_argument("split_args", nargs=argparse.REMAINDER,
                    help="arguments of `splitdebug split` (default: --policy debian --package bench -j 2)")
    args = ap.parse_args()
    split_args = args.split_args or ["--policy", "debian", "--package", "bench", "-j", "2"]
    if "-q" not in split_args:
        split_args.append("-q")
    os.chdir(REPO)  # `--policy debian` must not find a directory named debian in the cwd
    tmp = Path(tempfile.mkdtemp(prefix="splitdebug-profile-"))
    try:
        subprocess.run(["cp", "-a", str(args.tree), str(tmp / "tree")], check=True)
        spy = None
        if args.py_spy:
            subprocess.run(["cp", "-a", str(args.tree), str(tmp / "spy")], check=True)
            spy = py_spy(tmp / "spy", split_args, 100, tmp / "spy.txt")
        r = profile_split(tmp / "tree", split_args, args.top)
        r["py_spy"] = spy
        print(render(r))
        if spy is not None:
            print(render_spy(spy))
        if args.json:
            args.json.write_text(json.dumps(r, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
