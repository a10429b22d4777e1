"""Red Hat end to end: split with sources and dwz, rpm packages, gdb and debuginfod on them."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import resolves
from distro_helpers import (ARCH, NAME, RELEASE, RPM_ARGS, VERSION, altlink, build_unstripped, debuginfod_session,
                            extract_rpm, gdb, listing, package, section_names, split, write_sources)
from splitdebug.elf import read as elfread

SRC_DIR = f"/usr/src/debug/{NAME}-{VERSION}-{RELEASE}.{ARCH}"
SUFFIX = f"-{VERSION}-{RELEASE}.{ARCH}.debug"


@dataclass(frozen=True)
class RedHat:
    src: Path
    root: Path
    rpms: dict[str, Path]
    bins: dict[str, Path]


@pytest.fixture(scope="module")
def rh(tmp_path_factory: pytest.TempPathFactory) -> RedHat:
    base = tmp_path_factory.mktemp("redhat")
    src = write_sources(base / "build" / f"{NAME}-{VERSION}")
    root = base / "root"
    bins = build_unstripped(src, root, "/usr/lib64")
    split(root, "redhat", *RPM_ARGS, "--source-root", src)
    return RedHat(src, root, package(root, "redhat", base / "rpms"), bins)


def test_tree_is_find_debuginfo_layout(rh: RedHat) -> None:
    dbg = rh.root / "usr/lib/debug"
    for name in ("usr/bin/prog", "usr/bin/tool", "usr/bin/prog-hardlink", "usr/bin/prog-copy",
                 "usr/lib64/libdemo.so.1.0"):
        f = dbg / f"{name}{SUFFIX}"
        assert f.is_file() and (f.stat().st_mode & 0o777) == 0o444, f
    assert (dbg / f"usr/bin/prog-hardlink{SUFFIX}").samefile(dbg / f"usr/bin/prog{SUFFIX}")
    # find-debuginfo with --unique-debug-suffix makes no <symlink>.debug links.
    assert not list(dbg.glob("usr/lib64/libdemo.so-*")) and not list(dbg.glob("usr/lib64/libdemo.so.1-*"))
    # rpm's compat links, numbered .1 .2 for the other names of one build-id, in path order.
    bid = elfread.read_elf(rh.bins["prog"]).build_id
    assert bid is not None
    main = rh.root / "usr/lib/.build-id" / bid[:2]
    assert os.readlink(main / bid[2:]) == "../../../../usr/bin/prog"
    assert os.readlink(main / f"{bid[2:]}.1") == "../../../../usr/bin/prog-copy"
    assert os.readlink(main / f"{bid[2:]}.2") == "../../../../usr/bin/prog-hardlink"
    assert os.readlink(dbg / ".build-id" / bid[:2] / f"{bid[2:]}.2.debug") == \
        f"../../../../../usr/lib/debug/usr/bin/prog-hardlink{SUFFIX}"
    assert os.readlink(dbg / ".build-id" / bid[:2] / f"{bid[2:]}.1") == f"../../../.build-id/{bid[:2]}/{bid[2:]}.1"
    # dwz multifile, referenced relatively (-r) from every .debug file.
    multifile = dbg / f".dwz/{NAME}-{VERSION}-{RELEASE}.{ARCH}"
    assert multifile.is_file() and (multifile.stat().st_mode & 0o777) == 0o644
    for debug in (dbg / f"usr/bin/prog{SUFFIX}", dbg / f"usr/lib64/libdemo.so.1.0{SUFFIX}"):
        assert altlink(debug) == f"../../.dwz/{NAME}-{VERSION}-{RELEASE}.{ARCH}", debug
    # Sources named by DWARF, copied as -debugsource ships them.
    assert {p.relative_to(rh.root / SRC_DIR.lstrip("/")).as_posix()
            for p in (rh.root / SRC_DIR.lstrip("/")).rglob("*")} == {"common.h", "prog.c", "tool.c", "lib.c"}
    # Every shipped binary: minidebuginfo, no debug sections, CRC of its (dwz'd) debug file.
    for binary in (*rh.bins.values(), rh.root / "usr/bin/prog-copy"):
        info = elfread.read_elf(binary)
        assert not info.has_debug and ".gnu_debugdata" in section_names(binary)
        name, crc = elfread.read_debuglink(binary, info)
        debug = dbg / os.path.relpath(binary, rh.root)
        debug = debug.with_name(debug.name + SUFFIX)
        assert name == debug.name and crc == zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF


def test_gdb_reads_the_tree_with_rewritten_source_paths(rh: RedHat) -> None:
    dbg = rh.root / "usr/lib/debug"
    for key, function in (("prog", "prog_entry"), ("tool", "tool_entry"), ("lib", "lib_entry")):
        out = gdb(rh.bins[key], dbg, f"info line {function}", f"list {function}", "info source")
        # (the first line may be the inlined record_score of common.h: any of our sources will do)
        assert re.search(rf'Line \d+ of "({re.escape(SRC_DIR)}/)?(common.h|{key}.c)" starts at address', out), out
        assert f"Compilation directory is {SRC_DIR}\n" in out, out
        assert "could not find" not in out


def test_packages_as_rpm_lays_them_out(rh: RedHat) -> None:
    names = {role: p.name for role, p in rh.rpms.items()}
    assert names == {"main": f"{NAME}-{VERSION}-{RELEASE}.{ARCH}.rpm",
                     "debuginfo": f"{NAME}-debuginfo-{VERSION}-{RELEASE}.{ARCH}.rpm",
                     "debugsource": f"{NAME}-debugsource-{VERSION}-{RELEASE}.{ARCH}.rpm"}
    assert all(p.parent.name == ARCH for p in rh.rpms.values())

    def qlp(role: str) -> set[str]:
        out = subprocess.run(["rpm", "-qlp", str(rh.rpms[role])], capture_output=True, text=True, check=True)
        return set(out.stdout.split())
    main, debuginfo, debugsource = qlp("main"), qlp("debuginfo"), qlp("debugsource")
    assert {"/usr/bin/prog", "/usr/bin/tool", "/usr/lib64/libdemo.so.1.0", "/usr/lib/.build-id"} <= main
    assert not any(p.startswith(("/usr/lib/debug", "/usr/src/debug")) for p in main)
    assert {"/usr/lib/debug", f"/usr/lib/debug/usr/bin/prog{SUFFIX}",
            f"/usr/lib/debug/.dwz/{NAME}-{VERSION}-{RELEASE}.{ARCH}"} <= debuginfo
    assert all(p.startswith("/usr/lib/debug") for p in debuginfo)
    assert debugsource == {SRC_DIR, *(f"{SRC_DIR}/{n}" for n in ("common.h", "prog.c", "tool.c", "lib.c"))}
    # The packaged tree is the split tree.
    unpacked = rh.root.parent / "unpacked"
    for rpm in rh.rpms.values():
        extract_rpm(rpm, unpacked)
    assert listing(unpacked, "/usr/lib/debug") == listing(rh.root, "/usr/lib/debug")
    requires = subprocess.run(["rpm", "-qp", "--recommends", str(rh.rpms["debuginfo"])], capture_output=True,
                              text=True, check=True).stdout
    assert f"{NAME}-debugsource(x86-64) = {VERSION}-{RELEASE}" in requires


def test_gdb_from_package_contents_lists_shipped_source(rh: RedHat, tmp_path: Path) -> None:
    for rpm in rh.rpms.values():
        extract_rpm(rpm, tmp_path)
    out = gdb(tmp_path / "usr/bin/prog", tmp_path / "usr/lib/debug", "info line prog_entry",
              f"set substitute-path /usr/src/debug {tmp_path}/usr/src/debug", "list prog_entry")
    assert resolves(out, "prog"), out
    assert "int prog_entry(int v)" in out, out  # the source text came from the -debugsource files


def test_debuginfod_serves_debuginfo_executable_and_source(rh: RedHat, tmp_path: Path) -> None:
    bid = elfread.read_elf(rh.bins["tool"]).build_id
    assert bid is not None
    result = debuginfod_session(rh.rpms["main"].parent, tmp_path, {
        "debuginfo": ["debuginfo", bid],
        "executable": ["executable", bid],
        "source": ["source", bid, f"{SRC_DIR}/tool.c"],
    })
    assert "error" not in result, result
    for kind in ("debuginfo", "executable", "source"):
        assert result[kind]["rc"] == 0, (kind, result[kind])
    debuginfo = Path(result["debuginfo"]["path"])
    assert debuginfo.read_bytes() == (rh.root / f"usr/lib/debug/usr/bin/tool{SUFFIX}").read_bytes()
    assert Path(result["executable"]["path"]).read_bytes() == rh.bins["tool"].read_bytes()
    assert Path(result["source"]["path"]).read_text() == (rh.src / "tool.c").read_text()


def test_packages_are_reproducible(rh: RedHat, tmp_path: Path) -> None:
    again = package(rh.root, "redhat", tmp_path / "again")
    for role, path in rh.rpms.items():
        assert hashlib.sha256(again[role].read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), role
    dates = subprocess.run(["rpm", "-qp", "--qf", "%{BUILDTIME} %{BUILDHOST}\n", str(again["main"])],
                           capture_output=True, text=True, check=True).stdout.split()
    assert dates == ["1700000000", "reproducible"]
    owners = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMTIMES}\n]",
                             str(again["debuginfo"])], capture_output=True, text=True, check=True).stdout.split("\n")
    assert all(line.startswith("root:root ") and int(line.split()[1]) <= 1700000000 for line in owners if line)


def test_main_job_rpms(main_job: Path, tmp_path: Path) -> None:
    out = main_job / "build/packages/redhat/x86_64"
    rpms = sorted(p.name for p in out.glob("*.rpm"))
    assert rpms == [f"splitdebug-examples-{r}1.0-1.x86_64.rpm" for r in ("", "debuginfo-", "debugsource-")]
    for rpm in out.glob("*.rpm"):
        extract_rpm(rpm, tmp_path)
    assert (tmp_path / "usr/lib/debug/.dwz/splitdebug-examples-1.0-1.x86_64").is_file()
    src = tmp_path / "usr/src/debug/splitdebug-examples-1.0-1.x86_64/examples"
    assert {"hello/hello.c", "greet/greet.h", "shapes/shapes.cpp"} <= {p.relative_to(src).as_posix()
                                                                      for p in src.rglob("*")}
    out_gdb = gdb(tmp_path / "usr/bin/hello", tmp_path / "usr/lib/debug", "info line main", "list main",
                  "info source")
    assert resolves(out_gdb, "hello"), out_gdb
    assert "Compilation directory is /usr/src/debug/splitdebug-examples-1.0-1.x86_64\n" in out_gdb, out_gdb
    assert "could not find" not in out_gdb
