"""Real Debian source packages built with `dpkg-buildpackage -us -uc`: stock (dh_dwz + dh_strip) against
dh_splitdebug, with the exact debian/rules snippets README.md shows. libyaml always (about 2 minutes of
builds, shared between the tests); lua5.4 (programs, a library, a -dev with a static archive and a legacy
-dbg package) only with SPLITDEBUG_FULL=1, its builds take several minutes. And this repository's own
debian/: python3-splitdebug and dh-splitdebug, lintian-clean, enough for a build with no checkout."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from corpus_helpers import CORPUS, fetch
from distro_helpers import extract_deb, gdb
from test_dh_splitdebug import dh_env

pytestmark = pytest.mark.slow

FULL = bool(os.environ.get("SPLITDEBUG_FULL"))
DBGSYM_FIELDS = ("Package", "Auto-Built-Package", "Depends", "Section", "Priority", "Multi-Arch", "Build-Ids")
MA = "x86_64-linux-gnu"


def readme_snippets() -> tuple[str, str]:
    """The two ```make blocks of README's debian/rules section: (the addon's %: rule, the overrides)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### From debian/rules"):]
    section = section[:section.index("\n### ", 1)]
    blocks = re.findall(r"```make\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "README's debian/rules section shows two ways"
    return blocks[0], blocks[1]


def corpus_source(pkg: str) -> Path:
    """`DEBIAN=1 fetch.sh` unpacks deb-<pkg>; its Build-Depends are in ./bootstrap."""
    src = fetch(pkg, debian=True) / f"deb-{pkg}"
    missing = subprocess.run(["dpkg-checkbuilddeps"], cwd=src, capture_output=True, text=True)
    if missing.returncode != 0:
        pytest.fail(f"{pkg}: build dependencies missing (run ./bootstrap): {missing.stderr.strip()}")
    return src


@dataclass(frozen=True)
class Build:
    out: Path   # the .debs, beside src/
    src: Path

    def debs(self) -> dict[str, Path]:
        return {p.name.split("_")[0]: p for p in sorted(self.out.glob("*.deb"))}


def build(pkg: str, work: Path, rules: Callable[[str], str] | None = None, *args: str, **env: str) -> Build:
    """A copy of the source package built with dpkg-buildpackage; `rules` edits debian/rules."""
    origin = corpus_source(pkg)
    out = work
    src = out / "src"
    shutil.copytree(origin, src, symlinks=True)
    for orig in CORPUS.glob(f"{pkg}_*.orig.tar.*"):  # for a later `dpkg-buildpackage -S`
        os.symlink(orig, out / orig.name)
    if rules is not None:
        path = src / "debian/rules"
        path.write_text(rules(path.read_text()))
    proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", *(args or ("-b",))], cwd=src, env=dh_env(**env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (out / "build.log").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return Build(out, src)


def with_addon(rules: str) -> str:
    addon, _ = readme_snippets()
    assert "%:\n\tdh $@\n" in rules
    return rules.replace("%:\n\tdh $@\n", addon)


def with_overrides(rules: str) -> str:
    _, overrides = readme_snippets()
    assert "override_dh_strip" not in rules and "override_dh_dwz" not in rules
    return rules + "\n" + overrides


def listing(deb: Path) -> list[str]:
    """`dpkg-deb -c` without sizes and dates (contents differ: see README): mode, owner, path, link."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    return [" ".join([f[0], f[1], *f[5:]]) for f in (line.split() for line in out.splitlines())]


def fields(deb: Path) -> dict[str, str]:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), *DBGSYM_FIELDS], capture_output=True, text=True,
                         check=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def elf_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p.read_bytes()[:4] == b"\x7fELF"]


def has_section(path: Path, name: str) -> bool:
    out = subprocess.run(["readelf", "-WS", str(path)], capture_output=True, text=True).stdout
    return f" {name} " in out


# --- libyaml: libyaml-0-2 (library, -dbgsym), libyaml-dev (static archive), libyaml-doc (all) ---

@pytest.fixture(scope="module")
def yaml_stock(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build("libyaml", tmp_path_factory.mktemp("yaml-stock"))


@pytest.fixture(scope="module")
def yaml_addon(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return build("libyaml", tmp_path_factory.mktemp("yaml-addon"), with_addon)


def test_addon_build_has_the_stock_packages_and_file_lists(yaml_stock: Build, yaml_addon: Build) -> None:
    stock, ours = yaml_stock.debs(), yaml_addon.debs()
    assert set(ours) == set(stock) == {"libyaml-0-2", "libyaml-0-2-dbgsym", "libyaml-dev", "libyaml-doc"}
    for name in stock:
        assert listing(ours[name]) == listing(stock[name]), name
    assert "dh_splitdebug" in (yaml_addon.out / "build.log").read_text()


def test_dbgsym_control_fields_are_the_stock_ones(yaml_stock: Build, yaml_addon: Build) -> None:
    stock = fields(yaml_stock.debs()["libyaml-0-2-dbgsym"])
    assert stock["Build-Ids"] and stock["Auto-Built-Package"] == "debug-symbols"
    assert fields(yaml_addon.debs()["libyaml-0-2-dbgsym"]) == stock


def test_static_archive_is_stripped(yaml_addon: Build, tmp_path: Path) -> None:
    root = extract_deb(yaml_addon.debs()["libyaml-dev"], tmp_path / "dev")
    archive = root / f"usr/lib/{MA}/libyaml.a"
    out = subprocess.run(["readelf", "-WS", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "File: " in out and ".debug_info" not in out


def test_gdb_reads_the_library_through_the_dbgsym(yaml_addon: Build, tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("libyaml-0-2", "libyaml-0-2-dbgsym"):
        extract_deb(yaml_addon.debs()[name], root)
    lib = next((root / f"usr/lib/{MA}").glob("libyaml-0.so.2.*"))
    assert not has_section(lib, ".debug_info") and has_section(lib, ".gnu_debuglink")
    out = gdb(lib, root / "usr/lib/debug", "info line yaml_parser_initialize", "ptype yaml_parser_t")
    assert re.search(r'Line \d+ of "[^"]*api\.c"', out), out
    assert "yaml_error_type_t error;" in out, out


def test_check_accepts_both_builds(yaml_stock: Build, yaml_addon: Build, tmp_path: Path) -> None:
    """`splitdebug check` on what Debian ships: every .deb of the stock (dh_dwz + dh_strip) build unpacked
    into one root, and the same for the build with the addon: no finding at all."""
    for b in (yaml_stock, yaml_addon):
        root = tmp_path / b.out.name
        for deb in b.debs().values():
            extract_deb(deb, root)
        proc = run_cli("check", "--policy", "debian", "--format", "json", root)
        assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == [], proc.stdout[-3000:]


def test_lintian_has_nothing_new(yaml_stock: Build, yaml_addon: Build) -> None:
    def tags(b: Build) -> set[str]:
        out = subprocess.run(["lintian", "--no-cfg", "--tag-display-limit", "0", *map(str, b.debs().values())],
                             capture_output=True, text=True).stdout
        return {" ".join(line.split()[:3]) for line in out.splitlines()}
    assert tags(yaml_addon) <= tags(yaml_stock)


@pytest.fixture(scope="module")
def yaml_overrides(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Arch-only (-B): libyaml's clean leaves doxygen's regenerated doc/html/*.png behind, which
    `dpkg-buildpackage -S` would refuse after a -b build, stock or not."""
    return build("libyaml", tmp_path_factory.mktemp("yaml-overrides"), with_overrides, "-B")


def test_readme_override_snippet(yaml_stock: Build, yaml_overrides: Build) -> None:
    ours, stock = yaml_overrides.debs(), yaml_stock.debs()
    assert set(ours) == {"libyaml-0-2", "libyaml-0-2-dbgsym", "libyaml-dev"}
    for name in ours:
        assert listing(ours[name]) == listing(stock[name]), name
    assert fields(ours["libyaml-0-2-dbgsym"]) == fields(stock["libyaml-0-2-dbgsym"])


def test_clean_leaves_debian_as_unpacked(yaml_addon: Build) -> None:
    subprocess.run(["fakeroot", "debian/rules", "clean"], cwd=yaml_addon.src, env=dh_env(), check=True,
                   capture_output=True)
    def files(d: Path) -> set[str]:
        return {p.relative_to(d).as_posix() for p in d.rglob("*")}
    assert files(yaml_addon.src / "debian") == files(corpus_source("libyaml") / "debian")


def test_source_package_builds_after_the_binary_build(yaml_overrides: Build) -> None:
    """dpkg-source refuses binary files in debian/ it did not ship ('unwanted binary file'): dh_clean
    must remove everything dh_splitdebug wrote."""
    proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-S", "-d"], cwd=yaml_overrides.src, env=dh_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert not (yaml_overrides.src / "debian/.debhelper").exists()


def test_nostrip_leaves_every_elf_as_linked(tmp_path: Path) -> None:
    b = build("libyaml", tmp_path, with_addon, "-B", DEB_BUILD_OPTIONS="nostrip")
    assert set(b.debs()) == {"libyaml-0-2", "libyaml-dev"}
    root = extract_deb(b.debs()["libyaml-0-2"], tmp_path / "root")
    elves = elf_files(root)
    assert elves and all(has_section(p, ".debug_info") and has_section(p, ".symtab") for p in elves)


def test_noautodbgsym_builds_no_dbgsym(yaml_stock: Build, tmp_path: Path) -> None:
    b = build("libyaml", tmp_path, with_addon, "-B", DEB_BUILD_OPTIONS="noautodbgsym")
    debs = b.debs()
    assert set(debs) == {"libyaml-0-2", "libyaml-dev"}
    assert listing(debs["libyaml-0-2"]) == listing(yaml_stock.debs()["libyaml-0-2"])
    lib = next((extract_deb(debs["libyaml-0-2"], tmp_path / "root") / f"usr/lib/{MA}").glob("libyaml-0.so.2.*"))
    assert has_section(lib, ".gnu_debuglink") and not has_section(lib, ".debug_info")


# --- this repository as Debian packages: python3-splitdebug and dh-splitdebug ---

CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # the system python3 (a build chroot's), not a pyenv or venv one


@pytest.fixture(scope="module")
def own_debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's files (tracked and new, as git sees them) built with dpkg-buildpackage."""
    out = tmp_path_factory.mktemp("own-debs")
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, names):
        src, dest = REPO / name, out / "splitdebug" / name
        if src.is_symlink() or src.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest, follow_symlinks=False)
    proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=out / "splitdebug",
                          env={"PATH": CLEAN_PATH, "HOME": str(out), "LANG": "C.UTF-8"},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return out


def test_own_packages_are_lintian_clean(own_debs: Path) -> None:
    debs = {p.name.split("_")[0]: p for p in own_debs.glob("*.deb")}
    assert set(debs) == {"python3-splitdebug", "dh-splitdebug"}
    assert "dh-sequence-splitdebug" in subprocess.run(["dpkg-deb", "-f", str(debs["dh-splitdebug"]), "Provides"],
                                                      capture_output=True, text=True).stdout
    proc = subprocess.run(["lintian", "--no-cfg", "-I", *map(str, debs.values())], capture_output=True, text=True)
    assert [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:", "I:")] == []


def build_yaml_by_sequence_dependency(work: Path, env: dict[str, str], stock: Build, *args: str) -> None:
    """libyaml with `Build-Depends: dh-sequence-splitdebug` and debian/rules untouched (how an installed
    dh-splitdebug is used), built with `env`: dh must run dh_splitdebug, and the lists equal stock's."""
    shutil.copytree(corpus_source("libyaml"), work / "src", symlinks=True)
    control = work / "src/debian/control"
    text, n = re.subn(r"^Build-Depends:", "Build-Depends: dh-sequence-splitdebug,", control.read_text(),
                      count=1, flags=re.M)
    assert n == 1
    control.write_text(text)
    proc = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-B", *args], cwd=work / "src", env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "dh_splitdebug -a" in proc.stdout
    built = Build(work, work / "src").debs()
    assert set(built) == {"libyaml-0-2", "libyaml-0-2-dbgsym", "libyaml-dev"}
    for name in built:
        assert listing(built[name]) == listing(stock.debs()[name]), name


def test_installed_packages_build_with_no_checkout(own_debs: Path, yaml_stock: Build, tmp_path: Path) -> None:
    """The two .debs unpacked into a root, the system python3, a clean environment and a directory
    outside the checkout: `Build-Depends: dh-sequence-splitdebug` (what dh-splitdebug Provides), with
    debian/rules left as it is, makes dh run the addon and dh_splitdebug from there. `-d`: dpkg does not
    know the unpacked packages as installed."""
    root = tmp_path / "installed"
    for deb in own_debs.glob("*.deb"):
        extract_deb(deb, root)
    env = {"PATH": f"{root}/usr/bin:{CLEAN_PATH}", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "PYTHONPATH": str(root / "usr/lib/python3/dist-packages"), "PERL5LIB": str(root / "usr/share/perl5")}
    assert shutil.which("dh_splitdebug", path=env["PATH"]) == str(root / "usr/bin/dh_splitdebug")
    where = subprocess.run(["python3", "-c", "import splitdebug; print(splitdebug.__file__)"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(root / "usr/lib/python3/dist-packages/")), where
    build_yaml_by_sequence_dependency(tmp_path / "build", env, yaml_stock, "-d")


def test_own_packages_install_with_apt(own_debs: Path) -> None:
    """apt itself resolves the two .debs against this machine's Debian: every dependency named in
    debian/control exists and is satisfiable (a simulation, `-s`: the shared machine is left as it is)."""
    debs = sorted(str(p) for p in own_debs.glob("*.deb"))
    proc = subprocess.run(["apt-get", "install", "-s", "--no-install-recommends", *debs],
                          env={"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    assert re.search(r"^Inst python3-splitdebug ", proc.stdout, re.M), proc.stdout[-2000:]
    assert re.search(r"^Inst dh-splitdebug ", proc.stdout, re.M), proc.stdout[-2000:]
    assert re.search(r"^Conf dh-splitdebug ", proc.stdout, re.M), proc.stdout[-2000:]


def installed(*packages: str) -> list[str]:
    return [p for p in packages if "ok installed" in subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout]


def test_apt_installed_packages_build_with_no_checkout(own_debs: Path, yaml_stock: Build, tmp_path: Path) -> None:
    """`apt-get install ./*.deb` for real, then libyaml with `Build-Depends: dh-sequence-splitdebug` (now
    satisfied: dpkg-checkbuilddeps runs) from a directory outside the checkout, with no PYTHONPATH or PERL5LIB:
    the installed python3-splitdebug and dh-splitdebug are all the build uses. Purged afterwards; on a machine
    where either is installed already, the test will not replace the owner's packages."""
    ours = ("python3-splitdebug", "dh-splitdebug")
    if already := installed(*ours):
        pytest.skip(f"{', '.join(already)} installed on this machine: not replaced by a test")
    env = {"PATH": CLEAN_PATH, "HOME": str(tmp_path), "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    debs = sorted(str(p) for p in own_debs.glob("*.deb"))
    try:
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *debs], env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        assert installed(*ours) == list(ours)
        assert shutil.which("dh_splitdebug", path=CLEAN_PATH) == "/usr/bin/dh_splitdebug"
        build_yaml_by_sequence_dependency(tmp_path / "build", env, yaml_stock)
    finally:
        subprocess.run(["apt-get", "purge", "-y", "-q", *installed(*ours)], env=env, capture_output=True)
    assert installed(*ours) == []


# --- lua5.4 (SPLITDEBUG_FULL=1): its own override `dh_strip --dbg-package=liblua5.4-0-dbg` ---

def lua_with_addon(rules: str) -> str:
    rules = with_addon(rules)
    assert "override_dh_strip:\n\tdh_strip --dbg-package" in rules
    return rules.replace("override_dh_strip:\n\tdh_strip --dbg-package",
                         "override_dh_splitdebug:\n\tdh_splitdebug --dbg-package")


@pytest.mark.skipif(not FULL, reason="lua5.4's builds take minutes: SPLITDEBUG_FULL=1")
def test_lua_dbg_package_as_stock(tmp_path: Path) -> None:
    stock = build("lua5.4", tmp_path / "stock").debs()
    ours = build("lua5.4", tmp_path / "addon", lua_with_addon).debs()
    assert set(ours) == set(stock) and "liblua5.4-0-dbg" in ours
    for name in stock:
        assert listing(ours[name]) == listing(stock[name]), name
    assert fields(ours["liblua5.4-0-dbg"])["Build-Ids"] == fields(stock["liblua5.4-0-dbg"])["Build-Ids"]
    root = tmp_path / "root"
    for name in ("lua5.4", "liblua5.4-0", "liblua5.4-0-dbg"):
        extract_deb(ours[name], root)
    dwz = root / f"usr/lib/debug/.dwz/{MA}"
    assert sorted(p.name for p in dwz.iterdir()) == ["liblua5.4-0.debug", "lua5.4.debug"]  # one per package
    info = subprocess.run(["readelf", "-wi", str(dwz / "liblua5.4-0.debug")], capture_output=True, text=True).stdout
    assert re.search(r"DW_AT_name .*: lua_State$", info, re.M)  # so ptype below reads it from the multifile
    lib = next((root / f"usr/lib/{MA}").glob("liblua5.4.so.0.*"))
    out = gdb(lib, root / "usr/lib/debug", "info line lua_newstate", "ptype struct lua_State")
    assert re.search(r'Line \d+ of "[^"]*lstate\.c"', out), out
    assert "CallInfo *ci;" in out, out
    prog = root / "usr/bin/lua5.4"
    out = gdb(prog, root / "usr/lib/debug", "info line main")
    assert re.search(r'Line \d+ of "[^"]*lua\.c"', out), out
    # `check` accepts both trees as Debian ships them (the legacy -dbg package's debug root included).
    for debs in (stock, ours):
        whole = tmp_path / f"whole-{len(list(tmp_path.iterdir()))}"
        for deb in debs.values():
            extract_deb(deb, whole)
        proc = run_cli("check", "--policy", "debian", "--format", "json", whole)
        assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == [], proc.stdout[-3000:]
