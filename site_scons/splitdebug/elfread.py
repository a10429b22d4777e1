"""Reading ELF files: header, section table, notes and symbol names, never DWARF.

pyelftools parses lazily; this module opens a file once, takes what the layers above need as plain
data (ElfInfo) and closes it. Anything malformed becomes an ElfError with a one-line reason.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO
from collections.abc import Iterator

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from .errors import ElfError

ELF_MAGIC = b"\x7fELF"
AR_MAGIC = b"!<arch>\n"
DF_1_PIE = 0x08000000
# Symbols every linker defines; never part of an interface.
TOOLCHAIN_SYMBOLS = frozenset({
    "_init", "_fini", "_edata", "_end", "__bss_start", "_DYNAMIC", "_GLOBAL_OFFSET_TABLE_",
    "__end__", "_etext", "__data_start", "__dso_handle", "_IO_stdin_used",
})


@dataclass(frozen=True)
class Section:
    name: str
    type: str
    flags: int
    offset: int
    size: int

    @property
    def allocated(self) -> bool:
        return bool(self.flags & 0x2)


@dataclass(frozen=True)
class ElfInfo:
    """What one ELF file is, as plain data."""

    path: str
    elf_type: str  # ET_EXEC, ET_DYN, ET_REL, ET_CORE
    elfclass: int  # 32 or 64
    little_endian: bool
    machine: str
    build_id: str | None  # lowercase hex
    sections: tuple[Section, ...]
    is_pie: bool
    has_interp: bool

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def has_debug(self) -> bool:
        return any(s.name.startswith((".debug_", ".zdebug_")) for s in self.sections)

    @property
    def has_symtab(self) -> bool:
        return self.section(".symtab") is not None

    @property
    def is_stripped(self) -> bool:
        return not self.has_debug and not self.has_symtab

    @property
    def is_debug_file(self) -> bool:
        """A separated debug file: its code sections are NOBITS (objcopy --only-keep-debug, eu-strip -f)."""
        text = self.section(".text")
        return text is not None and text.type == "SHT_NOBITS"

    @property
    def kind(self) -> str | None:
        """executable, shared_library, or None for objects, cores and debug files."""
        if self.is_debug_file:
            return None
        if self.elf_type == "ET_EXEC":
            return "executable"
        if self.elf_type == "ET_DYN":
            name = os.path.basename(self.path)
            if self.is_pie or (self.has_interp and ".so" not in name):
                return "executable"
            return "shared_library"
        return None


def file_magic(path: str | os.PathLike[str]) -> bytes:
    """The first 8 bytes of a regular file (b'' when unreadable)."""
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError:
        return b""


def is_elf(path: str | os.PathLike[str]) -> bool:
    return file_magic(path)[:4] == ELF_MAGIC


def read_elf(path: str | os.PathLike[str]) -> ElfInfo:
    """Read one ELF file; ElfError when it is not one or is damaged."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                raise ElfError(p, "not an ELF file")
            f.seek(0)
            return _read(p, f)
    except ElfError:
        raise
    except OSError as err:
        raise ElfError(p, f"cannot read: {err.strerror}") from None
    except (_PyElfError, struct.error, ValueError, KeyError, IndexError, AssertionError,
            UnicodeDecodeError, OverflowError, TypeError, AttributeError) as err:
        # pyelftools reports damage in many shapes; they all mean the same to a packager.
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ElfError(p, f"damaged ELF file ({reason})") from None


def _read(path: str, f: BinaryIO) -> ElfInfo:
    size = os.fstat(f.fileno()).st_size
    elf = ELFFile(f)
    hdr = elf.header
    shoff = hdr["e_shoff"]
    if shoff and shoff + hdr["e_shnum"] * hdr["e_shentsize"] > size:
        raise ElfError(path, "section table runs past the end of the file (truncated?)")
    sections = []
    build_id = None
    for sec in elf.iter_sections():
        sh = sec.header
        if sh["sh_type"] != "SHT_NOBITS" and sh["sh_offset"] + sh["sh_size"] > size:
            raise ElfError(path, f"section {sec.name} runs past the end of the file (truncated?)")
        sections.append(Section(sec.name, str(sh["sh_type"]), int(sh["sh_flags"]),
                                int(sh["sh_offset"]), int(sh["sh_size"])))
        if sh["sh_type"] == "SHT_NOTE" and build_id is None and sh["sh_size"]:
            for note in sec.iter_notes():  # type: ignore[attr-defined]
                if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                    build_id = str(note["n_desc"]).lower() or None  # an empty note is no build-id
                    break
    is_pie = False
    has_interp = False
    dynamic = next((s for s in sections if s.name == ".dynamic"), None)
    # In a debug file .dynamic is NOBITS: the segment's bytes are not there to read.
    dynamic_readable = dynamic is not None and dynamic.type != "SHT_NOBITS"
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_INTERP":
            has_interp = True
        elif seg["p_type"] == "PT_DYNAMIC" and dynamic_readable:
            for tag in seg.iter_tags():  # type: ignore[attr-defined]
                if tag.entry.d_tag == "DT_FLAGS_1" and tag.entry.d_val & DF_1_PIE:
                    is_pie = True
    return ElfInfo(
        path=path, elf_type=str(hdr["e_type"]), elfclass=elf.elfclass,
        little_endian=elf.little_endian, machine=str(hdr["e_machine"]),
        build_id=build_id, sections=tuple(sections), is_pie=is_pie, has_interp=has_interp,
    )


def read_debuglink(path: str | os.PathLike[str], info: ElfInfo) -> tuple[str, int] | None:
    """The (file name, CRC32) stored in .gnu_debuglink."""
    sec = info.section(".gnu_debuglink")
    if sec is None:
        return None
    with open(path, "rb") as f:
        f.seek(sec.offset)
        data = f.read(sec.size)
    name, _, _ = data.partition(b"\0")
    crc_at = (len(name) + 1 + 3) & ~3
    if crc_at + 4 > len(data):
        raise ElfError(os.fspath(path), ".gnu_debuglink is too short")
    (crc,) = struct.unpack_from("<I" if info.little_endian else ">I", data, crc_at)
    return name.decode("utf-8", "surrogateescape"), crc


def debuglink_crc_offset(info: ElfInfo) -> int:
    """File offset of the CRC word inside .gnu_debuglink (to patch it after the debug file changes)."""
    sec = info.section(".gnu_debuglink")
    if sec is None:
        raise ElfError(info.path, "no .gnu_debuglink section")
    with open(info.path, "rb") as f:
        f.seek(sec.offset)
        data = f.read(sec.size)
    name_len = data.find(b"\0")
    if name_len < 0 or ((name_len + 1 + 3) & ~3) + 4 > len(data):
        raise ElfError(info.path, ".gnu_debuglink is malformed")
    return sec.offset + ((name_len + 1 + 3) & ~3)


def crc32_file(path: str | os.PathLike[str]) -> int:
    """zlib's CRC32 of a whole file: what gdb compares with the .gnu_debuglink word."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc & 0xFFFFFFFF


def iter_symbols(path: str | os.PathLike[str], table: str) -> Iterator[tuple[str, str, str, bool]]:
    """(name, type, binding, defined) for each symbol of `.symtab` or `.dynsym`."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            elf = ELFFile(f)
            sec = elf.get_section_by_name(table)
            if not isinstance(sec, SymbolTableSection):
                return
            for sym in sec.iter_symbols():
                e = sym.entry
                yield (sym.name, e["st_info"]["type"], e["st_info"]["bind"], e["st_shndx"] != "SHN_UNDEF")
    except (_PyElfError, struct.error, ValueError, KeyError, IndexError, UnicodeDecodeError) as err:
        raise ElfError(p, f"damaged symbol table {table} ({err})") from None
