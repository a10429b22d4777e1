"""Arch, Alpine, Gentoo and openSUSE from YAML alone: each policy lays out the tree its distribution's
own tool lays out, gdb reads it, and `check` passes it and fails it when a debug file is gone.

makepkg, abuild and estrip are not installed here, so their layouts are tables written from their
source (cited on each table); openSUSE's rpm settings are run through the rpmbuild installed here.
Where ours differs on purpose (the policy file says why), the entries are listed apart as OURS_ONLY.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import gdb_info_line, resolves, run_cli
from distro_helpers import NAME, RELEASE, VERSION, build_unstripped, listing, rpm_listing, split, write_sources
from splitdebug.elf import read as elfread

DBG = "/usr/lib/debug"
SOURCES = ("common.h", "lib.c", "prog.c", "tool.c")


def _ids(root: Path, libdir: str = "usr/lib") -> dict[str, str]:
    out = {}
    for key, path in (("prog", "usr/bin/prog"), ("tool", "usr/bin/tool"), ("lib", f"{libdir}/libdemo.so.1.0")):
        bid = elfread.read_elf(root / path).build_id
        assert bid is not None
        out[key] = bid
    return out


def _link(bid: str, suffix: str, target: str) -> tuple[str, str]:
    return (f"{DBG}/.build-id/{bid[:2]}/{bid[2:]}{suffix}", f"link -> {target}")


def arch_table(ids: dict[str, str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """pacman 7.x (CachyOS/pacman 237cb4d) scripts/libmakepkg/tidy/strip.sh.in, collect_debug_symbols: objcopy --only-keep-debug
    to $dbgdir/$binary.debug (mode kept: 0755), `ln` for each other name of the inode, and for the first
    file of a build-id `ln -s ../../../../../$binary` (minus ../../usr/lib/ or ../usr/) and
    `ln -s ../../$binary.debug`; sources under /usr/src/debug/$pkgbase."""
    files = {f"{DBG}/usr/bin/prog.debug", f"{DBG}/usr/bin/prog-hardlink.debug", f"{DBG}/usr/bin/tool.debug",
             f"{DBG}/usr/lib/libdemo.so.1.0.debug"}
    theirs = {(f, "file 755") for f in files} | {(f"/usr/src/debug/{NAME}/{s}", "file 644") for s in SOURCES}
    theirs |= {_link(ids["prog"], "", "../../../../bin/prog"), _link(ids["prog"], ".debug", "../../usr/bin/prog.debug"),
               _link(ids["tool"], "", "../../../../bin/tool"), _link(ids["tool"], ".debug", "../../usr/bin/tool.debug"),
               _link(ids["lib"], "", "../../../libdemo.so.1.0"),
               _link(ids["lib"], ".debug", "../../usr/lib/libdemo.so.1.0.debug")}
    # makepkg skips prog-copy (its build-id's .debug link exists): no debug file, no debuglink.
    return theirs, {(f"{DBG}/usr/bin/prog-copy.debug", "file 755")}


def alpine_table(ids: dict[str, str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """abuild 3.18.0_rc5 abuild.in, default_dbg: for each ET_DYN file (scanelf -RyB -E ET_DYN), once per
    inode, objcopy --only-keep-debug to usr/lib/debug/<path>.debug (mode kept: 0755); no build-id
    links, no sources."""
    files = {f"{DBG}/usr/bin/prog.debug", f"{DBG}/usr/bin/prog-copy.debug", f"{DBG}/usr/bin/tool.debug",
             f"{DBG}/usr/lib/libdemo.so.1.0.debug"}
    # abuild splits the inode of prog/prog-hardlink once, under the name scanelf meets first.
    return {(f, "file 755") for f in files}, {(f"{DBG}/usr/bin/prog-hardlink.debug", "file 755")}


GENTOO_PKG, GENTOO_PVR = "dev-util/demo", "1.0-r1"


def gentoo_table(ids: dict[str, str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """portage 3.0.82 bin/estrip, save_elf_debug: usr/lib/debug/<dir>/<name>.debug per inode
    (chmod a-x,o-w: 0644), copies their own; the first of a build-id gets ../../<debug path> and
    ../../../../../<path> links; installsources to /usr/src/debug/${CATEGORY}/${PF}."""
    files = {f"{DBG}/usr/bin/prog.debug", f"{DBG}/usr/bin/prog-copy.debug", f"{DBG}/usr/bin/tool.debug",
             f"{DBG}/usr/lib/libdemo.so.1.0.debug"}
    theirs = {(f, "file 644") for f in files}
    theirs |= {(f"/usr/src/debug/{GENTOO_PKG}-{GENTOO_PVR}/{s}", "file 644") for s in SOURCES}
    theirs |= {_link(ids["prog"], "", "../../../../../usr/bin/prog"),
               _link(ids["prog"], ".debug", "../../usr/bin/prog.debug"),
               _link(ids["tool"], "", "../../../../../usr/bin/tool"),
               _link(ids["tool"], ".debug", "../../usr/bin/tool.debug"),
               _link(ids["lib"], "", "../../../../../usr/lib/libdemo.so.1.0"),
               _link(ids["lib"], ".debug", "../../usr/lib/libdemo.so.1.0.debug")}
    # estrip's second name of an inode in the same directory reuses dir/prog.debug.
    return theirs, {(f"{DBG}/usr/bin/prog-hardlink.debug", "file 644")}


CASES = {
    "arch": (arch_table, ("--package", NAME)),
    "alpine": (alpine_table, ()),
    "gentoo": (gentoo_table, ("--package", GENTOO_PKG, "--version", GENTOO_PVR)),
}


def _files_and_links(root: Path) -> set[tuple[str, str]]:
    """Debug files, build-id links and shipped sources (directories left out)."""
    return {e for e in listing(root) if not e[1].startswith("dir")
            and (e[0].startswith(DBG + "/") or e[0].startswith("/usr/src/debug/"))}


def _gdb_by_debuglink(root: Path, work: Path, binary: Path, function: str) -> str:
    """gdb as on the installed system: <debug-file-directory>/<binary's directory>/<debuglink>."""
    gdb_dir = work / "gdb-debug-dir"
    mirror = gdb_dir / str(root).lstrip("/")
    if not mirror.exists():
        mirror.parent.mkdir(parents=True)
        os.symlink(root / DBG.lstrip("/"), mirror)
    return gdb_info_line(gdb_dir, binary, function)


def _check_passes_and_catches_a_lost_debug_file(root: Path, work: Path, policy: str, *pkg: str) -> None:
    proc = run_cli("check", "--policy", policy, *pkg, root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = work / "broken"
    subprocess.run(["cp", "-a", f"{root}/.", str(broken)], check=True)
    (broken / DBG.lstrip("/") / "usr/bin/tool.debug").unlink()
    proc = run_cli("check", "--policy", policy, *pkg, broken)
    assert proc.returncode == 1 and "SD303 debug-file-missing /usr/bin/tool" in proc.stdout, proc.stdout


@pytest.mark.parametrize("policy", sorted(CASES))
def test_layout_is_the_distribution_tools(tmp_path: Path, policy: str) -> None:
    table, pkg = CASES[policy]
    src = write_sources(tmp_path / "work" / f"{NAME}-{VERSION}")
    root = tmp_path / "image"
    bins = build_unstripped(src, root, "/usr/lib")
    ids = _ids(root)
    sources = ("--source-root", str(src)) if policy != "alpine" else ()  # abuild maps no sources
    split(root, policy, *pkg, *sources)
    theirs, ours_only = table(ids)
    assert _files_and_links(root) == theirs | ours_only
    assert (root / "usr/lib/debug/usr/bin/prog-hardlink.debug").samefile(root / "usr/lib/debug/usr/bin/prog.debug")
    for key, function in (("prog", "prog_entry"), ("tool", "tool_entry"), ("lib", "lib_entry")):
        assert elfread.read_debuglink(bins[key], elfread.read_elf(bins[key]))[0] == bins[key].name + ".debug"
        assert resolves(_gdb_by_debuglink(root, tmp_path, bins[key], function), "")
        if any(e[0].startswith(f"{DBG}/.build-id/") for e in theirs):  # and by build-id alone
            assert resolves(gdb_info_line(root / DBG.lstrip("/"), bins[key], function), ""), policy
    _check_passes_and_catches_a_lost_debug_file(root, tmp_path, policy, *pkg)


def _unnumbered(entries: set[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """Build-id links with their number, none included, blanked: which name is .1 is readdir order."""
    def blank(path: str) -> str:
        return re.sub(r"(/\.build-id/[0-9a-f]{2}/[0-9a-f]+)(\.\d+)?(\.debug)?$", r"\1.N\3", path)
    return Counter((blank(path), kind) for path, kind in entries)


def opensuse_patched(upstream: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """What openSUSE's find-debuginfo makes of the upstream -debuginfo tree (debugedit 5.0's patches
    as mirrored in bmwiedemann/openSUSE @ d0a22e4e9c80, packages/d/debugedit/): debugsubpkg.patch
    makes no <symlink>.debug links; finddebuginfo.patch writes the debug file with objcopy
    --only-keep-debug and drops strip_to_debug's chmod 444, so it keeps the binary's mode (0755 here).
    The tree's only symlinks outside .build-id are libdemo.so.1 and libdemo.so."""
    out = set()
    for path, kind in upstream:
        if kind.startswith("link") and "/.build-id/" not in path:
            continue
        if kind == "file 444" and path.endswith(".debug"):
            kind = "file 755"
        out.add((path, kind))
    return out


OPENSUSE_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: reference build with openSUSE's debuginfo settings
License: MIT
%global _debugsource_packages 1
%global _find_debuginfo_dwz_opts --run-dwz
%global _build_id_links alldebug
%undefine _unique_build_ids
%undefine _unique_debug_names
%undefine _unique_debug_srcs
%global _no_recompute_build_ids 1
%description
Reference.
%debug_package
%prep
%setup -q -T -D -n {name}-{version}
%install
cp -a {unstripped}/. %{{buildroot}}/
%files
/usr/bin/*
/usr/lib64/*
"""


@pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild not installed")
def test_opensuse_matches_rpmbuild_with_its_settings(tmp_path: Path) -> None:
    """rpm 4.18's find-debuginfo run with %_build_id_links alldebug and no unique names or sources
    (openSUSE's settings, see configs/opensuse.yaml): the same -debuginfo and -debugsource trees."""
    build = tmp_path / "BUILD"
    src = write_sources(build / f"{NAME}-{VERSION}")
    unstripped = tmp_path / "unstripped"
    bins = build_unstripped(src, unstripped, "/usr/lib64")
    ours = tmp_path / "ours"
    subprocess.run(["cp", "-a", f"{unstripped}/.", str(ours)], check=True)
    pkg = ("--package", NAME, "--version", VERSION, "--release", RELEASE, "--arch", "x86_64")
    split(ours, "opensuse", *pkg, "--source-root", src)
    spec = tmp_path / "reference.spec"
    spec.write_text(OPENSUSE_SPEC.format(name=NAME, version=VERSION, release=RELEASE, unstripped=unstripped))
    top = tmp_path / "rpmbuild"
    proc = subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", f"_builddir {build}",
                           str(spec)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ref = {p.name.split("-" + VERSION)[0]: p for p in (top / "RPMS").rglob("*.rpm")}
    upstream = rpm_listing(ref[f"{NAME}-debuginfo"], DBG) | rpm_listing(ref[f"{NAME}-debugsource"], "/usr/src/debug")
    theirs = opensuse_patched(upstream)
    mine = (listing(ours, DBG) | listing(ours, "/usr/src/debug")) - {("/usr/src/debug", "dir 755")}
    # rpm numbers one build-id's -debuginfo links in readdir order, we in path order (as
    # test_distro_compare.py): the numbers are compared blanked out, everything else exactly.
    assert _unnumbered(mine) == _unnumbered(theirs), (sorted(mine - theirs), sorted(theirs - mine))
    assert any(".build-id/" in path and path.endswith(".2.debug") for path, _ in theirs)
    ids = _ids(ours, "usr/lib64")
    for key, function in (("prog", "prog_entry"), ("tool", "tool_entry"), ("lib", "lib_entry")):
        binary = ours / bins[key].relative_to(unstripped)
        assert resolves(gdb_info_line(ours / DBG.lstrip("/"), binary, function), ""), key
        assert ids[key]
    _check_passes_and_catches_a_lost_debug_file(ours, tmp_path, "opensuse", *pkg)


def _sections(path: Path) -> list[tuple[str, str]]:
    return [(s.name, s.type) for s in elfread.read_elf(path).sections]


def test_opensuse_strips_as_its_objcopy_pass(tmp_path: Path) -> None:
    """openSUSE's find-debuginfo (finddebuginfo.patch, see opensuse_patched) runs objcopy
    --only-keep-debug, then objcopy --add-gnu-debuglink -R .comment -R .GCC.command.line --strip-all
    on programs and libraries alike: those two commands, run here on the same unstripped files (built
    with -frecord-gcc-switches, so .GCC.command.line is there to remove), give the sections ours has."""
    src = write_sources(tmp_path / "src")
    unstripped = tmp_path / "unstripped"
    bins = build_unstripped(src, unstripped, "/usr/lib64")
    rec = unstripped / "usr/bin/recorded"
    subprocess.run(["gcc", "-g", "-O1", "-frecord-gcc-switches", "-Wl,--build-id=sha1", "-o", str(rec), "tool.c"],
                   cwd=src, check=True)
    assert elfread.read_elf(rec).section(".GCC.command.line") is not None
    ours = tmp_path / "ours"
    subprocess.run(["cp", "-a", f"{unstripped}/.", str(ours)], check=True)
    split(ours, "opensuse", "--package", NAME, "--version", VERSION, "--release", RELEASE, "--arch", "x86_64")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    for binary in (bins["prog"], bins["lib"], rec):
        rel = binary.relative_to(unstripped)
        stripped, debug = theirs / binary.name, theirs / f"{binary.name}.debug"
        shutil.copy2(binary, stripped)
        subprocess.run(["objcopy", "--only-keep-debug", str(stripped), str(debug)], check=True)
        subprocess.run(["objcopy", f"--add-gnu-debuglink={debug}", "-R", ".comment", "-R", ".GCC.command.line",
                        "--strip-all", str(stripped)], check=True)
        assert _sections(ours / rel) == _sections(stripped), rel
        assert oct((ours / DBG.lstrip("/") / f"{rel}.debug").stat().st_mode & 0o777) == oct(debug.stat().st_mode & 0o777)
        # dwz (the policy's pass, after the split) adds .gnu_debugaltlink and may move all of
        # .debug_str to the multifile; every other section is objcopy's, in its order.
        dwz_made = {".gnu_debugaltlink", ".debug_str"}
        mine = [s for s in _sections(ours / DBG.lstrip("/") / f"{rel}.debug") if s[0] not in dwz_made]
        assert mine == [s for s in _sections(debug) if s[0] not in dwz_made], rel
