"""`splitdebug split` on real staging trees, judged by gdb, eu-unstrip, readelf and zlib."""

from __future__ import annotations

import lzma
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import REPO, Tree, compile_c, gdb_info_line, readelf_sections, resolves, run_cli
from splitdebug.elf import read as elfread

RH = ("--version", "1.0", "--release", "1", "--arch", "x86_64")
POLICY_ARGS = {"debian": ("--policy", "debian"), "redhat": ("--policy", "redhat", *RH)}


def split(root: Path, policy: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("split", *POLICY_ARGS[policy], "--jobs", "2", *extra, root)


def shipped_elfs(root: Path, debug_root: Path) -> list[Path]:
    out = []
    for dirpath, _, files in os.walk(root):
        if Path(dirpath).is_relative_to(debug_root):
            continue
        for f in files:
            p = Path(dirpath) / f
            if not p.is_symlink() and elfread.is_elf(p):
                out.append(p)
    return sorted(out)


def assert_split_tree(root: Path, expected: int, debug_root: Path | None = None) -> list[tuple[Path, Path]]:
    """Every shipped ELF: build-id, no .debug_*, debuglink whose CRC is zlib's CRC32 of the debug
    file found by build-id; the debug file has .debug_info and .debug_line. Returns (binary, debug)."""
    debug_root = debug_root or root / "usr/lib/debug"
    pairs = []
    elfs = shipped_elfs(root, debug_root)
    assert len(elfs) == expected, elfs
    for binary in elfs:
        info = elfread.read_elf(binary)
        assert info.build_id and len(info.build_id) == 40
        assert not info.has_debug, binary
        name, crc = elfread.read_debuglink(binary, info)
        by_id = debug_root / ".build-id" / info.build_id[:2] / f"{info.build_id[2:]}.debug"
        assert by_id.exists(), by_id
        debug = by_id.resolve()
        assert debug.name == name
        assert debug.is_relative_to(debug_root.resolve())
        assert crc == zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF
        sections = readelf_sections(debug)
        assert {".debug_info", ".debug_line"} <= set(sections) | {s.replace(".zdebug", ".debug") for s in sections}
        assert elfread.read_elf(debug).build_id == info.build_id
        pairs.append((binary, debug))
    return pairs


@pytest.mark.parametrize("policy", ["debian", "redhat"])
def test_split_tree_is_complete_and_gdb_reads_it(tree: Tree, policy: str) -> None:
    before = (tree.root / "usr/bin/run.sh").read_bytes(), (tree.root / "usr/share/demo/data.txt").read_bytes()
    proc = split(tree.root, policy)
    assert proc.returncode == 0, proc.stderr
    assert "2 binaries split" in proc.stdout and "1 archives stripped" in proc.stdout
    assert_split_tree(tree.root, expected=3)  # prog, its hard link, the library
    debug_dir = tree.root / "usr/lib/debug"
    assert resolves(gdb_info_line(debug_dir, tree.program, "prog_entry"), "prog")
    assert resolves(gdb_info_line(debug_dir, tree.library, "lib_entry"), "libdemo")
    # Non-ELF files are untouched; the hard link is still one file.
    assert ((tree.root / "usr/bin/run.sh").read_bytes(), (tree.root / "usr/share/demo/data.txt").read_bytes()) == before
    assert os.path.samefile(tree.program, tree.root / "usr/bin/prog-alias")
    assert "debug" not in " ".join(readelf_sections(tree.root / "usr/lib/libdemo.a"))


def test_debian_layout_is_dh_strips(tree: Tree) -> None:
    assert split(tree.root, "debian").returncode == 0
    debug_dir = tree.root / "usr/lib/debug"
    files = sorted(p.relative_to(debug_dir).as_posix() for p in debug_dir.rglob("*") if not p.is_dir())
    assert len(files) == 2 and all(f.startswith(".build-id/") and f.endswith(".debug") for f in files)
    for f in files:
        path = debug_dir / f
        assert not path.is_symlink() and (path.stat().st_mode & 0o777) == 0o644
        assert any(s.startswith(".debug_") for s in readelf_sections(path))
        flags = subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True).stdout
        assert any(".debug_info" in line and " C " in line for line in flags.splitlines()), "compressed"


def test_redhat_layout_is_rpms(tree: Tree) -> None:
    assert split(tree.root, "redhat").returncode == 0
    debug_dir = tree.root / "usr/lib/debug"
    assert (debug_dir / "usr/bin/prog-1.0-1.x86_64.debug").is_file()
    assert (debug_dir / "usr/bin/prog-alias-1.0-1.x86_64.debug").samefile(debug_dir / "usr/bin/prog-1.0-1.x86_64.debug")
    assert (debug_dir / "usr/lib/libdemo.so.1.0-1.0-1.x86_64.debug").is_file()
    for link in ("libdemo.so.1", "libdemo.so"):
        # find-debuginfo links <link>.debug only when <target>.debug exists, never with rpm's
        # --unique-debug-suffix: rpmbuild ships no such links (test_distro_compare.py).
        assert not (debug_dir / f"usr/lib/{link}-1.0-1.x86_64.debug").is_symlink()
    bid = elfread.read_elf(tree.program).build_id
    assert bid is not None
    main_link = tree.root / "usr/lib/.build-id" / bid[:2] / bid[2:]
    assert os.readlink(main_link) == "../../../../usr/bin/prog" and main_link.resolve() == tree.program.resolve()
    dbg_link = debug_dir / ".build-id" / bid[:2] / bid[2:]
    assert dbg_link.resolve() == tree.program.resolve()
    for link in tree.root.rglob("*"):
        if link.is_symlink():
            assert link.resolve().is_relative_to(tree.root.resolve()) and link.exists(), link
    # Minidebuginfo: gdb names a static function with no debug files at all.
    assert ".gnu_debugdata" in readelf_sections(tree.program)
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set debug-file-directory /nonexistent",
                          "-ex", f"file {tree.program}", "-ex", "info address prog_entry"],
                         capture_output=True, text=True).stdout
    assert "Symbol \"prog_entry\" is at" in out


def test_eu_unstrip_recombines(tree: Tree, tmp_path: Path) -> None:
    assert split(tree.root, "debian").returncode == 0
    (binary, debug), = [p for p in assert_split_tree(tree.root, 3) if p[0] == tree.library]
    whole = tmp_path / "whole.so"
    subprocess.run(["eu-unstrip", "-o", str(whole), str(binary), str(debug)], check=True)
    assert {".debug_info", ".symtab"} <= set(readelf_sections(whole))
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set debug-file-directory /nonexistent",
                          "-ex", f"file {whole}", "-ex", "info line lib_entry", "-ex", "ptype lib_entry"],
                         capture_output=True, text=True).stdout
    assert resolves(out, "libdemo") and "type = int (int)" in out


def test_missing_build_id_refuses_whole_tree(tree: Tree) -> None:
    compile_c(tree.root / "usr/bin/noid", "int main(void){return 0;}", build_id=False)
    snapshot = {p: p.read_bytes() for p in tree.root.rglob("*") if p.is_file() and not p.is_symlink()}
    proc = split(tree.root, "debian")
    assert proc.returncode == 1
    assert "/usr/bin/noid" in proc.stderr and "no build-id" in proc.stderr
    assert "Traceback" not in proc.stderr
    after = {p: p.read_bytes() for p in tree.root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == snapshot and not (tree.root / "usr/lib/debug").exists()


def test_second_run_changes_nothing(tree: Tree) -> None:
    assert split(tree.root, "redhat").returncode == 0
    listing = {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p) if p.is_symlink() else None)
               for p in tree.root.rglob("*")}
    again = split(tree.root, "redhat")
    assert again.returncode == 0 and "0 binaries split" in again.stdout
    assert {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p) if p.is_symlink() else None)
            for p in tree.root.rglob("*")} == listing


def test_separate_debug_root(tree: Tree, tmp_path: Path) -> None:
    dbgsym = tmp_path / "dbgsym/usr/lib/debug"
    assert split(tree.root, "debian", "--debug-root", str(dbgsym)).returncode == 0
    assert not (tree.root / "usr/lib/debug").exists()
    assert_split_tree(tree.root, 3, debug_root=dbgsym)
    assert resolves(gdb_info_line(dbgsym, tree.program, "prog_entry"), "prog")


def test_names_with_spaces_and_symlink_out_of_root(tree: Tree, tmp_path: Path) -> None:
    spaced = tree.root / "usr/lib/my plugins/libplug in.so"
    compile_c(spaced, "int plug(void){return 1;}", shared=True)
    outside = compile_c(tmp_path / "outside/libout.so", "int out(void){return 2;}", shared=True)
    os.symlink(outside, tree.root / "usr/lib/libout.so")
    before = outside.read_bytes()
    proc = split(tree.root, "redhat")
    assert proc.returncode == 0, proc.stderr
    assert outside.read_bytes() == before  # never followed out of the root
    assert (tree.root / "usr/lib/debug/usr/lib/my plugins/libplug in.so-1.0-1.x86_64.debug").is_file()
    assert_split_tree(tree.root, 4)


def test_damaged_and_odd_files_are_left_alone(tree: Tree) -> None:
    truncated = tree.root / "usr/bin/truncated"
    truncated.write_bytes(tree.program.read_bytes()[:2000])
    truncated.chmod(0o755)
    (tree.root / "usr/bin/empty").write_bytes(b"")
    obj = tree.root / "usr/lib/module.o"
    subprocess.run(["gcc", "-g", "-c", "-x", "c", "-o", str(obj), "-"], input="int f(void){return 0;}",
                   text=True, check=True)
    obj_bytes = obj.read_bytes()
    proc = split(tree.root, "debian")
    assert proc.returncode == 0, proc.stderr
    assert "usr/bin/truncated" in proc.stderr and "Traceback" not in proc.stderr
    assert truncated.stat().st_size == 2000 and obj.read_bytes() == obj_bytes
    truncated.unlink()
    obj.unlink()
    assert_split_tree(tree.root, 3)  # every valid file was still processed


def test_same_layout_for_cli_and_scons(main_job: Path, tmp_path: Path) -> None:
    """`splitdebug split` on the unstripped build outputs lays out what the SCons stage laid out."""
    for policy in ("debian", "redhat"):
        obj = main_job / "build/obj" / policy
        root = tmp_path / policy
        (root / "usr/bin").mkdir(parents=True)
        (root / "usr/lib").mkdir(parents=True)
        shutil.copy2(obj / "hello/hello", root / "usr/bin/hello")
        for lib in (obj / "greet", obj / "shapes"):
            for f in lib.iterdir():
                if f.name.startswith("lib") and ".so" in f.name and not f.name.endswith(".debug"):
                    if f.is_symlink():
                        os.symlink(os.readlink(f), root / "usr/lib" / f.name)
                    else:
                        shutil.copy2(f, root / "usr/lib" / f.name)
        for extra in ("shapes_user",):
            if (obj / extra / extra).exists():
                shutil.copy2(obj / extra / extra, root / "usr/bin" / extra)
        extra_args = ("--package", "splitdebug-examples", "--source-root", str(main_job)) if policy == "redhat" else ()
        proc = split(root, policy, *extra_args)
        assert proc.returncode == 0, proc.stderr
        stage = main_job / "build/stage" / policy

        def listing(base: Path) -> set[tuple[str, str]]:
            # The SCons stage is split per link; its dwz pass (.dwz/) runs when it is packaged.
            return {(p.relative_to(base).as_posix(), os.readlink(p) if p.is_symlink() else "dir" if p.is_dir() else "file")
                    for p in base.rglob("*") if "/.dwz" not in "/" + p.relative_to(base).as_posix()}
        assert listing(root) == listing(stage)


def test_compress_level_is_the_policy_s(tmp_path: Path) -> None:
    """Red Hat's debug files have zlib sections at its compress_level (1); the same policy at level 9
    makes smaller ones with the same DWARF, and gdb reads both."""
    from conftest import PROGRAM, REPO

    source = PROGRAM + "".join(f"int f{i}(int x) {{ return x * {i} + {i % 7}; }}\n" for i in range(400))
    level9 = tmp_path / "redhat-9.yaml"
    level9.write_text((REPO / "configs/redhat.yaml").read_text().replace("compress_level: 1", "compress_level: 9"))
    debug = {}
    for name, policy in (("1", "redhat"), ("9", str(level9))):
        root = tmp_path / name
        binary = compile_c(root / "usr/bin/prog", source)
        proc = run_cli("split", "--policy", policy, "--package", "p", "--version", "1", "--release", "1", root)
        assert proc.returncode == 0, proc.stderr
        [debug[name]] = [p for p in (root / "usr/lib/debug").rglob("*.debug") if not p.is_symlink()]
        h = elfread.read_headers(debug[name])
        assert all(s.flags & 0x800 for s in h.sections if s.name in (".debug_info", ".debug_line"))  # SHF_COMPRESSED
        assert resolves(gdb_info_line(root / "usr/lib/debug", binary, "main"), "prog")
    assert debug["9"].stat().st_size < debug["1"].stat().st_size


def _dwarf(path: Path) -> dict[str, bytes]:
    """Each .debug_* section's bytes, decompressed (ELF compression header: 24 bytes on ELF64)."""
    data = path.read_bytes()
    out = {}
    for s in elfread.read_headers(path).sections:
        if s.name.startswith(".debug_"):
            raw = data[s.offset:s.offset + s.size]
            out[s.name] = zlib.decompress(raw[24:]) if s.flags & 0x800 else raw
    return out


def test_recompress_of_a_debug_file_with_program_headers_elsewhere_is_left_to_objcopy(tmp_path: Path) -> None:
    """The in-process rewrite puts the program headers right after the ELF header, where every writer
    here puts them. A debug file whose headers sit elsewhere (not one of ours) goes to objcopy: here
    objcopy refuses it, and that is the error, one line, with the file untouched."""
    import struct

    from conftest import PROGRAM
    from splitdebug.errors import ToolError
    from splitdebug.tree.rewrite import TEMP_PREFIX, Tools, recompress_debug

    binary = compile_c(tmp_path / "prog", PROGRAM)
    ours = tmp_path / "ours.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(binary), str(ours)], check=True)
    data = bytearray(ours.read_bytes())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    assert phoff == 64 and phnum  # objcopy puts them right after the ELF header
    moved_at = len(data) + -len(data) % 8
    data += b"\0" * (moved_at - len(data)) + data[phoff:phoff + phentsize * phnum]
    struct.pack_into("<Q", data, 0x20, moved_at)
    elsewhere = tmp_path / "elsewhere.debug"
    elsewhere.write_bytes(bytes(data))
    assert elfread.read_headers(elsewhere).phoff == moved_at

    before = _dwarf(ours)
    recompress_debug(ours, "zlib", Tools())  # the builtin engine, in-process
    h = elfread.read_headers(ours)
    assert all(s.flags & 0x800 for s in h.sections if s.name in (".debug_info", ".debug_line"))
    assert _dwarf(ours) == before and h.phoff == 64
    with pytest.raises(ToolError) as err:
        recompress_debug(elsewhere, "zlib", Tools())
    assert str(err.value).startswith(f"{elsewhere}: objcopy failed: ") and "\n" not in str(err.value)
    assert elsewhere.read_bytes() == bytes(data)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_temporary_files_make_a_missing_directory(tmp_path: Path) -> None:
    from splitdebug.tree.rewrite import TEMP_PREFIX, _temp_name

    made = _temp_name(tmp_path / "not" / "there")
    assert made.is_file() and made.stat().st_size == 0 and made.name.startswith(TEMP_PREFIX)
    assert made.parent == tmp_path / "not" / "there"


def test_minidebuginfo_xz_preset_changes_only_the_xz_stream(tmp_path: Path) -> None:
    """redhat.yaml's minidebuginfo_xz_preset (2; find-debuginfo's xz runs at 6): the same symbol ELF
    inside a different xz stream (xz -t accepts it), and a preset out of 0-9 is a one-line error."""
    text = (REPO / "configs/redhat.yaml").read_text()
    assert "\nminidebuginfo_xz_preset: 2\n" in text
    data = {}
    for preset in (2, 6):
        policy = tmp_path / f"redhat-{preset}.yaml"
        policy.write_text(text.replace("\nminidebuginfo_xz_preset: 2\n", f"\nminidebuginfo_xz_preset: {preset}\n"))
        root = tmp_path / f"root-{preset}"
        (root / "usr/bin").mkdir(parents=True)
        subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id", "-o", str(root / "usr/bin/prog"), "-x", "c", "-"],
                       input="static int helper(int x) { return x * 3; }\n"
                             "int main(int argc, char **argv) { (void)argv; return helper(argc); }\n",
                       text=True, check=True)
        proc = run_cli("split", "--policy", policy, "--package", "p", "--version", "1", "--release", "1",
                       "--arch", "x86_64", root)
        assert proc.returncode == 0, proc.stderr
        binary = root / "usr/bin/prog"
        data[preset] = elfread.section_bytes(binary, elfread.read_elf(binary), ".gnu_debugdata")
        (tmp_path / f"mini-{preset}.xz").write_bytes(data[preset])
        subprocess.run(["xz", "-t", str(tmp_path / f"mini-{preset}.xz")], check=True)
    assert data[2] != data[6]
    assert lzma.decompress(data[2]) == lzma.decompress(data[6])
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("\nminidebuginfo_xz_preset: 2\n", "\nminidebuginfo_xz_preset: 10\n"))
    proc = run_cli("split", "--policy", bad, "--package", "p", tmp_path / "root-2")
    assert proc.returncode != 0 and "an xz preset is 0 to 9" in proc.stderr and "Traceback" not in proc.stderr
