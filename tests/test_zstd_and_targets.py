"""README promises with no test of their own: a zstd policy (which the in-process engine declines, so the
tools run) and the main job's targets (`scons POLICIES=`, `scons check`, `scons package`). Judged by the
file's own compression headers as pyelftools reads them, zlib's CRC, gdb, and the files SCons leaves."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import MAIN_JOB_FILES, REPO, gdb_info_line, make_tree, resolves, run_cli, run_scons

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZSTD = 2


def ch_types(path: Path) -> dict[str, int]:
    """{section: ch_type} of each SHF_COMPRESSED .debug_* section, from its Elf_Chdr as pyelftools finds it."""
    out = {}
    with open(path, "rb") as f:
        elf = ELFFile(f)
        order = "<" if elf.little_endian else ">"
        for sec in elf.iter_sections():
            if sec.name.startswith(".debug_") and sec["sh_flags"] & SHF_COMPRESSED:
                f.seek(sec["sh_offset"])
                out[sec.name] = struct.unpack(order + "I", f.read(4))[0]
    return out


def zstd_policy(tmp_path: Path) -> Path:
    policy = tmp_path / "debian-zstd.yaml"
    text = (REPO / "configs/debian.yaml").read_text()
    assert "compress_debug_sections: zlib" in text
    policy.write_text(text.replace("compress_debug_sections: zlib", "compress_debug_sections: zstd")
                      .replace("name: debian", "name: debian-zstd"))
    return policy


@pytest.mark.parametrize("engine", ["builtin", "tools"])
def test_zstd_policy_writes_zstd_debug_files_gdb_reads(tmp_path: Path, engine: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every compressed section of every debug file (dwz's multifile aside, as dh_dwz leaves it) is zstd, the debuglink CRC is the
    final file's, gdb reads the lines, check passes; the in-process engine falls back to the tools here."""
    monkeypatch.setenv("SPLITDEBUG_ENGINE", engine)
    tree = make_tree(tmp_path / "root")
    policy = zstd_policy(tmp_path)
    proc = run_cli("split", "--policy", policy, "--package", "demo", "--jobs", "1", tree.root)
    assert proc.returncode == 0, proc.stderr
    debug_root = tree.root / "usr/lib/debug"
    debug_files = sorted(p for p in debug_root.rglob("*.debug") if p.is_file() and not p.is_symlink()
                         and ".dwz" not in p.parts)
    assert len(debug_files) >= 2, debug_files
    # dh_dwz's multifile is not compressed (dh_strip compresses only the files it writes), under zlib too
    (multifile,) = debug_root.glob(".dwz/*/demo.debug")
    assert ch_types(multifile) == {}
    for dbg in debug_files:
        types = ch_types(dbg)
        assert types and set(types.values()) == {ELFCOMPRESS_ZSTD}, (dbg, types)
    for binary in (tree.program, tree.library):
        with open(binary, "rb") as f:
            link = ELFFile(f).get_section_by_name(".gnu_debuglink").data()
        name = link[:link.index(b"\0")].decode()
        crc = struct.unpack("<I", link[-4:])[0]
        (dbg,) = [p for p in debug_files if p.name == name]
        assert crc == zlib.crc32(dbg.read_bytes())
    assert resolves(gdb_info_line(debug_root, tree.program, "prog_entry"), "prog")
    assert resolves(gdb_info_line(debug_root, tree.library, "lib_entry"), "libdemo")
    check = run_cli("check", "--policy", policy, "--package", "demo", tree.root)
    assert check.returncode == 0, check.stdout + check.stderr


def test_zlib_policy_leaves_no_zstd(tmp_path: Path) -> None:
    """The counterpart: the stock debian policy's debug files are zlib (ch_type 1), so the test above
    tells the policies apart."""
    tree = make_tree(tmp_path / "root")
    assert run_cli("split", "--policy", "debian", "--package", "demo", "--jobs", "1", tree.root).returncode == 0
    debug_files = [p for p in (tree.root / "usr/lib/debug").rglob("*.debug")
                   if p.is_file() and not p.is_symlink() and ".dwz" not in p.parts]
    assert debug_files and all(set(ch_types(p).values()) == {1} for p in debug_files)


# --------------------------------------------------------------------------- the main job's targets


def main_job_copy(tmp_path: Path) -> Path:
    work = tmp_path / "job"
    work.mkdir()
    for name in MAIN_JOB_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    return work


def test_policies_variable_check_and_package_targets(tmp_path: Path) -> None:
    """`scons POLICIES=debian package` builds only Debian's packages (and the stage they need), `scons
    POLICIES=debian check` passes that stage and fails it once a debug file is gone."""
    work = main_job_copy(tmp_path)
    run_scons(work, "-j2", "POLICIES=debian", "package")
    assert sorted(p.name for p in (work / "build/stage").iterdir()) == ["debian"]
    assert sorted(p.name for p in (work / "build/packages").iterdir()) == ["debian"]
    debs = sorted(p.name for p in (work / "build/packages/debian").glob("*.deb"))
    assert any("dbgsym" in d for d in debs) and len(debs) >= 2, debs
    for deb in (work / "build/packages/debian").glob("*.deb"):
        subprocess.run(["dpkg-deb", "--info", str(deb)], check=True, capture_output=True)

    proc = run_scons(work, "POLICIES=debian", "check")
    assert "against policy debian" in proc.stdout and "redhat" not in proc.stdout, proc.stdout
    debug = work / "build/stage/debian/usr/lib/debug/.build-id"
    victim = next(p for p in sorted(debug.rglob("*.debug")) if p.is_file() and not p.is_symlink())
    victim.unlink()
    proc = run_scons(work, "POLICIES=debian", "check", check=False)
    assert proc.returncode != 0 and "SD303" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_zlib_under_a_zstd_policy_is_a_warning(tmp_path: Path) -> None:
    """README's SD407: zlib where the policy says zstd is read by every tool: a warning, exit 0 (zstd where
    it says zlib is the error, tested in test_check)."""
    tree = make_tree(tmp_path / "root")
    policy = zstd_policy(tmp_path)
    assert run_cli("split", "--policy", policy, "--package", "demo", "--jobs", "1", tree.root).returncode == 0
    with open(tree.library, "rb") as f:
        link = ELFFile(f).get_section_by_name(".gnu_debuglink")
        name, crc_at = link.data()[:link.data().index(b"\0")].decode(), link["sh_offset"] + link["sh_size"] - 4
    (dbg,) = [p for p in (tree.root / "usr/lib/debug").rglob(name) if p.is_file()]
    dbg.chmod(0o644)
    subprocess.run(["objcopy", "--decompress-debug-sections", str(dbg)], check=True)
    subprocess.run(["objcopy", "--compress-debug-sections=zlib", str(dbg)], check=True)
    assert set(ch_types(dbg).values()) == {1}
    with open(tree.library, "r+b") as f:  # the debuglink CRC of the recompressed file (little-endian x86-64)
        f.seek(crc_at)
        f.write(struct.pack("<I", zlib.crc32(dbg.read_bytes())))
    image = "/" + dbg.relative_to(tree.root).as_posix()
    proc = run_cli("check", "--policy", policy, "--package", "demo", "--format", "json", tree.root)
    findings = json.loads(proc.stdout)["findings"]
    assert proc.returncode == 0, findings
    assert [(f["rule"], f["path"], f["severity"]) for f in findings] == [("SD407", image, "warning")]
