"""Export lists in real builds: small SCons projects that must fail naming the symbol, then pass once
the list is fixed; the examples; `splitdebug exports check|report|compare` on real libraries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, run_cli, run_scons
from splitdebug import exports
from splitdebug.errors import SplitDebugError

HEADER = """\
import os
env = Environment(tools=["default", "splitdebug"], ENV={"PATH": os.environ["PATH"]},
                  SPLITDEBUG_POLICY=ARGUMENTS.get("POLICY", "debian"))
"""
API = '#define API __attribute__((visibility("default")))\n'


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def failed_naming(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    text = output(proc)
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


def dynamic_names(library: Path, *, demangle: bool = False) -> set[str]:
    """`nm -D --defined-only` names, without their @@VERSION."""
    argv = ["nm", "-D", "--defined-only"] + (["-C"] if demangle else []) + [str(library)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {line.split(" ", 2)[2].split("@")[0] for line in out.splitlines() if line.strip()}


# --------------------------------------------------------------------------- fail, then fix the list

GREET_C = API + """\
API int greet_message(void) { return 1; }
API int greet_count(void) { return 2; }
int greet_hidden(void) { return 3; }
"""
GREET_LIST = "[LIBGREET_1]\ngreet_message\ngreet_count\n"


@pytest.mark.parametrize("extra, needles", [
    ("greet_hidden", ["greet.exports:4: greet_hidden is listed but hidden", "1 export problem"]),
    # ld itself refuses it (-Wl,--no-undefined-version), naming the symbol
    ("greet_missing", ["greet_missing", "undefined version"]),
], ids=["listed-but-hidden", "listed-but-missing"])
def test_listed_but_not_exported_fails_until_fixed(tmp_path: Path, extra: str, needles: list[str]) -> None:
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports")\n',
        "greet.c": GREET_C, "greet.exports": GREET_LIST + extra + "\n"})
    failed_naming(run_scons(proj, check=False), *needles)
    (proj / "greet.exports").write_text(GREET_LIST)
    run_scons(proj)
    assert dynamic_names(proj / "libgreet.so") == {"LIBGREET_1", "greet_message", "greet_count"}


def test_dropping_a_declared_name_from_the_list_fails_until_fixed(tmp_path: Path) -> None:
    """The list against the sources' declared API: a default-visibility function the list drops would
    be silently localised by the version script; the build names it, the object and the list."""
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports", '
                               'EXPORT_CHECK_DECLARED=ARGUMENTS.get("DECLARED", True))\n',
        "greet.c": GREET_C, "greet.exports": "[LIBGREET_1]\ngreet_message\n"})
    failed_naming(run_scons(proj, check=False),
                  "greet_count is declared with default visibility in greet.os but not in greet.exports")
    run_scons(proj, "DECLARED=0")  # opted out for this library
    assert dynamic_names(proj / "libgreet.so") == {"LIBGREET_1", "greet_message"}
    (proj / "greet.exports").write_text(GREET_LIST)
    run_scons(proj)


def test_cxx_declared_api_follows_the_demangled_list(tmp_path: Path) -> None:
    """C++: a default-visibility class whose list names it by pattern passes; a free function of the
    API left out of the list is named, demangled."""
    source = ('namespace w { struct __attribute__((visibility("default"))) Box { int size() const; };\n'
              'int Box::size() const { return 1; }\n'
              '__attribute__((visibility("default"))) int helper(int x) { return x; } }\n')
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("box", ["box.cpp"], EXPORT_LIST="box.exports")\n',
        "box.cpp": source, "box.exports": "[B_1]\n(c++)w::Box::*\n"})
    failed_naming(run_scons(proj, check=False), "w::helper(int) is declared with default visibility in box.os")
    (proj / "box.exports").write_text("[B_1]\n(c++)w::Box::*\n(c++)w::helper(int)\n")
    run_scons(proj)


def test_unannotated_library_gets_the_one_line_remedy(tmp_path: Path) -> None:
    plain = GREET_C.replace(API, "").replace("API ", "").replace("int greet_hidden", "static int greet_hidden")
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports", '
                               '**({"SPLITDEBUG_VISIBILITYFLAGS": []} if ARGUMENTS.get("PLAIN") else {}))\n',
        "greet.c": plain, "greet.exports": GREET_LIST})
    text = failed_naming(run_scons(proj, check=False), "exports nothing", "SPLITDEBUG_VISIBILITYFLAGS=[]")
    assert text.count("SPLITDEBUG_VISIBILITYFLAGS=[]") == 1
    run_scons(proj, "PLAIN=1")
    assert dynamic_names(proj / "libgreet.so") == {"LIBGREET_1", "greet_message", "greet_count"}


ARCHIVE_PROJECT = HEADER + """\
# A third-party archive built with default visibility, linked into our library.
third = env.Clone(SPLITDEBUG_VISIBILITYFLAGS=[])
third.StaticLibrary("util/util", third.SharedObject("util/util.c"))
# As with a linker without --exclude-libs: only the version script keeps the archive in.
flags = ["-Wl,--no-undefined-version"] if ARGUMENTS.get("NO_EXCLUDE_LIBS") else env["SPLITDEBUG_EXPORTLINKFLAGS"]
env.SharedLibrary("greet", ["greet.c"], LIBS=["util"], LIBPATH=["util"], EXPORT_LIST="greet.exports",
                  SPLITDEBUG_EXPORTLINKFLAGS=flags)
"""


def test_static_archive_leak_fails_until_fixed(tmp_path: Path) -> None:
    """`local: *` hides every name the list does not match, and --exclude-libs,ALL every archive
    symbol; without the latter a pattern meant for the library's own names (greet_*) lets the
    archive's greet_util_format out. The check knows the link's archives and names it."""
    proj = write(tmp_path, {
        "SConstruct": ARCHIVE_PROJECT,
        "util/util.c": "int greet_util_format(int x) { return 2 * x; }\n",
        "greet.c": API + "int greet_util_format(int);\nAPI int greet_message(int x) { return greet_util_format(x); }\n"
                         "API int greet_count(void) { return 0; }\n",
        "greet.exports": "[LIBGREET_1]\ngreet_*\n"})
    failed_naming(run_scons(proj, "NO_EXCLUDE_LIBS=1", check=False),
                  "libgreet.so: greet_util_format from static archive util/libutil.a is exported only because "
                  "greet_* (greet.exports:2) matches it (a leak")
    run_scons(proj)  # with --exclude-libs,ALL the same wide pattern is safe
    assert "greet_util_format" not in dynamic_names(proj / "libgreet.so")
    (proj / "greet.exports").write_text(GREET_LIST)
    run_scons(proj, "NO_EXCLUDE_LIBS=1")  # names, not a pattern: `local: *` hides the archive by itself
    assert dynamic_names(proj / "libgreet.so") == {"LIBGREET_1", "greet_message", "greet_count"}
    # The same check from the command line, given the archive.
    (proj / "wide.exports").write_text("[LIBGREET_1]\ngreet_*\n")
    run_scons(proj, "NO_EXCLUDE_LIBS=1", "-c")
    (proj / "greet.exports").write_text("[LIBGREET_1]\ngreet_*\n")
    run_scons(proj, "NO_EXCLUDE_LIBS=1", "-k", check=False)
    proc = run_cli("exports", "check", "--list", proj / "wide.exports", "--archive", proj / "util/libutil.a",
                   proj / "libgreet.so")
    assert proc.returncode == 1 and "greet_util_format from static archive" in proc.stdout
    assert run_cli("exports", "check", "--list", proj / "wide.exports", proj / "libgreet.so").returncode == 0


def test_replacing_linkflags_on_the_call_is_a_user_error(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports", '
                               'LINKFLAGS=ARGUMENTS.get("ADD") and env["LINKFLAGS"] + ["-Wl,-z,defs"] or ["-Wl,-z,defs"])\n',
        "greet.c": GREET_C, "greet.exports": GREET_LIST})
    failed_naming(run_scons(proj, "-n", check=False),
                  "libgreet.so: $LINKFLAGS of this call no longer holds the tool's $_SPLITDEBUG_EXPORTFLAGS")
    run_scons(proj, "ADD=1")


WIDGET_HPP = """\
#pragma once
#define W_API __attribute__((visibility("default")))
namespace w {
class W_API Widget { public: virtual ~Widget(); virtual int size() const; };
class W_API Button : public Widget { public: int size() const override; };
W_API Widget *make();
}
"""
WIDGET_CPP = """\
#include "w.hpp"
namespace w {
Widget::~Widget() = default;
int Widget::size() const { return 1; }
int Button::size() const { return 2; }
Widget *make() { return new Button; }
}
"""
USER_CPP = """\
#include "w.hpp"
int main() { w::Widget *x = w::make(); int r = dynamic_cast<w::Button *>(x) ? 0 : 1; delete x; return r; }
"""
WIDGET_LIST = "[W_1]\n(c++)w::make()\n(c++)w::Widget::*\n(c++)w::Button::*\n"
WIDGET_TYPES = "".join(f"(c++){k} for w::{c}\n" for k in ("typeinfo", "vtable") for c in ("Widget", "Button"))


def test_cxx_class_without_typeinfo_warns_and_consumer_fails_until_fixed(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'lib = env.SharedLibrary("w", ["w.cpp"], EXPORT_LIST="w.exports")\n'
                               'env.Program("user", ["user.cpp", lib[0]])\n',
        "w.hpp": WIDGET_HPP, "w.cpp": WIDGET_CPP, "user.cpp": USER_CPP, "w.exports": WIDGET_LIST})
    text = failed_naming(run_scons(proj, check=False),
                         "warning: libw.so: class w::Button exports member functions but not "
                         "'typeinfo for w::Button' or 'vtable for w::Button'",
                         "add (c++)typeinfo for w::Button, (c++)vtable for w::Button to w.exports",
                         "undefined reference to `typeinfo for w::Button'")
    assert "class w::Widget exports member functions" in text
    (proj / "w.exports").write_text(WIDGET_LIST + WIDGET_TYPES)
    proc = run_scons(proj)
    assert "warning" not in output(proc)
    subprocess.run([str(proj / "user")], env={**os.environ, "LD_LIBRARY_PATH": str(proj)}, check=True)


# --------------------------------------------------------------------------- flags, targets, policy

FLAGS_PROJECT = HEADER + """\
env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports")
env.SharedLibrary("plain", ["plain.cpp"])
env.LoadableModule("plugin", ["plugin.c"], EXPORT_LIST="plugin.exports")
env.Program("prog", ["prog.c"])
env.Clone(SPLITDEBUG_VISIBILITYFLAGS=[]).Object("open.o", ["open.c"])
"""


@pytest.fixture
def flags_project(tmp_path: Path) -> Path:
    return write(tmp_path, {
        "SConstruct": FLAGS_PROJECT, "greet.c": GREET_C, "greet.exports": GREET_LIST,
        "plain.cpp": API + "API int plain() { return 0; }\n",
        "plugin.c": API + "API int plugin_init(void) { return 0; }\nint plugin_private(void) { return 1; }\n",
        "plugin.exports": "[PLUGIN_1]\nplugin_init\n",
        "prog.c": "int main(void) { return 0; }\n", "open.c": "int open_one(void) { return 1; }\n"})


def command(lines: list[str], *needles: str) -> str:
    found = [line for line in lines if all(n in line for n in needles)]
    assert len(found) == 1, (needles, lines)
    return found[0]


def test_visibility_and_link_flags(flags_project: Path) -> None:
    lines = run_scons(flags_project, "-n", "-Q").stdout.splitlines()
    c_compile = command(lines, "greet.c")
    assert "-fvisibility=hidden" in c_compile and "-fvisibility-inlines-hidden" not in c_compile
    cxx_compile = command(lines, "plain.cpp")
    assert "-fvisibility=hidden" in cxx_compile and "-fvisibility-inlines-hidden" in cxx_compile
    assert "-fvisibility" not in command(lines, "open.c")  # overridden
    export_flags = "-Wl,--no-undefined-version -Wl,--exclude-libs,ALL"
    assert f"-Wl,--version-script=libgreet.map {export_flags}" in command(lines, "-o libgreet.so ")
    assert f"-Wl,--version-script=libplugin.map {export_flags}" in command(lines, "-o libplugin.so ")
    assert "version-script" not in command(lines, "-o libplain.so ")  # no list: hidden, nothing more
    assert "version-script" not in command(lines, "-o prog ")
    order = [i for i, line in enumerate(lines) if "libgreet." in line]
    texts = [lines[i] for i in order]
    assert texts.index("Generating version script libgreet.map from greet.exports") < \
        texts.index(command(lines, "-o libgreet.so ")) < \
        texts.index("Checking exports of libgreet.so against greet.exports") < \
        texts.index(command(lines, "Splitting debug info", "libgreet.so"))
    assert not any("Checking exports of libplain.so" in line or "export_check_action" in line for line in lines)


def test_version_script_is_a_target_the_link_depends_on(flags_project: Path) -> None:
    run_scons(flags_project)
    assert dynamic_names(flags_project / "libplugin.so") == {"PLUGIN_1", "plugin_init"}
    assert dynamic_names(flags_project / "libplain.so") == {"_Z5plainv"}
    assert "PLUGIN_1" in (flags_project / "libplugin.map").read_text()
    assert run_scons(flags_project, "-q", check=False).returncode == 0
    with (flags_project / "greet.exports").open("a") as f:
        f.write("# a comment changes nothing ld sees\n")
    lines = run_scons(flags_project, "-Q").stdout.splitlines()
    assert "Generating version script libgreet.map from greet.exports" in lines
    assert not any("-o libgreet.so " in line for line in lines)  # same script: no relink
    with (flags_project / "greet.exports").open("a") as f:
        f.write("(optional)greet_future\n")
    lines = run_scons(flags_project, "-Q").stdout.splitlines()
    command(lines, "-o libgreet.so ")
    assert "[g]reet_future;" in (flags_project / "libgreet.map").read_text()
    run_scons(flags_project, "-c")
    assert not (flags_project / "libgreet.map").exists()


def test_require_export_list(tmp_path: Path) -> None:
    strict = (REPO / "configs/debian.yaml").read_text().replace("require_export_list: false",
                                                                "require_export_list: true")
    assert "require_export_list: true" in strict
    proj = write(tmp_path, {
        "SConstruct": HEADER + """\
if "REQUIRE" in ARGUMENTS:
    env["SPLITDEBUG_REQUIRE_EXPORT_LIST"] = ARGUMENTS["REQUIRE"]
env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports")
env.SharedLibrary("loose", ["loose.c"])
""", "strict.yaml": strict, "greet.c": GREET_C, "greet.exports": GREET_LIST, "loose.c": "int loose;\n"})
    failed_naming(run_scons(proj, "-n", f"POLICY={proj / 'strict.yaml'}", check=False),
                  "libloose.so: no EXPORT_LIST, but policy 'debian' (require_export_list) requires one",
                  "EXPORT_LIST='libloose.exports'")
    run_scons(proj, "-n", f"POLICY={proj / 'strict.yaml'}", "REQUIRE=false")
    run_scons(proj, "-n")
    failed_naming(run_scons(proj, "-n", "REQUIRE=yes", check=False),
                  "but SPLITDEBUG_REQUIRE_EXPORT_LIST requires one")
    failed_naming(run_scons(proj, "-n", "REQUIRE=maybe", check=False), "SPLITDEBUG_REQUIRE_EXPORT_LIST='maybe'")


def test_linker_that_rejects_the_flags_is_a_user_error(tmp_path: Path) -> None:
    proj = write(tmp_path, {
        "SConstruct": HEADER + 'env.SharedLibrary("greet", ["greet.c"], EXPORT_LIST="greet.exports", '
                               'SPLITDEBUG_EXPORTLINKFLAGS=["-Wl,--no-such-linker-flag"])\n',
        "greet.c": GREET_C, "greet.exports": GREET_LIST})
    failed_naming(run_scons(proj, "-n", check=False),
                  "the linker (gcc) rejects a version script with -Wl,--no-such-linker-flag:",
                  "set SPLITDEBUG_EXPORTLINKFLAGS to the flags it supports")


# --------------------------------------------------------------------------- the examples


@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_examples_export_exactly_their_lists(main_job: Path, policy: str) -> None:
    obj = main_job / "build/obj" / policy
    greet = obj / "greet/libgreet.so.1.0.0"
    assert dynamic_names(greet) == {"LIBGREET_1", "greet_message", "greet_count"}
    shapes = obj / "shapes/libshapes.so.2.1.0"
    assert dynamic_names(shapes, demangle=True) == {
        "SHAPES_2", "shapes::make_circle(double)", "shapes::Shape::~Shape()", "shapes::Shape::name[abi:cxx11]() const",
        "shapes::Circle::Circle(double)", "shapes::Circle::area() const", "shapes::Circle::name[abi:cxx11]() const",
        "typeinfo for shapes::Shape", "typeinfo for shapes::Circle", "vtable for shapes::Shape",
        "vtable for shapes::Circle"}
    # The version scripts sit beside the libraries, named so that `lib*.so*` globs miss them.
    assert (obj / "greet/libgreet.map").is_file() and (obj / "shapes/libshapes.map").is_file()
    for lib, listed in ((greet, "greet/greet.exports"), (shapes, "shapes/shapes.exports")):
        result = exports.check_library_result(lib, REPO / "examples" / listed)
        assert result.errors == () and result.warnings == ()


@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_dynamic_cast_consumer_runs(main_job: Path, policy: str) -> None:
    obj = main_job / "build/obj" / policy
    stage = main_job / "build/stage" / policy
    for prog, libdir in ((obj / "shapes_user/shapes_user", obj / "shapes"),
                         (stage / "usr/bin/shapes_user", stage / "usr/lib")):
        proc = subprocess.run([str(prog)], env={**os.environ, "LD_LIBRARY_PATH": str(libdir)},
                              capture_output=True, text=True)
        assert (proc.returncode, proc.stdout) == (0, "circle 12.57\n")


# --------------------------------------------------------------------------- report and CLI

CHAIN_FUNCTIONS = 200


def chain_source(n: int) -> str:
    """An API function over a chain of n helpers, each calling the next: with default visibility
    every helper is exported and every call goes through the PLT."""
    protos = "".join(f"int chain_{i}(int);\n" for i in range(n))
    bodies = "".join(f"int chain_{i}(int x) {{ return chain_{i + 1}(x) + 1; }}\n" for i in range(n - 1))
    return API + protos + bodies + f"int chain_{n - 1}(int x) {{ return x; }}\n" \
        + "API int chain_entry(int x) { return chain_0(x); }\n"


REPORT_PROJECT = HEADER + """\
for kind in ("listed", "plain"):
    e = env.Clone(SPLITDEBUG_VISIBILITYFLAGS=[]) if kind == "plain" else env
    lists = {"EXPORT_LIST": "chain.exports"} if kind == "listed" else {}
    e.SharedLibrary(f"{kind}/chain", [f"{kind}/chain.c"], **lists)
    lists = {"EXPORT_LIST": "greet.exports"} if kind == "listed" else {}
    e.SharedLibrary(f"{kind}/greet", [f"{kind}/greet.c"], CPPPATH=["#include"], **lists)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sources linked with their export list (hidden + version script) and without
    (default visibility, the tool's visibility flags switched off)."""
    proj = tmp_path_factory.mktemp("report")
    files = {"SConstruct": REPORT_PROJECT, "chain.exports": "[CHAIN_1]\nchain_entry\n",
             "greet.exports": (REPO / "examples/greet/greet.exports").read_text(),
             "include/greet.h": (REPO / "examples/greet/greet.h").read_text()}
    for kind in ("listed", "plain"):
        files[f"{kind}/chain.c"] = chain_source(CHAIN_FUNCTIONS)
        files[f"{kind}/greet.c"] = (REPO / "examples/greet/greet.c").read_text()
    write(proj, files)
    run_scons(proj, "-j2")
    return proj


def report(library: Path) -> dict[str, object]:
    proc = run_cli("exports", "report", "--json", library)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def test_report_shows_the_drop_in_exports_and_plt_relocations(built: Path) -> None:
    rows = {}
    for lib in ("chain", "greet"):
        for kind in ("plain", "listed"):
            data = report(built / kind / f"lib{lib}.so")
            assert data["version"] == 1
            hashed = data["gnu_hash"]
            assert isinstance(hashed, dict)
            rows[lib, kind] = (data["exported_count"], data["plt_relocations"], hashed["size"], hashed["utilisation"])
            print(f"lib{lib}.so {kind:>6}: {data['exported_count']} exported, {data['plt_relocations']} PLT "
                  f"relocations, .gnu.hash {hashed['size']} bytes, utilisation {hashed['utilisation']}")
    assert rows["chain", "plain"][:2] == (CHAIN_FUNCTIONS + 1, CHAIN_FUNCTIONS)
    assert rows["chain", "listed"][:2] == (1, 0)
    assert rows["chain", "listed"][2] < rows["chain", "plain"][2]
    assert rows["greet", "listed"][0] == 2 and rows["greet", "plain"][0] == 2  # greet.c hid its helpers already
    text = run_cli("exports", "report", built / "listed/libchain.so").stdout
    assert "1 exported symbols, 0 PLT relocations" in text and "FUNC    chain_entry@@CHAIN_1" in text


def test_cli_check_exit_codes(built: Path, tmp_path: Path) -> None:
    listed, plain = built / "listed/libchain.so", built / "plain/libchain.so"
    ok = run_cli("exports", "check", "--list", built / "chain.exports", listed)
    assert (ok.returncode, ok.stdout) == (0, f"{listed}: exports exactly {built / 'chain.exports'}\n")
    leak = run_cli("exports", "check", "--list", built / "chain.exports", plain)
    assert leak.returncode == 1
    assert f"{plain}: chain_17 is exported but not in {built / 'chain.exports'}" in leak.stdout
    # One line per problem: the 200 helpers, and no version node (linked without the script).
    assert len(leak.stdout.splitlines()) == CHAIN_FUNCTIONS + 1
    assert leak.stdout.splitlines()[-1].endswith("declares CHAIN_1: was it linked with its version script?")
    hidden = tmp_path / "more.exports"
    hidden.write_text("[CHAIN_1]\nchain_entry\nchain_5\n")
    proc = run_cli("exports", "check", "--list", hidden, listed)
    assert proc.returncode == 1 and f"{hidden}:3: chain_5 is listed but hidden" in proc.stdout
    bad = tmp_path / "bad.exports"
    bad.write_text("[CHAIN_1]\nchain_entry {\n")
    for argv, message in [
        (["--list", bad, listed], f"{bad}:2: this is ld version-script syntax"),
        (["--list", tmp_path / "none.exports", listed], "cannot read export list"),
        (["--list", built / "chain.exports", built / "chain.exports"], "not an ELF file"),
        (["--list", built / "chain.exports", tmp_path / "none.so"], "cannot read"),
        ([listed], "the following arguments are required: --list"),
    ]:
        proc = run_cli("exports", "check", *argv)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_cli_report_input_error(tmp_path: Path) -> None:
    (tmp_path / "x.so").write_text("not elf")
    proc = run_cli("exports", "report", tmp_path / "x.so")
    assert proc.returncode == 2 and "not an ELF file" in proc.stderr


def test_cli_compare_exit_codes(built: Path, tmp_path: Path) -> None:
    lib = built / "listed/libgreet.so"
    old = tmp_path / "old.exports"
    old.write_text("[LIBGREET_1]\ngreet_message\ngreet_removed\n")
    proc = run_cli("exports", "compare", "--baseline", old, lib)
    assert proc.returncode == 1 and proc.stdout == "lost: greet_removed\nnew: greet_count@LIBGREET_1\n"
    assert run_cli("exports", "compare", "--baseline", old, "--fail-on", "none", lib).returncode == 0
    symbols = tmp_path / "symbols"
    symbols.write_text("libgreet.so libgreet1 #MINVER#\n greet_count@LIBGREET_1 1.0\n greet_message@LIBGREET_1 1.0\n")
    for fail_on in ("lost", "new", "any"):
        assert run_cli("exports", "compare", "--baseline", symbols, "--fail-on", fail_on, lib).returncode == 0
    symbols.write_text("libgreet.so libgreet1 #MINVER#\n greet_count@LIBGREET_1 1.0\n")
    assert run_cli("exports", "compare", "--baseline", symbols, lib).returncode == 0  # only new: not lost
    assert run_cli("exports", "compare", "--baseline", symbols, "--fail-on", "new", lib).returncode == 1
    proc = run_cli("exports", "compare", "--baseline", tmp_path / "none", lib)
    assert proc.returncode == 2 and "cannot read baseline" in proc.stderr
    assert run_cli("exports", "compare", "--baseline", symbols, "--fail-on", "some", lib).returncode == 2


def test_check_library_api(built: Path, tmp_path: Path) -> None:
    listed = built / "chain.exports"
    assert exports.check_library(built / "listed/libchain.so", listed) == []
    problems = exports.check_library(built / "plain/libchain.so", listed)
    assert len(problems) == CHAIN_FUNCTIONS + 1 and all("\n" not in p for p in problems)
    (tmp_path / "broken.so").write_bytes(b"\x7fELF" + b"\0" * 20)
    broken = exports.check_library(tmp_path / "broken.so", listed)
    assert len(broken) == 1 and str(tmp_path / "broken.so") in broken[0]
    with pytest.raises(SplitDebugError):
        exports.check_library(built / "listed/libchain.so", tmp_path / "missing.exports")


def test_demangler_runs_once_per_library(built: Path, tmp_path: Path) -> None:
    log = tmp_path / "cxxfilt.log"
    wrapper = tmp_path / "c++filt"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{log}"\nexec {shutil.which("c++filt")} "$@"\n')
    wrapper.chmod(0o755)
    proc = run_cli("exports", "--cxxfilt", wrapper, "check", "--list", REPO / "examples/shapes/shapes.exports",
                   built / "listed/libchain.so")
    assert proc.returncode == 1
    assert not log.exists()  # a C library: nothing to demangle, no run
    lib = tmp_path / "libw.so"
    src = tmp_path / "w.cpp"
    src.write_text(WIDGET_CPP)
    (tmp_path / "w.hpp").write_text(WIDGET_HPP)
    subprocess.run(["g++", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    run_cli("exports", "--cxxfilt", wrapper, "check", "--list", REPO / "examples/shapes/shapes.exports", lib)
    assert log.read_text() == "run\n"


def test_compare_with_dpkg_gensymbols_own_file_reports_nothing(tmp_path: Path) -> None:
    """The baseline made by dpkg's own tool lists the version node's symbol (`LIBGREET_1@LIBGREET_1`);
    neither side counts it, so a library compared with its own symbols file has nothing lost or new."""
    (tmp_path / "pkg/usr/lib").mkdir(parents=True)
    (tmp_path / "debian").mkdir()
    (tmp_path / "debian/control").write_text("Source: greet\n\nPackage: libgreet1\nArchitecture: any\n")
    (tmp_path / "greet.map").write_text("LIBGREET_1 { global: greet_message; greet_count; local: *; };\n")
    (tmp_path / "greet.c").write_text(GREET_C)
    lib = tmp_path / "pkg/usr/lib/libgreet.so.1"
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-Wl,--version-script=greet.map",
                    "-o", str(lib), "greet.c"], cwd=tmp_path, check=True)
    gen = subprocess.run(["dpkg-gensymbols", "-plibgreet1", "-Ppkg", "-v1.0", "-O"], capture_output=True,
                         text=True, cwd=tmp_path)
    assert " LIBGREET_1@LIBGREET_1 1.0" in gen.stdout.splitlines(), gen.stdout + gen.stderr
    symbols = tmp_path / "libgreet1.symbols"
    symbols.write_text("".join(line + "\n" for line in gen.stdout.splitlines() if not line.startswith(("---", "+", "@"))))
    proc = run_cli("exports", "compare", "--baseline", symbols, "--fail-on", "any", lib)
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stdout + proc.stderr


def test_ctrl_c_during_the_export_check_is_an_interrupt(tmp_path: Path) -> None:
    """c++filt killed by the terminal's SIGINT (it reaches the whole process group): SCons reports the
    interrupt, not a c++filt failure."""
    cxxfilt = tmp_path / "c++filt"
    cxxfilt.write_text("#!/bin/sh\nkill -INT $$\n")
    cxxfilt.chmod(0o755)
    proj = write(tmp_path / "proj", {
        "SConstruct": HEADER + f'env["CXXFILT"] = "{cxxfilt}"\n'
                               'env.SharedLibrary("box", ["box.cpp"], EXPORT_LIST="box.exports")\n',
        "box.cpp": 'namespace w { __attribute__((visibility("default"))) int helper(int x) { return x; } }\n',
        "box.exports": "[B_1]\n(c++)w::helper(int)\n"})
    proc = run_scons(proj, check=False)
    assert proc.returncode != 0
    assert "Build interrupted" in output(proc) and "c++filt" not in proc.stderr, output(proc)
