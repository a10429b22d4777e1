"""ISA-L writes the zlib debug sections (policy key zlib_encoder: isal, the shipped policies' default):
every reader reads them, dwz still gets the debug files before compression, and where `isal` cannot
be imported Python's zlib writes them (the same bytes as zlib_encoder: zlib)."""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from conftest import REPO, env_with_package, gdb_info_line, make_tree, resolves, run_cli
from splitdebug.elf import read as elfread
from splitdebug.elf import write as elfwrite

SHF_COMPRESSED = 0x800


def policy_file(tmp_path: Path, name: str, encoder: str, dwz: bool = True) -> Path:
    """A copy of configs/NAME.yaml with `zlib_encoder: ENCODER` (and without dwz)."""
    text = (REPO / "configs" / f"{name}.yaml").read_text()
    assert "zlib_encoder" not in text and "\ncompress_debug_sections: zlib\n" in text
    out = tmp_path / f"{name}-{encoder}{'' if dwz else '-nodwz'}.yaml"
    text = text.replace("\ncompress_debug_sections: zlib\n", f"\ncompress_debug_sections: zlib\nzlib_encoder: {encoder}\n")
    out.write_text(text if dwz else text.replace("\ndwz: multifile\n", "\ndwz: none\n"))
    return out


@pytest.fixture(scope="module")
def unsplit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One make_tree, copied before each split: every split reads the same bytes."""
    root = tmp_path_factory.mktemp("unsplit") / "root"
    make_tree(root)
    return root


def split(tree: Path, root: Path, policy: str | Path, env: dict[str, str] | None = None) -> dict[str, bytes]:
    """Split a copy of `tree` at `root`; {path under the debug root: bytes} of its regular files."""
    root.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(tree), str(root)], check=True)
    proc = run_cli("split", "--policy", policy, "--package", "demo", "--version", "1", "--release", "1", root,
                   env=env)
    assert proc.returncode == 0, proc.stderr
    debug = root / "usr/lib/debug"
    return {p.relative_to(debug).as_posix(): p.read_bytes() for p in sorted(debug.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def sections(path: Path) -> dict[str, tuple[bytes, bool]]:
    """Each .debug_* section: (its DWARF, decompressed, whoever compressed it; was it compressed)."""
    data = path.read_bytes()
    chdr = 24 if data[4] == 2 else 12
    out = {}
    for s in elfread.read_headers(path).sections:
        if s.name.startswith(".debug_"):
            raw = data[s.offset:s.offset + s.size]
            out[s.name] = (zlib.decompress(raw[chdr:]), True) if s.flags & SHF_COMPRESSED else (raw, False)
    return out


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory, unsplit: Path) -> dict[str, Path]:
    """The same tree split under Debian's policy (dwz multifile, and without dwz) with each encoder."""
    tmp = tmp_path_factory.mktemp("isal")
    out = {}
    for encoder in ("isal", "zlib"):
        for dwz in (True, False):
            key = encoder + ("" if dwz else "-nodwz")
            out[key] = tmp / key
            split(unsplit, out[key], policy_file(tmp, "debian", encoder, dwz))
    return out


def debug_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "usr/lib/debug/.build-id").rglob("*.debug") if not p.is_symlink())


def test_isal_writes_other_bytes_of_the_same_dwarf(trees: dict[str, Path]) -> None:
    """ISA-L ran (its streams differ from zlib's), after dwz (a debug file has the altlink to the
    multifile dwz wrote), and the DWARF inside is what zlib's tree holds, byte for byte."""
    assert elfwrite.isal_available()
    isal, plain = debug_files(trees["isal"]), debug_files(trees["zlib"])
    assert [p.name for p in isal] == [p.name for p in plain] and len(isal) == 2
    for ours, theirs in zip(isal, plain, strict=True):
        assert ours.read_bytes() != theirs.read_bytes()
        # The same DWARF; a tiny section one encoder cannot shrink stays uncompressed (binutils' rule).
        assert {k: v for k, (v, _) in sections(ours).items()} == {k: v for k, (v, _) in sections(theirs).items()}
        assert sections(ours)[".debug_info"][1]  # compressed
    # dwz read them uncompressed: it refuses compressed input, and wrote the altlink of one of them.
    assert any(elfread.read_elf(p).section(".gnu_debugaltlink") is not None for p in isal)
    assert (trees["isal"] / "usr/lib/debug/.dwz/x86_64-linux-gnu/demo.debug").is_file()


def test_gdb_and_libdw_read_the_isal_tree(trees: dict[str, Path]) -> None:
    root = trees["isal"]
    debug = root / "usr/lib/debug"
    assert resolves(gdb_info_line(debug, root / "usr/bin/prog", "prog_entry"), "prog")
    assert resolves(gdb_info_line(debug, root / "usr/lib/libdemo.so.1.0", "lib_entry"), "libdemo")
    for binary, function, source in (("usr/bin/prog", "prog_entry", "prog.c"),
                                     ("usr/lib/libdemo.so.1.0", "lib_entry", "libdemo_so_1_0.c")):
        info = elfread.read_elf(root / binary)
        [dbg] = [p for p in debug_files(root) if p.stem == info.build_id[2:]]
        symtab = subprocess.run(["readelf", "-Ws", str(dbg)], capture_output=True, text=True, check=True).stdout
        [address] = ["0x" + f[1] for f in map(str.split, symtab.splitlines()) if len(f) == 8 and f[7] == function]
        proc = subprocess.run(["eu-addr2line", f"--debuginfo-path={debug}", "-e", str(root / binary), "-f", address],
                              capture_output=True, text=True, check=True)
        assert proc.stdout.splitlines()[0] == function and f"/{source}:" in proc.stdout, proc.stdout + proc.stderr


def test_objcopy_and_debugedit_read_the_isal_tree(trees: dict[str, Path], tmp_path: Path) -> None:
    """objcopy --decompress-debug-sections gives the DWARF zlib's tree holds, which debugedit lists.
    debugedit 5.0 reads no compressed section at all (objcopy's zlib neither: "DWARF version 0
    unhandled") nor dwz's alt forms; it runs on binaries before the split, and lists the same on
    ISA-L's and zlib's files. So the trees here are without dwz."""
    for ours, theirs in zip(debug_files(trees["isal-nodwz"]), debug_files(trees["zlib-nodwz"]), strict=True):
        plain = tmp_path / ours.name
        subprocess.run(["objcopy", "--decompress-debug-sections", str(ours), str(plain)], check=True)
        assert sections(theirs)[".debug_info"][1] and ours.read_bytes() != theirs.read_bytes()
        assert {k: (v, False) for k, (v, _) in sections(theirs).items()} == sections(plain)
        listed = {}
        for name, path in (("isal", ours), ("zlib", theirs), ("plain", plain)):
            out = tmp_path / f"{ours.stem}.{name}.list"
            subprocess.run(["debugedit", "-l", str(out), str(path)], capture_output=True, check=True)
            listed[name] = out.read_bytes()
        assert listed["isal"] == listed["zlib"]
        assert b".c\0" in listed["plain"]


def test_without_isal_zlib_writes_the_sections(unsplit: Path, tmp_path: Path) -> None:
    """`isal` hidden from the interpreter: the split falls back to Python's zlib, no error, and writes
    exactly what zlib_encoder: zlib writes; with isal the bytes differ."""
    hide = tmp_path / "hide/isal"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('isal hidden by the test')\n")
    env = env_with_package()
    env["PYTHONPATH"] = f"{hide.parent}{os.pathsep}{env['PYTHONPATH']}"
    hidden = split(unsplit, tmp_path / "hidden", "redhat", env)
    plain = split(unsplit, tmp_path / "plain", policy_file(tmp_path, "redhat", "zlib"))
    isal = split(unsplit, tmp_path / "isal", "redhat")
    assert hidden.keys() == plain.keys() == isal.keys()
    assert hidden == plain
    assert hidden != isal


def test_isal_output_is_reproducible(unsplit: Path, tmp_path: Path) -> None:
    """The same input in two directories, ISA-L at Red Hat's level: the same debug bytes."""
    a, b = split(unsplit, tmp_path / "a", "redhat"), split(unsplit, tmp_path / "second-dir", "redhat")
    assert a.keys() == b.keys() and a
    differing = [k for k in a if a[k] != b[k]]
    assert differing == []


@pytest.mark.parametrize("level", [1, 2, 6, 9])
def test_every_level_maps_onto_isal_and_zlib_reads_it(level: int) -> None:
    data = (REPO / "site_scons/splitdebug/policy.py").read_bytes() * 20
    z = elfwrite.deflater(level, "isal")
    stream = z.compress(data) + z.flush()
    assert zlib.decompress(stream) == data
    z = elfwrite.deflater(level, "zlib")
    assert stream != z.compress(data) + z.flush()


def test_a_policy_s_encoder_is_checked(tmp_path: Path) -> None:
    policy = policy_file(tmp_path, "debian", "lzo")
    proc = run_cli("policy", "validate", policy)
    assert proc.returncode != 0 and "zlib_encoder" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_tree_pass_decompresses_in_process(trees: dict[str, Path], tmp_path: Path) -> None:
    """recompress_debug(…, "none") (what dwz is given, e.g. the SCons stage's compressed files) inflates
    ISA-L's sections itself: the sections objcopy --decompress-debug-sections gives, eu-elflint clean."""
    from splitdebug.tree import rewrite

    for ours in debug_files(trees["isal-nodwz"]):
        mine, theirs = tmp_path / f"{ours.stem}.mine", tmp_path / f"{ours.stem}.objcopy"
        shutil.copy(ours, mine)
        rewrite.recompress_debug(mine, "none", rewrite.Tools(objcopy="false", strip="false", eu_strip="false", eu_elfcompress="false"))  # no tool runs
        subprocess.run(["objcopy", "--decompress-debug-sections", str(ours), str(theirs)], check=True)
        assert sections(mine) == sections(theirs) and not any(c for _, c in sections(mine).values())
        lint = subprocess.run(["eu-elflint", "--gnu-ld", "-d", str(mine)], capture_output=True, text=True)
        assert "No errors" in lint.stdout, lint.stdout
