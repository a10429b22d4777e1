"""The policy's gdb_index (Fedora's %_include_gdb_index), judged by gdb itself: `maint print objfiles`
says ".gdb_index: version N" for a debug file whose index gdb uses, and "Cooked index in use" when
gdb indexed the DWARF itself (gdb 13; it ignores a file's index when its dwz multifile has none)."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import env_with_package, readelf_sections, resolves, run_cli, run_scons
from distro_helpers import build_unstripped, gdb, split, write_sources
from splitdebug.elf import read as elfread
from splitdebug.errors import SplitDebugError
from splitdebug.layout import StageRoot
from splitdebug.tree import gdb_index
from test_scons_tool import project as scons_project

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None or shutil.which("dwz") is None,
                                reason="gdb and dwz judge this")
LIBDIR = {"redhat": "/usr/lib64", "debian": "/usr/lib/x86_64-linux-gnu"}
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# A package name of its own: gdb opens dh_dwz's absolute altlink (/usr/lib/debug/.dwz/<multiarch>/
# <package>.debug) on this machine first, and uses a file there of the same build-id (one without an
# index voids the tree's): no package of this name is ever installed here.
PKG_ARGS = ("--package", "gdbindextest", "--version", "1.0", "--release", "1", "--arch", "x86_64")


def policy_file(tmp: Path, base: str, *extra: str) -> Path:
    """The shipped policy `base` with `gdb_index: true` (and `extra` lines) appended: later keys win
    nowhere in YAML, so the shipped `gdb_index: false` line is dropped first."""
    lines = [line for line in (CONFIGS / f"{base}.yaml").read_text().splitlines()
             if not line.startswith(("gdb_index:", *(e.split(":")[0] + ":" for e in extra)))]
    path = tmp / f"{base}-gdb-index.yaml"
    path.write_text("\n".join([*lines, "gdb_index: true", *extra]) + "\n")
    return path


def split_tree(tmp: Path, base: str, *extra: str, src: Path | None = None,
               map_sources: bool = False) -> tuple[Path, Path]:
    """(root, policy file): the demo package built and split under `base` with gdb_index.
    `map_sources`: --source-root, whose debugedit pass makes the tree pass run after the split (it
    fixes the CRCs itself) rather than beside it (the split's caller fixes them)."""
    src = src or write_sources(tmp / "build" / "demo-1.0")
    root = tmp / "root"
    build_unstripped(src, root, LIBDIR[base])
    policy = policy_file(tmp, base, *extra)
    proc = split(root, str(policy), *PKG_ARGS, *(["--source-root", str(src)] if map_sources else []))
    assert "gdb_index" not in proc.stderr, proc.stderr  # every file indexed, no warning
    return root, policy


def debug_elves(root: Path) -> list[Path]:
    return sorted(p for p in (root / "usr/lib/debug").rglob("*")
                  if p.is_file() and not p.is_symlink() and elfread.is_elf(p))


def objfiles(binary: Path, debug_dir: Path) -> str:
    return gdb(binary, debug_dir, "maint print objfiles")


def uses_index(out: str) -> bool:
    """gdb read the debug objfile through its .gdb_index, not by indexing the DWARF itself."""
    return re.search(r"^\.gdb_index: version \d+$", out, re.MULTILINE) is not None and "Cooked index" not in out


# dwz altlinks relative (-r, sources mapped as rpm does), absolute (-M, dh_dwz's)
@pytest.mark.parametrize("base, map_sources", [("redhat", True), ("debian", False)])
def test_gdb_uses_the_index_of_every_debug_file_and_the_multifile(tmp_path: Path, base: str,
                                                                   map_sources: bool) -> None:
    root, policy = split_tree(tmp_path, base, map_sources=map_sources)
    files = debug_elves(root)
    multifiles = [p for p in files if "/.dwz/" in str(p)]
    assert multifiles, "dwz made no multifile: the test would not cover it"
    for path in files:  # one index each: the multifile's is added once, not by every file that uses it
        assert [n for n in readelf_sections(path) if n == ".gdb_index"] == [".gdb_index"], path
    # tool_entry starts in record_score, inlined from common.h (whose types dwz moved to the multifile)
    for name, function, stem in (("usr/bin/prog", "prog_entry", "prog"), ("usr/bin/tool", "tool_entry", "common")):
        binary = root / name
        debug_info = elfread.read_elf(binary)
        assert debug_info.section(".debug_info") is None, "stripped"
        out = objfiles(binary, root / "usr/lib/debug")
        assert uses_index(out), out
        assert resolves(gdb(binary, root / "usr/lib/debug", f"info line {function}"), stem)
    check = run_cli("check", "--policy", policy, *PKG_ARGS, root)
    assert check.returncode == 0, check.stdout + check.stderr  # the CRCs name the indexed files
    assert "SD408" not in check.stdout


def test_without_dwz_the_index_comes_before_compression_and_the_crc(tmp_path: Path) -> None:
    """No dwz: the pass runs for the index alone, then compresses (zlib) and fixes the CRCs."""
    root, policy = split_tree(tmp_path, "redhat", "dwz: none")
    files = debug_elves(root)
    assert files and not any("/.dwz/" in str(p) for p in files)
    for path in files:
        info = elfread.read_elf(path)
        assert info.section(".gdb_index") is not None, path
        assert info.section(".debug_info").flags & 0x800, f"{path}: .debug_info not compressed"  # type: ignore[union-attr]
    out = objfiles(root / "usr/bin/prog", root / "usr/lib/debug")
    assert uses_index(out), out
    check = run_cli("check", "--policy", policy, *PKG_ARGS, root)
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_reports_a_missing_index(tmp_path: Path) -> None:
    root, policy = split_tree(tmp_path, "debian")
    multifile = next(p for p in debug_elves(root) if "/.dwz/" in str(p))
    debug = next(p for p in debug_elves(root) if "/.build-id/" in str(p))
    for path in (multifile, debug):
        subprocess.run(["objcopy", "--remove-section", ".gdb_index", str(path)], check=True)
    # gdb now indexes by itself: the multifile's missing index voids the others'
    assert "Cooked index in use" in objfiles(root / "usr/bin/tool", root / "usr/lib/debug")
    proc = run_cli("check", "--policy", policy, root)
    assert proc.returncode == 1
    found = set(re.findall(r"SD408 \S+ (\S+):", proc.stdout))
    image = {"/" + str(p.relative_to(root)) for p in (multifile, debug)}
    assert found == image, proc.stdout
    # the shipped debian policy does not ask for it
    assert "SD408" not in run_cli("check", "--policy", "debian", root).stdout


def test_indexed_trees_are_byte_identical_across_build_directories(tmp_path: Path) -> None:
    """The same objects staged in two roots: the same debug files, multifile and indexes included."""
    src = write_sources(tmp_path / "build" / "demo-1.0")
    a, _ = split_tree(tmp_path / "a", "redhat", src=src)
    b, _ = split_tree(tmp_path / "b", "redhat", src=src)
    files = [p.relative_to(a) for p in debug_elves(a)]
    assert files == [p.relative_to(b) for p in debug_elves(b)]
    for rel in files:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_a_policy_asking_for_the_index_without_gdb_is_one_line(tmp_path: Path) -> None:
    src = write_sources(tmp_path / "build" / "demo-1.0")
    root = tmp_path / "root"
    build_unstripped(src, root, LIBDIR["debian"])
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    env = env_with_package()
    env["GDB"] = "no-such-gdb-anywhere"
    proc = run_cli("split", "--policy", policy_file(tmp_path, "debian"), root, env=env)
    assert proc.returncode != 0
    assert proc.stderr == ("splitdebug: error: policy 'debian' asks for .gdb_index, which needs gdb "
                           "(apt-get install gdb)\n")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()} == before


def test_a_debug_file_swapped_for_a_symlink_is_never_read_or_written_through(tmp_path: Path) -> None:
    """gdb and objcopy see private copies read O_NOFOLLOW: a symlink where a debug file was (to a
    file outside the root) is refused, the outside file neither copied in nor changed."""
    root, _ = split_tree(tmp_path, "debian", "dwz: none")
    debug = debug_elves(root)[0]
    outside = tmp_path / "secret.debug"
    shutil.copy(debug, outside)
    subprocess.run(["objcopy", "--remove-section", ".gdb_index", str(outside)], check=True)
    kept = outside.read_bytes()
    debug.unlink()
    os.symlink(outside, debug)
    gdb_tool = gdb_index.find_gdb()
    assert gdb_tool is not None
    with pytest.raises(SplitDebugError, match="cannot read for .gdb_index"):
        gdb_index.add_indexes(StageRoot(root), [debug], [], gdb_tool, "objcopy")
    assert outside.read_bytes() == kept and debug.is_symlink()


@pytest.mark.parametrize("extra", [(), ("dwz: none",)])
def test_the_scons_stage_is_indexed_and_then_up_to_date(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """The SCons stage's tree pass: with dwz or for the index alone; a second run does nothing."""
    project = scons_project.__wrapped__(tmp_path)  # type: ignore[attr-defined]  # test_scons_tool's project
    sconstruct = project / "SConstruct"
    old = ('env.InstallStripped("$DESTDIR/usr/bin", [a, b, c])\nenv.InstallStripped("$DESTDIR/usr/lib", lib)\n'
           'Default("stage")')
    assert old in sconstruct.read_text()
    # What InstallStripped returns (the stage's tree pass among it) as the targets, as the main job does.
    sconstruct.write_text(sconstruct.read_text().replace(old, 'Default(env.InstallStripped("$DESTDIR/usr/bin", '
                                                         '[a, b, c]) + env.InstallStripped("$DESTDIR/usr/lib", lib))'))
    policy = policy_file(project.parent, "redhat", *extra)
    run_scons(project, "-j2", f"POLICY={policy}")
    stage = project / "stage"
    files = debug_elves(stage)
    assert len(files) >= 4 and not (extra and any("/.dwz/" in str(p) for p in files))
    for path in files:
        assert elfread.read_elf(path).section(".gdb_index") is not None, path
    out = objfiles(stage / "usr/lib/libdemo.so.1.2.3", stage / "usr/lib/debug")
    assert uses_index(out), out
    check = run_cli("check", "--policy", policy, "--package", "demo", "--version", "1.0", "--release", "1",
                    "--arch", "x86_64", stage)
    assert check.returncode == 0, check.stdout + check.stderr
    assert run_scons(project, "-q", f"POLICY={policy}", check=False).returncode == 0


def many_units(src: Path) -> list[Path]:
    """48 C files sharing a header of types and inline functions: dwz moves those into partial units
    that every file imports, the DWARF where gdb's threaded indexing showed its finishing order."""
    src.mkdir(parents=True)
    (src / "common.h").write_text("".join(f"struct shared{j} {{ int a; long b; }};\n"
                                          f"static inline int inl{j}(struct shared{j} *p) {{ return p->a; }}\n"
                                          for j in range(30)))
    for i in range(48):
        (src / f"cu{i}.c").write_text('#include "common.h"\n' + "".join(
            f"struct s{i}_{j} {{ int a; long b; struct s{i}_{j} *next; }};\n"
            f"int f{i}_{j}(struct s{i}_{j} *p, struct shared{j} *q) {{ return p->a + (int)p->b + inl{j}(q); }}\n"
            for j in range(10)) + f"static int g(int x) {{ return x * {i}; }}\nint h{i}(int x) {{ return g(x); }}\n")
    (src / "main.c").write_text("int h0(int);\nint main(void) { return h0(1); }\n")
    return sorted(src.glob("*.c"))


def test_the_index_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    """gdb 13 indexes in worker threads; for dwz's imported units the order they finish in showed in
    the index (2 of 6 runs differed). The pass runs gdb on one thread: six runs, one result."""
    sources = many_units(tmp_path / "src")
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    for name in ("one", "two"):  # two programs, so that dwz makes a multifile
        tag = tmp_path / f"{name}.c"
        tag.write_text(f'const char *tag_{name} = "{name}";\n')
        subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id=sha1", "-o", str(root / "usr/bin" / name),
                        *map(str, sources), str(tag)], check=True)
    split(root, "redhat", *PKG_ARGS)  # dwz, no index
    gdb_tool = gdb_index.find_gdb()
    assert gdb_tool is not None
    results = set()
    for run in range(6):
        copy = tmp_path / f"run{run}"
        shutil.copytree(root, copy, symlinks=True)
        files = debug_elves(copy)
        multifiles = [p for p in files if "/.dwz/" in str(p)]
        assert multifiles
        gdb_index.add_indexes(StageRoot(copy), [p for p in files if p not in multifiles], multifiles, gdb_tool,
                              "objcopy", jobs=2)
        assert all(elfread.read_elf(p).section(".gdb_index") is not None for p in files)
        results.add(tuple((p.relative_to(copy), p.read_bytes()) for p in files))
    assert len(results) == 1


def test_a_failing_gdb_is_a_warning_and_the_tree_stays_consistent(tmp_path: Path) -> None:
    """gdb failing on every file: warnings, exit 0; the debug files still compressed after dwz and
    every CRC right (check finds only the missing indexes)."""
    fake = tmp_path / "gdb"
    fake.write_text('#!/bin/sh\necho "gdb: internal-error: something broke" >&2\nexit 1\n')
    fake.chmod(0o755)
    src = write_sources(tmp_path / "build" / "demo-1.0")
    root = tmp_path / "root"
    build_unstripped(src, root, LIBDIR["redhat"])
    policy = policy_file(tmp_path, "redhat")
    env = env_with_package()
    env["GDB"] = str(fake)
    proc = run_cli("split", "--policy", policy, "--jobs", "2", *PKG_ARGS, root, env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "no .gdb_index" in line]
    assert warnings and all(line.endswith("failed: gdb: internal-error: something broke") for line in warnings)
    check = run_cli("check", "--policy", policy, *PKG_ARGS, root)
    assert check.returncode == 1
    rules = {line.split()[1] for line in check.stdout.splitlines() if line.startswith("error ")}
    assert rules == {"SD408"}, check.stdout


def test_indexed_files_are_left_alone_by_a_second_pass(tmp_path: Path) -> None:
    """A second pass over an indexed tree (a rerun, the SCons stage again) changes no byte; a file with
    a .debug_names instead (gdb-add-index -dwarf-5's) is left alone too, and check accepts it."""
    root, policy = split_tree(tmp_path, "debian")
    files = debug_elves(root)
    debug = next(p for p in files if "/.build-id/" in str(p))
    names = tmp_path / "names.bin"
    names.write_bytes(b"\0" * 64)
    subprocess.run(["objcopy", "--remove-section", ".gdb_index", "--add-section", f".debug_names={names}",
                    str(debug)], check=True)
    before = {p: p.read_bytes() for p in files}
    gdb_tool = gdb_index.find_gdb()
    assert gdb_tool is not None
    multifiles = [p for p in files if "/.dwz/" in str(p)]
    warnings = gdb_index.add_indexes(StageRoot(root), [p for p in files if p not in multifiles], multifiles,
                                     gdb_tool, "objcopy")
    assert warnings == [] and {p: p.read_bytes() for p in files} == before
    check = run_cli("check", "--policy", policy, root)
    assert "SD408" not in check.stdout, check.stdout


@pytest.mark.parametrize("altlink, copy_dir, multifile", [
    ("../../.dwz/demo-1.0-1.x86_64", "w/d/d", "w/.dwz/demo-1.0-1.x86_64"),  # find-debuginfo -r
    ("/usr/lib/debug/.dwz/x86_64-linux-gnu/demo.debug", "w", None),          # dh_dwz -M: by build-id
    ("../" * 64 + "x", "w" + "/d" * 64, "w/x"),                               # as far as it may
    ("../" * 65 + "x", "w", None),                                           # climbs too far
    ("../..", "w", None),                                                    # names a directory
    ("splitdebug-indexed.debug", "w", None),                                 # names the copy itself
])
def test_the_multifile_copy_goes_where_a_relative_altlink_leads_inside_the_private_directory(
        tmp_path: Path, altlink: str, copy_dir: str, multifile: str | None) -> None:
    work, beside = gdb_index.altlink_place(tmp_path, altlink)
    assert work == tmp_path / copy_dir
    assert beside == (None if multifile is None else tmp_path / multifile)
    if beside is not None:
        assert Path(os.path.normpath(work / altlink)) == beside


def test_a_gdbinit_of_the_building_user_is_not_read(tmp_path: Path) -> None:
    """gdb -nx: a ~/.gdbinit (a developer's, or one a build planted in HOME) plays no part."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gdbinit").write_text("quit 3\n")
    src = write_sources(tmp_path / "build" / "demo-1.0")
    root = tmp_path / "root"
    build_unstripped(src, root, LIBDIR["redhat"])
    env = env_with_package()
    env["HOME"] = str(home)
    proc = run_cli("split", "--policy", policy_file(tmp_path, "redhat"), *PKG_ARGS, root, env=env)
    assert proc.returncode == 0 and "gdb_index" not in proc.stderr, proc.stderr
    assert all(elfread.read_elf(p).section(".gdb_index") is not None for p in debug_elves(root))
