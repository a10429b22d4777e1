"""Debian end to end: split with dwz, the -dbgsym and main .deb, lintian and gdb on them."""

from __future__ import annotations

import hashlib
import re
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from distro_helpers import (NAME, VERSION, RELEASE, altlink, build_unstripped, extract_deb, gdb, listing,
                            package, section_names, split, write_sources)
from splitdebug.elf import read as elfread

DEB_VERSION = f"{VERSION}-{RELEASE}"
MULTIFILE = f"/usr/lib/debug/.dwz/x86_64-linux-gnu/{NAME}.debug"
LIBDIR = "/usr/lib/x86_64-linux-gnu"
# The lintian tags about stripping and debug symbols (lintian 2.116): none may be an error or warning.
DEBUG_TAGS = {
    "unstripped-binary-or-object", "binary-has-unneeded-section", "stripped-library",
    "debug-file-with-no-debug-symbols", "debug-symbols-not-detached", "non-debug-file-in-debug-package",
    "debug-symbols-directly-in-usr-lib-debug", "library-in-debug-or-profile-should-not-be-executable",
    "debug-package-should-be-priority-optional", "debug-package-for-multi-arch-same-pkg-not-coinstallable",
    "dbg-package-missing-depends", "elf-error", "hardening-no-pie",
}


@dataclass(frozen=True)
class Debian:
    src: Path
    root: Path
    debs: dict[str, Path]
    bins: dict[str, Path]


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Debian:
    base = tmp_path_factory.mktemp("debian")
    src = write_sources(base / "src")
    root = base / "root"
    bins = build_unstripped(src, root, LIBDIR)
    split(root, "debian", "--package", NAME, "--source-root", src)
    return Debian(src, root, package(root, "debian", base / "debs"), bins)


def build_id(path: Path) -> str:
    bid = elfread.read_elf(path).build_id
    assert bid is not None
    return bid


def test_tree_is_dh_strip_and_dh_dwz_layout(deb: Debian) -> None:
    dbg = deb.root / "usr/lib/debug"
    ids = {build_id(b) for b in deb.bins.values()}
    expected = {f"/usr/lib/debug/.build-id/{i[:2]}/{i[2:]}.debug" for i in ids} | {MULTIFILE}
    files = {e for e, kind in listing(deb.root, "/usr/lib/debug") if kind.startswith("file")}
    assert files == expected
    assert all(kind in ("file 644", "dir 755") for _, kind in listing(deb.root, "/usr/lib/debug"))
    for debug in dbg.rglob("*.debug"):
        # zlib-compressed (after dwz: it cannot read compressed input); altlink by absolute path.
        out = subprocess.run(["readelf", "-W", "-S", str(debug)], capture_output=True, text=True).stdout
        assert re.search(r"\.debug_info\s.*\bC\b", out), debug
        if debug.as_posix().endswith(MULTIFILE):
            continue
        assert altlink(debug) == MULTIFILE, debug
    for name in ("prog", "tool", "prog-hardlink", "prog-copy"):
        binary = deb.root / "usr/bin" / name
        info = elfread.read_elf(binary)
        # dh_dwz runs before dh_strip and leaves .gnu_debugaltlink in what ships; this does not.
        assert ".gnu_debugaltlink" not in section_names(binary) and not info.has_debug
        link, crc = elfread.read_debuglink(binary, info)
        debug = dbg / ".build-id" / info.build_id[:2] / f"{info.build_id[2:]}.debug"
        assert link == debug.name and crc == zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF


def test_source_paths_are_dpkg_buildflags_style(deb: Debian) -> None:
    out = gdb(deb.bins["tool"], deb.root / "usr/lib/debug", "list tool_entry", "info source")
    assert "Compilation directory is .\n" in out, out  # -ffile-prefix-map=<src>=. as dpkg-buildflags
    assert not (deb.root / "usr/src").exists()


def control(path: Path) -> dict[str, str]:
    text = subprocess.run(["dpkg-deb", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith(" "):
            continue
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields


def test_dbgsym_control_is_dh_gencontrols(deb: Debian) -> None:
    assert deb.debs["dbgsym"].name == f"{NAME}-dbgsym_{DEB_VERSION}_amd64.deb"
    assert deb.debs["main"].name == f"{NAME}_{DEB_VERSION}_amd64.deb"
    fields = control(deb.debs["dbgsym"])
    assert list(fields) == ["Package", "Source", "Version", "Auto-Built-Package", "Architecture", "Maintainer",
                            "Installed-Size", "Depends", "Section", "Priority", "Description", "Build-Ids"]
    assert fields["Package"] == f"{NAME}-dbgsym" and fields["Source"] == NAME
    assert fields["Version"] == DEB_VERSION and fields["Architecture"] == "amd64"
    assert fields["Auto-Built-Package"] == "debug-symbols"
    assert fields["Depends"] == f"{NAME} (= {DEB_VERSION})"
    assert (fields["Section"], fields["Priority"]) == ("debug", "optional")
    assert fields["Description"] == f"debug symbols for {NAME}"
    assert fields["Build-Ids"] == " ".join(sorted({build_id(b) for b in deb.bins.values()}))
    main = control(deb.debs["main"])
    assert main["Package"] == NAME and "Source" not in main and main["Depends"].startswith("libc6 (>= ")
    contents = subprocess.run(["dpkg-deb", "-c", str(deb.debs["dbgsym"])], capture_output=True, text=True,
                              check=True).stdout
    assert re.search(rf"^lrwxrwxrwx root/root .* \./usr/share/doc/{NAME}-dbgsym -> {NAME}$", contents, re.M)
    assert all(line.split()[1] == "root/root" for line in contents.splitlines())


def test_lintian_has_nothing_to_say_about_stripping_or_debug_symbols(deb: Debian) -> None:
    proc = subprocess.run(["lintian", "--no-cfg", "--debug", "-I", "--tag-display-limit", "0",
                           str(deb.debs["main"]), str(deb.debs["dbgsym"])], capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 2), proc.stderr  # 2: error tags (about the demo binaries themselves)
    tags = re.findall(r"^([EWI]): (\S+): (\S+)", proc.stdout, re.M)
    # Both packages went through the checks (--debug says so), including the binaries and debug ones.
    for check in ("binaries/debug-symbols/detached", "files/debug-packages", "debug/automatic"):
        assert f"Running check: {check} on binary:{NAME}-dbgsym_" in proc.stdout + proc.stderr, check
    assert ("W", NAME, "no-manual-page") in tags
    bad = [t for t in tags if t[0] in "EW" and (t[2] in DEBUG_TAGS or "strip" in t[2] or "debug" in t[2]
                                                  or t[1].endswith("-dbgsym"))]
    assert bad == [], proc.stdout


def test_gdb_reads_the_unpacked_packages(deb: Debian, tmp_path: Path) -> None:
    for path in deb.debs.values():
        extract_deb(path, tmp_path)
    assert (tmp_path / MULTIFILE.lstrip("/")).is_file()
    assert (tmp_path / f"usr/share/doc/{NAME}-dbgsym").readlink() == Path(NAME)
    for binary, function in (("usr/bin/prog", "prog_entry"), ("usr/bin/tool", "tool_entry"),
                             (f"{LIBDIR}/libdemo.so.1.0", "lib_entry")):
        out = gdb(tmp_path / binary.lstrip("/"), tmp_path / "usr/lib/debug", f"info line {function}",
                  "info types demo_record")
        assert re.search(r'Line \d+ of "[^"]+" starts at address', out), out
        # demo_record lives in the dwz multifile: gdb found it through the altlink.
        assert "struct demo_record" in out and "could not find" not in out, out


def test_packages_are_reproducible(deb: Debian, tmp_path: Path) -> None:
    again = package(deb.root, "debian", tmp_path / "again")
    for role, path in deb.debs.items():
        assert hashlib.sha256(again[role].read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), role
    listing_ = subprocess.run(["dpkg-deb", "-c", str(again["main"])], capture_output=True, text=True).stdout
    assert all(" 2023-11-14 22:13 " in line for line in listing_.splitlines())  # SOURCE_DATE_EPOCH, UTC


def test_main_job_debs(main_job: Path, tmp_path: Path) -> None:
    out = main_job / "build/packages/debian"
    debs = {p.name for p in out.glob("*.deb")}
    assert debs == {"splitdebug-examples_1.0-1_amd64.deb", "splitdebug-examples-dbgsym_1.0-1_amd64.deb"}
    for d in out.glob("*.deb"):
        extract_deb(d, tmp_path)
    assert (tmp_path / "usr/lib/debug/.dwz/x86_64-linux-gnu/splitdebug-examples.debug").is_file()
    for binary in (tmp_path / "usr/bin").iterdir():
        assert ".gnu_debugaltlink" not in section_names(binary)
        out_gdb = gdb(binary, tmp_path / "usr/lib/debug", "info line main")
        assert re.search(r'Line \d+ of "[^"]+" starts at address', out_gdb) and "could not find" not in out_gdb


def test_rerun_changes_nothing_and_finishes_an_interrupted_dwz_pass(deb: Debian, tmp_path: Path) -> None:
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", f"{deb.root}/.", str(root)], check=True)
    debug_files = sorted(p for p in (root / "usr/lib/debug").rglob("*") if p.is_file())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in debug_files}
    split(root, "debian", "--package", NAME)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in debug_files} == before
    # As if the pass had been killed after dwz, before compressing one file and fixing its CRC.
    tool = root / "usr/bin/tool"
    info = elfread.read_elf(tool)
    debug = root / "usr/lib/debug/.build-id" / info.build_id[:2] / f"{info.build_id[2:]}.debug"
    subprocess.run(["objcopy", "--decompress-debug-sections", str(debug)], check=True)
    with open(tool, "r+b") as f:
        f.seek(elfread.debuglink_crc_offset(info))
        f.write(b"\0\0\0\0")
    split(root, "debian", "--package", NAME)
    assert re.search(r"\.debug_info\s.*\bC\b", subprocess.run(["readelf", "-W", "-S", str(debug)],
                                                             capture_output=True, text=True).stdout)
    assert elfread.read_debuglink(tool, elfread.read_elf(tool))[1] == zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF


def test_package_dwz_on_the_scons_stage_matches_the_package_alias(main_job: Path, tmp_path: Path) -> None:
    """`splitdebug package --dwz` on the stage SCons made = what `scons package` built from it."""
    from conftest import run_cli
    stage = main_job / "build/stage/debian"
    before = listing(stage)
    proc = run_cli("package", "--policy", "debian", "--name", "splitdebug-examples", "--version", "1.0",
                   "--release", "1", "--dwz", "--output", tmp_path, stage)
    assert proc.returncode == 0, proc.stderr
    assert listing(stage) == before  # the stage is copied, never changed
    name = "splitdebug-examples-dbgsym_1.0-1_amd64.deb"

    def contents(deb: Path) -> list[str]:
        out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
        return sorted(" ".join(line.split()[:2] + line.split()[5:]) for line in out.splitlines())
    assert contents(tmp_path / name) == contents(main_job / "build/packages/debian" / name)
    assert any("/.dwz/x86_64-linux-gnu/splitdebug-examples.debug" in line for line in contents(tmp_path / name))
