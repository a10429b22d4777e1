"""The SCons tool: real builds of a small project whose compiler and binutils are logging wrappers,
so "nothing ran" and "only this ran" are measured, not assumed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from elftools.elf.elffile import ELFFile

from conftest import gdb_info_line, resolves, run_scons
from splitdebug.elf.read import read_elf
from test_split import assert_split_tree

SCONSTRUCT = """
env = Environment(tools=["default", "splitdebug"], ENV={"PATH": "%(wrap)s:" + os.environ["PATH"]},
                  CC="%(wrap)s/gcc", OBJCOPY="%(wrap)s/objcopy", EU_STRIP="%(wrap)s/eu-strip",
                  SPLITDEBUG_POLICY=ARGUMENTS.get("POLICY", "debian"), DESTDIR="#stage",
                  SPLITDEBUG_ENGINE=ARGUMENTS.get("ENGINE", "builtin"),
                  PACKAGE_NAME="demo", PACKAGE_VERSION="1.0", PACKAGE_RELEASE="1")
if ARGUMENTS.get("NOBUILDID"):
    env["SPLITDEBUG_BUILDIDFLAGS"] = ["-Wl,--build-id=none"]
if ARGUMENTS.get("CACHE"):
    CacheDir(ARGUMENTS["CACHE"])
lib = env.SharedLibrary("lib/demo", ["lib/demo.c"], SHLIBVERSION="1.2.3")
# The library node, not -ldemo: SCons does not restore its own libdemo.so symlink from CacheDir.
a = env.Program("a", ["a.c", lib[0]])
b = env.Program("b", ["b.c"])
c = env.Program("c", ["c.c"])
env.InstallStripped("$DESTDIR/usr/bin", [a, b, c])
env.InstallStripped("$DESTDIR/usr/lib", lib)
Default("stage")
"""

SOURCES = {
    # With the tool, objects are compiled -fvisibility=hidden: the library marks its API.
    "lib/demo.c": "__attribute__((visibility(\"default\"))) int demo_value(int x) { return x + 40; }\n",
    "a.c": "int demo_value(int);\nint main(void) { return demo_value(2) == 42 ? 0 : 1; }\n",
    "b.c": "static int bee(int x) { return x; }\nint main(void) { return bee(0); }\n",
    "c.c": "int main(void) { return 0; }\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    for tool in ("gcc", "objcopy", "eu-strip", "strip"):
        real = shutil.which(tool)
        assert real, tool
        (wrap / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/tools.log"\nexec {real} "$@"\n')
        (wrap / tool).chmod(0o755)
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "SConstruct").write_text("import os\n" + SCONSTRUCT % {"wrap": wrap})
    for name, text in SOURCES.items():
        (proj / name).parent.mkdir(parents=True, exist_ok=True)
        (proj / name).write_text(text)
    return proj


def tool_runs(project: Path) -> list[str]:
    log = project.parent / "tools.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    # SCons asks `gcc --version` while reading SConscripts, and under a policy with a package note
    # (redhat) the tool asks `gcc -Wl,--help` whether ld has --package-metadata: probes, not build steps.
    return [line for line in lines if not line.endswith(("--version", "-dumpversion", "-Wl,--help"))]


def debug_outputs(project: Path) -> dict[str, int]:
    """{path: mtime_ns} of every `.debug` output of the build (not the stage): a split writes one,
    whether in-process or through objcopy/eu-strip, so a changed one is a split that ran."""
    return {str(p.relative_to(project)): p.stat().st_mtime_ns for p in project.rglob("*.debug")
            if "stage" not in p.relative_to(project).parts}


def resplit(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return sorted(k for k, mtime in after.items() if before.get(k) != mtime)


@pytest.mark.parametrize("engine", ["builtin", "tools"])
@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_build_then_noop(project: Path, policy: str, engine: str) -> None:
    args = (f"POLICY={policy}", f"ENGINE={engine}")
    run_scons(project, "-j2", *args)
    runs = tool_runs(project)
    # In-process, no tool runs at all for these binaries; with the tools, one extraction each.
    binutils = [r for r in runs if r.startswith(("objcopy", "eu-strip", "strip"))]
    if engine == "tools":
        assert sum(1 for r in binutils if r.startswith(("objcopy --only-keep-debug", "eu-strip"))) == 4, runs
    else:
        assert binutils == [], runs
    for name in ("a", "b", "c", "lib/libdemo.so.1.2.3"):
        linked = project / name
        assert (linked.parent / "stripped" / linked.name).is_file()
        assert (project / f"{name}.debug").is_file()
    assert_split_tree(project / "stage", expected=4)
    dbg = project / "stage/usr/lib/debug"
    assert resolves(gdb_info_line(dbg, project / "stage/usr/lib/libdemo.so.1.2.3", "demo_value"), "demo")
    assert resolves(gdb_info_line(dbg, project / "stage/usr/bin/b", "main"), "b")
    assert os.readlink(project / "stage/usr/lib/libdemo.so.1") == "libdemo.so.1.2.3"
    # The linked binary is never rewritten: it still has its DWARF.
    assert b".debug_info" in (project / "a").read_bytes()
    # A second run is a no-op: -q says up to date, no external tool runs and no split.
    before = debug_outputs(project)
    assert len(before) == 4
    assert run_scons(project, "-q", *args, check=False).returncode == 0
    run_scons(project, *args)
    assert tool_runs(project) == []
    assert resplit(before, debug_outputs(project)) == []


def test_one_source_change_resplits_only_its_binary(project: Path) -> None:
    run_scons(project, "-j2")
    tool_runs(project)
    before = debug_outputs(project)
    (project / "b.c").write_text(SOURCES["b.c"].replace("bee(0)", "bee(0) * 2"))
    run_scons(project, "-j2")
    runs = tool_runs(project)
    assert resplit(before, debug_outputs(project)) == ["b.debug"], runs
    assert not any("a.o" in r or "c.o" in r for r in runs if r.startswith("gcc"))


def test_library_change_resplits_library_and_relinked_user(project: Path) -> None:
    run_scons(project, "-j2", "POLICY=redhat")
    tool_runs(project)
    before = debug_outputs(project)
    old = {p for p in (project / "stage/usr/lib/.build-id").rglob("*") if p.is_symlink()}
    (project / "lib/demo.c").write_text(SOURCES["lib/demo.c"].replace("40", "39 + 1"))
    run_scons(project, "-j2", "POLICY=redhat")
    assert resplit(before, debug_outputs(project)) == ["a.debug", "lib/libdemo.so.1.2.3.debug"]
    # The library's new build-id replaced its old links; nothing stale is left behind.
    new = {p for p in (project / "stage/usr/lib/.build-id").rglob("*") if p.is_symlink()}
    assert len(new) == 4 and new != old
    assert all(p.exists() for p in (project / "stage").rglob("*")), "dangling link left"


def test_clean_removes_split_outputs_and_stage(project: Path) -> None:
    run_scons(project, "-j2")
    assert any((project / "stage/usr/lib/debug/.build-id").rglob("*.debug"))
    run_scons(project, "-c")
    for name in ("a", "b", "c", "lib/libdemo.so.1.2.3"):
        linked = project / name
        assert not (linked.parent / "stripped" / linked.name).exists()
        assert not (project / f"{name}.debug").exists()
    leftovers = [p for p in (project / "stage").rglob("*") if not p.is_dir()] if (project / "stage").exists() else []
    assert leftovers == []


def test_cachedir_restores_both_outputs(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    run_scons(project, "-j2", f"CACHE={cache}")
    run_scons(project, "-c", f"CACHE={cache}")
    tool_runs(project)
    proc = run_scons(project, "-j2", f"CACHE={cache}")
    assert "Retrieved" in proc.stdout
    assert [r for r in tool_runs(project) if r.startswith(("gcc", "objcopy", "eu-strip"))] == []
    for name in ("a", "b", "c", "lib/libdemo.so.1.2.3"):
        linked = project / name
        assert (linked.parent / "stripped" / linked.name).is_file() and (project / f"{name}.debug").is_file()
    assert_split_tree(project / "stage", expected=4)


def test_missing_build_id_fails_the_build_clearly(project: Path) -> None:
    proc = run_scons(project, "NOBUILDID=1", check=False)
    assert proc.returncode != 0
    assert "without a build-id" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (project / "stripped/a").exists()


def test_tool_from_another_project_via_toolpath(tmp_path: Path) -> None:
    """Another project loads the tool with toolpath= and no site_scons of its own."""
    from conftest import SITE_SCONS
    proj = tmp_path / "other"
    proj.mkdir()
    (proj / "hello.c").write_text("int main(void) { return 0; }\n")
    (proj / "SConstruct").write_text(
        f"env = Environment(tools=['default', 'splitdebug'], toolpath=['{SITE_SCONS}/site_tools'], DESTDIR='#out')\n"
        "env.InstallStripped('$DESTDIR/usr/bin', env.Program('hello', ['hello.c']))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(["scons", "-Q"], cwd=proj, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_split_tree(proj / "out", expected=1)


def test_scons_symbolize_reads_a_log_through_the_stage(project: Path) -> None:
    """`scons symbolize LOG=…`: the log printed with each address's function and line from the stage."""
    with open(project / "SConstruct", "a") as f:
        f.write('if "LOG" in ARGUMENTS:\n    env.SplitDebugSymbolize(ARGUMENTS["LOG"], output="symbolized.txt")\n')
    run_scons(project, "-j2")
    lib = next((project / "stage/usr/lib").glob("libdemo.so.*.*.*"))
    build_id = read_elf(lib).build_id
    debug = project / "stage/usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    with open(debug, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        vaddr = next(s["st_value"] for s in symtab.iter_symbols() if s.name == "demo_value")
    (project / "crash.log").write_text(f"test output\nBUILDID:{build_id} {vaddr + 1:#x}\n")
    proc = run_scons(project, "-Q", "symbolize", "LOG=crash.log")
    got = [line for line in proc.stdout.splitlines() if not line.startswith("Symbolizing ")]
    assert got[:2] == ["test output", f"BUILDID:{build_id} {vaddr + 1:#x}"], proc.stdout
    assert re.fullmatch(r"    demo_value at \./lib/demo\.c:1:\d+ \[dwarf\]", got[2]), proc.stdout  # Debian's prefix map
    assert len(got) == 3
    assert (project / "symbolized.txt").read_text().splitlines() == got
    again = run_scons(project, "-Q", "symbolize", "LOG=crash.log")  # always built: a new log is read
    assert "demo_value at" in again.stdout
    missing = run_scons(project, "-Q", "symbolize", "LOG=nothing.log", check=False)
    assert missing.returncode != 0 and "nothing.log: cannot read" in missing.stderr
