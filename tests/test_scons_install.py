"""SCons as its users write it: plain Install / InstallAs / InstallVersionedLib of what the tool's builders
return, `LIBS=lib`, and a stage that follows the configuration (policy changes, `scons -c`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import REPO, gdb_info_line, resolves, run_cli, run_scons

SCONSTRUCT = """
import os
env = Environment(tools=["default", "splitdebug"], SPLITDEBUG_POLICY=ARGUMENTS.get("POLICY", "debian"),
                  DESTDIR="#stage", PACKAGE_NAME="demo", PACKAGE_VERSION="1.0", PACKAGE_RELEASE="1")
SConscript("src/SConscript", variant_dir="build", duplicate=False, exports=["env"])
Default("stage")
"""

SCONSCRIPT = """
Import("env")
MODE = ARGUMENTS.get("MODE", "install")
util = env.StaticLibrary("util/util", ["util/util.c"], CCFLAGS=env["CCFLAGS"] + ["-fPIC"])
lib = env.SharedLibrary("shapes/shapes", ["shapes/shapes.cpp"], SHLIBVERSION="1.2.0", LIBS=util)
plugin = env.LoadableModule("plugin/plugin", ["plugin/plugin.c"])
# LIBS=lib: the whole list the builder returned, as users write it.
prog = env.Program("app/app", ["app/app.cpp"], CPPPATH=["shapes"], LIBS=lib, LIBPATH=["shapes"])
data = env.File("app/app.conf")
if MODE == "install":
    env.Install("$DESTDIR/usr/bin", prog)
    env.InstallVersionedLib("$DESTDIR/usr/lib", lib)
    env.Install("$DESTDIR/usr/lib/demo", [plugin, data])
    env.InstallAs("$DESTDIR/usr/libexec/app", prog)
    if ARGUMENTS.get("RENAME"):
        env.InstallAs("$DESTDIR/usr/libexec/demo-app", prog)
else:
    env.InstallStripped("$DESTDIR/usr/bin", prog)
    env.InstallStripped("$DESTDIR/usr/lib", lib)
    env.InstallStripped("$DESTDIR/usr/lib/demo", plugin)
    env.Install("$DESTDIR/usr/lib/demo", data)
"""

SOURCES = {
    "util/util.c": "int util_twice(int x) { return 2 * x; }\n",
    "shapes/shapes.hpp": ('#pragma once\nstruct __attribute__((visibility("default"))) Shape {\n'
                          "  virtual ~Shape();\n  virtual int area() const;\n};\n"
                          '__attribute__((visibility("default"))) Shape *make_shape();\n'),
    "shapes/shapes.cpp": ('#include "shapes.hpp"\nextern "C" int util_twice(int);\n'
                          "struct Square : Shape { int area() const override { return util_twice(21); } };\n"
                          "Shape::~Shape() {}\nint Shape::area() const { return 0; }\n"
                          "Shape *make_shape() { return new Square; }\n"),
    "plugin/plugin.c": ('__attribute__((visibility("default"))) int plugin_entry(int x) { return x + 1; }\n'),
    "app/app.cpp": ('#include "shapes.hpp"\n#include <cstdio>\n'
                    "int main() { Shape *s = make_shape(); std::printf(\"%d\\n\", s->area()); delete s; return 0; }\n"),
    "app/app.conf": "answer = 42\n",
}


def make_project(base: Path) -> Path:
    proj = base / "proj"
    proj.mkdir(parents=True)
    (proj / "SConstruct").write_text(SCONSTRUCT)
    (proj / "src").mkdir()
    (proj / "src/SConscript").write_text(SCONSCRIPT)
    for name, text in SOURCES.items():
        path = proj / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return proj


def stage_files(stage: Path) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    for p in sorted(stage.rglob("*")):
        rel = p.relative_to(stage).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        elif p.is_dir() and not any(p.iterdir()):
            out[rel + "/"] = "empty directory"
    return out


def test_plain_install_stages_what_install_stripped_stages(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "a")
    proc = run_scons(proj, "-j2", "MODE=install")
    assert "Traceback" not in proc.stdout + proc.stderr
    stage = proj / "stage"
    files = stage_files(stage)
    # The stripped binaries, never a .debug file beside them.
    assert not [f for f in files if f.endswith(".debug") and not f.startswith("usr/lib/debug/")], files
    assert "usr/lib/libshapes.so.1.2.0" in files and files["usr/lib/libshapes.so.1"] == "-> libshapes.so.1.2.0"
    assert files["usr/lib/demo/app.conf"] == SOURCES["app/app.conf"].encode()
    for binary in ("usr/bin/app", "usr/libexec/app", "usr/lib/libshapes.so.1.2.0", "usr/lib/demo/libplugin.so"):
        sections = os.popen(f"readelf -S -W '{stage / binary}'").read()
        assert ".gnu_debuglink" in sections and ".debug_info" not in sections, binary
    # Default("stage") asks for the directory: the stage's dwz pass, a node outside it, runs all the same.
    assert [f for f in files if f.startswith("usr/lib/debug/.dwz/") and f.endswith("/demo.debug")], files
    check = run_cli("check", "--policy", "debian", stage)
    assert check.returncode == 0, check.stdout + check.stderr
    debug_dir = stage / "usr/lib/debug"
    assert resolves(gdb_info_line(debug_dir, stage / "usr/bin/app", "main"), "app")
    assert resolves(gdb_info_line(debug_dir, stage / "usr/lib/libshapes.so.1.2.0", "make_shape"), "shapes")
    assert resolves(gdb_info_line(debug_dir, stage / "usr/lib/demo/libplugin.so", "plugin_entry"), "plugin")
    # The same stage as InstallStripped gives (but for the InstallAs copy).
    other = make_project(tmp_path / "b")
    run_scons(other, "-j2", "MODE=stripped")
    expected = stage_files(other / "stage")
    assert {k: v for k, v in files.items() if "libexec" not in k} == expected
    # LIBS=lib linked against the library only: the program needs libshapes, nothing named .debug.
    needed = os.popen(f"readelf -d '{stage / 'usr/bin/app'}'").read()
    assert "libshapes.so.1" in needed and "stripped" not in needed


def test_install_as_another_name(tmp_path: Path) -> None:
    """Under Debian's build-id layout the name is free; a path-named layout says why it cannot."""
    proj = make_project(tmp_path)
    run_scons(proj, "RENAME=1")
    assert resolves(gdb_info_line(proj / "stage/usr/lib/debug", proj / "stage/usr/libexec/demo-app", "main"), "app")
    proc = run_scons(proj, "RENAME=1", "POLICY=yocto", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot be installed as demo-app" in proc.stderr


def test_install_outside_destdir_is_one_scons_error(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    (proj / "src/SConscript").write_text(SCONSCRIPT.replace('env.Install("$DESTDIR/usr/bin", prog)',
                                                            'env.Install("#elsewhere/bin", prog)'))
    proc = run_scons(proj, "MODE=install", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "InstallStripped" not in proc.stderr or "is not under DESTDIR" in proc.stderr
    assert "Install:" in proc.stderr and "is not under DESTDIR" in proc.stderr


@pytest.mark.slow
def test_policy_changes_leave_the_stage_a_clean_build_would(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "changing")
    clean: dict[str, dict[str, str | bytes]] = {}
    for policy in ("debian", "redhat", "yocto"):
        ref = make_project(tmp_path / f"clean-{policy}")
        run_scons(ref, "-j2", f"POLICY={policy}")
        clean[policy] = stage_files(ref / "stage")
    for policy in ("debian", "redhat", "yocto", "debian"):
        run_scons(proj, "-j2", f"POLICY={policy}")
        got = stage_files(proj / "stage")
        assert sorted(got) == sorted(clean[policy]), policy
        assert {k: (got[k], clean[policy][k]) for k in got if got[k] != clean[policy][k] and not isinstance(got[k], bytes)} == {}, policy
        assert [k for k in got if got[k] != clean[policy][k]] == [], policy
        args = ["--package", "demo", "--version", "1.0", "--release", "1"] if policy == "redhat" else []
        check = run_cli("check", "--policy", policy, *args, proj / "stage")
        assert check.returncode == 0, (policy, check.stdout)
    run_scons(proj, "-c", "POLICY=debian")
    left = [p for p in (proj / "stage").rglob("*") if not p.is_dir()] if (proj / "stage").exists() else []
    assert left == []


def test_errors_name_the_users_line_and_messages_the_policy(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    sconstruct = (proj / "SConstruct").read_text()
    (proj / "SConstruct").write_text(sconstruct.replace('ARGUMENTS.get("POLICY", "debian")', '"nosuch"'))
    proc = run_scons(proj, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "SConstruct:3: nosuch: no policy named 'nosuch'" in proc.stderr, proc.stderr
    (proj / "SConstruct").write_text(sconstruct + 'env.Clone(DESTDIR="").SplitDebugPackage("#pkgs", [])\n')
    proc = run_scons(proj, check=False)
    assert "SConstruct:7: SplitDebugPackage: set DESTDIR" in proc.stderr, proc.stderr
    # A policy given as a file is shown by its name; SCons' $XXXCOMSTR naming silences or renames steps.
    policy_file = proj / "my-policy.yaml"
    policy_file.write_text((REPO / "configs/yocto.yaml").read_text())
    (proj / "SConstruct").write_text(sconstruct.replace('ARGUMENTS.get("POLICY", "debian")', f'"{policy_file}"')
                                     + 'env["SPLITDEBUGSTAGECOMSTR"] = "STAGED $TARGET"\n')
    out = run_scons(proj).stdout
    assert "Splitting debug info (yocto) of build/app/app" in out, out
    assert "STAGED stage/usr/bin/app" in out and "my-policy" not in out, out


def test_a_relink_leaves_no_empty_build_id_directory(tmp_path: Path) -> None:
    proj = make_project(tmp_path)
    run_scons(proj)
    before = {p for p in (proj / "stage/usr/lib/debug/.build-id").iterdir()}
    app = proj / "src/app/app.cpp"
    app.write_text(app.read_text().replace("return 0;", "return s == nullptr;"))
    run_scons(proj)
    empty = [p for p in (proj / "stage").rglob("*") if p.is_dir() and not any(p.iterdir())]
    assert empty == []
    assert {p for p in (proj / "stage/usr/lib/debug/.build-id").iterdir()} != before
    assert run_cli("check", "--policy", "debian", proj / "stage").returncode == 0
