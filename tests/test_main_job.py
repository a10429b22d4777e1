"""The main job's staged trees (scons -j2 on examples/), judged by gdb, readelf and zlib."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import gdb_info_line, resolves
from test_split import assert_split_tree, shipped_elfs

# A function of each example binary, and the source file gdb must find for it.
FUNCTIONS = {
    "hello": ("main", "hello"),
    "libgreet.so.1.0.0": ("greet_message", "greet"),
    "libshapes.so.2.1.0": ("shapes::Circle::area", "shapes"),
    "shapes_user": ("main", "shapes_user"),
}


@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_every_shipped_binary_resolves_in_gdb(main_job: Path, policy: str) -> None:
    stage = main_job / "build/stage" / policy
    debug_dir = stage / "usr/lib/debug"
    elfs = shipped_elfs(stage, debug_dir)
    assert {e.name for e in elfs} >= {"hello", "libgreet.so.1.0.0", "libshapes.so.2.1.0"}
    assert_split_tree(stage, expected=len(elfs))
    for binary in elfs:
        function, source = FUNCTIONS[binary.name]
        out = gdb_info_line(debug_dir, binary, function)
        assert resolves(out, source), f"{binary}: {out}"


def test_debian_tree_has_only_build_id_files(main_job: Path) -> None:
    """Build-id named debug files, and the package's dwz multifile (dh_dwz's name), all compressed."""
    debug_dir = main_job / "build/stage/debian/usr/lib/debug"
    multifile = ".dwz/x86_64-linux-gnu/splitdebug-examples.debug"
    assert (debug_dir / multifile).is_file()
    for p in debug_dir.rglob("*"):
        if p.is_dir():
            continue
        rel = p.relative_to(debug_dir).as_posix()
        assert (rel.startswith(".build-id/") and rel.endswith(".debug") or rel == multifile) and not p.is_symlink(), rel
        out = subprocess.run(["readelf", "-W", "-S", str(p)], capture_output=True, text=True).stdout
        assert any(".debug_info" in line and " C " in line for line in out.splitlines()), f"{rel} not compressed"


def test_redhat_tree_links_resolve_inside(main_job: Path) -> None:
    stage = (main_job / "build/stage/redhat").resolve()
    links = [p for p in stage.rglob("*") if p.is_symlink()]
    assert len([p for p in links if "/.build-id/" in p.as_posix()]) == 3 * len(shipped_elfs(stage, stage / "usr/lib/debug"))
    for link in links:
        assert link.exists(), f"dangling: {link}"
        assert link.resolve().is_relative_to(stage), f"escapes: {link} -> {os.readlink(link)}"
    assert (stage / "usr/lib/debug/usr/bin/hello-1.0-1.x86_64.debug").is_file()


def test_summary_is_printed(main_job: Path) -> None:
    """The summary's numbers, against the stage itself: the four example binaries, the bytes of the
    shipped ELF files (not links), the bytes of every regular file holding debug info."""
    from conftest import run_scons
    out = run_scons(main_job, "-j2").stdout
    for policy in ("debian", "redhat", "yocto"):
        stage = main_job / "build/stage" / policy
        shipped = debug = 0
        for p in stage.rglob("*"):
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(stage).as_posix()
            if rel.startswith("usr/lib/debug/") or "/.debug/" in rel:
                debug += p.stat().st_size
            elif p.read_bytes()[:4] == b"\x7fELF":
                shipped += p.stat().st_size
        assert f"splitdebug [{policy}]: 4 binaries split, {shipped} bytes shipped, {debug} bytes of debug info " \
               f"({stage})" in out, out


def test_demo_debs_pass_lintian_with_no_error(main_job: Path) -> None:
    """The demo's .deb as dh_makeshlibs would leave it: DEBIAN/shlibs for its two libraries and the
    ldconfig trigger; lintian then reports no error (warnings about the demo itself stay: no man page)."""
    debs = sorted((main_job / "build/packages/debian").glob("*.deb"))
    assert len(debs) == 2
    proc = subprocess.run(["lintian", "--no-cfg", "--tag-display-limit", "0", *map(str, debs)],
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("E: ")]
    assert errors == [], proc.stdout
    main = next(d for d in debs if "-dbgsym" not in d.name)
    shlibs = subprocess.run(["dpkg-deb", "--info", str(main), "shlibs"], capture_output=True, text=True,
                            check=True).stdout
    assert shlibs.splitlines() == ["libgreet 1 splitdebug-examples", "libshapes 2 splitdebug-examples"]
    triggers = subprocess.run(["dpkg-deb", "--info", str(main), "triggers"], capture_output=True, text=True,
                              check=True).stdout
    assert "activate-noawait ldconfig" in triggers.splitlines()


@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_stage_debug_tree_is_what_the_packages_ship(main_job: Path, policy: str, tmp_path: Path) -> None:
    """The stage ran the policy's dwz pass: its debug tree is byte for byte the unpacked -dbgsym or
    -debuginfo package's, so `scons check` and gdb on the stage see what ships."""
    from distro_helpers import extract_deb, extract_rpm
    for pkg in sorted((main_job / "build/packages" / policy).rglob("*")):
        if pkg.suffix == ".deb":
            extract_deb(pkg, tmp_path)
        elif pkg.suffix == ".rpm":
            extract_rpm(pkg, tmp_path)
    stage = main_job / "build/stage" / policy

    def tree(base: Path) -> dict[str, str]:
        top = base / "usr/lib/debug"
        return {p.relative_to(top).as_posix(): ("-> " + os.readlink(p)) if p.is_symlink() else
                p.read_bytes().hex() if p.is_file() else "dir" for p in sorted(top.rglob("*"))}
    staged, shipped = tree(stage), tree(tmp_path)
    assert any(k.startswith(".dwz/") for k in staged), sorted(staged)  # the pass made a multifile
    assert staged.keys() == shipped.keys()
    assert [k for k in staged if staged[k] != shipped[k]] == []
