"""Issue 21: root in a package build must not be steered by the tree, the metadata or the policy.

Each test builds a hostile tree, metadata or policy, runs the real command, and checks that nothing
outside the root changed (a sentinel directory hashed before and after) and that a refusal is one line.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import random
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import PROGRAM, compile_c, env_with_package, have, run_cli


def digest(top: Path) -> str:
    """Every entry under `top`: path, type, mode and content (links not followed)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            st = path.lstat()
            h.update(os.fsencode(path.relative_to(top)) + b"\0" + oct(st.st_mode).encode())
            if path.is_symlink():
                h.update(os.fsencode(os.readlink(path)))
            elif path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A directory outside every root: a hostile run must leave it as it was."""
    top = tmp_path / "outside"
    (top / "etc").mkdir(parents=True)
    (top / "etc/secret").write_text("root only\n")
    (top / "etc/secret").chmod(0o600)
    return top


def one_line_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splitdebug: error:"), proc.stderr
    return lines[0]


def small_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    compile_c(root / "usr/bin/prog", PROGRAM)
    return root


def package(root: Path, policy: str, out: Path, *extra: str, name: str = "demo") -> subprocess.CompletedProcess[str]:
    release = ("--release", "1")
    return run_cli("package", "--policy", policy, "--name", name, "--version", "1.0", *release,
                   "--source-date-epoch", "1700000000", "--output", out, *extra, root)


# -- 1. metadata is data ---------------------------------------------------------------------------

@pytest.mark.skipif(not have("rpmbuild"), reason="rpmbuild")
@pytest.mark.parametrize("description", [
    "text\n%post\ntouch {marker}",
    "text\n%%prep\ntouch {marker}",
    "text\n  %build\ntouch {marker}",
    "text\n%%install\ntouch {marker}\n%%files\n/x",
])
def test_rpm_description_cannot_open_a_section(tmp_path: Path, sentinel: Path, description: str) -> None:
    root = small_root(tmp_path)
    marker = sentinel / "ran"
    before = digest(sentinel)
    proc = package(root, "redhat", tmp_path / "out", "--description", description.format(marker=marker))
    one_line_refusal(proc)
    assert not marker.exists() and digest(sentinel) == before
    assert not list((tmp_path / "out").glob("*/*.rpm"))


@pytest.mark.skipif(not have("rpmbuild"), reason="rpmbuild")
def test_rpm_description_percent_inside_a_line_is_text(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    proc = package(root, "redhat", tmp_path / "out", "--description", "100% sure\nuses %{name} and %%post\n")
    assert proc.returncode == 0, proc.stderr
    rpm = next(p for p in (tmp_path / "out").glob("*/demo-1.0-1.*.rpm"))
    info = subprocess.run(["rpm", "-qp", "--qf", "%{DESCRIPTION}", str(rpm)], capture_output=True, text=True).stdout
    assert info == "100% sure\nuses %{name} and %%post"
    scripts = subprocess.run(["rpm", "-qp", "--scripts", str(rpm)], capture_output=True, text=True).stdout
    assert scripts.strip() == ""


@pytest.mark.parametrize("policy", ["redhat", "debian"])
@pytest.mark.parametrize("arch", ["%(id > {marker})", "--eval=%(touch {marker})", "amd64\nEssential: yes",
                                  "x86_64\n", "../../x", "a/b"])
def test_arch_is_refused_unless_an_architecture(tmp_path: Path, sentinel: Path, policy: str, arch: str) -> None:
    root = small_root(tmp_path)
    marker = sentinel / "ran"
    before = digest(sentinel)
    proc = package(root, policy, tmp_path / "out", "--arch", arch.format(marker=marker))
    assert "--arch" in one_line_refusal(proc)
    assert not marker.exists() and digest(sentinel) == before
    assert not list((tmp_path / "out").rglob("*.*pm")) and not list((tmp_path / "out").rglob("*.deb"))


@pytest.mark.parametrize("policy", ["redhat", "debian"])
@pytest.mark.parametrize("field,value", [
    ("--name", "demo\n"), ("--version", "1.0\n"), ("--release", "1\n"), ("--name", ".."),
    ("--version", "1..0"), ("--release", "../../x"), ("--summary", "one\nPre-Depends: evil"),
    ("--maintainer", "a <b@c>\nEssential: yes"), ("--section", "misc\nEssential: yes"),
    ("--summary", "bad-\udcff-text"), ("--name", "bad-\udcff-name"),
])
def test_fields_matched_whole(tmp_path: Path, sentinel: Path, policy: str, field: str, value: str) -> None:
    root = small_root(tmp_path)
    before = digest(sentinel)
    args = {"--name": "demo", "--version": "1.0", "--release": "1"}
    extra: list[str] = []
    if field in args:
        args[field] = value
    else:
        extra = [field, value]
    proc = run_cli("package", "--policy", policy, *[x for kv in args.items() for x in kv],
                   "--output", tmp_path / "out", *extra, root)
    assert "internal error" not in one_line_refusal(proc)
    assert digest(sentinel) == before


@pytest.mark.skipif(not have("dpkg-deb"), reason="dpkg-deb")
def test_deb_description_lines_stay_in_the_description(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    proc = package(root, "debian", tmp_path / "out", "--description",
                   "first\n\nEssential: yes\nPre-Depends: evil\n.\n")
    assert proc.returncode == 0, proc.stderr
    deb = next((tmp_path / "out").glob("demo_*.deb"))
    fields = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "\nEssential:" not in fields and "\nPre-Depends:" not in fields
    assert " Essential: yes" in fields


@pytest.mark.parametrize("field,value", [("--version", "../../../outside"), ("--release", "1\n"),
                                         ("--arch", "x/.."), ("--package", ".."),
                                         # a category (portage's dev-util/demo) is one level, never more
                                         ("--package", "cat/../../x"), ("--package", "a/b/c"), ("--package", "/abs"),
                                         ("--package", "cat/"), ("--package", "cat/.hidden")])
def test_split_refuses_path_syntax_in_package_fields(tmp_path: Path, sentinel: Path, field: str, value: str) -> None:
    root = small_root(tmp_path)
    before = digest(sentinel)
    args = {"--package": "demo", "--version": "1.0", "--release": "1", field: value}
    proc = run_cli("split", "--policy", "redhat", *[x for kv in args.items() for x in kv], root)
    assert field in one_line_refusal(proc)
    assert digest(sentinel) == before


# -- 2. writes stay inside the root ----------------------------------------------------------------

SHARED = """
#include <stdio.h>
struct shape {{ int kind; double w, h; const char *name; struct shape *next; }};
struct registry {{ struct shape *head; int count; long flags[8]; }};
double area_{n}(const struct shape *s) {{ return s->w * s->h; }}
int main(void) {{ struct registry r = {{0}}; struct shape s = {{1, 2, 3, "x", 0}}; r.head = &s;
  printf("%f %d\\n", area_{n}(r.head), r.count); return 0; }}
"""


def dwz_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for n in ("one", "two", "three"):
        compile_c(root / f"usr/bin/{n}", SHARED.format(n=n))
    return root


def no_dwz_policy(tmp_path: Path, base: str) -> Path:
    text = (Path(__file__).resolve().parent.parent / f"configs/{base}.yaml").read_text()
    policy = tmp_path / f"{base}-nodwz.yaml"
    policy.write_text(text.replace("dwz: multifile", "dwz: none"))
    return policy


@pytest.mark.skipif(not have("dwz"), reason="dwz")
@pytest.mark.parametrize("policy,multifile", [
    ("redhat", "usr/lib/debug/.dwz/demo-1.0-1.x86_64"),
    ("debian", "usr/lib/debug/.dwz/x86_64-linux-gnu/demo.debug"),
])
def test_split_dwz_multifile_never_written_through_a_dangling_symlink(
        tmp_path: Path, sentinel: Path, policy: str, multifile: str) -> None:
    root = dwz_root(tmp_path)
    link = root / multifile
    link.parent.mkdir(parents=True)
    link.symlink_to(sentinel / "etc/planted")  # dangling: nothing there yet
    before = digest(sentinel)
    proc = run_cli("split", "--policy", policy, "--package", "demo", "--version", "1.0", "--release", "1",
                   "--arch", "x86_64", root)
    assert "symlink" in one_line_refusal(proc)
    assert not (sentinel / "etc/planted").exists() and digest(sentinel) == before


@pytest.mark.skipif(not have("dwz") or not have("dpkg-deb"), reason="dwz, dpkg-deb")
def test_package_dwz_multifile_never_written_through_a_dangling_symlink(tmp_path: Path, sentinel: Path) -> None:
    root = dwz_root(tmp_path)
    proc = run_cli("split", "--policy", no_dwz_policy(tmp_path, "debian"), root)
    assert proc.returncode == 0, proc.stderr
    link = root / "usr/lib/debug/.dwz/x86_64-linux-gnu/demo.debug"
    link.parent.mkdir(parents=True)
    link.symlink_to(sentinel / "etc/planted")
    before = digest(sentinel)
    proc = package(root, "debian", tmp_path / "out", "--dwz", "--arch", "amd64")
    assert "symlink" in one_line_refusal(proc)
    assert not (sentinel / "etc/planted").exists() and digest(sentinel) == before


@pytest.mark.skipif(not have("dwz"), reason="dwz")
def test_dwz_multifile_still_made_and_shipped_0644(tmp_path: Path) -> None:
    root = dwz_root(tmp_path)
    proc = run_cli("split", "--policy", "redhat", "--package", "demo", "--version", "1.0", "--release", "1",
                   "--arch", "x86_64", root)
    assert proc.returncode == 0, proc.stderr
    mf = root / "usr/lib/debug/.dwz/demo-1.0-1.x86_64"
    assert mf.is_file() and not mf.is_symlink() and mf.stat().st_mode & 0o7777 == 0o644


@pytest.mark.skipif(not have("dpkg-deb"), reason="dpkg-deb")
@pytest.mark.parametrize("plant", ["dangling-copyright", "changelog-link", "doc-dir-link", "share-link"])
def test_deb_doc_files_never_written_through_a_symlink(tmp_path: Path, sentinel: Path, plant: str) -> None:
    root = small_root(tmp_path)
    doc = root / "usr/share/doc/demo"
    target = sentinel / "etc"
    if plant == "dangling-copyright":
        doc.mkdir(parents=True)
        (doc / "copyright").symlink_to(target / "ld.so.preload")
    elif plant == "changelog-link":
        doc.mkdir(parents=True)
        (doc / "changelog.Debian.gz").symlink_to(target / "secret")
    elif plant == "doc-dir-link":
        doc.parent.mkdir(parents=True)
        doc.symlink_to(target)
    else:
        (root / "usr").mkdir(exist_ok=True)
        (root / "usr/share").symlink_to(target)
    before = digest(sentinel)
    proc = package(root, "debian", tmp_path / "out", "--license", "/lib/evil.so")
    assert "not written through" in one_line_refusal(proc)
    assert digest(sentinel) == before and not (target / "ld.so.preload").exists()


@pytest.mark.skipif(not have("dpkg-deb"), reason="dpkg-deb")
def test_deb_doc_files_of_the_tree_are_kept(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    doc = root / "usr/share/doc/demo"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("upstream's own\n")
    proc = package(root, "debian", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    deb = next((tmp_path / "out").glob("demo_*.deb"))
    x = tmp_path / "x"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(x)], check=True)
    assert (x / "usr/share/doc/demo/copyright").read_text() == "upstream's own\n"
    assert (x / "usr/share/doc/demo/changelog.Debian.gz").stat().st_size > 0


@pytest.mark.parametrize("flags", [
    "[--strip-all, '--dump-section=.text={out}/etc/dumped']",
    "[--strip-all, '--add-section=.stolen={out}/etc/secret']",
    "[--strip-all, '--keep-symbols={out}/etc/secret']",
    "[--strip-all, '@{out}/etc/secret']",
    "[--strip-all, --remove-section, '{out}/x']",
    "[--strip-all, -R]",
])
def test_policy_strip_flags_are_allow_listed(tmp_path: Path, sentinel: Path, flags: str) -> None:
    root = small_root(tmp_path)
    text = (Path(__file__).resolve().parent.parent / "configs/debian.yaml").read_text()
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("executable:"))
    policy = tmp_path / "hostile.yaml"
    policy.write_text("\n".join(f"  executable: {flags.format(out=sentinel)}" if n == line else ln
                                for n, ln in enumerate(text.splitlines(), 1)) + "\n")
    before = digest(sentinel)
    proc = run_cli("split", "--policy", policy, root)
    err = one_line_refusal(proc)
    assert f"{policy}:{line}: key 'strip.executable':" in err
    assert digest(sentinel) == before and not (sentinel / "etc/dumped").exists()
    assert b".stolen" not in (root / "usr/bin/prog").read_bytes()


def test_shipped_policies_strip_flags_still_load() -> None:
    from splitdebug.policy import load_policy
    for name in ("debian", "redhat", "yocto"):
        assert load_policy(name).strip.executable is not None


# -- 3. policies are data ----------------------------------------------------------------------------

def _policy_with(tmp_path: Path, key: str, value: str) -> tuple[Path, int]:
    text = (Path(__file__).resolve().parent.parent / "configs/redhat.yaml").read_text().splitlines()
    line = next(n for n, ln in enumerate(text, 1) if ln.startswith(f"{key}:"))
    text[line - 1] = f"{key}: {value}"
    policy = tmp_path / "hostile.yaml"
    policy.write_text("\n".join(text) + "\n")
    return policy, line


@pytest.mark.parametrize("key,value", [
    ("debug_file", '"{debug_root}/{path}-{build_id_rest:>1500000000}.debug"'),
    ("debug_file", '"{debug_root}/{path!r}.debug"'),
    ("debug_file", '"{debug_root}/{path}{}.debug"'),
    ("debug_file_mode", "06777"),
    ("debug_file_mode", "0646"),
    ("debug_file_mode", "01644"),
])
def test_policy_templates_and_modes_are_plain(tmp_path: Path, key: str, value: str) -> None:
    root = small_root(tmp_path)
    policy, line = _policy_with(tmp_path, key, value)
    proc = run_cli("split", "--policy", policy, "--version", "1", "--release", "1", root)
    assert f"{policy}:{line}: key '{key}':" in one_line_refusal(proc)
    assert not (root / "usr/lib/debug").exists()


# -- 4. only regular files are read ------------------------------------------------------------------

def run_cli_bounded(*args: str | os.PathLike[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """run_cli with a deadline: a hang is a failure, not a stuck suite."""
    try:
        return subprocess.run([sys.executable, "-m", "splitdebug", *map(str, args)], env=env_with_package(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"splitdebug {' '.join(map(str, args))}: still running after {timeout} s")


@pytest.mark.skipif(not have("dwz"), reason="dwz")
@pytest.mark.parametrize("policy", ["redhat", "debian"])
def test_fifo_in_the_tree_hangs_neither_split_check_nor_package(tmp_path: Path, sentinel: Path, policy: str) -> None:
    root = dwz_root(tmp_path)
    os.mkfifo(root / "usr/bin/fifo")
    (root / "usr/lib/debug/.build-id/ab").mkdir(parents=True)
    os.mkfifo(root / "usr/lib/debug/.build-id/ab/cdef.debug")
    before = digest(sentinel)
    proc = run_cli_bounded("split", "--policy", policy, "--package", "demo", "--version", "1.0", "--release", "1",
                           root, timeout=30)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli_bounded("check", "--policy", policy, "--package", "demo", "--version", "1.0", "--release", "1",
                           root, timeout=60)
    assert proc.returncode in (0, 1) and "internal error" not in proc.stderr, proc.stderr
    proc = run_cli_bounded("package", "--policy", policy, "--name", "demo", "--version", "1.0", "--release", "1",
                           "--dwz", "--output", tmp_path / "out", root, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert digest(sentinel) == before


@pytest.mark.skipif(not have("dwz"), reason="dwz")
def test_binary_hard_linked_from_outside_never_patched_in_place(tmp_path: Path, sentinel: Path) -> None:
    """A stripped binary with a debuglink (as every Fedora binary has), hard-linked into the tree, with
    a debug file whose CRC differs at its place: the CRC fix-up must not write the shared inode."""
    build = tmp_path / "build"
    full = compile_c(build / "victim", PROGRAM)
    dbg = build / "victim.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(full), str(dbg)], check=True)
    outside = sentinel / "victim"
    subprocess.run(["objcopy", "--strip-debug", f"--add-gnu-debuglink={dbg}", str(full), str(outside)], check=True)
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    os.link(outside, root / "usr/bin/victim")
    os.link(outside, root / "usr/bin/victim-alias")
    placed = root / "usr/lib/debug/usr/bin/victim-1.0-1.x86_64.debug"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(dbg.read_bytes() + b"\0" * 16)  # another CRC than the one the binary carries
    os.link(placed, placed.parent / "victim-alias-1.0-1.x86_64.debug")
    before = digest(sentinel)
    proc = run_cli("split", "--policy", "redhat", "--package", "demo", "--version", "1.0", "--release", "1",
                   "--arch", "x86_64", root)
    assert proc.returncode == 0, proc.stderr
    assert digest(sentinel) == before
    shipped = root / "usr/bin/victim"
    assert not os.path.samefile(shipped, outside) and shipped.read_bytes() != outside.read_bytes()
    assert os.path.samefile(shipped, root / "usr/bin/victim-alias")  # the tree's own names stay one file
    from splitdebug.elf import read as elfread
    carried = elfread.read_debuglink(shipped, elfread.read_elf(shipped))
    assert carried is not None and carried[1] == elfread.crc32_file(placed)


def _built_with_sources(tmp_path: Path) -> tuple[Path, Path]:
    """A program compiled in src/ from main.c and two headers; returns (root, src)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "main.c").write_text('#include "a.h"\n#include "b.h"\nint main(void) { return a_fn() + b_fn(); }\n')
    (src / "a.h").write_text("static int a_fn(void) {\n  return 1;\n}\n")
    (src / "b.h").write_text("static int b_fn(void) {\n  return 2;\n}\n")
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    subprocess.run(["gcc", "-g", "-O0", "-Wl,--build-id", "-o", str(root / "usr/bin/prog"), "main.c"], cwd=src,
                   check=True)
    return root, src


@pytest.mark.skipif(not have("debugedit") and not Path("/usr/lib/rpm/debugedit").exists(), reason="debugedit")
def test_sources_symlinked_out_of_the_source_root_are_not_copied(tmp_path: Path, sentinel: Path) -> None:
    root, src = _built_with_sources(tmp_path)
    (src / "a.h").unlink()
    (src / "a.h").symlink_to(sentinel / "etc/secret")  # 0600, root only
    (src / "b.h").chmod(0o600)
    before = digest(sentinel)
    proc = run_cli("split", "--policy", "redhat", "--package", "demo", "--version", "1.0", "--release", "1",
                   "--arch", "x86_64", "--source-root", src, root)
    assert proc.returncode == 0, proc.stderr
    shipped = root / "usr/src/debug/demo-1.0-1.x86_64"
    assert (shipped / "main.c").stat().st_mode & 0o777 == 0o644
    assert not (shipped / "a.h").exists()
    assert (shipped / "b.h").stat().st_mode & 0o777 == 0o600  # never wider than the source
    assert b"root only" not in b"".join(p.read_bytes() for p in shipped.rglob("*") if p.is_file())
    assert digest(sentinel) == before


@pytest.mark.skipif(not have("debugedit") and not Path("/usr/lib/rpm/debugedit").exists(), reason="debugedit")
def test_symlinked_sources_directory_is_refused_not_chmodded(tmp_path: Path, sentinel: Path) -> None:
    """usr/src/debug/<pkg> -> the source root itself: every source is 'already copied', and the
    directories under it were chmodded 0755 (a 0700 one too)."""
    root, src = _built_with_sources(tmp_path)
    (src / "private").mkdir()
    (src / "private").chmod(0o700)
    (root / "usr/src/debug").mkdir(parents=True)
    (root / "usr/src/debug/demo-1.0-1.x86_64").symlink_to(src)
    before = digest(src)
    proc = run_cli("split", "--policy", "redhat", "--package", "demo", "--version", "1.0", "--release", "1",
                   "--arch", "x86_64", "--source-root", src, root)
    assert proc.returncode != 0
    assert "not written through" in proc.stderr and "internal error" not in proc.stderr
    assert digest(src) == before and (src / "private").stat().st_mode & 0o777 == 0o700


def _deep(top: Path, levels: int) -> None:
    """`levels` nested directories under top, made relative to each other (no long paths)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        sub = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = sub
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)


@pytest.fixture
def deep_root(tmp_path: Path) -> Iterator[Path]:
    root = small_root(tmp_path)
    (root / "usr/share/deep").mkdir(parents=True)
    _deep(root / "usr/share/deep", 1500)
    yield root
    from splitdebug import fs
    fs.remove_tree(root)  # pytest's own clean-up of old temporary directories recurses


@pytest.mark.parametrize("policy", ["redhat", "debian"])
def test_1500_deep_directories_split_check_and_package(tmp_path: Path, deep_root: Path, policy: str) -> None:
    root = deep_root
    pkg = ("--package", "demo", "--version", "1.0", "--release", "1")
    for args in (("split", "--policy", policy, *pkg, root), ("check", "--policy", policy, *pkg, root),
                 ("package", "--policy", policy, "--name", "demo", "--version", "1.0", "--release", "1",
                  "--output", tmp_path / "out", root)):
        proc = run_cli_bounded(*args, timeout=120)
        assert proc.returncode == 0 and "Error" not in proc.stderr, (args[0], proc.stderr)


@pytest.mark.parametrize("text", ["name: " + "[" * 200_000, "name: x\nstrip: " + "{a: " * 200_000],
                         ids=["lists", "mappings"])
def test_200k_deep_yaml_is_one_line(tmp_path: Path, text: str) -> None:
    policy = tmp_path / "deep.yaml"
    policy.write_text(text + "\n")
    proc = run_cli_bounded("split", "--policy", policy, small_root(tmp_path))
    assert f"{policy}: invalid YAML: nested too deeply" in one_line_refusal(proc)


@pytest.mark.parametrize("policy", ["redhat", "debian"])
def test_umask_000_gives_no_world_writable_directory(tmp_path: Path, policy: str) -> None:
    root = dwz_root(tmp_path)
    argv = [sys.executable, "-m", "splitdebug", "split", "--policy", policy, "--package", "demo", "--version", "1.0",
            "--release", "1", str(root)]
    proc = subprocess.run(argv, env=env_with_package(), capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(0))
    assert proc.returncode == 0, proc.stderr
    wide = [p for p in root.rglob("*") if not p.is_symlink() and p.stat().st_mode & 0o002]
    assert not wide


# -- 5. bounded resources: crafted ELFs stay under 200 MB and 5 s ------------------------------------

def _sections(data: bytes | bytearray) -> dict[str, tuple[int, int]]:
    """{name: (offset of its section header, its sh_addralign)} of a 64-bit little-endian ELF."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
    out = {}
    for i in range(shnum):
        at = shoff + i * shentsize
        name_off = struct.unpack_from("<I", data, at)[0]
        name = bytes(data[names + name_off:data.index(b"\0", names + name_off)]).decode()
        out[name] = (at, struct.unpack_from("<Q", data, at + 0x30)[0])
    return out


def huge_alignment(path: Path) -> None:
    """.comment aligned at 1 GiB: a 17 KB file whose debug file was 1 GiB."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, _sections(data)[".comment"][0] + 0x30, 1 << 30)
    path.write_bytes(data)


def strtab_without_nul(path: Path, symbols: int = 60_000, size: int = 1 << 20, table: str = ".symtab",
                       strings: str = ".strtab") -> None:
    """.symtab with 60k function symbols into a 1 MiB .strtab of 'A's: every name ran to its end."""
    data = bytearray(path.read_bytes())
    secs = _sections(data)
    text = sorted(secs, key=lambda n: secs[n][0]).index(".text")
    data.extend(b"\0" * (-len(data) % 8))
    symoff = len(data)
    data.extend(b"\0" * 24)
    for i in range(1, symbols):
        data.extend(struct.pack("<IBBHQQ", (i * 7) % size, 0x12, 0, text, 0x1000 + i, 1))
    stroff = len(data)
    data.extend(b"A" * size)
    struct.pack_into("<QQ", data, secs[table][0] + 0x18, symoff, symbols * 24)
    struct.pack_into("<I", data, secs[table][0] + 0x2C, 1)
    struct.pack_into("<QQ", data, secs[strings][0] + 0x18, stroff, size)
    path.write_bytes(data)


def xz_bomb(path: Path, size_mib: int = 320) -> None:
    """.gnu_debugdata of 49 KB that inflates to 320 MiB of zeros."""
    packer = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=0)
    chunk = b"\0" * (1 << 20)
    bomb = b"".join(packer.compress(chunk) for _ in range(size_mib)) + packer.flush()
    blob = path.with_name("bomb.xz")
    blob.write_bytes(bomb)
    subprocess.run(["objcopy", f"--add-section=.gnu_debugdata={blob}", str(path)], check=True)
    blob.unlink()


def measured(*args: str | os.PathLike[str], engine: str = "builtin") -> tuple[subprocess.CompletedProcess[str], float, float]:
    """(result, peak RSS in MB of splitdebug and its tools, seconds) of one run in a fresh process."""
    wrapper = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.monotonic() - t); "
               "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); sys.exit(p.returncode)")
    env = dict(env_with_package(), SPLITDEBUG_ENGINE=engine)
    proc = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "splitdebug", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)
    first, _, rest = proc.stdout.partition("\n")
    rss_kb, seconds = first.split()
    return subprocess.CompletedProcess(proc.args, proc.returncode, rest, proc.stderr), int(rss_kb) / 1024, float(seconds)


@pytest.mark.parametrize("engine", ["builtin", "tools"])
@pytest.mark.parametrize("craft,reason", [(huge_alignment, "alignment"), (strtab_without_nul, "string table")],
                         ids=["sh_addralign", "strtab-no-nul"])
def test_crafted_elf_split_is_bounded(tmp_path: Path, craft: object, reason: str, engine: str) -> None:
    root = small_root(tmp_path)
    assert callable(craft)
    craft(root / "usr/bin/prog")
    proc, rss, seconds = measured("split", "--policy", "redhat", "--package", "demo", "--version", "1.0",
                                  "--release", "1", root, engine=engine)
    assert rss < 200 and seconds < 5, (rss, seconds, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if "summary" not in line and "binaries split" not in line]
    assert len(lines) == 1 and reason in lines[0] and "prog" in lines[0], proc.stderr
    assert "internal error" not in proc.stderr
    debug = root / "usr/lib/debug"
    assert sum(p.stat().st_size for p in debug.rglob("*") if p.is_file()) < 10 << 20 if debug.exists() else True


def test_xz_bomb_in_gnu_debugdata_is_bounded_in_check(tmp_path: Path) -> None:
    root = small_root(tmp_path)
    xz_bomb(root / "usr/bin/prog")
    proc = run_cli("split", "--policy", "debian", root)  # debian keeps .gnu_debugdata in the binary
    assert proc.returncode == 0, proc.stderr
    proc, rss, seconds = measured("check", "--policy", "redhat", "--package", "demo", "--version", "1.0",
                                  "--release", "1", root)
    assert rss < 200 and seconds < 5, (rss, seconds)
    assert "xz bomb" in proc.stdout + proc.stderr and "internal error" not in proc.stderr


def test_xz_bomb_in_gnu_debugdata_is_bounded_in_symbolize(tmp_path: Path) -> None:
    """symbolize falls back to a shipped binary's minidebuginfo: the same bound as check (one shared
    reader), a one-line warning, the frame degrades to .dynsym."""
    root = small_root(tmp_path)
    xz_bomb(root / "usr/bin/prog")
    proc = run_cli("split", "--policy", "debian", root)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(root / "usr/lib/debug")  # no debug file: minidebuginfo is the next source
    log = tmp_path / "crash.log"
    log.write_text(f"{root}/usr/bin/prog 0x1000\n")
    proc, rss, seconds = measured("symbolize", "--root", root, "--debug-file-directory", tmp_path / "none", log)
    assert rss < 200 and seconds < 5, (rss, seconds)
    assert "xz bomb" in proc.stderr and "internal error" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("policy", ["redhat", "debian"])
def test_non_utf8_file_name_in_package_is_one_line_or_packed(tmp_path: Path, policy: str) -> None:
    root = small_root(tmp_path)
    (root / "usr/share").mkdir(parents=True)
    Path(os.fsdecode(bytes(root / "usr/share") + b"/bad-\xff-name")).write_text("x\n")
    proc = package(root, policy, tmp_path / "out")
    if policy == "redhat":  # rpm refuses names that are not UTF-8: said in one line, before rpmbuild
        assert "not a UTF-8 file name" in one_line_refusal(proc)
    else:  # dpkg takes bytes
        assert proc.returncode == 0, proc.stderr
        deb = next((tmp_path / "out").glob("demo_*.deb"))
        listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, check=True).stdout
        assert b"bad-\\377-name" in listing  # tar(1) octal-escapes it


def test_exports_report_of_a_dynstr_without_nul_is_bounded(tmp_path: Path) -> None:
    lib = compile_c(tmp_path / "libx.so", "int f(int x) { return x + 1; }\n", shared=True)
    strtab_without_nul(lib, table=".dynsym", strings=".dynstr")
    proc, rss, seconds = measured("exports", "report", lib)
    assert rss < 200 and seconds < 5, (rss, seconds)
    assert "string table" in one_line_refusal(proc)


# -- 6. a tree changed while split runs: directories swapped for symlinks ---------------------------

RACE_DIRS, RACE_FILES = 40, 10  # 400 binaries


def _race_tree(root: Path) -> list[Path]:
    """RACE_DIRS x RACE_FILES copies of one program, each with a build-id of its own (patched)."""
    model = compile_c(root.parent / "model", PROGRAM)
    note = subprocess.run(["readelf", "-n", str(model)], capture_output=True, text=True, check=True).stdout
    build_id = bytes.fromhex(note.split("Build ID:")[1].split()[0])
    data = model.read_bytes()
    assert data.count(build_id) == 1
    dirs = []
    for d in range(RACE_DIRS):
        here = root / f"usr/lib/race{d:02}"
        here.mkdir(parents=True)
        dirs.append(here)
        for f in range(RACE_FILES):
            own = hashlib.sha1(f"{d}/{f}".encode()).digest()[:len(build_id)]
            (here / f"prog{f}").write_bytes(data.replace(build_id, own))
            (here / f"prog{f}").chmod(0o755)
    return dirs


def _swap_until(stop: threading.Event, started: Path, dirs: list[Path], outside: Path, seed: int) -> int:
    """Swap directories (of the tree and, once made, of the debug tree) for symlinks to `outside`
    and back until `stop`, from when `started` exists (the scan, which refuses an unreadable tree,
    is over); the count of swaps. Each rename is atomic: the tree is whole at the end."""
    rng = random.Random(seed)
    swaps = 0
    while not started.exists() and not stop.is_set():  # the scan is over once the debug tree is made
        time.sleep(0.0005)
    while not stop.is_set():
        here = rng.choice(dirs if rng.random() < 0.5 else dirs[:2 * RACE_DIRS])  # half: (debug) tree dirs
        away = here.with_name(".race-" + here.name)
        try:
            os.rename(here, away)
        except OSError:
            continue
        try:
            os.symlink(outside, here)
        except FileExistsError:  # the split made `here` again meanwhile
            _put_back(away, here)
            continue
        time.sleep(0.002)
        os.unlink(here)
        _put_back(away, here)
        swaps += 1
    return swaps


def _put_back(away: Path, here: Path) -> None:
    """Rename `away` back to `here`; if the split made `here` meanwhile, move the entries into it."""
    try:
        os.rename(away, here)
    except OSError:
        for entry in away.iterdir():
            os.replace(entry, here / entry.name)
        away.rmdir()


def race_split(tmp_path: Path, rounds: int) -> tuple[int, int]:
    """`split` (in-process engine) while directories of the tree, of the debug tree and of the
    build-id links are swapped: (rounds with an outside write, swaps)."""
    escaped = swaps = 0
    for r in range(rounds):
        top = tmp_path / f"round{r}"
        root, outside = top / "root", top / "outside"
        (outside / "keep").mkdir(parents=True)
        (outside / "keep/file").write_text("outside\n")
        dirs = _race_tree(root)
        dirs += [root / "usr/lib/debug" / d.relative_to(root) for d in dirs]
        dirs += sorted({root / "usr/lib/debug/.build-id" / hashlib.sha1(f"{d}/{f}".encode()).hexdigest()[:2]
                        for d in range(RACE_DIRS) for f in range(RACE_FILES)})  # the build-id links' too
        before = digest(outside)
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as racer:
            count = racer.submit(_swap_until, stop, root / "usr/lib/debug", dirs, outside, r)
            env = env_with_package()
            # in-process only: a tool run (elfsplit declining a file) would fail the run loudly
            env.update(SPLITDEBUG_ENGINE="builtin", OBJCOPY="false", STRIP="false", EU_STRIP="false")
            proc = run_cli("split", "--policy", "arch", "--package", "demo", "--version", "1.0", "--jobs", "2",
                           root, env=env)
            stop.set()
            swaps += count.result()
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "false failed" not in proc.stderr, proc.stderr
        if digest(outside) != before:
            escaped += 1
        assert not [p for p in root.rglob("*") if p.is_symlink() and os.readlink(p) == str(outside)]
        # the race did not stop the split: most binaries have their debug file
        assert len(list((root / "usr/lib/debug/usr/lib").rglob("*.debug"))) > RACE_DIRS * RACE_FILES // 2
    return escaped, swaps


def test_directory_swapped_for_a_symlink_during_split_writes_nothing_outside(tmp_path: Path) -> None:
    rounds = int(os.environ.get("SPLITDEBUG_RACE_ROUNDS", "10" if os.environ.get("SPLITDEBUG_FULL") else "2"))
    escaped, swaps = race_split(tmp_path, rounds)
    print(f"race: {escaped} of {rounds} rounds wrote outside the root; {swaps} swaps")
    assert swaps > 0
    assert escaped == 0
