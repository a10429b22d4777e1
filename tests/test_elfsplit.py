"""The in-process split (elfsplit) against the real tools: objcopy and eu-strip are the oracle.

Every binary of the matrix is split twice, with the default engine (in-process) and with
SPLITDEBUG_ENGINE=tools, under every policy; the two results must be equivalent section by
section, and eu-elflint, eu-unstrip and gdb must accept ours.
"""

from __future__ import annotations

import fnmatch
import lzma
import os
import re
import shutil
import struct
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import LIBRARY, PROGRAM, REPO, compile_c, env_with_package, gdb_info_line, resolves, run_cli
from test_bad_input import _big_endian_elf
from test_split import assert_split_tree
from splitdebug.elf import read as elfread
from splitdebug.elf import write as elfsplit
from splitdebug.elf.write import StripFlags
from splitdebug.policy import load_policy

SHF_ALLOC, SHF_COMPRESSED = 0x2, 0x800
SHT_NOTE = 7

CXX_LIBRARY = """
#include <string>
namespace geo {
class Shape {
 public:
  explicit Shape(double side) : side_(side) {}
  virtual ~Shape() = default;
  virtual double area() const;
  std::string label() const { return "square of " + std::to_string(side_); }
 private:
  double side_;
};
double Shape::area() const { return side_ * side_; }
}  // namespace geo
extern "C" double shape_area(double side) { geo::Shape s(side); return s.area() + s.label().size(); }
"""


@dataclass(frozen=True)
class Binary:
    image: str  # where it is installed in the staging tree
    function: str  # what gdb is asked `info line` of
    source_stem: str  # the source file gdb must name


BINARIES = {
    "pie": Binary("usr/bin/prog", "main", "prog"),
    "nopie": Binary("usr/bin/prog", "main", "prog"),
    "shlib": Binary("usr/lib/libdemo.so.1", "lib_entry", "libdemo"),
    "cxxlib": Binary("usr/lib/libshape.so.1", "geo::Shape::area", "libshape"),
    "m32": Binary("usr/bin/prog", "main", "prog"),
    "s390x": Binary("usr/bin/bigend", "_start", "start"),
}
POLICIES = ["debian", "redhat", "yocto", "debian-strip-debug"]
PKG = ("--package", "p", "--version", "1", "--release", "1", "--arch", "x86_64")
CROSS = {"OBJCOPY": "s390x-linux-gnu-objcopy", "STRIP": "s390x-linux-gnu-strip"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each binary of the matrix, compiled once for the module (in parallel: the compilers are processes)."""
    d = tmp_path_factory.mktemp("elfsplit-bin")
    (d / "s390x").mkdir()
    jobs = {
        "pie": lambda: compile_c(d / "pie/prog", PROGRAM),
        "nopie": lambda: compile_c(d / "nopie/prog", PROGRAM, flags=("-no-pie",)),
        "shlib": lambda: compile_c(d / "shlib/libdemo.so.1", LIBRARY, shared=True),
        "cxxlib": lambda: compile_c(d / "cxxlib/libshape.so.1", CXX_LIBRARY, shared=True, cxx=True),
        "m32": lambda: compile_c(d / "m32/prog", PROGRAM, flags=("-m32",)),
        "s390x": lambda: _big_endian_elf(d / "s390x"),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        out = {name: fut.result() for name, fut in futures.items()}
    info = elfread.read_elf(out["m32"])
    assert info.elfclass == 32 and info.machine == "EM_386"
    assert not elfread.read_elf(out["s390x"]).little_endian
    assert not elfread.read_elf(out["nopie"]).is_pie and elfread.read_elf(out["nopie"]).elf_type == "ET_EXEC"
    assert elfread.read_elf(out["pie"]).is_pie
    return out


@pytest.fixture(scope="module")
def policy_args(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, ...]]:
    """--policy arguments of each policy; debian-strip-debug keeps .symtab in the shipped binary.
    Python's zlib writes the compressed sections, as objcopy does (the matrix compares with the tools'
    bytes): ISA-L's streams, the shipped policies' default, are tests/test_isal.py's."""
    here = tmp_path_factory.mktemp("policy")
    out = {"yocto": ("--policy", "yocto", *PKG)}
    for name in ("debian", "redhat"):
        text = (REPO / f"configs/{name}.yaml").read_text().replace(
            "\ncompress_debug_sections: zlib\n", "\ncompress_debug_sections: zlib\nzlib_encoder: zlib\n")
        (here / f"{name}.yaml").write_text(text)
        out[name] = ("--policy", str(here / f"{name}.yaml"), *PKG)
    text = (here / "debian.yaml").read_text()
    text, n = re.subn(r"^(  (?:executable|shared_library):) \[.*\]$", r"\1 [--strip-debug]", text, flags=re.M)
    assert n == 2
    (here / "debian-strip-debug.yaml").write_text(text.replace("name: debian", "name: debian-strip-debug"))
    out["debian-strip-debug"] = ("--policy", str(here / "debian-strip-debug.yaml"), *PKG)
    return out


@dataclass(frozen=True)
class Split:
    root: Path  # the staging tree
    binary: Path  # the shipped binary
    debug: Path  # its debug file


def split_copy(original: Path, root: Path, image: str, args: tuple[str, ...], env: dict[str, str]) -> Split:
    """Copy `original` into a fresh tree at `image` and split the tree."""
    binary = root / image
    binary.parent.mkdir(parents=True)
    shutil.copy2(original, binary)
    proc = run_cli("split", *args, "--jobs", "1", root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "1 binaries split" in proc.stdout, proc.stdout + proc.stderr
    (debug_image,) = re.findall(rf"^split /{re.escape(image)} -> /(\S+)$", proc.stdout, re.M)
    return Split(root, binary, root / debug_image)


@pytest.fixture(scope="module")
def splits(built: dict[str, Path], policy_args: dict[str, tuple[str, ...]], tmp_path_factory: pytest.TempPathFactory):
    """split(binary, policy, engine): a copy of the binary split in a tree of its own, once for the module.
    engine "builtin" is the default (in-process), "tools" sets SPLITDEBUG_ENGINE=tools."""
    cache: dict[tuple[str, str, str], Split] = {}

    def split(name: str, policy: str, engine: str = "builtin") -> Split:
        if (name, policy, engine) not in cache:
            env = env_with_package()
            if engine == "tools":
                env["SPLITDEBUG_ENGINE"] = "tools"
            if name == "s390x":  # where elfsplit declines, the tools that read it
                env.update(CROSS)
            root = tmp_path_factory.mktemp(f"{name}-{policy}-{engine}")
            cache[name, policy, engine] = split_copy(built[name], root, BINARIES[name].image, policy_args[policy], env)
        return cache[name, policy, engine]

    return split


# What the matrix leaves to the tools: objcopy --strip-debug also drops the STT_FILE symbols of the
# .symtab it keeps, which elfsplit does not do, so parse_flags declines it.
DECLINED = {(b, "debian-strip-debug") for b in BINARIES}
# Known differences with the tools, each a bug report: strict xfail, so a fix shows up as XPASS.
TOOLS_FAIL: dict[tuple[str, str], str] = {}
SYMTAB_DIFFERS: dict[tuple[str, str], str] = {}


def matrix(*known: dict[tuple[str, str], str], exclude: frozenset[tuple[str, str]] = frozenset()) -> list:
    """(binary, policy) parameters but `exclude`; those of `known` marked as strict expected failures."""
    out = []
    for b in BINARIES:
        for p in POLICIES:
            if (b, p) in exclude:
                continue
            reasons = [k[b, p] for k in known if (b, p) in k]
            marks = [pytest.mark.xfail(strict=True, reason="; ".join(reasons))] if reasons else []
            out.append(pytest.param(b, p, id=f"{b}-{p}", marks=marks))
    return out


# ------------------------------------------------------------------------------------------------
# Helpers: what is compared


def elflint(path: Path, *flags: str) -> None:
    proc = subprocess.run(["eu-elflint", "--gnu-ld", *flags, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "No errors" in proc.stdout, f"{path}:\n{proc.stdout}{proc.stderr}"


def section_rows(path: Path) -> list[tuple[str, int, int, int, int, int, int, int, int]]:
    """Every section header but what may differ (.shstrtab's size, xz output), without offsets."""
    return [(s.name, s.type, s.flags, s.addr, s.size, s.link, s.info, s.addralign, s.entsize)
            for s in elfread.read_headers(path).sections if s.name not in (".shstrtab", ".gnu_debugdata")]


def loaded_bytes(path: Path) -> tuple[bytes, bytes]:
    """(ELF header with e_shoff zeroed, the bytes after it up to the first non-allocated section)."""
    h = elfread.read_headers(path)
    data = path.read_bytes()
    end = min(s.offset for s in h.sections[1:] if not s.allocated and s.has_contents)
    header = bytearray(h.ehdr)
    shoff_at, width = (0x28, 8) if h.is64 else (0x20, 4)
    header[shoff_at:shoff_at + width] = bytes(width)
    return bytes(header), data[len(h.ehdr):end]


def section_data(path: Path, name_prefix: str = "") -> dict[str, tuple[bytes, bool]]:
    """{name: (contents, was compressed)} of the sections with contents; SHF_COMPRESSED ones decompressed."""
    h = elfread.read_headers(path)
    data = path.read_bytes()
    out = {}
    for s in h.sections[1:]:
        if not s.has_contents or not s.name.startswith(name_prefix):
            continue
        raw = data[s.offset:s.offset + s.size]
        compressed = bool(s.flags & SHF_COMPRESSED)
        if compressed:
            if h.is64:
                ch_type, _, size, _ = struct.unpack_from(h.byte_order + "IIQQ", raw)
                raw = raw[24:]
            else:
                ch_type, size, _ = struct.unpack_from(h.byte_order + "III", raw)
                raw = raw[12:]
            assert ch_type == 1, f"{path} {s.name}: ch_type {ch_type}"
            raw = zlib.decompress(raw)
            assert len(raw) == size, f"{path} {s.name}: ch_size {size}, {len(raw)} bytes decompressed"
        out[s.name] = (raw, compressed)
    return out


def input_expectation(original: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], dict[str, bytes]]:
    """What `--strip-debug` must leave, read from the input by pyelftools (not by our reader, not by objcopy):
    the input's section headers but .debug_* (link/info indices and .symtab/.strtab/.shstrtab sizes aside),
    its .symtab but the STT_FILE symbols (binutils' rule for --strip-debug) and the section symbols (those
    of the sections that stay are in the rows), and its .debug_* contents,
    which the debug file must hold."""
    with open(original, "rb") as f:
        elf = ELFFile(f)
        rows: list[tuple[object, ...]] = []
        symbols: list[tuple[object, ...]] = []
        dwarf: dict[str, bytes] = {}
        names = [sec.name for sec in elf.iter_sections()]
        for sec in elf.iter_sections():
            if sec.name.startswith(".debug_"):
                dwarf[sec.name] = sec.data()
                continue
            sized = sec.name not in (".symtab", ".strtab", ".shstrtab")
            rows.append((sec.name, sec["sh_type"], sec["sh_flags"], sec["sh_addr"], sec["sh_size"] if sized else -1,
                         sec["sh_addralign"], sec["sh_entsize"]))
            if isinstance(sec, SymbolTableSection) and sec.name == ".symtab":
                for sym in sec.iter_symbols():
                    if sym["st_info"]["type"] in ("STT_FILE", "STT_SECTION"):  # section symbols follow the rows
                        continue
                    ndx = sym["st_shndx"]
                    symbols.append((sym.name, sym["st_info"]["type"], sym["st_info"]["bind"], sym["st_value"],
                                    sym["st_size"], names[ndx] if isinstance(ndx, int) else ndx))
    return rows, symbols, dwarf


def shipped_as_input_rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """input_expectation's view of a shipped binary: its .gnu_debuglink (checked elsewhere) left out."""
    rows, symbols, _ = input_expectation(path)
    return [r for r in rows if r[0] != ".gnu_debuglink"], symbols


def debug_contents(path: Path) -> dict[str, bytes]:
    return {name: raw for name, (raw, _) in section_data(path, ".debug_").items()}


def cross(original: Path) -> dict[str, str]:
    """The objcopy that reads `original` (the cross one for s390x)."""
    return CROSS if elfread.read_elf(original).machine == "EM_S390" else {}


# ------------------------------------------------------------------------------------------------
# The matrix


@pytest.mark.parametrize("name, policy", matrix())
def test_in_process_split_is_taken(built: dict[str, Path], policy_args: dict[str, tuple[str, ...]],
                                   name: str, policy: str) -> None:
    """Every binary of the matrix but DECLINED is one elfsplit handles (else the matrix would compare
    the tools with themselves)."""
    pol = load_policy(policy_args[policy][1])
    kind = "shared_library" if ".so" in BINARIES[name].image else "executable"
    assert elfread.read_elf(built[name]).kind == kind
    flags = elfsplit.parse_flags(pol.tool, pol.strip.for_kind(kind) or ())
    if (name, policy) in DECLINED:
        assert flags is None
        return
    assert flags is not None and not flags.keep_symtab
    with open(built[name], "rb") as f:
        planned = elfsplit.plan(elfread.read_headers(built[name]), flags, f)
    assert (planned is None) == ((name, policy) in DECLINED)


@pytest.mark.parametrize("name, policy", matrix(TOOLS_FAIL, SYMTAB_DIFFERS))
def test_shipped_sections_match_tools(built: dict[str, Path], splits, name: str, policy: str) -> None:
    """The same sections, in the same order, of the same sizes; kept non-allocated ones with the same bytes.
    Where elfsplit declines (the tools run either way) the expectation is read from the input instead."""
    ours, theirs = splits(name, policy).binary, splits(name, policy, "tools").binary
    if (name, policy) in DECLINED:
        rows, symbols, _ = input_expectation(built[name])
        assert shipped_as_input_rows(ours) == (rows, symbols)
        ours_data, orig_data = section_data(ours), section_data(built[name])
        for sec in (".symtab", ".strtab", ".shstrtab", ".gnu_debuglink"):
            ours_data.pop(sec, None)
        assert ours_data == {k: v for k, v in orig_data.items() if k in {r[0] for r in rows} and k in ours_data}
        assert ours_data.keys() == {r[0] for r in rows if r[0] in orig_data} - {".symtab", ".strtab", ".shstrtab"}
        return
    assert section_rows(ours) == section_rows(theirs)
    for binary in (ours, theirs):
        assert (elfread.read_elf(binary).section(".gnu_debugdata") is not None) == (policy == "redhat")
    ours_data, theirs_data = section_data(ours), section_data(theirs)
    for sec in (".shstrtab", ".gnu_debugdata", ".gnu_debuglink"):
        ours_data.pop(sec, None)
        theirs_data.pop(sec, None)
    assert ours_data == theirs_data


@pytest.mark.parametrize("name, policy", matrix(TOOLS_FAIL))
def test_shipped_loaded_content_matches_tools(built: dict[str, Path], splits, name: str, policy: str) -> None:
    """Byte for byte the tools' up to the first non-allocated section; the ELF header differs only in e_shoff.
    Where elfsplit declines (the tools run either way), byte for byte the input's."""
    ours, theirs = splits(name, policy).binary, splits(name, policy, "tools").binary
    if (name, policy) in DECLINED:
        header, loaded = loaded_bytes(ours)
        # e_shnum and e_shstrndx (the header's last 4 bytes) count the sections that are gone
        assert header[:-4] == loaded_bytes(built[name])[0][:-4]
        h = elfread.read_headers(built[name])
        data = built[name].read_bytes()
        allocated_end = max(s.offset + s.size for s in h.sections[1:] if s.allocated and s.has_contents)
        assert len(h.ehdr) + len(loaded) >= allocated_end and data[len(h.ehdr):].startswith(loaded)
        return
    assert loaded_bytes(ours) == loaded_bytes(theirs)


@pytest.mark.parametrize("name, policy", matrix())
def test_shipped_binary_is_the_input_loaded_content(built: dict[str, Path], splits, name: str, policy: str) -> None:
    """The loaded bytes and allocated section headers are the input's, the debug sections are gone,
    eu-elflint finds nothing wrong."""
    s = splits(name, policy)
    names = [r[0] for r in section_rows(s.binary)]
    assert (".symtab" in names) == (policy == "debian-strip-debug")
    assert not any(n.startswith(".debug_") for n in names) and ".gnu_debuglink" in names
    header, loaded = loaded_bytes(s.binary)
    orig_header, orig = loaded_bytes(built[name])
    # The header is the input's but for e_shoff, e_shnum and e_shstrndx (its last two fields).
    assert header[:-4] == orig_header[:-4] and orig.startswith(loaded)
    assert [r for r in section_rows(s.binary) if r[2] & SHF_ALLOC] == \
        [r for r in section_rows(built[name]) if r[2] & SHF_ALLOC]
    elflint(s.binary)


@pytest.mark.parametrize("name, policy", matrix(TOOLS_FAIL))
def test_debug_file_matches_tools(built: dict[str, Path], splits, name: str, policy: str, tmp_path: Path) -> None:
    """eu-elflint -d clean, the debuglink CRC is the file's, the DWARF is the tools' byte for byte."""
    ours, theirs = splits(name, policy), splits(name, policy, "tools")
    elflint(ours.debug, "-d")
    if (name, policy) in DECLINED:  # the tools run either way: the input's DWARF is the expectation
        # dh_dwz's step too: dwz on a copy of the input (one file: no multifile, the file itself rewritten)
        expected = tmp_path / "dwz" / built[name].name
        expected.parent.mkdir()
        shutil.copy2(built[name], expected)
        subprocess.run(["dwz", "-q", str(expected)], check=False, capture_output=True)
        _, _, dwarf = input_expectation(expected)
        assert {k: v[0] for k, v in section_data(ours.debug, ".debug_").items()} == dwarf
    for s in (ours, theirs):
        link_name, crc = elfread.read_debuglink(s.binary, elfread.read_elf(s.binary))
        assert link_name == s.debug.name and crc == zlib.crc32(s.debug.read_bytes())
    ours_data, theirs_data = section_data(ours.debug, ".debug_"), section_data(theirs.debug, ".debug_")
    assert {".debug_info", ".debug_line"} <= ours_data.keys()
    # Same contents, and the same sections compressed (binutils' rule: only when smaller) ...
    assert ours_data == theirs_data
    # ... with the same headers (SHF_COMPRESSED, the alignment of an Elf32_Chdr or Elf64_Chdr).
    rows = [[(s.name, s.type, s.flags, s.addralign, s.entsize) for s in elfread.read_headers(debug).sections
             if s.name.startswith(".debug_")] for debug in (ours.debug, theirs.debug)]
    assert rows[0] == rows[1]


def misaligned(path: Path) -> list[tuple[str, int, int]]:
    """(name, sh_offset, sh_addralign) of each non-allocated section with contents whose offset is not a
    multiple of its alignment, and e_shoff if not word-aligned; pyelftools reads them. (Allocated and NOBITS
    ones aside: objcopy and eu-strip leave those misaligned in a debug file themselves.)"""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        out = [(sec.name, sec["sh_offset"], sec["sh_addralign"]) for sec in elf.iter_sections()
               if sec["sh_addralign"] > 1 and sec["sh_offset"] % sec["sh_addralign"]
               and not sec["sh_flags"] & 2 and sec["sh_type"] != "SHT_NOBITS"]  # SHF_ALLOC
        word = 8 if elf.elfclass == 64 else 4
        if elf["e_shoff"] % word:
            out.append(("e_shoff", elf["e_shoff"], word))
    return out


@pytest.mark.parametrize("name, policy", matrix(exclude=frozenset(DECLINED)))
def test_every_offset_is_aligned(splits, name: str, policy: str) -> None:
    """Each non-allocated section of the debug file and of the shipped binary at a multiple of its
    sh_addralign (an Elf_Chdr of a compressed section is read in place), as objcopy and eu-strip leave them."""
    ours, theirs = splits(name, policy), splits(name, policy, "tools")
    for path in (theirs.debug, theirs.binary, ours.debug, ours.binary):
        assert misaligned(path) == [], path


@pytest.mark.parametrize("name, policy", matrix(exclude=frozenset(DECLINED)))
def test_debug_file_program_headers_point_at_what_is_there(built: dict[str, Path], splits, name: str,
                                                           policy: str) -> None:
    """As objcopy leaves them: a note segment points at the notes (build-id, ABI tag) where they are
    now, a segment whose bytes are gone has no file size, the loaded headers still cover PT_PHDR."""
    debug = splits(name, policy).debug
    h, orig = elfread.read_headers(debug), elfread.read_headers(built[name])
    data, orig_data = debug.read_bytes(), built[name].read_bytes()
    assert [(p[0], p[3], p[6]) for p in h.program_headers] == [(p[0], p[3], p[6]) for p in orig.program_headers]
    notes = 0
    for ph, was in zip(h.program_headers, orig.program_headers, strict=True):
        ptype, offset, filesz = ph[0], ph[2], ph[5]
        if ptype in (elfsplit.PT_NOTE, elfsplit.PT_GNU_PROPERTY) and was[5]:
            assert data[offset:offset + filesz] == orig_data[was[2]:was[2] + was[5]]
            notes += 1
        elif ptype == elfsplit.PT_PHDR:
            assert (offset, filesz) == (h.phoff, h.phnum * h.phentsize)
        else:  # nothing, or the loaded headers only
            assert filesz == 0 or offset + filesz <= h.phoff + h.phnum * h.phentsize, ph
    assert notes  # every binary of the matrix has its build-id note in a PT_NOTE
    proc = subprocess.run(["readelf", "-lW", str(debug)], capture_output=True, text=True)
    assert "not covered" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("name, policy", matrix(exclude=frozenset(DECLINED)))
def test_debug_file_keeps_every_section_header(built: dict[str, Path], splits, name: str, policy: str) -> None:
    """Every section header of the input is still there at its index (a .symtab's indices stay valid),
    with its contents unless allocated (notes excepted); the build-id is the input's."""
    debug = splits(name, policy).debug
    rows = [(s.name, s.flags & ~SHF_COMPRESSED, s.addr, s.link, s.info) for s in elfread.read_headers(debug).sections]
    assert rows == [(s.name, s.flags, s.addr, s.link, s.info) for s in elfread.read_headers(built[name]).sections]
    kept = section_data(debug)
    original = section_data(built[name])
    for s in elfread.read_headers(built[name]).sections[1:]:
        if s.allocated and s.type != SHT_NOTE:
            assert s.name not in kept
        elif not s.name.startswith(".debug_") and s.name != ".shstrtab":
            assert kept[s.name] == original[s.name], s.name
    assert elfread.read_elf(debug).build_id == elfread.read_elf(built[name]).build_id


@pytest.mark.parametrize("name, policy", matrix())
def test_eu_unstrip_recombines(splits, name: str, policy: str, tmp_path: Path) -> None:
    """eu-unstrip puts the two halves together again into a file eu-elflint accepts."""
    s = splits(name, policy)
    combined = tmp_path / "combined"
    proc = subprocess.run(["eu-unstrip", "-o", str(combined), str(s.binary), str(s.debug)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    elflint(combined)
    assert debug_contents(combined) == debug_contents(s.debug)


@pytest.mark.parametrize("name, policy", [m for m in matrix() if not m.id.startswith("s390x")])
def test_gdb_reads_the_staged_tree(splits, name: str, policy: str) -> None:
    """gdb, given only the tree's debug directory, finds the debug file and its line table."""
    s = splits(name, policy)
    b = BINARIES[name]
    out = gdb_info_line(s.root / "usr/lib/debug", s.binary, b.function)
    assert resolves(out, b.source_stem), out


@pytest.mark.parametrize("name", [pytest.param(b, marks=[pytest.mark.xfail(strict=True, reason=TOOLS_FAIL[b, "redhat"])]
                                               if (b, "redhat") in TOOLS_FAIL else []) for b in BINARIES])
def test_minidebuginfo_has_the_tools_symbols(splits, name: str, tmp_path: Path) -> None:
    """redhat's .gnu_debugdata: an xz'd ELF whose .symtab names the functions .dynsym does not."""
    symbols, rows = [], []
    for engine in ("builtin", "tools"):
        binary = splits(name, "redhat", engine).binary
        data = elfread.section_bytes(binary, elfread.read_elf(binary), ".gnu_debugdata")
        assert data is not None, engine
        mini = tmp_path / f"{engine}.elf"
        mini.write_bytes(lzma.decompress(data))
        symbols.append(set(elfread.iter_symbols(mini, ".symtab")))
        # the symbol and string tables' headers as pyelftools reads them (type, flags, alignment, entsize)
        with open(mini, "rb") as f:
            rows.append([(sec.name, sec["sh_type"], sec["sh_flags"], sec["sh_addralign"], sec["sh_entsize"])
                         for sec in ELFFile(f).iter_sections() if sec.name in (".symtab", ".strtab", ".shstrtab")])
        if engine == "builtin":
            elflint(mini, "-d")
    assert symbols[0] == symbols[1]
    assert rows[0] == rows[1]
    # The s390x test binary has no function .dynsym does not name: an ELF with an empty .symtab.
    assert bool({sym for sym in symbols[0] if sym[0]}) == (name != "s390x")


def test_minidebuginfo_names_of_a_binary_without_symtab(tmp_path: Path) -> None:
    """A binary linked with -s (no .symtab, as readelf shows): no names, an empty set (rewrite sorts it)."""
    stripped = compile_c(tmp_path / "stripped", PROGRAM, flags=("-s",))
    assert ".symtab" not in subprocess.run(["readelf", "-SW", str(stripped)], capture_output=True, text=True,
                                           check=True).stdout
    h = elfread.read_headers(stripped)
    with open(stripped, "rb") as f:
        assert elfsplit.minidebuginfo_names(h, f, h, f) == set()


# ------------------------------------------------------------------------------------------------
# write_debug on its own: the returned CRC and binutils' "compress only when smaller" rule


@pytest.mark.parametrize("name", BINARIES)
def test_write_debug_compressed_matches_objcopy(built: dict[str, Path], name: str, tmp_path: Path) -> None:
    """write_debug with zlib, called directly (a split with dwz compresses after dwz): the CRC it
    returns is the file's, and the sections compressed are those objcopy compresses."""
    src = built[name]
    ours = tmp_path / "ours.debug"
    with open(src, "rb") as f, open(ours, "w+b") as out:
        crc = elfsplit.write_debug(elfread.read_headers(src), f, out, compress_level=6)
    assert crc == zlib.crc32(ours.read_bytes())
    elflint(ours, "-d")
    theirs = tmp_path / "theirs.debug"
    objcopy = cross(src).get("OBJCOPY", "objcopy")
    subprocess.run([objcopy, "--only-keep-debug", "--compress-debug-sections=zlib", str(src), str(theirs)], check=True)
    assert section_data(ours, ".debug_") == section_data(theirs, ".debug_")
    if name != "s390x":  # a few bytes of assembler's DWARF do not shrink
        assert any(compressed for _, compressed in section_data(ours, ".debug_").values())
    assert debug_contents(ours) == debug_contents(src)


def test_incompressible_debug_section_stays_uncompressed(built: dict[str, Path], tmp_path: Path) -> None:
    """Random bytes do not shrink: the section is written as it is (binutils' rule), and what follows
    it, the CRC and the file stay right although its compressed start was written and taken back."""
    noise = tmp_path / "noise.bin"
    noise.write_bytes(os.urandom(2 * elfsplit.CHUNK + 12345))  # several chunks: the stream is cut off
    src = tmp_path / "junk"
    subprocess.run(["objcopy", f"--add-section=.debug_junk={noise}", "--set-section-flags=.debug_junk=readonly,debug",
                    str(built["pie"]), str(src)], check=True)
    names = [s.name for s in elfread.read_headers(src).sections]
    assert names.index(".debug_junk") < names.index(".symtab")  # sections follow it
    ours = tmp_path / "ours.debug"
    with open(src, "rb") as f, open(ours, "w+b") as out:
        crc = elfsplit.write_debug(elfread.read_headers(src), f, out, compress_level=6)
    assert crc == zlib.crc32(ours.read_bytes())
    elflint(ours, "-d")
    data = section_data(ours)
    assert data[".debug_junk"] == (noise.read_bytes(), False)
    assert data[".debug_info"][1] and data[".symtab"] == section_data(src)[".symtab"]
    theirs = tmp_path / "theirs.debug"
    subprocess.run(["objcopy", "--only-keep-debug", "--compress-debug-sections=zlib", str(src), str(theirs)], check=True)
    assert section_data(ours, ".debug_") == section_data(theirs, ".debug_")


# ------------------------------------------------------------------------------------------------
# Where plan declines, the tools split


def zlib_levels(debug: Path) -> set[int]:
    """FLEVEL of each compressed .debug_* section's zlib stream: 0 for level 1, 2 for 6, 3 for 7-9."""
    data = debug.read_bytes()
    chdr = 24 if data[4] == 2 else 12
    return {data[s.offset + chdr + 1] >> 6 for s in elfread.read_headers(debug).sections
            if s.name.startswith(".debug_") and s.flags & 0x800}


@pytest.mark.parametrize("tool", ["binutils", "elfutils"])
def test_a_declined_file_gets_the_policy_s_compress_level(built: dict[str, Path], tmp_path: Path, tool: str) -> None:
    """objcopy compresses at level 6 only: where elfsplit declines, the policy's level and encoder are
    still applied (in-process, after the tools' split); only SPLITDEBUG_ENGINE=tools gets the tool's
    own: objcopy's 6, or eu-elfcompress's 9 under an elfutils policy."""
    attrs = tmp_path / "attrs.bin"
    attrs.write_bytes(b"\x04\0\0\0" * 64)
    odd = tmp_path / "odd"
    subprocess.run(["objcopy", f"--add-section=.gnu.build.attributes={attrs}", str(built["pie"]), str(odd)],
                   check=True)
    text = (REPO / "configs/redhat.yaml").read_text().replace("\ndwz: multifile\n", "\ndwz: none\n")
    if tool == "binutils":
        text = text.replace("\ntool: elfutils\n", "\ntool: binutils\n").replace(
            "[--remove-comment]", "[--strip-all]").replace("keep_symbols: minidebuginfo", "keep_symbols: none")
    levels = {}
    for level, engine in ((1, "builtin"), (9, "builtin"), (1, "tools"), (1, "isal")):
        policy = tmp_path / f"{tool}-{level}-{engine}.yaml"
        encoder = "isal" if engine == "isal" else "zlib"
        policy.write_text(text.replace("\ncompress_level: 1\n", f"\ncompress_level: {level}\nzlib_encoder: {encoder}\n"))
        engine = "builtin" if engine == "isal" else engine
        env = env_with_package()
        env["SPLITDEBUG_ENGINE"] = engine
        done = split_copy(odd, tmp_path / policy.stem, "usr/bin/prog", ("--policy", str(policy), "--version", "1",
                                                                         "--release", "1"), env)
        # The tools split it: the section is kept (objcopy) or moved to the debug file (eu-strip).
        assert any(elfread.read_elf(p).section(".gnu.build.attributes") for p in (done.binary, done.debug))
        levels[level, policy.stem.rsplit("-", 1)[1]] = zlib_levels(done.debug)
        assert resolves(gdb_info_line(done.root / "usr/lib/debug", done.binary, "main"), "prog")
    # ISA-L's streams say FLEVEL 1 whatever its level (0x785e)
    tools_level = {"binutils": 2, "elfutils": 3}[tool]  # FLEVEL 2: zlib's 6, 3: its 9
    assert levels == {(1, "builtin"): {0}, (9, "builtin"): {3}, (1, "tools"): {tools_level}, (1, "isal"): {1}}



def test_unknown_section_falls_back_to_the_tools(built: dict[str, Path], tmp_path: Path) -> None:
    """A non-allocated section elfsplit does not know: plan declines, the default engine runs the tools."""
    attrs = tmp_path / "attrs.bin"
    attrs.write_bytes(b"\x04\0\0\0" * 64)
    odd = tmp_path / "odd"
    subprocess.run(["objcopy", f"--add-section=.gnu.build.attributes={attrs}", str(built["pie"]), str(odd)], check=True)
    policy = load_policy("debian")
    flags = elfsplit.parse_flags(policy.tool, policy.strip.executable or ())
    assert flags is not None
    with open(odd, "rb") as f:
        assert elfsplit.plan(elfread.read_headers(odd), flags, f) is None
    ours = split_copy(odd, tmp_path / "ours", "usr/bin/prog", ("--policy", "debian"), env_with_package()).binary
    assert_split_tree(tmp_path / "ours", expected=1)
    elflint(ours)
    assert resolves(gdb_info_line(tmp_path / "ours/usr/lib/debug", ours, "main"), "prog")
    env = env_with_package()
    env["SPLITDEBUG_ENGINE"] = "tools"
    theirs = split_copy(odd, tmp_path / "theirs", "usr/bin/prog", ("--policy", "debian"), env).binary

    def without_crc(binary: Path) -> bytes:
        data = bytearray(binary.read_bytes())
        at = elfread.debuglink_crc_offset(elfread.read_elf(binary))
        data[at:at + 4] = bytes(4)
        return bytes(data)

    # objcopy wrote the shipped binary (elfsplit's .shstrtab would differ). The CRC differs: the
    # default engine compresses the debug file in-process after dwz, SPLITDEBUG_ENGINE=tools with objcopy.
    assert without_crc(ours) == without_crc(theirs)
    assert (elfread.read_elf(ours).section(".gnu.build.attributes") is not None) == \
        (elfread.read_elf(theirs).section(".gnu.build.attributes") is not None)


@pytest.mark.parametrize("case", ["remove-allocated", "split-already", "relocatable"])
def test_plan_declines(built: dict[str, Path], tmp_path: Path, case: str) -> None:
    """Other shapes left to the tools: removing a loaded section, a binary split once already, an object."""
    src, flags = built["pie"], StripFlags(False, ())
    if case == "remove-allocated":
        flags = StripFlags(False, (".note.gnu.build-id",))
    elif case == "split-already":
        src = tmp_path / "stripped"
        (tmp_path / "mini.xz").write_bytes(lzma.compress(b"", format=lzma.FORMAT_XZ))
        subprocess.run(["objcopy", "--strip-debug", f"--add-section=.gnu_debugdata={tmp_path / 'mini.xz'}",
                        str(built["pie"]), str(src)], check=True)
    else:
        src = tmp_path / "obj.o"
        subprocess.run(["gcc", "-g", "-c", "-o", str(src), "-x", "c", "-"], input=LIBRARY, text=True, check=True)
    with open(src, "rb") as f:
        assert elfsplit.plan(elfread.read_headers(src), flags, f) is None
    with open(built["pie"], "rb") as f:  # what made the difference
        assert elfsplit.plan(elfread.read_headers(built["pie"]), StripFlags(False, ()), f) is not None


# ------------------------------------------------------------------------------------------------
# parse_flags: the vocabulary of objcopy and eu-strip, checked against what the tools do

ALL, DEBUG = StripFlags(False, ()), StripFlags(True, ())
# eu-strip moves the build-attribute sections to the debug file, objcopy keeps them. A literal list (the
# names binutils' bfd gives them for arm, ppc32 and riscv), not the module's own constant.
ATTRS = (".ARM.attributes", ".gnu.attributes", ".riscv.attributes")
EU_ALL = StripFlags(False, ATTRS)
TOOL = "None, or what the tool does"
FLAG_TABLE = [
    ("binutils", ["--strip-all"], ALL),
    ("binutils", ["--strip-unneeded"], ALL),
    ("binutils", ["--strip-debug"], None),  # objcopy also drops STT_FILE symbols: left to it
    ("binutils", ["-g"], None),
    ("binutils", ["--strip-all", "--remove-section=.comment", "--remove-section=.note"],
     StripFlags(False, (".comment", ".note"))),
    ("binutils", ["--strip-unneeded", "-R", ".comment"], StripFlags(False, (".comment",))),
    ("binutils", ["--remove-section", ".comm*", "--strip-debug"], None),
    ("binutils", ["--strip-all", "--strip-debug"], None),
    ("binutils", [], None),  # objcopy without a strip flag strips nothing
    ("binutils", ["--remove-section=.comment"], None),
    ("binutils", ["-S"], None),  # objcopy's -S is --strip-all, not known here: declined, never misread
    ("binutils", ["--strip-all", "--keep-symbol=main"], None),
    ("binutils", ["--strip-all", "--remove-comment"], None),
    ("binutils", ["--strip-all", "-d"], None),
    ("binutils", ["--strip-all", "-R"], None),
    ("binutils", ["--only-keep-debug"], None),
    ("elfutils", [], EU_ALL),
    ("elfutils", ["--remove-comment"], StripFlags(False, (".comment", *ATTRS))),
    ("elfutils", ["-g"], DEBUG),
    ("elfutils", ["-d"], DEBUG),
    ("elfutils", ["-S"], DEBUG),
    ("elfutils", ["--strip-debug", "--remove-comment"], DEBUG),  # eu-strip ignores it under -g
    ("elfutils", ["-g", "-R", ".comment"], StripFlags(True, (".comment",))),
    ("elfutils", ["-R", ".comm*"], StripFlags(False, (".comm*", *ATTRS))),
    ("elfutils", ["-R", ".comment"], StripFlags(False, (".comment", *ATTRS))),
    ("elfutils", ["--remove-section=.comment"], StripFlags(False, (".comment", *ATTRS))),
    ("elfutils", ["--strip-all"], None),  # not an eu-strip flag
    ("elfutils", ["--strip-unneeded"], None),
    ("elfutils", ["--keep-section=.comment"], None),
    ("elfutils", ["--reloc-debug-sections"], None),
    ("elfutils", ["-p"], None),
    ("elfutils", ["--strip-sections"], None),
]


def flag_params() -> list:
    out = []
    for row in FLAG_TABLE:
        values, marks = (row.values, row.marks) if hasattr(row, "values") else (row, ())
        out.append(pytest.param(*values, id=f"{values[0]}:{' '.join(values[1]) or '-'}", marks=marks))
    return out


@pytest.mark.parametrize("tool, flags, expected", flag_params())
def test_parse_flags(built: dict[str, Path], tmp_path: Path, tool: str, flags: list[str],
                     expected: StripFlags | str | None) -> None:
    """Known flags become StripFlags, anything else None; StripFlags mean what the tool does with the flags."""
    got = elfsplit.parse_flags(tool, flags)
    if expected != TOOL:
        assert got == expected
    if got is None:
        return
    # What the tool does with these flags is what they were read as.
    src, out = built["pie"], tmp_path / "out"
    if tool == "binutils":
        subprocess.run(["objcopy", *flags, str(src), str(out)], check=True)
    else:
        subprocess.run(["eu-strip", *flags, "-o", str(out), str(src)], check=True)
    names = {s.name for s in elfread.read_elf(out).sections}
    assert (".symtab" in names) == got.keep_symtab
    assert not any(n.startswith(".debug_") for n in names)
    for s in elfread.read_elf(src).sections:
        if not s.allocated and s.name not in (".symtab", ".strtab", ".shstrtab"):
            removed = s.name.startswith(".debug_") or any(fnmatch.fnmatchcase(s.name, p) for p in got.remove)
            assert (s.name not in names) == removed, s.name


# ------------------------------------------------------------------------------------------------
# crc32_combine


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
@example([b"", b""])
@example([b"abc", b""])
@example([b"", b"abc"])
@example([bytes(range(256)) * 3, b"\xff" * (elfsplit.CHUNK + 7), b"x"])
def test_crc32_combine(parts: list[bytes]) -> None:
    """The CRC of a concatenation from its parts' CRCs is zlib's CRC of the whole."""
    crc = 0
    for part in parts:
        crc = elfsplit.crc32_combine(crc, zlib.crc32(part), len(part))
    assert crc == zlib.crc32(b"".join(parts))


@given(st.integers(0, 0xFFFFFFFF))
def test_crc32_combine_with_nothing(crc: int) -> None:
    assert elfsplit.crc32_combine(crc, 0, 0) == crc
