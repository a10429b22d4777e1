"""Splitting a linked ELF file in-process: its debug file and its stripped binary, written from the
section table with a few large copies and no tool process per file.

The result is what `eu-strip -f` (or `objcopy --only-keep-debug` then `objcopy --strip-…
--add-gnu-debuglink`) writes; tests/test_elfsplit.py compares the two section by section and runs
eu-elflint, eu-unstrip and gdb on ours:
- the stripped binary is the input's bytes up to the end of its loaded content, unchanged, then the
  non-allocated sections it keeps, .gnu_debugdata and .gnu_debuglink, a new .shstrtab and section table;
- the debug file keeps every section header, so section indices (and .symtab) stay valid; allocated
  sections other than notes become NOBITS, laid out as eu-strip does; its program headers describe
  what is there (notes moved, no file size for code), as objcopy's do.

`plan` returns None, and the caller runs the tools instead, for every shape this does not cover:
strip flags it does not know, a section to remove placed before a loaded one, unknown non-allocated
sections, extended section numbering.

One concern that reads best whole: the debug file and the stripped binary are planned from one
section table, and the offsets of one are only right when read beside those of the other.
"""

from __future__ import annotations

import bisect
import fnmatch
import functools
import io
import mmap
import os
import struct
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .read import MAX_ALIGN, Headers, SectionHeader, crc32
from ..errors import ElfError

SHF_ALLOC, SHF_INFO_LINK, SHF_COMPRESSED = 0x2, 0x40, 0x800
SHT_DYNSYM = 11
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS, SHT_REL, SHT_NOTE = 1, 2, 3, 4, 8, 9, 7
ELFCOMPRESS_ZLIB = 1
ELFCOMPRESS_ZSTD = 2
SHN_LORESERVE = 0xFF00
CHUNK = 1 << 20  # bytes per read: large copies, bounded memory whatever the file size


@dataclass(frozen=True)
class StripFlags:
    """The policy's strip flags, as far as this module understands them."""

    keep_symtab: bool  # --strip-debug: only debug sections leave the binary
    remove: tuple[str, ...]  # section name patterns removed from the binary (--remove-section)


def parse_flags(tool: str, flags: Sequence[str]) -> StripFlags | None:
    """objcopy's or eu-strip's flags (the policy's `tool`) as StripFlags; None when this module
    cannot do exactly what that tool would (an unknown flag, objcopy's --strip-debug)."""
    keep_symtab: bool | None = None if tool == "binutils" else False  # eu-strip strips all by default
    remove: list[str] = []
    remove_comment = False
    args = list(flags)
    while args:
        arg = args.pop(0)
        if arg in ("-R", "--remove-section") and args:
            remove.append(args.pop(0))
        elif arg.startswith("--remove-section="):
            remove.append(arg.split("=", 1)[1])
        elif tool == "binutils" and arg in ("--strip-all", "--strip-unneeded"):
            # On a linked file no .symtab entry is needed by a relocation: both drop the whole table.
            keep_symtab = False
        elif tool == "elfutils" and arg in ("-g", "-d", "-S", "--strip-debug"):
            keep_symtab = True
        elif tool == "elfutils" and arg == "--remove-comment":
            remove_comment = True
        else:
            # objcopy --strip-debug also drops STT_FILE symbols from the .symtab it keeps: not done here.
            return None
    if keep_symtab is None:  # objcopy without a strip flag strips nothing
        return None
    if remove_comment and not keep_symtab:  # eu-strip ignores --remove-comment under -g
        remove.append(".comment")
    if tool == "elfutils" and not keep_symtab:
        # eu-strip moves every non-allocated section but notes, .comment and .gnu.warning.* to the
        # debug file (SECTION_STRIP_P); objcopy keeps attribute sections in the binary.
        remove.extend(ATTRIBUTE_SECTIONS)
    return StripFlags(keep_symtab, tuple(remove))


def is_debug_section(sec: SectionHeader) -> bool:
    return not sec.allocated and sec.name.startswith(".debug_")


def debug_compression(h: Headers, src: BinaryIO) -> set[int]:
    """The ch_type of each compressed debug section (ELFCOMPRESS_ZLIB 1, ld's zstd 2). Python's zlib
    cannot decode zstd, and dwz reads neither: objcopy converts such sections where needed."""
    out = set()
    for s in h.sections:
        if is_debug_section(s) and s.flags & SHF_COMPRESSED and s.has_contents and s.size >= 4:
            src.seek(s.offset)
            out.add(struct.unpack(h.byte_order + "I", src.read(4))[0])
    return out


def _read_chdr(h: Headers, src: BinaryIO, s: SectionHeader) -> tuple[int, int, int]:
    """(ch_type, ch_size, ch_addralign) of a compressed section."""
    fmt = h.byte_order + ("IIQQ" if h.is64 else "III")
    src.seek(s.offset)
    raw = src.read(struct.calcsize(fmt))
    if len(raw) < struct.calcsize(fmt) or s.size < len(raw):
        raise ElfError(h.path, f"section {s.name}: compressed, but shorter than its header")
    row = struct.unpack(fmt, raw)
    return (row[0], row[2], row[3]) if h.is64 else (row[0], row[1], row[2])


@dataclass(frozen=True)
class SplitPlan:
    headers: Headers
    loaded_end: int  # the stripped binary is the input's bytes up to here, unchanged
    kept: tuple[SectionHeader, ...]  # non-allocated sections the stripped binary keeps, in input order


# Non-allocated sections whose treatment is known; any other makes `plan` decline.
_KNOWN = (".symtab", ".strtab", ".shstrtab", ".comment")
# Build attributes (ABI, FPU, ISA) of armhf, ppc32 and riscv files: ordinary non-allocated sections,
# by name and by type (SHT_ARM_ATTRIBUTES and SHT_RISCV_ATTRIBUTES share 0x70000003).
ATTRIBUTE_SECTIONS = (".ARM.attributes", ".gnu.attributes", ".riscv.attributes")
SHT_GNU_ATTRIBUTES, SHT_PROC_ATTRIBUTES = 0x6FFFFFF5, 0x70000003


def plan(h: Headers, flags: StripFlags, src: BinaryIO) -> SplitPlan | None:
    """How to split `h` (open as `src`) in-process, or None when the tools must do it."""
    secs = h.sections
    if h.extended_numbering or len(secs) < 2 or (h.phnum and h.phoff != len(h.ehdr)):
        return None
    symtab = next((s for s in secs if s.type == SHT_SYMTAB), None)
    strtab_index = symtab.link if symtab is not None else None
    if strtab_index is not None and (strtab_index == h.shstrndx or not 0 < strtab_index < len(secs)):
        return None
    removed: list[SectionHeader] = []
    kept: list[SectionHeader] = []
    last_alloc = max((s.ndx for s in secs if s.allocated), default=0)
    exact = {p for p in flags.remove if not any(c in p for c in "*?[")}
    globs = [p for p in flags.remove if p not in exact]
    for s in secs[1:]:
        matched = s.name in exact or any(fnmatch.fnmatchcase(s.name, pat) for pat in globs)
        if s.allocated:
            if matched:
                return None  # removing loaded content needs relayout: the tools' job
            continue
        if s.type in (SHT_NOBITS, SHT_REL, SHT_RELA) or s.name.startswith(".zdebug") or \
                s.name in (".gnu_debugdata", ".gnu_debugaltlink"):
            return None  # relocatable debug info, or a file split once already
        if s.ndx < last_alloc:
            return None  # a non-allocated section among loaded ones: renumbering .dynsym is the tools' job
        if s.ndx == h.shstrndx:
            continue  # written anew
        symbols = s.ndx in (getattr(symtab, "ndx", None), strtab_index)
        # An input's own .gnu_debuglink names another file: ours replaces it (objcopy would keep the old one).
        if is_debug_section(s) or matched or s.name == ".gnu_debuglink" or (symbols and not flags.keep_symtab):
            removed.append(s)
        elif symbols or s.name in _KNOWN or s.type == SHT_NOTE or \
                (s.name in ATTRIBUTE_SECTIONS and s.type in (SHT_GNU_ATTRIBUTES, SHT_PROC_ATTRIBUTES)):
            kept.append(s)
        else:
            return None
    if any(s.type == SHT_NOTE and not s.allocated and s.size for s in removed):
        return None
    loaded_end = max([len(h.ehdr), h.phoff + h.phnum * h.phentsize]
                     + [ph[2] + ph[5] for ph in h.program_headers]
                     + [s.offset + s.size for s in secs if s.allocated and s.has_contents])
    if loaded_end > h.file_size:
        return None  # a segment past the end of the file: damaged, the tools say how
    if any(s.has_contents and s.size and s.offset < loaded_end for s in secs[1:] if not s.allocated):
        return None  # non-allocated bytes inside the loaded range would be copied along
    index_map = _renumbering(secs, {s.ndx for s in removed})
    for s in kept:
        if s.link and (s.link not in index_map or s.link == h.shstrndx):
            return None
        if (s.flags & SHF_INFO_LINK) and s.info not in index_map:
            return None
    # A kept .symtab names sections by index: none of those may move (.shstrtab goes last).
    first_moved = min([s.ndx for s in removed] + [h.shstrndx])
    if flags.keep_symtab and symtab_refers_past(h, src, first_moved):
        return None
    return SplitPlan(h, loaded_end, tuple(kept))


def symtab_refers_past(h: Headers, src: BinaryIO, first_moved: int) -> bool:
    """Whether a .symtab entry names a section at or after `first_moved` (whose index would change)."""
    symtab = next((s for s in h.sections if s.type == SHT_SYMTAB), None)
    if symtab is None:
        return False
    fmt = h.byte_order + ("IBBHQQ" if h.is64 else "IIIBBH")
    shndx_at = 3 if h.is64 else 5
    src.seek(symtab.offset)
    data = src.read(symtab.size)
    return any(first_moved <= row[shndx_at] < SHN_LORESERVE
               for row in struct.iter_unpack(fmt, data[:len(data) - len(data) % struct.calcsize(fmt)]))


def _relinked(s: SectionHeader, index_map: dict[int, int]) -> dict[str, int]:
    """`s`'s sh_link, and its sh_info where that names a section, renumbered by `index_map`; 0 when
    the section named is gone, as objcopy writes (a static executable's .rela.plt links the .symtab
    that --strip-all drops: left as it was, gdb and objdump no longer read the file)."""
    changes = {}
    if s.link:
        changes["link"] = index_map.get(s.link, 0)
    if s.info and (s.flags & SHF_INFO_LINK or s.type in (SHT_REL, SHT_RELA)):
        changes["info"] = index_map.get(s.info, 0)
    return changes


def _renumbering(secs: Sequence[SectionHeader], removed: set[int]) -> dict[int, int]:
    """{old index: new index} of the sections the stripped binary keeps (its new ones come after)."""
    out: dict[int, int] = {}
    for s in secs:
        if s.ndx not in removed:
            out[s.ndx] = len(out)
    return out


# ------------------------------------------------------------------------------------------------
# Writing

class _Writer:
    """Sequential output that tracks its position and the CRC32 of what it wrote."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.pos, self.crc = f, 0, 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.crc = crc32(data, self.crc)
        self.pos += len(data)

    def align(self, alignment: int) -> int:
        pad = -self.pos % max(alignment, 1)
        if pad:
            self.write(b"\0" * pad)
        return self.pos

    def copy(self, src: BinaryIO, offset: int, size: int) -> None:
        for chunk in _chunks(src, offset, size):
            self.write(chunk)


def _chunks(src: BinaryIO, offset: int, size: int) -> Iterator[bytes]:
    """`size` bytes of `src` from `offset`, CHUNK at a time (bounded memory whatever the size)."""
    src.seek(offset)
    while size > 0:
        chunk = src.read(min(CHUNK, size))
        if not chunk:
            raise ElfError(str(getattr(src, "name", "input")), "the file shrank while it was being split")
        yield chunk
        size -= len(chunk)


def _ehdr(h: Headers, shoff: int, shnum: int, shstrndx: int) -> bytes:
    fmt = h.byte_order + ("HHIQQQIHHHHHH" if h.is64 else "HHIIIIIHHHHHH")
    fields = list(struct.unpack_from(fmt, h.ehdr, 16))
    fields[5], fields[11], fields[12] = shoff, shnum, shstrndx
    return h.ehdr[:16] + struct.pack(fmt, *fields) + h.ehdr[16 + struct.calcsize(fmt):]


_SHDR_FIELD = {name: i for i, name in enumerate(SectionHeader._fields)}


def _shdr(h: Headers, s: SectionHeader, **changes: int) -> bytes:
    """The section header `s` packed, with some fields changed (offset=…, size=…)."""
    if not changes:
        return struct.pack(h.sh_format, *s[2:])
    row = list(s)  # not s._replace: a namedtuple rebuilt per header was a tenth of a plain split's writing
    for name, value in changes.items():
        row[_SHDR_FIELD[name]] = value
    return struct.pack(h.sh_format, *row[2:])


def _phdrs(h: Headers, program_headers: Sequence[tuple[int, ...]] | None = None) -> bytes:
    """Program headers packed; `program_headers` in elfread's order (p_flags second), else h's own."""
    fmt = h.byte_order + ("IIQQQQQQ" if h.is64 else "IIIIIIII")
    rows = list(h.program_headers if program_headers is None else program_headers)
    if not h.is64:  # Elf32_Phdr puts p_flags after p_memsz
        rows = [(p[0], p[2], p[3], p[4], p[5], p[6], p[1], p[7]) for p in rows]
    return b"".join(struct.pack(fmt, *p) for p in rows)


def _chdr(h: Headers, s: SectionHeader) -> bytes:
    if h.is64:
        return struct.pack(h.byte_order + "IIQQ", ELFCOMPRESS_ZLIB, 0, s.size, s.addralign)
    return struct.pack(h.byte_order + "III", ELFCOMPRESS_ZLIB, s.size, s.addralign)


class _Deflater(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


# compress_level (zlib's 1-9) -> ISA-L's level (0-3). Measured on the bench tree's DWARF (bench/README):
# ISA-L 1/2/3 write 1.084/1.076/1.066 x zlib-6's bytes at about 20 x its speed; zlib-1 writes 1.069 x.
# The fastest level for zlib's fastest, the next for 2, ISA-L's best for every higher level.
ISAL_LEVELS = {1: 1, 2: 2}
ISAL_BEST = 3


@functools.lru_cache(maxsize=1)
def isal_available() -> bool:
    """Whether ISA-L (PyPI `isal`) can be imported; `encoder="isal"` falls back to zlib without it."""
    try:
        from isal import isal_zlib  # noqa: F401  (imported for its presence)
    except ImportError:
        return False
    return True


def deflater(level: int, encoder: str = "zlib") -> _Deflater:
    """A zlib-format stream compressor at zlib's `level`: ISA-L's (see ISAL_LEVELS) when `encoder` is
    "isal" and it is installed, else Python's zlib. Both are deterministic: same input, same bytes;
    every zlib reader (gdb, libdw, objcopy, dwz, debugedit) reads either."""
    if encoder == "isal" and isal_available():
        from isal import isal_zlib
        return isal_zlib.compressobj(ISAL_LEVELS.get(level, ISAL_BEST))
    return zlib.compressobj(level)


def _write_compressed(w: _Writer, h: Headers, src: BinaryIO, s: SectionHeader, level: int, encoder: str) -> bool:
    """Write `s` as an ELF compressed section (header + zlib stream) at w's position; False, with
    nothing written, when that is not smaller (binutils' rule). Streamed a chunk at a time: memory
    stays bounded whatever the section size, and both encoders release the GIL meanwhile."""
    pos, crc = w.pos, w.crc
    z = deflater(level, encoder)
    w.write(_chdr(h, s))
    for chunk in _chunks(src, s.offset, s.size):
        w.write(z.compress(chunk))
        if w.pos - pos >= s.size:
            break
    else:
        w.write(z.flush())
        if w.pos - pos < s.size:
            return True
    w.f.seek(pos)  # not smaller: back to where the section starts, as if never written
    w.f.truncate()
    w.pos, w.crc = pos, crc
    return False


def _inflate_into(w: _Writer, h: Headers, src: BinaryIO, s: SectionHeader, size: int) -> None:
    """Write the zlib stream of compressed section `s` (after its header) decompressed: exactly
    `size` bytes (its ch_size), a chunk at a time, or an ElfError."""
    chdr = 24 if h.is64 else 12
    z = zlib.decompressobj()
    done = 0
    try:
        for chunk in _chunks(src, s.offset + chdr, s.size - chdr):
            while chunk:
                data = z.decompress(chunk, CHUNK)
                done += len(data)
                if done > size:
                    break
                w.write(data)
                chunk = z.unconsumed_tail
    except zlib.error as err:
        raise ElfError(h.path, f"section {s.name}: bad zlib stream ({err})") from None
    if done != size or not z.eof:
        raise ElfError(h.path, f"section {s.name}: decompresses to {done} bytes, its header says {size}")


def write_debug(h: Headers, src: BinaryIO, out: BinaryIO, *, compress_level: int | None = None,
                encoder: str = "zlib", decompress: bool = False) -> int:
    """The debug file of `h` (a binary, or a debug file to compress again) into `out`; returns its CRC32.

    Every section header stays, at its index. Allocated sections but notes become NOBITS; the
    others keep their bytes, `.debug_*` ones zlib-compressed at `compress_level` when given (by
    `encoder`, see `deflater`; "zlib" at level 6 writes objcopy's bytes), or with `decompress` their
    zlib-compressed ones decompressed (what dwz reads; the caller leaves other ch_types to objcopy).
    """
    # The ELF and program headers go first but are known only at the end (e_shoff, where the notes
    # land): written last, their CRC combined with the rest's.
    head = max(len(h.ehdr), h.phoff + h.phnum * h.phentsize) if h.phnum else len(h.ehdr)
    out.write(b"\0" * head)
    w = _Writer(out)
    w.pos = head
    headers = [_shdr(h, h.sections[0])]
    placed: dict[int, int] = {}  # section index -> its offset here, for sections with contents
    for s in h.sections[1:]:
        if s.type == SHT_NOBITS or (s.allocated and s.type != SHT_NOTE):
            headers.append(_shdr(h, s, type=SHT_NOBITS, offset=w.pos + -w.pos % max(s.addralign, 1)))
            continue
        if decompress and is_debug_section(s) and s.flags & SHF_COMPRESSED:
            ch_type, size, addralign = _read_chdr(h, src, s)
            if ch_type != ELFCOMPRESS_ZLIB:
                raise ElfError(h.path, f"section {s.name}: compression type {ch_type} is not zlib")
            at = w.align(_align_of(h, s._replace(addralign=addralign)))
            _inflate_into(w, h, src, s, size)
            headers.append(_shdr(h, s, offset=at, size=size, flags=s.flags & ~SHF_COMPRESSED, addralign=addralign))
            continue
        if compress_level is not None and is_debug_section(s) and s.type == SHT_PROGBITS and s.size \
                and not s.flags & SHF_COMPRESSED:
            at = w.align(8 if h.is64 else 4)
            if _write_compressed(w, h, src, s, compress_level, encoder):
                headers.append(_shdr(h, s, offset=at, size=w.pos - at, flags=s.flags | SHF_COMPRESSED,
                                     addralign=8 if h.is64 else 4))
                continue
        at = w.align(_align_of(h, s))
        w.copy(src, s.offset, s.size)
        headers.append(_shdr(h, s, offset=at))
        placed[s.ndx] = at
    shoff = w.align(8 if h.is64 else 4)
    w.write(b"".join(headers))
    ehdr = _ehdr(h, shoff, len(h.sections) if not h.extended_numbering else 0,
                 h.shstrndx if not h.extended_numbering else 0xFFFF)
    if h.phnum:
        ehdr += b"\0" * (h.phoff - len(ehdr)) + _phdrs(h, _debug_segments(h, placed))
    out.seek(0)
    out.write(ehdr)
    return crc32_combine(crc32(ehdr), w.crc, w.pos - head)


PT_LOAD, PT_PHDR, PT_NOTE, PT_GNU_PROPERTY = 1, 6, 4, 0x6474E553


def _debug_segments(h: Headers, placed: dict[int, int]) -> list[tuple[int, ...]]:
    """The program headers as they hold in a debug file (objcopy's way, not eu-strip's copy): a
    segment whose bytes are not there has no file size; a note segment points at its notes' new place."""
    out = []
    table = h.phnum * h.phentsize
    for ph in h.program_headers:  # (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align)
        ptype, offset, filesz = ph[0], ph[2], ph[5]
        row = list(ph)
        if ptype in (PT_NOTE, PT_GNU_PROPERTY) and filesz:
            notes = [s for s in h.sections if s.ndx in placed and s.type == SHT_NOTE and s.size
                     and offset <= s.offset and s.offset + s.size <= offset + filesz]
            moves = {placed[s.ndx] - s.offset for s in notes}
            if notes and len(moves) == 1 and min(s.offset for s in notes) == offset:
                row[2] = offset + moves.pop()
            else:
                row[5] = 0
        elif ptype == PT_LOAD and offset <= h.phoff and h.phoff + table <= offset + filesz:
            row[5] = h.phoff + table - offset  # the loaded headers are still there: PT_PHDR stays covered
        elif ptype != PT_PHDR:
            row[5] = 0
        out.append(tuple(row))
    return out





# CRC-32 of a concatenation from the CRCs of its parts (zlib's crc32_combine, which Python does not
# export): the header is written last, so the file's CRC is the header's combined with the rest's.
_CRC_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, in zlib's reflected representation."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1


@functools.cache
def _x2n_table() -> tuple[int, ...]:
    p, table = 1 << 30, []  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return tuple(table)


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc1 = CRC(A), crc2 = CRC(B) and len2 = len(B)."""
    table, p, k, n = _x2n_table(), 1 << 31, 3, len2  # x^(8 * len2) mod P, then times crc1
    while n:
        if n & 1:
            p = _multmodp(table[k & 31], p)
        n >>= 1
        k += 1
    return (_multmodp(p, crc1) ^ crc2) & 0xFFFFFFFF


def debuglink_data(name: str, crc: int, byte_order: str) -> bytes:
    raw = os.fsencode(name) + b"\0"
    return raw + b"\0" * (-len(raw) % 4) + struct.pack(byte_order + "I", crc)


def write_stripped(p: SplitPlan, src: BinaryIO, out: BinaryIO, extra: Sequence[tuple[str, bytes, int]]) -> None:
    """The shipped binary: the loaded bytes as they are, the kept non-allocated sections, then the
    `extra` sections ((name, contents, alignment): .gnu_debugdata, .gnu_debuglink), as objcopy orders them."""
    h = p.headers
    _copy_range(src, out, 0, p.loaded_end)
    pos = p.loaded_end
    secs = h.sections
    alloc = [s for s in secs if s.ndx == 0 or s.allocated]
    index_map = {s.ndx: i for i, s in enumerate(alloc)}
    for i, s in enumerate(p.kept):
        index_map[s.ndx] = len(alloc) + i
    names = bytearray(b"\0")

    def name_at(name: str) -> int:
        at = len(names)
        names.extend(os.fsencode(name) + b"\0")
        return at

    rows = [_shdr(h, s, name_off=name_at(s.name), **_relinked(s, index_map)) if s.ndx else _shdr(h, s, name_off=0)
            for s in alloc]

    def put(data_len: int, alignment: int) -> int:
        nonlocal pos
        pad = -pos % max(alignment, 1)
        if pad:
            out.write(b"\0" * pad)
        at = pos + pad
        pos = at + data_len
        return at

    for s in p.kept:
        at = put(s.size, _align_of(h, s))
        _copy_range(src, out, s.offset, s.size)
        rows.append(_shdr(h, s, name_off=name_at(s.name), offset=at, **_relinked(s, index_map)))
    for name, data, alignment in extra:
        at = put(len(data), alignment)
        out.write(data)
        rows.append(struct.pack(h.sh_format, name_at(name), SHT_PROGBITS, 0, 0, at, len(data), 0, 0,
                                alignment, 0))
    shstr_name = name_at(secs[h.shstrndx].name or ".shstrtab")
    at = put(len(names), 1)
    out.write(bytes(names))
    rows.append(struct.pack(h.sh_format, shstr_name, SHT_STRTAB, 0, 0, at, len(names), 0, 0, 1, 0))
    shoff = put(0, 8 if h.is64 else 4)
    out.write(b"".join(rows))
    out.seek(0)
    out.write(_ehdr(h, shoff, len(rows), len(rows) - 1))


def _copy_range(src: BinaryIO, out: BinaryIO, offset: int, size: int) -> None:
    """Copy bytes between files in the kernel when it can (copy_file_range), else through a buffer."""
    out.flush()
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src.fileno(), out.fileno(), size - done, offset + done)
            if n == 0:
                break
            done += n
    except OSError:
        pass  # a file system without it: the buffered copy below does the rest
    out.seek(0, os.SEEK_END)
    for chunk in _chunks(src, offset + done, size - done):
        out.write(chunk)


class _SymbolTable:
    """One symbol table read lazily: its rows unpacked a chunk at a time, a name read only when asked
    for, through a mapping of the string table whose pages go back to the kernel as the reading moves
    on. A C++ binary's .symtab holds hundreds of thousands of symbols: their tuples and names held at
    once cost 90 MB for 157,000, and 110 MB of a 238 MB peak for the 296,000 of a 168 MB binary."""

    ROWS = 4096  # rows per read, and per release of the string table's pages

    def __init__(self, h: Headers, src: BinaryIO, table: SectionHeader) -> None:
        self.path, self.src = h.path, src
        self.fmt = h.byte_order + ("IBBHQQ" if h.is64 else "IIIBBH")
        self.esz = struct.calcsize(self.fmt)
        strtab = h.sections[table.link] if 0 < table.link < len(h.sections) else None
        self.start, self.size = table.offset + self.esz, 0  # every entry but the first
        self.strings: bytes | mmap.mmap = b""
        self.base = self.strsize = self.budget = 0
        if strtab is not None and strtab.has_contents:
            self.size = max(0, table.size - table.size % self.esz - self.esz)
            self.strings, self.base, self.strsize = _mapped(src, strtab.offset, strtab.size)

    def rows(self) -> Iterator[tuple[int, ...]]:
        """The raw Elf_Sym fields of each entry, in table order (a short file: the entries it holds)."""
        # Names a linker merged share tails: each pass scans a few times the table, a crafted one
        # without NUL would scan it once per symbol (GBs of time from a few MB): past that, an error.
        self.budget = 8 * self.strsize + (1 << 20)
        done = 0
        while done < self.size:
            self.src.seek(self.start + done)
            data = self.src.read(min(self.ROWS * self.esz, self.size - done))
            if isinstance(self.strings, mmap.mmap):
                self.strings.madvise(mmap.MADV_DONTNEED)  # clean file pages: read again if needed
            yield from struct.iter_unpack(self.fmt, data[:len(data) - len(data) % self.esz])
            if len(data) < self.ROWS * self.esz and done + len(data) < self.size:
                return
            done += len(data)

    def name(self, row: tuple[int, ...]) -> bytes:
        at = row[0]
        if not 0 <= at < self.strsize:
            return b""
        at += self.base
        end = self.strings.find(b"\0", at, self.base + self.strsize)
        end = end if end >= 0 else self.base + self.strsize
        self.budget -= end - at
        if self.budget < 0:
            raise ElfError(self.path, "damaged ELF file (a string table whose names overlap without end (no NUL?))")
        return self.strings[at:end]


def _mapped(src: BinaryIO, offset: int, size: int) -> tuple[bytes | mmap.mmap, int, int]:
    """(buffer, where the table starts in it, its size within the file) of `size` bytes at `offset`:
    a read-only mapping where `src` is a file, else the bytes read."""
    try:
        fd = src.fileno()
        size = max(0, min(size, os.fstat(fd).st_size - offset))
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        if size:
            return mmap.mmap(fd, offset + size - start, access=mmap.ACCESS_READ, offset=start), offset - start, size
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
    src.seek(offset)
    data = src.read(size)
    return data, 0, len(data)


STT_FUNC = 2


def _align_of(h: Headers, s: SectionHeader) -> int:
    """The alignment of a section whose bytes we write: refused past MAX_ALIGN (a 17 KB file with
    sh_addralign 1 GiB would make a 1 GiB debug file)."""
    if s.addralign > MAX_ALIGN:
        raise ElfError(h.path, f"section {s.name}: alignment {s.addralign} is past {MAX_ALIGN} (crafted?)")
    return s.addralign


def _dynamic_names(dyn: Headers, dyn_src: BinaryIO) -> set[bytes]:
    """The names `dyn`'s .dynsym defines."""
    dynsym = next((s for s in dyn.sections if s.type == SHT_DYNSYM and s.has_contents), None)
    if dynsym is None:
        return set()
    dyn_shndx = 3 if dyn.is64 else 5
    dyn_table = _SymbolTable(dyn, dyn_src, dynsym)
    return {dyn_table.name(row) for row in dyn_table.rows() if row[dyn_shndx]}


def minidebuginfo_names(dyn: Headers, dyn_src: BinaryIO, sym: Headers, sym_src: BinaryIO) -> set[bytes]:
    """find-debuginfo -m's choice: the defined function symbols of `sym`'s .symtab that `dyn`'s
    .dynsym does not name (a binary is both; the tools' path has a stripped binary and its debug file)."""
    symtab = next((s for s in sym.sections if s.type == SHT_SYMTAB and s.has_contents), None)
    if symtab is None:
        return set()
    dynamic = _dynamic_names(dyn, dyn_src)
    shndx_at, info_at = (3, 1) if sym.is64 else (5, 3)
    table = _SymbolTable(sym, sym_src, symtab)
    # The type first: only a defined function's name is looked up.
    funcs = (table.name(row) for row in table.rows() if row[shndx_at] and row[info_at] & 0xF == STT_FUNC)
    return {name for name in funcs if name and name not in dynamic}


Choice = Callable[[tuple[int, ...], bytes], bool]


def _minidebuginfo_choice(h: Headers, src: BinaryIO, symbols: _SymbolTable) -> Choice:
    """minidebuginfo_names of `h` itself as a test of (row, its name), without holding the names
    (66 MB for the 276,000 of a 168 MB C++ binary): a kept function is known by its row; any other
    symbol goes where its name is a kept function's, found by the sorted hashes of those names, then
    confirmed by their bytes (objcopy --keep-symbols keeps every symbol of a listed name)."""
    shndx_at, info_at = (3, 1) if h.is64 else (5, 3)
    dynamic = _dynamic_names(h, src)

    def kept_function(row: tuple[int, ...], name: bytes) -> bool:
        return bool(row[shndx_at]) and row[info_at] & 0xF == STT_FUNC and bool(name) and name not in dynamic

    def func_names() -> Iterator[bytes]:
        for row in symbols.rows():
            if row[shndx_at] and row[info_at] & 0xF == STT_FUNC:
                name = symbols.name(row)
                if name and name not in dynamic:
                    yield name

    hashes = array("q", sorted({hash(name) for name in func_names()}))

    def hashed(name: bytes) -> bool:
        key = hash(name)
        i = bisect.bisect_left(hashes, key)
        return i < len(hashes) and hashes[i] == key

    # Names of other symbols whose hash is a kept function's: rare, kept as bytes, then confirmed.
    maybe = set()
    for row in symbols.rows():
        if not (row[shndx_at] and row[info_at] & 0xF == STT_FUNC):
            name = symbols.name(row)
            if name and hashed(name):
                maybe.add(name)
    confirmed = {name for name in func_names() if name in maybe} if maybe else set()
    del maybe
    return lambda row, name: kept_function(row, name) or name in confirmed


def mini_debuginfo(h: Headers, src: BinaryIO, keep: set[bytes] | None = None) -> bytes:
    """mini_debuginfo_stream's ELF whole."""
    return b"".join(mini_debuginfo_stream(h, src, keep)[1])


def mini_debuginfo_stream(h: Headers, src: BinaryIO, keep: set[bytes] | None = None) -> tuple[int, Iterator[bytes]]:
    """The ELF find-debuginfo -m embeds (before xz), as (its size, its bytes in pieces): the section
    headers of the debug file without debug or other non-allocated sections, and a .symtab holding
    the symbols named in `keep` (default: minidebuginfo_names of `h` itself); gdb and
    systemd-coredump name frames by them. None of them is still a valid ELF with an empty .symtab
    (find-debuginfo embeds an empty xz stream then). Size 0 without a .symtab.

    In pieces, read from `src` as they are taken: the symbol ELF of a C++ binary is tens of MB, and
    xz needs 90 MB beside it (one pass counts what goes in, so that the headers can come first)."""
    secs = h.sections
    symtab = next((s for s in secs if s.type == SHT_SYMTAB), None)
    if symtab is None:
        return 0, iter(())
    shndx_at, info_at = (3, 1) if h.is64 else (5, 3)
    symbols = _SymbolTable(h, src, symtab)
    wanted: Choice = _minidebuginfo_choice(h, src, symbols) if keep is None else \
        (lambda row, name: name in keep)
    alloc = {s.ndx for s in secs if s.allocated}

    esz = symbols.esz
    count = str_size = locals_end = 1
    chosen = bytearray()  # one byte a row: whether it goes in, so that the writing passes ask no more
    for row in symbols.rows():
        shndx = row[shndx_at]
        name = None if shndx and shndx < SHN_LORESERVE and shndx not in alloc else symbols.name(row)
        chosen.append(name is not None and wanted(row, name))
        if name is None or not chosen[-1]:
            continue
        count += 1
        str_size += len(name) + 1
        if row[info_at] >> 4 == 0:  # STB_LOCAL: locals stay first, as in the input
            locals_end = count
    keep_secs = [s for s in secs[1:] if s.allocated]
    n_alloc = len(keep_secs) + 1
    names = bytearray(b"\0")

    def name_of(n: str) -> int:
        at = len(names)
        names.extend(n.encode("utf-8", "surrogateescape") + b"\0")
        return at

    body = bytearray(h.ehdr)
    if h.phnum:
        body.extend(b"\0" * (h.phoff - len(body)))
        body.extend(_phdrs(h))
    headers = [b"\0" * struct.calcsize(h.sh_format)]
    placed: dict[int, int] = {}
    index_map = {0: 0, symtab.ndx: n_alloc, symtab.link: n_alloc + 1}
    index_map.update((s.ndx, i) for i, s in enumerate(keep_secs, 1))
    for s in keep_secs:
        links = _relinked(s, index_map)
        if s.type == SHT_NOTE and s.has_contents:
            body.extend(b"\0" * (-len(body) % max(_align_of(h, s), 1)))
            at = placed[s.ndx] = len(body)
            src.seek(s.offset)
            body.extend(src.read(s.size))
            headers.append(_shdr(h, s, name_off=name_of(s.name), offset=at, **links))
        else:
            headers.append(_shdr(h, s, name_off=name_of(s.name), type=SHT_NOBITS,
                                 offset=len(body) + -len(body) % max(s.addralign, 1), **links))
    body.extend(b"\0" * (-len(body) % 8))
    sym_at = len(body)
    headers.append(struct.pack(h.sh_format, name_of(".symtab"), SHT_SYMTAB, 0, 0, sym_at, count * esz,
                               n_alloc + 1, locals_end, 8 if h.is64 else 4, esz))
    str_at = sym_at + count * esz
    headers.append(struct.pack(h.sh_format, name_of(".strtab"), SHT_STRTAB, 0, 0, str_at, str_size, 0, 0, 1, 0))
    shstr_name = name_of(".shstrtab")
    names_at = str_at + str_size
    headers.append(struct.pack(h.sh_format, shstr_name, SHT_STRTAB, 0, 0, names_at, len(names), 0, 0, 1, 0))
    tail = bytes(names) + b"\0" * (-(names_at + len(names)) % 8)
    shoff = names_at + len(tail)
    tail += b"".join(headers)
    body[:len(h.ehdr)] = _ehdr(h, shoff, len(headers), len(headers) - 1)
    if h.phnum:
        table = _phdrs(h, _debug_segments(h, placed))
        body[h.phoff:h.phoff + len(table)] = table

    def listed() -> Iterator[tuple[tuple[int, ...], bytes]]:
        for row, wanted_row in zip(symbols.rows(), chosen, strict=False):  # a file that changed: _checked
            if wanted_row:
                yield row, symbols.name(row)

    def pieces() -> Iterator[bytes]:
        yield bytes(body)
        out = bytearray(b"\0" * esz)
        at = 1
        for row, name in listed():
            out += struct.pack(symbols.fmt, at, *row[1:])
            at += len(name) + 1
            if len(out) >= CHUNK:
                yield bytes(out)
                out.clear()
        out.append(0)
        for _, name in listed():
            out += name + b"\0"
            if len(out) >= CHUNK:
                yield bytes(out)
                out.clear()
        yield bytes(out)
        yield tail

    return names_at + len(tail), _checked(pieces(), names_at + len(tail), h.path)


def _checked(pieces: Iterator[bytes], size: int, path: str) -> Iterator[bytes]:
    """`pieces`, failing where they do not add up to `size` (the file changed between the passes)."""
    done = 0
    for piece in pieces:
        done += len(piece)
        yield piece
    if done != size:
        raise ElfError(path, "the file changed while it was being split")
