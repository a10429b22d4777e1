"""dh_splitdebug on a small source package's built trees, against the real dh_dwz + dh_strip on a copy:
the same files in debian/ (the -dbgsym roots, build-ids, migration files), and the debhelper options."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SITE_SCONS, compile_c

MA = "x86_64-linux-gnu"
CONTROL = """\
Source: demo
Section: libs
Priority: optional
Maintainer: Test <test@example.org>
Build-Depends: debhelper-compat (= 13)

Package: demo
Architecture: any
Description: programs
 programs

Package: libdemo1
Architecture: any
Multi-Arch: same
Description: library
 library

Package: libdemo-dev
Architecture: any
Section: libdevel
Description: static library
 static library

Package: demo-data
Architecture: all
Description: data
 data
"""
HEADER = "struct shared_%d { int a%d; long b; char c[%d]; struct shared_%d *next; };\n"
TYPES = "".join(HEADER % (i, i, i + 1, i) for i in range(40))
USES = "".join(f"struct shared_{i} v{i};\n" for i in range(40))


def dh_env(**extra: str) -> dict[str, str]:
    """dh_splitdebug from this checkout (a wrapper first on PATH), the addon on PERL5LIB."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DEB_BUILD_OPTIONS", "DH_OPTIONS", "DH_VERBOSE", "DH_INTERNAL_OPTIONS", "DH_QUIET")}
    env["PYTHONPATH"] = str(SITE_SCONS) + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = str(wrapper_dir()) + os.pathsep + env["PATH"]
    env["PERL5LIB"] = str(SITE_SCONS.parent / "debhelper/perl") + os.pathsep + env.get("PERL5LIB", "")
    env.update(extra)
    return env


def wrapper_dir() -> Path:
    d = Path(os.environ.get("TMPDIR", "/tmp")) / f"splitdebug-dh-bin-{os.getuid()}-{hashlib.sha1(str(SITE_SCONS).encode()).hexdigest()[:8]}"
    tool = d / "dh_splitdebug"
    text = f'#!/bin/sh\nexec {sys.executable} -m splitdebug.cli.dh "$@"\n'
    if not tool.exists() or tool.read_text() != text:
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".dh_splitdebug.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(tool)
    return d


def make_source(base: Path, control: str = CONTROL) -> Path:
    """A source package as dh_install leaves it: two programs sharing types (a dwz multifile), a
    library (mode 0644, as installed), a static archive, an arch: all data package."""
    src = base / "src"
    (src / "debian").mkdir(parents=True)
    (src / "debian/control").write_text(control)
    (src / "debian/changelog").write_text("demo (1.0-1) unstable; urgency=medium\n\n  * Test.\n\n"
                                          " -- Test <test@example.org>  Mon, 30 Nov 2026 00:00:00 +0000\n")
    for i, name in enumerate(("prog", "prog2")):
        compile_c(src / f"debian/demo/usr/bin/{name}",
                  TYPES + USES + f"int main(void) {{ return v{i}.a{i}; }}\n")
    lib = compile_c(src / f"debian/libdemo1/usr/lib/{MA}/libdemo.so.1", TYPES + USES +
                    "int demo_add(int a, int b) { return a + b + v3.a3; }\n", shared=True)
    lib.chmod(0o644)
    os.symlink("libdemo.so.1", lib.parent / "libdemo.so")
    obj = compile_c(base / "obj/demo.o", "int demo_static(int x) { return x * 7; }\n", flags=("-c",))
    archive = src / f"debian/libdemo-dev/usr/lib/{MA}/libdemo.a"
    archive.parent.mkdir(parents=True)
    subprocess.run(["ar", "rcs", str(archive), str(obj)], check=True)
    (src / "debian/demo-data/usr/share/demo").mkdir(parents=True)
    (src / "debian/demo-data/usr/share/demo/data.txt").write_text("data\n")
    return src


def snapshot(debian: Path) -> dict[str, str]:
    """Every path under debian/ with its kind (and a symlink's target): what packages are made of."""
    out = {}
    for p in sorted(debian.rglob("*")):
        rel = p.relative_to(debian).as_posix()
        out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else "dir" if p.is_dir() else "file"
    return out


def contents(debian: Path) -> dict[str, bytes]:
    return {p.relative_to(debian).as_posix(): p.read_bytes() for p in sorted(debian.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def dh_split(src: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dh_splitdebug", *args], cwd=src, env=dh_env(**env), capture_output=True, text=True)


def stock(src: Path, *args: str, **env: str) -> None:
    """The real thing: dh_dwz then dh_strip, with the same options."""
    for tool in ("dh_dwz", "dh_strip"):
        opts = [a for a in args if tool == "dh_strip" or not a.startswith(("--dbg", "-k", "--keep", "--no-auto"))]
        subprocess.run([tool, *opts], cwd=src, env=dh_env(**env), check=True, capture_output=True, text=True)


def sections(path: Path) -> str:
    return subprocess.run(["readelf", "-WS", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """Two identical copies of the built source package: one for dh_strip, one for dh_splitdebug."""
    src = make_source(tmp_path / "a")
    other = tmp_path / "b/src"
    shutil.copytree(src, other, symlinks=True)
    return src, other


@pytest.mark.parametrize("args,env", [
    ((), {}),
    (("--dbgsym-migration=demo-dbg (<< 1.0)",), {}),
    (("-Xprog2",), {}),
    (("-Nlibdemo1",), {}),
    (("-plibdemo1", "-pdemo"), {}),
    (("-a",), {}),
    ((), {"DEB_BUILD_OPTIONS": "noautodbgsym"}),
    ((), {"DH_OPTIONS": "-Ndemo"}),
    (("--keep-debug",), {}),
    (("--no-automatic-dbgsym",), {}),
], ids=["default", "migration", "exclude", "no-package", "packages", "arch", "noautodbgsym", "dh-options",
        "keep-debug", "no-automatic-dbgsym"])
def test_same_files_as_dh_dwz_and_dh_strip(pair: tuple[Path, Path], args: tuple[str, ...],
                                           env: dict[str, str]) -> None:
    ours, theirs = pair
    proc = dh_split(ours, *args, **env)
    assert proc.returncode == 0, proc.stderr
    stock(theirs, *args, **env)
    expected = snapshot(theirs / "debian")
    if "--no-automatic-dbgsym" in args:
        # Deliberate (README): with no debug package, dh_dwz's multifile stays in the package with
        # nothing to refer to it once dh_strip has stripped the programs; dh_splitdebug makes none.
        expected = {k: v for k, v in expected.items() if not k.startswith("demo/usr/lib")}
    assert snapshot(ours / "debian") == expected
    for name in ("dbgsym-build-ids", "dbgsym-migration"):  # byte for byte: dh_gencontrol reads them
        for pkg in ("demo", "libdemo1", "libdemo-dev", "demo-data"):
            mine, stock_file = (d / "debian/.debhelper" / pkg / name for d in (ours, theirs))
            assert mine.exists() == stock_file.exists(), (pkg, name)
            if mine.exists():
                assert mine.read_text() == stock_file.read_text()
    archive = ours / f"debian/libdemo-dev/usr/lib/{MA}/libdemo.a"
    stripped_archive = not any(a.startswith("-p") for a in args)  # -p names others: the -dev is left alone
    assert (".debug_info" not in sections(archive)) == stripped_archive


def test_default_run_writes_the_dbgsym_roots(pair: tuple[Path, Path]) -> None:
    src, _ = pair
    assert dh_split(src).returncode == 0
    dbgsym = src / "debian/.debhelper/demo/dbgsym-root"
    assert os.readlink(dbgsym / "usr/share/doc/demo-dbgsym") == "demo"
    assert (dbgsym / f"usr/lib/debug/.dwz/{MA}/demo.debug").is_file()  # two programs: one multifile
    ids = (src / "debian/.debhelper/demo/dbgsym-build-ids").read_text()
    assert ids.endswith(" ") and ids.split() == sorted(ids.split()) and len(ids.split()) == 2
    for bid in ids.split():
        assert (dbgsym / f"usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug").is_file()
    assert ".gnu_debuglink" in sections(src / "debian/demo/usr/bin/prog")
    assert not (src / "debian/demo-data/usr/lib").exists()  # arch: all with no ELF: nothing made
    assert not (src / "debian/.debhelper/demo-data").exists()


def test_dbg_package_gets_every_build_id(tmp_path: Path) -> None:
    control = CONTROL + "\nPackage: libdemo1-dbg\nArchitecture: any\nSection: debug\nDescription: d\n d\n"
    ours = make_source(tmp_path / "a", control)
    (ours / "debian/libdemo1-dbg").mkdir()
    theirs = tmp_path / "b/src"
    shutil.copytree(ours, theirs, symlinks=True)
    assert dh_split(ours, "--dbg-package=libdemo1-dbg").returncode == 0
    stock(theirs, "--dbg-package=libdemo1-dbg")
    assert snapshot(ours / "debian") == snapshot(theirs / "debian")
    ids = (ours / "debian/.debhelper/libdemo1-dbg/dbgsym-build-ids").read_text()
    assert ids == (theirs / "debian/.debhelper/libdemo1-dbg/dbgsym-build-ids").read_text()
    assert len(ids.split()) == 3


def test_nostrip_touches_nothing(pair: tuple[Path, Path]) -> None:
    src, _ = pair
    before = contents(src / "debian")
    proc = dh_split(src, DEB_BUILD_OPTIONS="nostrip")
    assert proc.returncode == 0, proc.stderr
    assert contents(src / "debian") == before
    assert not (src / "debian/.debhelper").exists()


def test_verbose_lists_what_it_does(pair: tuple[Path, Path]) -> None:
    src, _ = pair
    quiet = dh_split(src, "-pdemo")
    assert quiet.stdout == ""
    loud = dh_split(src, "-plibdemo1", DH_VERBOSE="1")
    assert f"split /usr/lib/{MA}/libdemo.so.1 -> /usr/lib/debug/.build-id/" in loud.stdout


def test_second_run_changes_nothing(pair: tuple[Path, Path]) -> None:
    src, _ = pair
    assert dh_split(src).returncode == 0
    first = contents(src / "debian")
    assert dh_split(src).returncode == 0
    assert contents(src / "debian") == first


@pytest.mark.parametrize("case", ["control", "package", "no-package", "dir", "dbg-package", "option"])
def test_bad_input_is_one_line_and_changes_nothing(pair: tuple[Path, Path], case: str) -> None:
    src, _ = pair
    args: tuple[str, ...] = ()
    if case == "control":
        with open(src / "debian/control", "a") as f:
            f.write("\nthis is not a field\n")
        name = "debian/control:"
    elif case == "package":
        args, name = ("-pnosuch",), "nosuch"
    elif case == "no-package":
        args, name = ("-Nnosuch",), "nosuch"
    elif case == "dbg-package":
        args, name = ("--dbg-package=nosuch-dbg",), "nosuch-dbg"
    elif case == "option":
        args, name = ("--frobnicate",), "--frobnicate"
    else:
        shutil.rmtree(src / "debian/libdemo1")
        name = "libdemo1"
    before = snapshot(src / "debian"), contents(src / "debian")
    proc = dh_split(src, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dh_splitdebug: error: ") and name in lines[0], proc.stderr
    assert (snapshot(src / "debian"), contents(src / "debian")) == before


def test_sequence_addon_replaces_dh_dwz_and_dh_strip(tmp_path: Path) -> None:
    src = make_source(tmp_path)
    (src / "debian/rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@ --with splitdebug\n")
    (src / "debian/rules").chmod(0o755)
    proc = subprocess.run(["dh", "binary", "--with", "splitdebug", "--no-act"], cwd=src, env=dh_env(),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    commands = [line.strip().split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert "dh_splitdebug" in commands and "dh_strip" not in commands and "dh_dwz" not in commands
    assert commands.index("dh_splitdebug") < commands.index("dh_makeshlibs")
