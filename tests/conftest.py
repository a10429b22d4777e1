"""Shared fixtures: real compilers, real binutils/elfutils/gdb, isolated temporary projects."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SITE_SCONS = REPO / "site_scons"
sys.path.insert(0, str(SITE_SCONS))


@pytest.fixture(autouse=True)
def _machine_left_as_found() -> object:
    """No test may change the machine outside its own directories. /dev/null is the canary: the CI image once
    had it 0644, so apt's unprivileged `_apt` user could not open it and every later apt-get failed. A test
    that chmods or replaces it (a tool following a symlink out of a tree, `-o /dev/null` to a tool that
    renames over its output) fails here, by name."""
    before = os.stat("/dev/null")
    yield
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino), \
        f"/dev/null changed during this test: {oct(before.st_mode)} -> {oct(after.st_mode)}"


def env_with_package() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SITE_SCONS) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python3 -m splitdebug ARGS`, capturing output."""
    return subprocess.run([sys.executable, "-m", "splitdebug", *map(str, args)], cwd=cwd,
                          env=env or env_with_package(), capture_output=True, text=True)


def run_scons(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run SCons on a project directory with this repository's site_scons (tool + package)."""
    proc = subprocess.run([sys.executable, "-m", "SCons", f"--site-dir={SITE_SCONS}", *args],
                          cwd=project, env=env_with_package(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"scons {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def compile_c(out: Path, source: str, *, shared: bool = False, build_id: bool = True,
              flags: tuple[str, ...] = (), cxx: bool = False) -> Path:
    """Compile one C (or C++) source with -g into `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name.replace(".", "_") + (".cpp" if cxx else ".c"))
    src.write_text(source)
    argv = ["g++" if cxx else "gcc", "-g", "-O1", "-o", str(out), str(src)]
    argv += ["-shared", "-fPIC"] if shared else []
    argv += ["-Wl,--build-id=sha1"] if build_id else ["-Wl,--build-id=none"]
    subprocess.run(argv + list(flags), check=True)
    src.unlink()
    return out


PROGRAM = """
#include <stdio.h>
static int twice(int x) { return x * 2; }
int prog_entry(int v) { return twice(v) + 1; }
int main(int argc, char **argv) { (void)argv; printf("%d\\n", prog_entry(argc)); return 0; }
"""
LIBRARY = """
int lib_helper(int x) { return x * 3; }
int lib_entry(int v) { return lib_helper(v) - 1; }
"""


@dataclass(frozen=True)
class Tree:
    root: Path
    program: Path
    library: Path


def make_tree(root: Path, *, tag: str = "", link_flags: tuple[str, ...] = ()) -> Tree:
    """A small DESTDIR as `make install` leaves it: a program, a versioned library with symlinks,
    a hard link, a shell script, a data file and a static archive (`link_flags` on both links)."""
    prog = compile_c(root / "usr/bin/prog", PROGRAM + f'const char *tag = "{tag}p";\n', flags=link_flags)
    lib = compile_c(root / "usr/lib/libdemo.so.1.0", LIBRARY + f'const char *tag = "{tag}l";\n', shared=True,
                    flags=link_flags)
    os.symlink("libdemo.so.1.0", root / "usr/lib/libdemo.so.1")
    os.symlink("libdemo.so.1", root / "usr/lib/libdemo.so")
    os.link(prog, root / "usr/bin/prog-alias")
    script = root / "usr/bin/run.sh"
    script.write_text("#!/bin/sh\nexec prog \"$@\"\n")
    script.chmod(0o755)
    (root / "usr/share/demo").mkdir(parents=True)
    (root / "usr/share/demo/data.txt").write_text("data\n")
    obj = root.parent / f"{root.name}-obj.o"
    subprocess.run(["gcc", "-g", "-c", "-x", "c", "-o", str(obj), "-"], input=LIBRARY, text=True, check=True)
    subprocess.run(["ar", "rcD", str(root / "usr/lib/libdemo.a"), str(obj)], check=True)
    obj.unlink()
    return Tree(root, prog, lib)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return make_tree(tmp_path / "root")


def gdb_info_line(debug_dir: Path, binary: Path, function: str) -> str:
    """What gdb says of `info line FUNCTION` with only debug_dir as its debug-file-directory."""
    proc = subprocess.run(
        ["gdb", "-nx", "-batch", "-ex", f"set debug-file-directory {debug_dir}",
         "-ex", f"file {binary}", "-ex", f"info line {function}"],
        capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


def resolves(gdb_output: str, source_stem: str) -> bool:
    """gdb found a line in the right source file (so it read DWARF line tables)."""
    return re.search(rf'Line \d+ of "[^"]*{re.escape(source_stem)}[^"/]*" starts at address', gdb_output) is not None


def readelf_sections(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("[") and "]" in line:
            rest = line.split("]", 1)[1].split()
            if rest and rest[0] not in ("Name",):
                names.append(rest[0])
    return names


MAIN_JOB_FILES = ("SConstruct", "examples", "configs")


@pytest.fixture(scope="session")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The main job (`scons -j2`) run once on a copy of the repository's SConstruct and examples."""
    work = tmp_path_factory.mktemp("mainjob")
    for name in MAIN_JOB_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    run_scons(work, "-j2")
    return work


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
