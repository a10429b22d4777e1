"""Yocto: a third distribution from YAML alone — `.debug` directories beside the binaries, found by
gdb through the debuglink (EXECDIR/.debug/NAME), sources under /usr/src/debug/<pn>/<pv>-<pr>."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run_cli
from distro_helpers import NAME, VERSION, build_unstripped, gdb, listing, split, write_sources
from splitdebug.elf import read as elfread

RELEASE = "r0"
SRC_DIR = f"/usr/src/debug/{NAME}/{VERSION}-{RELEASE}"


def test_debug_directories_beside_binaries_and_gdb_finds_them(tmp_path: Path) -> None:
    src = write_sources(tmp_path / "work" / f"{NAME}-{VERSION}")
    root = tmp_path / "image"
    bins = build_unstripped(src, root, "/usr/lib")
    split(root, "yocto", "--package", NAME, "--version", VERSION, "--release", RELEASE, "--source-root", src)
    assert not (root / "usr/lib/debug").exists()
    debug_files = {e for e, kind in listing(root) if kind.startswith("file") and "/.debug/" in e}
    assert debug_files == {"/usr/bin/.debug/prog", "/usr/bin/.debug/tool", "/usr/bin/.debug/prog-hardlink",
                           "/usr/bin/.debug/prog-copy", "/usr/lib/.debug/libdemo.so.1.0"}
    assert (root / "usr/bin/.debug/prog-hardlink").samefile(root / "usr/bin/.debug/prog")
    assert {e for e, _ in listing(root, SRC_DIR)} >= {f"{SRC_DIR}/{n}" for n in ("prog.c", "tool.c", "common.h")}
    for key, function in (("prog", "prog_entry"), ("tool", "tool_entry"), ("lib", "lib_entry")):
        info = elfread.read_elf(bins[key])
        assert not info.has_debug and elfread.read_debuglink(bins[key], info)[0] == bins[key].name
        # No debug-file-directory at all: only the debuglink next to the binary leads to the file.
        out = gdb(bins[key], tmp_path / "nonexistent", f"info line {function}", f"list {function}",
                  "info source")
        assert re.search(r'Line \d+ of "[^"]+" starts at address', out), out
        assert f"Compilation directory is {SRC_DIR}\n" in out, out


def test_yocto_has_no_package_format(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    proc = run_cli("package", "--policy", "yocto", "--name", NAME, "--version", VERSION, "--output",
                   tmp_path / "out", tmp_path / "root")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "package_format: none" in proc.stderr and "Traceback" not in proc.stderr


def test_main_job_yocto_stage(main_job: Path) -> None:
    stage = main_job / "build/stage/yocto"
    assert not (stage / "usr/lib/debug").exists()
    for binary, function in (("usr/bin/hello", "main"), ("usr/lib/libgreet.so.1.0.0", "greet_message"),
                             ("usr/lib/libshapes.so.2.1.0", "shapes::Circle::area")):
        path = stage / binary
        assert (path.parent / ".debug" / path.name).is_file()
        out = gdb(path, main_job / "nonexistent", f"info line {function}")
        assert re.search(r'Line \d+ of "[^"]+" starts at address', out), out
