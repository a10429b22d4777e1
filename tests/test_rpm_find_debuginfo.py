"""Acceptance of `splitdebug find-debuginfo` inside the real rpmbuild: a real upstream tarball (zlib, from
../shared/corpus/fetch.sh) with a plain Fedora-style spec using rpm's stock `%debug_package`, built with
stock find-debuginfo and with the README's `%__find_debuginfo` line, in the same _topdir (debugedit hashes
the build directory's path into the re-seeded build-ids). Every rpm: the same files (`rpm -qlp`), provides
(`debuginfo(build-id) = …`), requires and recommends, apart from the README's listed differences; the
same build-ids; gdb reads the unpacked packages. Once more with `%_debuginfo_subpackages`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, SITE_SCONS, env_with_package, resolves, run_cli
from corpus_helpers import CORPUS, fetch
from distro_helpers import altlink, extract_rpm, gdb
from splitdebug.elf import read as elfread

pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None or not os.access("/usr/bin/find-debuginfo", os.X_OK),
                                reason="rpmbuild and find-debuginfo (debugedit) needed")
NVR = "1.2.13-1"
LUA_NVR = "5.4.4-1"

# A Fedora-style spec; the macros below are Fedora's defaults (redhat-rpm-config), which Debian's rpm lacks.
SPEC = """\
{snippet}
Name: zlib
Version: 1.2.13
Release: 1
Summary: zlib compression library
License: Zlib
Source0: {tarball}
%global _debugsource_packages 1
%global _include_minidebuginfo 1
%global _find_debuginfo_dwz_opts --run-dwz
%global _build_id_links compat

%description
The zlib compression library.

%package tools
Summary: minigzip, against the shared library and static (dwz shares zlib's types between them)
Requires: zlib = %{{version}}-%{{release}}
%description tools
minigzip.

%debug_package

%prep
%setup -q -n {topdir}

%build
CFLAGS="-O2 -g" ./configure --prefix=/usr --libdir=/usr/lib64
make

%install
make install DESTDIR=%{{buildroot}}
install -D -m 755 minigzipsh %{{buildroot}}/usr/bin/minigzip
install -D -m 755 minigzip %{{buildroot}}/usr/bin/minigzip-static
{install_extra}

%files
/usr/lib64/libz.so*
/usr/lib64/libz.a
/usr/lib64/pkgconfig/zlib.pc
/usr/include/*.h
/usr/share/man/man3/zlib.3*

%files tools
/usr/bin/minigzip
/usr/bin/minigzip-static
"""


def readme_snippet() -> str:
    """The first ```spec block of README.md's "From an rpm spec" section, exactly as shown."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### From an rpm spec"):]
    match = re.search(r"```spec\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = sorted(fetch("zlib").glob("zlib_*.orig.tar.*"))
    assert found, f"fetch.sh left no zlib tarball in {CORPUS}"
    return found[0]


@dataclass(frozen=True)
class Build:
    rpms: dict[str, Path]  # package name -> rpm
    root: Path             # every rpm unpacked into one root
    log: str


def rpmbuild(base: Path, tarball: Path, name: str, snippet: str, *defines: str, install_extra: str = "",
             spec: str = SPEC, nvr: str = NVR) -> Build:
    """Build the spec in base/top (shared by every build, see the module's docstring); keep the rpms."""
    top = base / "top"
    (top / "SOURCES").mkdir(parents=True, exist_ok=True)
    shutil.copy2(tarball, top / "SOURCES" / tarball.name)
    topdir = subprocess.run(["tar", "tf", str(tarball)], capture_output=True, text=True,
                            check=True).stdout.split("/", 1)[0]
    spec_file = base / f"{name}.spec"
    spec_file.write_text(spec.format(snippet=snippet, tarball=tarball.name, topdir=topdir, install_extra=install_extra))
    bindir = base / "bin"  # `splitdebug` on PATH, as an installed one would be
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "splitdebug"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={SITE_SCONS} exec python3 -m splitdebug "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPM_")}
    env["PATH"] = f"{bindir}:{env['PATH']}"
    argv = ["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}"]
    for d in defines:
        argv += ["--define", d]
    proc = subprocess.run([*argv, str(spec_file)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"rpmbuild {name}: {proc.stderr[-3000:]}\n--- stdout ---\n{proc.stdout[-3000:]}"
    out = base / name
    shutil.move(top / "RPMS", out)
    rpms = {p.name.removesuffix(f"-{nvr}.x86_64.rpm"): p for p in out.rglob("*.rpm")}
    root = base / f"{name}-root"
    for rpm in rpms.values():
        extract_rpm(rpm, root)
    return Build(rpms, root, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, tarball: Path) -> dict[str, Build]:
    base = tmp_path_factory.mktemp("rpmfdi")
    return {"stock": rpmbuild(base, tarball, "stock", ""),
            "ours": rpmbuild(base, tarball, "ours", readme_snippet())}


def query(rpm: Path, *what: str) -> list[str]:
    return subprocess.run(["rpm", "-qp", *what, str(rpm)], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def unused_multifiles(root: Path) -> set[str]:
    """dwz multifiles no debug file of the tree refers to (find-debuginfo ships them; we remove them)."""
    dwz = root / "usr/lib/debug/.dwz"
    if not dwz.is_dir():
        return set()
    used = {os.path.basename(name) for p in (root / "usr/lib/debug").rglob("*.debug") if not p.is_symlink()
            if (name := altlink(p)) is not None}
    unused = {f"/usr/lib/debug/.dwz/{p.name}" for p in dwz.iterdir() if p.name not in used}
    return unused | ({"/usr/lib/debug/.dwz"} if unused and not used else set())


def compare(stock: Build, ours: Build, name: str = "zlib", nvr: str = NVR,
            images: tuple[str, ...] = ("usr/lib64/libz.so.1.2.13", "usr/bin/minigzip")) -> None:
    assert "splitdebug find-debuginfo:" in ours.log and "splitdebug find-debuginfo:" not in stock.log
    assert set(ours.rpms) == set(stock.rpms)
    unused = unused_multifiles(stock.root)
    for pkg, rpm in stock.rpms.items():
        assert query(ours.rpms[pkg], "-l") == [p for p in query(rpm, "-l") if p not in unused], pkg
        for what in ("--provides", "--requires", "--recommends", "--suggests", "--conflicts"):
            theirs = query(rpm, what)
            if what == "--requires" and unused and pkg.endswith("-debuginfo") and pkg != f"{name}-debuginfo":
                # rpm makes a sub-package's -debuginfo require the main one when that ships a dwz
                # multifile: find-debuginfo's unused one does; ours is removed (README).
                theirs.remove(f"{name}-debuginfo(x86-64) = {nvr}")
            assert query(ours.rpms[pkg], what) == theirs, (pkg, what)
    # The same build-ids, in the shipped binaries and the debug files alike.
    for image in images:
        for path in (image, f"usr/lib/debug/{image}-{nvr}.x86_64.debug"):
            theirs_id = elfread.read_elf(stock.root / path).build_id
            mine = elfread.read_elf(ours.root / path).build_id
            assert mine is not None and mine == theirs_id, path
        provides = [line for pkg, rpm in ours.rpms.items() if pkg.endswith("-debuginfo")
                    for line in query(rpm, "--provides")]
        assert f"debuginfo(build-id) = {elfread.read_elf(ours.root / image).build_id}" in provides


def test_stock_debug_package_with_our_find_debuginfo(builds: dict[str, Build]) -> None:
    stock, ours = builds["stock"], builds["ours"]
    assert set(stock.rpms) == {"zlib", "zlib-tools", "zlib-debuginfo", "zlib-debugsource"}
    compare(stock, ours)
    # Shipped binaries stripped, with minidebuginfo; the debug file found by build-id; sources shipped.
    lib = ours.root / "usr/lib64/libz.so.1.2.13"
    info = elfread.read_elf(lib)
    assert info.section(".symtab") is None and info.section(".gnu_debugdata") is not None
    assert info.section(".debug_info") is None
    src = ours.root / f"usr/src/debug/zlib-{NVR}.x86_64"
    assert (src / "deflate.c").is_file() and (src / "test/minigzip.c").is_file()


def test_gdb_reads_the_unpacked_packages(builds: dict[str, Build]) -> None:
    root = builds["ours"].root
    debug_dir = root / "usr/lib/debug"
    src = root / f"usr/src/debug/zlib-{NVR}.x86_64"
    out = gdb(root / "usr/lib64/libz.so.1.2.13", debug_dir, "info line deflateInit2_",
              f"set substitute-path /usr/src/debug/zlib-{NVR}.x86_64 {src}", "list deflateInit2_")
    assert resolves(out, "deflate"), out
    assert "deflateInit2_" in out.split("starts at address", 1)[1], out  # `list` printed the shipped source
    out = gdb(root / "usr/bin/minigzip", debug_dir, "info line gz_compress")
    assert resolves(out, "minigzip"), out
    # A type dwz moved into the multifile, read through the library's .gnu_debugaltlink.
    multifile = root / f"usr/lib/debug/.dwz/zlib-{NVR}.x86_64"
    libdebug = debug_dir / f"usr/lib64/libz.so.1.2.13-{NVR}.x86_64.debug"
    assert altlink(libdebug) == f"../../.dwz/zlib-{NVR}.x86_64"
    dump = subprocess.run(["readelf", "--debug-dump=info", str(multifile)], capture_output=True, text=True).stdout
    assert "z_stream_s" in dump
    out = gdb(root / "usr/lib64/libz.so.1.2.13", debug_dir, "ptype z_stream")
    assert "type = struct z_stream_s {" in out and "next_in;" in out, out


def test_debuginfo_subpackages(builds: dict[str, Build], tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("rpmfdi-sub")
    sub = "_debuginfo_subpackages 1"
    stock = rpmbuild(base, tarball, "stock", "", sub)
    ours = rpmbuild(base, tarball, "ours", readme_snippet(), sub)
    assert "zlib-tools-debuginfo" in stock.rpms
    compare(stock, ours)
    assert any("minigzip" in p for p in query(ours.rpms["zlib-tools-debuginfo"], "-l"))


def check(root: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in env_with_package().items() if not k.startswith("RPM_")}
    proc = run_cli("check", "--policy", "redhat", root, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def test_check_on_the_unpacked_rpms(builds: dict[str, Build]) -> None:
    """No flags, no RPM_* variables: version-release.arch read from the tree. rpm's dangling compat link
    (brp-elfperms took the library's execute bit, so rpm made no /usr/lib/.build-id link) is a warning."""
    for who in ("stock", "ours"):
        code, out, err = check(builds[who].root)
        assert code == 0, out + err
        assert err == ("splitdebug: check: version=1.2.13 release=1 arch=x86_64, read from the debug file "
                       f"/usr/lib/debug/usr/bin/minigzip-{NVR}.x86_64.debug\n")
        # The policy's main link is `if_executable`: none is expected for the 0644 library, and the
        # compat link that leads to it is the one warning.
        assert "SD501" not in out, out
        assert re.search(r"^warning SD503 dangling-symlink /usr/lib/debug/.build-id/.*made only for files with an "
                         r"exec bit", out, re.M), out


def test_check_reports_a_library_brp_strip_stripped(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Installed 0644, the library is left alone by find-debuginfo and stripped by brp-strip (strip -g):
    its debug info is lost, and check says so."""
    base = tmp_path_factory.mktemp("rpmfdi-0644")
    stock = rpmbuild(base, tarball, "stock", "", install_extra="chmod 0644 %{buildroot}/usr/lib64/libz.so.1.2.13")
    assert not any("libz.so" in p for p in query(stock.rpms["zlib-debuginfo"], "-l"))
    code, out, err = check(stock.root)
    assert code == 1, out + err
    assert re.search(r"^error SD\d+ \S+ /usr/lib64/libz.so.1.2.13: ", out, re.M), out


# Lua has no shared library upstream: the spec links one from the same objects, as distributions do.
LUA_SPEC = """\
Name: lua
Version: 5.4.4
Release: 1
Summary: Lua
License: MIT
Source0: {tarball}
%global _debugsource_packages 1
%global _include_minidebuginfo 1
%global _find_debuginfo_dwz_opts --run-dwz
%global _build_id_links compat
{snippet}

%description
Lua.

%debug_package

%prep
%setup -q -n {topdir}

%build
make %{{?_smp_mflags}} linux MYCFLAGS="-fPIC -g"
cd src && gcc -shared -g -Wl,-soname,liblua.so.5.4 -o liblua.so.5.4.4 $(ls *.o | grep -v -e '^lua\\.o$' -e '^luac\\.o$') -lm

%install
make install INSTALL_TOP=%{{buildroot}}/usr INSTALL_LIB=%{{buildroot}}/usr/lib64 \\
    INSTALL_MAN=%{{buildroot}}/usr/share/man/man1
install -m 755 src/liblua.so.5.4.4 %{{buildroot}}/usr/lib64/
ln -s liblua.so.5.4.4 %{{buildroot}}/usr/lib64/liblua.so.5.4

%files
/usr/bin/lua
/usr/bin/luac
/usr/include/*
/usr/lib64/liblua*
/usr/share/man/man1/*
"""


def test_lua(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The second tarball: lua5.4 (two programs and a static archive sharing one code base, a shared library)."""
    found = sorted(fetch("lua5.4").glob("lua5.4_*.orig.tar.*"))
    assert found, f"fetch.sh left no lua5.4 tarball in {CORPUS}"
    base = tmp_path_factory.mktemp("rpmfdi-lua")
    stock = rpmbuild(base, found[0], "stock", "", spec=LUA_SPEC, nvr=LUA_NVR)
    ours = rpmbuild(base, found[0], "ours", readme_snippet(), spec=LUA_SPEC, nvr=LUA_NVR)
    assert set(stock.rpms) == {"lua", "lua-debuginfo", "lua-debugsource"}
    compare(stock, ours, "lua", LUA_NVR, ("usr/bin/lua", "usr/bin/luac", "usr/lib64/liblua.so.5.4.4"))
    debug_dir = ours.root / "usr/lib/debug"
    out = gdb(ours.root / "usr/lib64/liblua.so.5.4.4", debug_dir, "info line lua_newstate", "ptype lua_State")
    assert resolves(out, "lstate"), out
    assert "type = struct lua_State {" in out, out
    assert altlink(debug_dir / f"usr/lib64/liblua.so.5.4.4-{LUA_NVR}.x86_64.debug") == f"../../.dwz/lua-{LUA_NVR}.x86_64"
    dump = subprocess.run(["readelf", "--debug-dump=info", str(debug_dir / f".dwz/lua-{LUA_NVR}.x86_64")],
                          capture_output=True, text=True).stdout
    assert re.search(r"DW_TAG_structure_type\)\n(.*\n){0,2}.*lua_State", dump), "lua_State is not in the multifile"
