"""Bad input for `splitdebug split`: every odd file gets a reason, nothing crashes, valid files are split."""

from __future__ import annotations

import os
import struct
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PROGRAM, compile_c, gdb_info_line, resolves, run_cli
from splitdebug.elf import read as elfread


def _shstrtab(data: bytes) -> tuple[int, int]:
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, _, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    off = shoff + shstrndx * shentsize
    return struct.unpack_from("<QQ", data, off + 0x18)


@pytest.fixture
def bad_tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root"
    good = compile_c(root / "usr/bin/good", PROGRAM)
    data = good.read_bytes()
    files: dict[str, Path] = {"root": root, "good": good}

    def put(name: str, content: bytes, mode: int = 0o755) -> Path:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        p.chmod(mode)
        files[name] = p
        return p

    put("usr/bin/script.sh", b"#!/bin/sh\necho hi\n")
    put("usr/bin/data.bin", os.urandom(4096))
    put("usr/bin/empty", b"")
    put("usr/bin/header-only", data[:40])
    past = bytearray(data)
    struct.pack_into("<Q", past, 0x28, 10**9)
    put("usr/bin/shoff-past-eof", bytes(past))
    off, size = _shstrtab(data)
    garbled = bytearray(data)
    garbled[off:off + size] = b"\xff" * size
    put("usr/bin/garbled-names", bytes(garbled))
    obj_file = tmp_path / "module.o"
    subprocess.run(["gcc", "-g", "-c", "-o", str(obj_file), "-x", "c", "-"], input=b"int init_module(void){return 0;}",
                   check=True)
    obj = obj_file.read_bytes()
    put("usr/lib/modules/demo.ko", obj, 0o644)
    put("usr/lib/demo.o", obj, 0o644)
    os.symlink("loop-b", root / "usr/bin/loop-a")
    os.symlink("loop-a", root / "usr/bin/loop-b")
    os.symlink("/etc/passwd", root / "usr/bin/escape")
    subprocess.run(["objcopy", "--only-keep-debug", str(good), str(root / "usr/lib/stray.debug")], check=True)
    files["usr/lib/stray.debug"] = root / "usr/lib/stray.debug"
    stripped = put("usr/bin/already-stripped", data)
    subprocess.run(["strip", str(stripped)], check=True)
    files["usr/bin/already-stripped"] = stripped
    m32 = root / "usr/bin/thirty-two"
    subprocess.run(["gcc", "-m32", "-g", "-Wl,--build-id", "-o", str(m32), "-x", "c", "-"],
                   input=b"int main(void){return 0;}", check=True)
    files["m32"] = m32
    readonly = compile_c(root / "usr/bin/read-only", PROGRAM + "int ro;\n")
    readonly.chmod(0o555)
    files["readonly"] = readonly
    weird = compile_c(root / "usr/bin/new\nline", PROGRAM + "int nl;\n")
    files["weird"] = weird
    undecodable = root / os.fsdecode(b"usr/bin/bad-\xff-name")
    compile_c(undecodable, PROGRAM + "int ff;\n")
    files["undecodable"] = undecodable
    # A loaded section's name that is not UTF-8 (found by test_fuzz): the Red Hat minidebuginfo
    # copies loaded section headers, names and all.
    odd = compile_c(root / "usr/bin/odd-section-name", PROGRAM + "int odd;\n")
    body = odd.read_bytes()
    off, size = _shstrtab(body)
    at = body.index(b".rela.dyn\0", off, off + size)
    odd.write_bytes(body[:at] + b".re\x80a.dyn" + body[at + 9:])
    files["odd-section"] = odd
    return files


LEFT_ALONE = ["usr/bin/script.sh", "usr/bin/data.bin", "usr/bin/empty", "usr/bin/header-only",
              "usr/bin/shoff-past-eof", "usr/lib/modules/demo.ko", "usr/lib/demo.o", "usr/lib/stray.debug",
              "usr/bin/already-stripped", "usr/bin/garbled-names"]


@pytest.mark.parametrize("policy", [("--policy", "debian"), ("--policy", "redhat", "--version", "1", "--release", "1")])
def test_bad_inputs_are_left_alone_with_reasons(bad_tree: dict[str, Path], policy: tuple[str, ...]) -> None:
    root = bad_tree["root"]
    before = {name: bad_tree[name].read_bytes() for name in LEFT_ALONE}
    proc = run_cli("split", *policy, "--verbose", root)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for line in proc.stderr.splitlines():
        assert line.startswith("splitdebug: warning: "), line
    assert "shoff-past-eof: section table runs past the end of the file" in proc.stderr
    assert "header-only" in proc.stdout + proc.stderr
    for name in LEFT_ALONE:
        assert bad_tree[name].read_bytes() == before[name], name
    assert "left alone /usr/lib/modules/demo.ko: ET_REL object" in proc.stdout
    assert "left alone /usr/lib/stray.debug: debug file" in proc.stdout
    assert "left alone /usr/bin/already-stripped: already stripped" in proc.stdout
    assert "symlink points outside the staging root" in proc.stdout
    assert "/usr/bin/new\\nline" in proc.stdout and "/usr/bin/bad-\\xff-name" in proc.stdout
    assert (root / "usr/bin/escape").is_symlink() and Path("/etc/passwd").read_bytes()
    debug_dir = root / "usr/lib/debug"
    for key in ("good", "m32", "readonly", "weird", "undecodable", "odd-section"):
        info = elfread.read_elf(bad_tree[key])
        assert not info.has_debug and info.section(".gnu_debuglink") is not None, key
    assert resolves(gdb_info_line(debug_dir, bad_tree["m32"], "main"), "")
    assert (bad_tree["readonly"].stat().st_mode & 0o777) == 0o555


def test_nonexistent_root_and_bad_policy_are_usage_errors(tmp_path: Path) -> None:
    proc = run_cli("split", "--policy", "debian", tmp_path / "nope")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a directory" in proc.stderr
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nfoo: 1\n")
    proc = run_cli("split", "--policy", str(bad), tmp_path)
    assert proc.returncode == 2 and f"{bad}:2: key 'foo': unknown key" in proc.stderr


@pytest.mark.parametrize("escape", ["usr/lib/debug", "usr/lib/.build-id"])
def test_symlinked_directory_out_of_root_is_never_written_through(tmp_path: Path, escape: str) -> None:
    root = tmp_path / "root"
    prog = compile_c(root / "usr/bin/prog", PROGRAM)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / escape).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, root / escape)
    before = prog.read_bytes()
    proc = run_cli("split", "--policy", "redhat", "--package", "p", "--version", "1", "--release", "1", root)
    assert proc.returncode == 1
    assert "leads out of the staging root; not written through" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(outside.rglob("*")) == []  # nothing written outside
    if escape == "usr/lib/debug":
        assert prog.read_bytes() == before  # its debug file could not be placed: the binary is untouched


def _big_endian_elf(tmp_path: Path) -> Path:
    """A real big-endian ELF (s390x) with DWARF and a build-id, from the cross assembler and linker."""
    src = tmp_path / "start.s"
    src.write_text("\t.text\n\t.globl _start\n_start:\n\tlghi %r2,0\n\tsvc 1\n")
    subprocess.run(["s390x-linux-gnu-as", "-g", str(src), "-o", str(tmp_path / "start.o")], check=True)
    out = tmp_path / "bigend"
    subprocess.run(["s390x-linux-gnu-ld", "--build-id", str(tmp_path / "start.o"), "-o", str(out)], check=True)
    return out


@pytest.mark.parametrize("policy", [("--policy", "debian"), ("--policy", "redhat", "--package", "p", "--version", "1", "--release", "1")])
def test_big_endian_elf_split_in_process_skipped_by_host_tools_or_split_with_cross_tools(
        tmp_path: Path, policy: tuple[str, ...]) -> None:
    import zlib

    from conftest import env_with_package
    big = _big_endian_elf(tmp_path)
    info = elfread.read_elf(big)
    assert not info.little_endian and info.machine == "EM_S390" and info.build_id and info.has_debug
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    shipped = root / "usr/bin/bigend"

    def fresh() -> None:
        shutil.rmtree(root / "usr/lib", ignore_errors=True)
        shipped.write_bytes(big.read_bytes())
        shipped.chmod(0o755)

    def assert_split() -> list[tuple[str, str, int]]:
        info = elfread.read_elf(shipped)
        assert not info.has_debug and info.build_id == elfread.read_elf(big).build_id
        name, crc = elfread.read_debuglink(shipped, info)
        [debug] = [p for p in (root / "usr/lib/debug").rglob(name) if not p.is_symlink()]
        assert crc == zlib.crc32(debug.read_bytes()) and elfread.read_elf(debug).build_id == info.build_id
        for path, flags in ((shipped, ["--gnu-ld"]), (debug, ["--gnu-ld", "-d"])):
            lint = subprocess.run(["eu-elflint", *flags, str(path)], capture_output=True, text=True)
            assert lint.returncode == 0, lint.stdout
        return [(s.name, s.type, s.size) for s in info.sections if s.name not in (".shstrtab", ".gnu_debugdata")]

    # In-process, the byte order and machine are data: the s390x binary is split like any other.
    fresh()
    proc = run_cli("split", *policy, root)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    ours = assert_split()
    # The host's binutils cannot read it: with the tools, it is left alone with the remedy.
    fresh()
    env = env_with_package()
    env["SPLITDEBUG_ENGINE"] = "tools"
    proc = run_cli("split", *policy, root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cannot read EM_S390 ELF files; left alone" in proc.stderr and "Traceback" not in proc.stderr
    assert shipped.read_bytes() == big.read_bytes() and not list(root.rglob(".splitdebug-*"))
    if policy[1] != "debian":
        return
    env.update(OBJCOPY="s390x-linux-gnu-objcopy", STRIP="s390x-linux-gnu-strip")
    proc = run_cli("split", *policy, root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert assert_split() == ours  # the cross binutils make the same sections


def test_missing_build_id_under_warn_policy_strips_without_debug_file(tmp_path: Path) -> None:
    """dh_strip's behaviour: a warning, the binary stripped, no debug file; the others split."""
    policy = tmp_path / "warn.yaml"
    policy.write_text((Path(__file__).parent.parent / "configs/debian.yaml").read_text()
                      .replace("missing_build_id: error", "missing_build_id: warn"))
    root = tmp_path / "root"
    noid = compile_c(root / "usr/bin/noid", PROGRAM, build_id=False)
    good = compile_c(root / "usr/bin/good", PROGRAM + "int g;\n")
    proc = run_cli("split", "--policy", str(policy), root)
    assert proc.returncode == 0, proc.stderr
    assert "/usr/bin/noid: no build-id: stripped without a debug file" in proc.stderr
    info = elfread.read_elf(noid)
    assert not info.has_debug and not info.has_symtab and info.section(".gnu_debuglink") is None
    assert elfread.read_elf(good).section(".gnu_debuglink") is not None
    assert len(list((root / "usr/lib/debug").rglob("*.debug"))) == 1


def test_output_into_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    """`splitdebug split -v ROOT | true`: a reader gone before the first line is no internal error."""
    import sys

    from conftest import env_with_package
    root = tmp_path / "root"
    for i in range(30):
        compile_c(root / f"usr/bin/p{i}", PROGRAM + f"int v{i};\n")
    proc = subprocess.run(f'"{sys.executable}" -m splitdebug split --policy debian --package p --verbose "{root}" | true; '
                          'echo "status=${PIPESTATUS[0]}"',
                          shell=True, executable="/bin/bash", env=env_with_package(), capture_output=True, text=True)
    assert "status=0" in proc.stdout and proc.stderr == "", proc.stderr
    assert len(list((root / "usr/lib/debug/.build-id").rglob("*.debug"))) == 30  # the work itself was done
