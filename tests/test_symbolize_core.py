"""`splitdebug symbolize --core`: a real core (gdb's gcore of a stripped two-thread program run from a
split tree) gives each thread's PC the function and line that eu-stack finds from the same core."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import env_with_package, have, run_cli
from symbolize_helpers import build, marker_line

SPIN = """\
#include <pthread.h>
static volatile int go;
static void * __attribute__((noinline)) spin_here(void *arg) { while (!go) { } return arg; }  /* SPIN */
static void __attribute__((noinline)) main_spin(void) { while (!go) { } }  /* MAIN_SPIN */
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, spin_here, 0);
    main_spin();
    return 0;
}
"""

pytestmark = pytest.mark.skipif(not (have("gcore") and have("eu-stack")), reason="needs gdb's gcore and eu-stack")


def make_core(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the unstripped program, the split tree it runs stripped from, its core)."""
    built = build(tmp_path / "build/spinner", SPIN, "-O1", "-pthread")
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/spinner").write_bytes(built.read_bytes())
    (root / "usr/bin/spinner").chmod(0o755)
    proc = run_cli("split", "--policy", "debian", "-q", root)
    assert proc.returncode == 0, proc.stderr
    prog = subprocess.Popen([root / "usr/bin/spinner"])
    try:
        time.sleep(0.3)  # both threads in their loops
        out = subprocess.run(["gcore", "-o", str(tmp_path / "core"), str(prog.pid)], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
    finally:
        prog.kill()
        prog.wait()
    return built, root, tmp_path / f"core.{prog.pid}"


def test_each_thread_of_a_core_as_eu_stack_names_it(tmp_path: Path) -> None:
    built, root, core = make_core(tmp_path)
    env = dict(env_with_package(), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("DEBUGINFOD_URLS", None)
    proc = subprocess.run([sys.executable, "-m", "splitdebug", "symbolize", "--root", str(root), "--core", str(core)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    ours = dict(re.findall(r"^thread (\d+): #0 \S+ in \S+\n    (.+) \[dwarf\]$", proc.stdout, re.M))
    # eu-stack from the same core, the unstripped program given for its DWARF: each thread's frame #0
    stack = subprocess.run(["eu-stack", "-s", "-m", "--core", str(core), "-e", str(built)],
                           capture_output=True, text=True)
    theirs = {tid: (fn, loc) for tid, fn, loc in
              re.findall(r"^TID (\d+):\n#0 +0x[0-9a-f]+ (\S+) - \S+\n +(\S+)$", stack.stdout, re.M)}
    assert len(theirs) == 2, stack.stdout + stack.stderr
    assert sorted(ours) == sorted(theirs), (proc.stdout, stack.stdout)
    for tid, (function, location) in theirs.items():
        file, line = location.rsplit(":", 2)[0], location.rsplit(":", 2)[1]
        assert re.match(rf"{re.escape(function)} at {re.escape(file)}:{line}(:\d+)?$", ours[tid]), (ours[tid], location)
    names = {v.split(" at ")[0] for v in ours.values()}
    assert names == {"spin_here", "main_spin"}
    lines = {int(v.split(" at ")[1].split(":")[1]) for v in ours.values()}
    assert lines == {marker_line(SPIN, "SPIN"), marker_line(SPIN, "MAIN_SPIN")}


def test_a_file_that_is_not_a_core_is_one_line(tmp_path: Path) -> None:
    built = build(tmp_path / "build/plain", "int main(void) { return 0; }\n")
    for bad, why in ((built, "not a core file"), (tmp_path / "missing", "cannot read")):
        proc = run_cli("symbolize", "--no-cache", "--core", bad)
        assert proc.returncode != 0
        assert proc.stderr.count("\n") == 1 and why in proc.stderr, proc.stderr
