"""`splitdebug find-debuginfo` against the real find-debuginfo (debugedit 5.0) on the same tree, with the
same options and environment, outside rpmbuild: the same build-ids, debug file names, lists and
sources; and bad input as one line with the build root untouched.
(tests/test_rpm_find_debuginfo.py runs both inside rpmbuild on a real upstream tarball.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import env_with_package, run_cli
from distro_helpers import altlink, build_unstripped, section_names, write_sources
from splitdebug.elf import read as elfread

FDI = "/usr/bin/find-debuginfo"
pytestmark = pytest.mark.skipif(not os.access(FDI, os.X_OK), reason="find-debuginfo (debugedit) not installed")
UNIQUE = ["--build-id-seed", "1.0-1", "--unique-debug-suffix", "-1.0-1.x86_64",
          "--unique-debug-src-base", "demo-1.0-1.x86_64"]


def fdi_env(root: Path, build_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in env_with_package().items() if not k.startswith("RPM_")}
    env.update(RPM_BUILD_ROOT=str(root), RPM_BUILD_DIR=str(build_dir), RPM_PACKAGE_NAME="demo",
               RPM_PACKAGE_VERSION="1.0", RPM_PACKAGE_RELEASE="1", RPM_ARCH="x86_64")
    return env


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """{image path: (kind, build-id or link target)} of a tree."""
    out = {}
    for p in sorted(root.rglob("*")):
        image = "/" + p.relative_to(root).as_posix()
        if p.is_symlink():
            out[image] = ("link", os.readlink(p))
        elif p.is_dir():
            out[image] = ("dir", "")
        elif elfread.is_elf(p):
            out[image] = ("elf", elfread.read_elf(p).build_id or "")
        else:
            out[image] = ("file", "")
    return out


def list_lines(path: Path, sep: str = "\n") -> list[str]:
    return sorted(line for line in path.read_text(errors="surrogateescape").split(sep) if line)


def run_both(tmp_path: Path, *options: str) -> dict[str, dict[str, object]]:
    """The same unstripped tree through find-debuginfo and through ours, one after the other in the same
    build directory (its path is what debugedit hashes into the build-ids); what each left."""
    build = tmp_path / "BUILD"
    src = write_sources(build / "demo-1.0")
    unstripped = tmp_path / "unstripped"
    build_unstripped(src, unstripped, "/usr/lib64")
    results: dict[str, dict[str, object]] = {}
    for who, argv in (("stock", [FDI]), ("ours", ["splitdebug-fdi"])):
        root = tmp_path / f"root-{who}"
        subprocess.run(["cp", "-a", f"{unstripped}/.", str(root)], check=True)
        for old in src.glob("*.list"):
            old.unlink()
        env = fdi_env(root, build)
        if who == "ours":
            proc = run_cli("find-debuginfo", *options, src, cwd=build, env=env)
        else:
            proc = subprocess.run([*argv, *options, str(src)], cwd=build, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{who}: {proc.stdout}{proc.stderr}"
        results[who] = {"tree": snapshot(root), "root": root,
                        "lists": {p.name: list_lines(p, "\0" if p.name == "debugsources.list" else "\n")
                                  for p in src.glob("*.list")}}
        if who == "stock":
            kept = tmp_path / "stock-lists"
            kept.mkdir()
            for p in src.glob("*.list"):
                shutil.copy2(p, kept / p.name)
    return results


def unused_multifile(root: Path) -> set[str]:
    """find-debuginfo keeps a dwz multifile no debug file refers to; splitdebug removes it (README):
    the image paths of such a multifile and of its directory, when it is unused."""
    dwz = root / "usr/lib/debug/.dwz"
    used = {os.path.basename(name) for p in (root / "usr/lib/debug").rglob("*.debug")
            if (name := altlink(p)) is not None}
    files = {f"/usr/lib/debug/.dwz/{p.name}" for p in dwz.glob("*") if p.name not in used} if dwz.is_dir() else set()
    return files | ({"/usr/lib/debug/.dwz"} if files and not used else set())


def without(tree: dict[str, tuple[str, str]], paths: set[str]) -> dict[str, tuple[str, str]]:
    return {p: v for p, v in tree.items() if p not in paths}


def test_same_build_ids_names_lists_and_sources_as_find_debuginfo(tmp_path: Path) -> None:
    r = run_both(tmp_path, "-j2", "-m", *UNIQUE, "--run-dwz", "-S", "debugsourcefiles.list")
    stock, ours = r["stock"], r["ours"]
    st, ot = stock["tree"], ours["tree"]
    assert isinstance(st, dict) and isinstance(ot, dict)
    # Every shipped binary, debug file and source: the same path and the same (re-seeded) build-id.
    stock_root = stock["root"]
    assert isinstance(stock_root, Path)
    unused = unused_multifile(stock_root)
    assert ot == without(st, unused)
    assert any(p.startswith("/usr/lib/debug/.dwz/") for p in ot)  # dwz shared the common header's types
    unstripped = elfread.read_elf(tmp_path / "unstripped/usr/bin/prog").build_id
    assert ot["/usr/bin/prog"][1] != unstripped  # re-seeded, as rpm's %_unique_build_ids asks
    assert "/usr/src/debug/demo-1.0-1.x86_64/prog.c" in ot
    sl, ol = stock["lists"], ours["lists"]
    assert isinstance(sl, dict) and isinstance(ol, dict)
    assert set(ol) == set(sl) == {"debugfiles.list", "debugsourcefiles.list", "debuglinks.list", "elfbins.list",
                                  "debugsources.list"}
    for name in sl:
        assert ol[name] == [line for line in sl[name] if line.removeprefix("%dir ") not in unused], name


def test_no_recompute_keeps_the_build_ids_and_plain_names_get_symlink_debug_links(tmp_path: Path) -> None:
    r = run_both(tmp_path, "-n", "-j1")
    st, ot = r["stock"]["tree"], r["ours"]["tree"]
    assert isinstance(st, dict) and isinstance(ot, dict)
    assert ot == st
    assert ot["/usr/bin/prog"][1] == elfread.read_elf(tmp_path / "unstripped/usr/bin/prog").build_id
    # Without --unique-debug-suffix, find-debuginfo's rule makes <link>.debug for symlinked binaries.
    assert ot["/usr/lib/debug/usr/lib64/libdemo.so.1.debug"] == ("link", "libdemo.so.1.0.debug")
    assert r["ours"]["lists"] == r["stock"]["lists"]


def test_sub_package_lists_as_find_debuginfo(tmp_path: Path) -> None:
    (tmp_path / "BUILD/demo-1.0").mkdir(parents=True)
    (tmp_path / "BUILD/demo-1.0/tool.files").write_text("%attr(755,root,root) /usr/bin/tool\n")
    r = run_both(tmp_path, "-n", "-l", "tool.files", "-o", "tool-debuginfo.list",
                 "-p", ".*/libdemo.*", "-o", "lib-debuginfo.list")
    ol, sl = r["ours"]["lists"], r["stock"]["lists"]
    assert isinstance(ol, dict) and isinstance(sl, dict)
    assert ol == sl
    assert "/usr/lib/debug/usr/bin/tool.debug" in ol["tool-debuginfo.list"]
    assert "/usr/lib/debug/usr/lib64/libdemo.so.1.debug" in ol["lib-debuginfo.list"]
    assert not any("tool" in line or "libdemo" in line for line in ol["debugfiles.list"] if not line.startswith("%"))


@pytest.mark.skipif(shutil.which("gdb-add-index") is None, reason="gdb-add-index not installed")
def test_gdb_index_goes_into_the_debug_file(tmp_path: Path) -> None:
    r = run_both(tmp_path, "-i", "-n")
    for who in ("stock", "ours"):
        root = r[who]["root"]
        assert isinstance(root, Path)
        dbg = root / "usr/lib/debug/usr/bin/prog.debug"
        assert elfread.read_elf(dbg).section(".gdb_index") is not None, who


@pytest.mark.parametrize("argv, env_change, message", [
    (["--no-such-option", "BUILDDIR"], {}, "find-debuginfo: unknown option '--no-such-option'"),
    (["-j2", "BUILDDIR"], {"RPM_BUILD_ROOT": None}, "find-debuginfo: RPM_BUILD_ROOT is not set"),
    (["-j2", "BUILDDIR"], {"RPM_BUILD_ROOT": "/nonexistent/root"},
     "find-debuginfo: RPM_BUILD_ROOT /nonexistent/root: not a directory"),
    (["-j2", "/nonexistent/build"], {}, "find-debuginfo: build directory /nonexistent/build: not a directory"),
    (["-n", "--build-id-seed", "1-1", "BUILDDIR"], {}, "cannot be used together"),
    (["--g-libs", "-m", "BUILDDIR"], {}, "--g-libs together with -m is not supported"),
    (["-l", "files", "BUILDDIR"], {}, "-l or -p without a -o"),
    (["-j", "0", "BUILDDIR"], {}, "-j 0: give a number of jobs"),
    (["-i", "BUILDDIR"], {"PATH": "/nonexistent"}, "-i: GDB index requested, but no gdb installed (apt-get install gdb)"),
    (["-l", "missing.files", "-o", "x.list", "BUILDDIR"], {}, "-l missing.files: No such file or directory"),
    (["-p", "(", "-o", "x.list", "BUILDDIR"], {}, "-p '(': missing ), unterminated subpattern"),
])
def test_bad_input_is_one_line_and_the_build_root_is_untouched(tmp_path: Path, argv: list[str],
                                                                env_change: dict[str, str | None],
                                                                message: str) -> None:
    build = tmp_path / "BUILD"
    src = write_sources(build / "demo-1.0")
    root = tmp_path / "root"
    build_unstripped(src, root, "/usr/lib64")
    before = snapshot(root)
    env = fdi_env(root, build)
    for k, v in env_change.items():
        if v is None:
            env.pop(k)
        else:
            env[k] = v
    proc = run_cli("find-debuginfo", *[str(src) if a == "BUILDDIR" else a for a in argv], cwd=build, env=env)
    assert proc.returncode == 2
    assert proc.stderr.startswith("splitdebug: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr
    assert snapshot(root) == before and not list(src.glob("*.list"))


def sections(root: Path) -> dict[str, set[str]]:
    """Section names of every ELF file of the tree (shipped binaries and debug files), by image path."""
    return {"/" + p.relative_to(root).as_posix(): section_names(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and elfread.is_elf(p)}


@pytest.mark.parametrize("options", [
    ["-g"],                                    # strip -g: the .symtab stays
    ["--g-libs"],                              # only in libraries
    ["-r"],                                    # eu-strip --reloc-debug-sections
    ["--keep-section", ".debug_line"],         # stays in the shipped binary too
    ["--remove-section", ".comment"],
    ["--run-dwz", "--dwz-single-file-mode"],   # dwz file by file: no multifile
    ["--run-dwz", "--dwz-max-die-limit", "10"],  # past the limit dwz leaves the file alone
    ["--run-dwz", "--dwz-low-mem-die-limit", "10"],
    ["-o", "other.list"],                      # renames debugfiles.list
])
def test_options_as_find_debuginfo(tmp_path: Path, options: list[str]) -> None:
    r = run_both(tmp_path, "-n", "-j2", *options)
    stock, ours = r["stock"], r["ours"]
    stock_root, our_root = stock["root"], ours["root"]
    assert isinstance(stock_root, Path) and isinstance(our_root, Path)
    unused = unused_multifile(stock_root)
    st, ot = stock["tree"], ours["tree"]
    assert isinstance(st, dict) and isinstance(ot, dict)
    assert ot == without(st, unused)
    ours_sections, theirs = sections(our_root), sections(stock_root)
    assert ours_sections == {p: s for p, s in theirs.items() if p not in unused}
    assert ours["lists"] == {name: [line for line in lines if line.removeprefix("%dir ") not in unused]
                             for name, lines in stock["lists"].items()}  # type: ignore[union-attr]
    if "-g" in options or "--g-libs" in options:
        assert ".symtab" in ours_sections["/usr/lib64/libdemo.so.1.0"]
        assert (".symtab" in ours_sections["/usr/bin/prog"]) == ("-g" in options)
    if "--keep-section" in options:
        assert ".debug_line" in ours_sections["/usr/bin/prog"]


def test_strict_build_id_stops_before_writing(tmp_path: Path) -> None:
    build = tmp_path / "BUILD"
    src = write_sources(build / "demo-1.0")
    root = tmp_path / "root"
    build_unstripped(src, root, "/usr/lib64")
    subprocess.run(["gcc", "-g", "-Wl,--build-id=none", "-o", str(root / "usr/bin/no-id"), "prog.c"], cwd=src,
                   check=True)
    before = snapshot(root)
    proc = run_cli("find-debuginfo", "--strict-build-id", "-j2", src, cwd=build, env=fdi_env(root, build))
    assert proc.returncode == 1 and "/usr/bin/no-id: ELF executable has no build-id" in proc.stderr
    assert snapshot(root) == before
    # Without it: a warning, the file stripped with no debug file, the others split (exit 0).
    proc = run_cli("find-debuginfo", "-j2", src, cwd=build, env=fdi_env(root, build))
    assert proc.returncode == 0 and "/usr/bin/no-id: no build-id" in proc.stderr, proc.stderr
    assert section_names(root / "usr/bin/no-id").isdisjoint({".debug_info", ".symtab"})
    assert (root / "usr/lib/debug/usr/bin/prog.debug").is_file()
    assert not (root / "usr/lib/debug/usr/bin/no-id.debug").exists()
    stock_root = tmp_path / "stock"
    build_unstripped(src, stock_root, "/usr/lib64")
    subprocess.run(["gcc", "-g", "-Wl,--build-id=none", "-o", str(stock_root / "usr/bin/no-id"), "prog.c"], cwd=src,
                   check=True)
    stock = subprocess.run([FDI, "--strict-build-id", str(src)], cwd=build, env=fdi_env(stock_root, build),
                           capture_output=True, text=True)
    assert stock.returncode != 0 and "No build ID note found" in stock.stderr


def test_a_source_symlinked_out_of_the_build_directory_is_not_copied(tmp_path: Path) -> None:
    """cpio -L would copy what a hostile build's symlink names (here a root-only file) into -debugsource;
    the front end copies sources as `split --source-root` does: only what stays under the build directory."""
    build = tmp_path / "BUILD"
    src = write_sources(build / "demo-1.0")
    unstripped = tmp_path / "unstripped"
    build_unstripped(src, unstripped, "/usr/lib64")
    secret = tmp_path / "secret.txt"
    secret.write_text("root's secret\n")
    secret.chmod(0o600)
    header = src / "common.h"
    header.unlink()
    header.symlink_to(secret)
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", f"{unstripped}/.", str(root)], check=True)
    proc = run_cli("find-debuginfo", "-j2", *UNIQUE, src, cwd=build, env=fdi_env(root, build))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    copied = [p for p in (root / "usr/src/debug").rglob("*") if p.is_file()]
    assert (root / "usr/src/debug/demo-1.0-1.x86_64/prog.c") in copied
    assert not [p for p in copied if p.read_bytes() == b"root's secret\n"]
    assert "common.h" in (src / "debugsources.list").read_text()  # it was named, and refused
