"""Reading ELF files: header, section table, notes, dynamic tags and symbol tables, never DWARF.

This module opens a file once, reads only the parts the layers above need, returns them as plain
data (ElfInfo, tuples) and closes it. Anything malformed becomes an ElfError with a one-line reason.

The reading is done with `struct`, lazily, in the manner of pyelftools: pyelftools' construct-based
parsing measured 20-30 ms per binary with ~900 symbols against 1-2 ms here, and under the GIL that
cost serialised a whole tree split. tests/test_elfread.py checks this reader against pyelftools.

One concern that reads best whole: every reader here (notes, dynamic tags, symbols, archives) walks
the same header and section table with the same bounds checks, and splitting them would scatter those.
"""

from __future__ import annotations

import errno
import functools
import io
import lzma
import os
import stat
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple
from collections.abc import Callable, Iterator

from ..errors import ElfError

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
    soname: str | None = None  # DT_SONAME of a shared library

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def debug_sections(self) -> tuple[str, ...]:
        """Names of the debug sections a split moves out. Allocated ones are part of the loaded image
        whatever their name: rustc's .debug_gdb_scripts is SHF_ALLOC and stays in a stripped binary."""
        return tuple(s.name for s in self.sections
                     if not s.allocated and s.name.startswith((".debug_", ".zdebug_")))

    @property
    def has_debug(self) -> bool:
        return bool(self.debug_sections)

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


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading, and nothing else: a FIFO, a device or a socket in the tree
    would block a read forever or read without end (O_NONBLOCK: the open itself never waits)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def file_magic(path: str | os.PathLike[str]) -> bytes:
    """The first 8 bytes of a regular file (b'' when unreadable)."""
    try:
        with open_regular(path) as f:
            return f.read(8)
    except OSError:
        return b""


def is_elf(path: str | os.PathLike[str]) -> bool:
    return file_magic(path)[:4] == ELF_MAGIC


# Damage shows up in a few shapes; they all mean the same to a packager.
_DAMAGE = (struct.error, ValueError, KeyError, IndexError, UnicodeDecodeError, OverflowError)


def _damaged(path: str, err: BaseException) -> ElfError:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    return ElfError(path, f"damaged ELF file ({reason})")


def read_elf(path: str | os.PathLike[str]) -> ElfInfo:
    """Read one ELF file; ElfError when it is not one or is damaged."""
    p = os.fspath(path)
    try:
        with open_regular(p) as f:
            if f.read(4) != ELF_MAGIC:
                raise ElfError(p, "not an ELF file")
            f.seek(0)
            return _read(p, f)
    except ElfError:
        raise
    except OSError as err:
        raise ElfError(p, f"cannot read: {err.strerror}") from None
    except _DAMAGE as err:
        raise _damaged(p, err) from None


def read_elf_bytes(label: str, data: bytes) -> ElfInfo:
    """Read an ELF image held in memory (an archive member, the ELF inside .gnu_debugdata).

    `label` names it in errors and becomes ElfInfo.path.
    """
    if data[:4] != ELF_MAGIC:
        raise ElfError(label, "not an ELF file")
    try:
        return _read(label, io.BytesIO(data))
    except ElfError:
        raise
    except _DAMAGE as err:
        raise _damaged(label, err) from None


def iter_archive_members(path: str | os.PathLike[str]) -> Iterator[tuple[str, bytes]]:
    """(name, contents) of each member of an `ar` archive (GNU and BSD names), one at a time.

    The archive's own index members (`/`, `//`, `/SYM64/`, `__.SYMDEF`) are not yielded. A thin
    archive has no contents to yield. ElfError when the archive is truncated or malformed.
    """
    p = os.fspath(path)
    try:
        with open_regular(p) as f:
            magic = f.read(8)
            if magic == b"!<thin>\n":
                return
            if magic != AR_MAGIC:
                raise ElfError(p, "not an ar archive")
            long_names = b""
            while header := f.read(60):
                if len(header) < 60 or header[58:60] != b"`\n":
                    raise ElfError(p, "damaged ar archive (bad member header)")
                raw_name = header[:16].rstrip(b" ")
                try:
                    size = int(header[48:58].strip() or b"0")
                except ValueError:
                    raise ElfError(p, "damaged ar archive (bad member size)") from None
                data = f.read(size)
                if len(data) < size:
                    raise ElfError(p, "damaged ar archive (member runs past the end)")
                if size % 2:
                    f.read(1)
                if raw_name == b"//":
                    long_names = data
                    continue
                if raw_name in (b"/", b"/SYM64/") or raw_name.startswith(b"__.SYMDEF"):
                    continue
                if raw_name.startswith(b"#1/") and raw_name[3:].isdigit():  # BSD: the name leads the data
                    n = int(raw_name[3:])
                    raw_name, data = data[:n].rstrip(b"\0"), data[n:]
                elif raw_name.startswith(b"/") and raw_name[1:].isdigit():  # GNU: offset into //
                    at = int(raw_name[1:])
                    raw_name = long_names[at:long_names.find(b"\n", at)].rstrip(b"/")
                else:
                    raw_name = raw_name.rstrip(b"/")
                yield raw_name.decode("utf-8", "surrogateescape"), data
    except OSError as err:
        raise ElfError(p, f"cannot read: {err.strerror}") from None


SHT_NAMES = {
    0: "SHT_NULL", 1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 4: "SHT_RELA", 5: "SHT_HASH",
    6: "SHT_DYNAMIC", 7: "SHT_NOTE", 8: "SHT_NOBITS", 9: "SHT_REL", 10: "SHT_SHLIB", 11: "SHT_DYNSYM",
    14: "SHT_INIT_ARRAY", 15: "SHT_FINI_ARRAY", 16: "SHT_PREINIT_ARRAY", 17: "SHT_GROUP",
    18: "SHT_SYMTAB_SHNDX", 19: "SHT_RELR", 0x6FFFFFF5: "SHT_GNU_ATTRIBUTES", 0x6FFFFFF6: "SHT_GNU_HASH",
    0x6FFFFFF7: "SHT_GNU_LIBLIST", 0x6FFFFFFD: "SHT_GNU_verdef", 0x6FFFFFFE: "SHT_GNU_verneed",
    0x6FFFFFFF: "SHT_GNU_versym", 0x70000001: "SHT_X86_64_UNWIND",
}
ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
EM_NAMES = {3: "EM_386", 8: "EM_MIPS", 20: "EM_PPC", 21: "EM_PPC64", 22: "EM_S390", 40: "EM_ARM",
            62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}
STT_NAMES = {0: "STT_NOTYPE", 1: "STT_OBJECT", 2: "STT_FUNC", 3: "STT_SECTION", 4: "STT_FILE",
             5: "STT_COMMON", 6: "STT_TLS", 10: "STT_GNU_IFUNC"}
STB_NAMES = {0: "STB_LOCAL", 1: "STB_GLOBAL", 2: "STB_WEAK", 10: "STB_GNU_UNIQUE"}
SHT_NOBITS, SHT_NOTE, SHT_DYNAMIC, SHT_SYMTAB, SHT_DYNSYM = 8, 7, 6, 2, 11
PT_INTERP = 3
DT_SONAME, DT_FLAGS_1 = 14, 0x6FFFFFFB
NT_GNU_BUILD_ID = 3

# (name, type, flags, offset, size, link, entsize) of one section header
RawSection = tuple[str, int, int, int, int, int, int]


class _Raw:
    """One open ELF image: the header is parsed on construction, everything else on demand."""

    def __init__(self, path: str, f: BinaryIO) -> None:
        self.path, self.f = path, f
        self.size = f.seek(0, os.SEEK_END)
        ident = self.read(0, 16)
        if ident[:4] != ELF_MAGIC:
            raise ElfError(path, "not an ELF file")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError(path, "damaged ELF file (bad class or byte order in e_ident)")
        self.is64 = ident[4] == 2
        self.end = "<" if ident[5] == 1 else ">"
        fmt = self.end + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH")
        (self.e_type, self.e_machine, _, _, self.phoff, self.shoff, _, _, self.phentsize, self.phnum,
         self.shentsize, self.shnum, self.shstrndx) = struct.unpack(fmt, self.read(16, struct.calcsize(fmt)))
        self.sh_fmt = self.end + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")
        self.ph_fmt = self.end + ("IIQQQQQQ" if self.is64 else "IIIIIIII")

    def read(self, offset: int, size: int) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ElfError(self.path, "damaged ELF file (data past the end of the file; truncated?)")
        self.f.seek(offset)
        return self.f.read(size)

    def sections(self) -> list[RawSection]:
        if not self.shoff:
            return []
        if self.shentsize != struct.calcsize(self.sh_fmt):
            raise ElfError(self.path, f"damaged ELF file (section header size {self.shentsize})")
        if self.shoff + self.shentsize > self.size:
            raise ElfError(self.path, "section table runs past the end of the file (truncated?)")
        first = struct.unpack(self.sh_fmt, self.read(self.shoff, self.shentsize))
        shnum = self.shnum or first[5]  # extended numbering keeps the count in section 0
        shstrndx = first[6] if self.shstrndx == 0xFFFF else self.shstrndx
        if self.shoff + shnum * self.shentsize > self.size:
            raise ElfError(self.path, "section table runs past the end of the file (truncated?)")
        raw = list(struct.iter_unpack(self.sh_fmt, self.read(self.shoff, shnum * self.shentsize)))
        if shstrndx >= len(raw):
            raise ElfError(self.path, "damaged ELF file (section name table index out of range)")
        names_hdr = raw[shstrndx]
        names = StringTable(self.read(names_hdr[4], names_hdr[5]) if names_hdr[1] != SHT_NOBITS else b"")
        out = []
        for name_off, typ, flags, _addr, offset, size, link, _info, align, entsize in raw:
            name = names.get(name_off).decode("utf-8", "replace")
            if typ not in (0, SHT_NOBITS) and offset + size > self.size:
                raise ElfError(self.path, f"section {name} runs past the end of the file (truncated?)")
            _check_align(self.path, name, typ, flags, align)
            out.append((name, typ, flags, offset, size, link, entsize))
        return out

    def build_id(self, sections: list[RawSection]) -> str | None:
        for _name, typ, _flags, offset, size, _link, _ in sections:
            if typ != SHT_NOTE or not size:
                continue
            data = self.read(offset, size)
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from(self.end + "III", data, pos)
                name_at, desc_at = pos + 12, pos + 12 + ((namesz + 3) & ~3)
                if desc_at + descsz > len(data):
                    break
                pos = desc_at + ((descsz + 3) & ~3)
                if ntype == NT_GNU_BUILD_ID and data[name_at:name_at + namesz].rstrip(b"\0") == b"GNU":
                    return data[desc_at:desc_at + descsz].hex() or None  # an empty note is no build-id
        return None

    def has_interp(self) -> bool:
        if not self.phoff or not self.phnum:
            return False
        if self.phentsize != struct.calcsize(self.ph_fmt):
            raise ElfError(self.path, f"damaged ELF file (program header size {self.phentsize})")
        table = self.read(self.phoff, self.phnum * self.phentsize)
        return any(p[0] == PT_INTERP for p in struct.iter_unpack(self.ph_fmt, table))

    def dynamic(self, sections: list[RawSection]) -> tuple[int, str | None]:
        """(DT_FLAGS_1, DT_SONAME) from .dynamic; in a debug file it is NOBITS and yields nothing."""
        flags_1, soname_at = 0, None
        dyn = next((s for s in sections if s[1] == SHT_DYNAMIC), None)
        if dyn is None:
            return 0, None
        fmt = self.end + ("qQ" if self.is64 else "iI")
        entry = struct.calcsize(fmt)
        data = self.read(dyn[3], dyn[4] - dyn[4] % entry)
        for tag, val in struct.iter_unpack(fmt, data):
            if tag == 0:
                break
            if tag == DT_FLAGS_1:
                flags_1 = val
            elif tag == DT_SONAME:
                soname_at = val
        soname = None
        if soname_at is not None and 0 <= dyn[5] < len(sections) and sections[dyn[5]][1] != SHT_NOBITS:
            strtab = sections[dyn[5]]
            soname = _cstr(self.read(strtab[3], strtab[4]), soname_at).decode("utf-8", "surrogateescape")
        return flags_1, soname

    def symbols(self, table: str) -> Iterator[tuple[str, str, str, bool]]:
        secs = self.sections()
        sec = next((s for s in secs if s[0] == table and s[1] in (SHT_SYMTAB, SHT_DYNSYM)), None)
        if sec is None:
            return
        _name, _typ, _flags, offset, size, link, _entsize = sec
        fmt = self.end + ("IBBHQQ" if self.is64 else "IIIBBH")
        esz = struct.calcsize(fmt)
        if link >= len(secs):
            raise ElfError(self.path, f"damaged symbol table {table} (string table index out of range)")
        strtab = StringTable(self.read(secs[link][3], secs[link][4]))
        for fields in struct.iter_unpack(fmt, self.read(offset, size - size % esz)):
            if self.is64:
                st_name, st_info, _other, st_shndx, _value, _size = fields
            else:
                st_name, _value, _size, st_info, _other, st_shndx = fields
            yield (strtab.get(st_name).decode("utf-8", "surrogateescape"),
                   STT_NAMES.get(st_info & 0xF, f"STT_{st_info & 0xF}"),
                   STB_NAMES.get(st_info >> 4, f"STB_{st_info >> 4}"), st_shndx != 0)


class SectionHeader(NamedTuple):
    """One section header, every field: what a writer needs to lay the file out again.

    A NamedTuple, not a dataclass: files have dozens of sections and a split reads them all, so
    building these is on the hot path; fields from name_off on are Elf_Shdr's, in its order.
    """

    ndx: int  # its index in the section table
    name: str
    name_off: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def allocated(self) -> bool:
        return bool(self.flags & 0x2)

    @property
    def has_contents(self) -> bool:
        return self.type not in (0, SHT_NOBITS)


@dataclass(frozen=True)
class Headers:
    """The raw layout of an ELF file: header bytes, program headers, section headers."""

    path: str
    is64: bool
    byte_order: str  # struct prefix, "<" or ">"
    file_size: int
    ehdr: bytes  # the ELF header, e_ehsize bytes
    phoff: int
    phentsize: int
    phnum: int
    program_headers: tuple[tuple[int, ...], ...]  # (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, …)
    sections: tuple[SectionHeader, ...]
    shstrndx: int
    extended_numbering: bool  # e_shnum or e_shstrndx kept in section 0 (65280+ sections)

    @property
    def sh_format(self) -> str:
        return self.byte_order + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII")


def read_headers(path: str | os.PathLike[str]) -> Headers:
    """Every header of one ELF file (ElfError when damaged); contents stay on disk."""
    p = os.fspath(path)
    try:
        with open_regular(p) as f:
            raw = _Raw(p, f)
            ehsize = 64 if raw.is64 else 52
            ehdr = raw.read(0, ehsize)
            phdrs: list[tuple[int, ...]] = []
            if raw.phoff and raw.phnum:
                if raw.phentsize != struct.calcsize(raw.ph_fmt):
                    raise ElfError(p, f"damaged ELF file (program header size {raw.phentsize})")
                table = raw.read(raw.phoff, raw.phnum * raw.phentsize)
                for ph in struct.iter_unpack(raw.ph_fmt, table):
                    # Elf32_Phdr orders its fields otherwise: p_flags comes after p_memsz.
                    phdrs.append(ph if raw.is64 else (ph[0], ph[6], ph[1], ph[2], ph[3], ph[4], ph[5], ph[7]))
            sections: list[SectionHeader] = []
            shstrndx = raw.shstrndx
            extended = False
            if raw.shoff:
                if raw.shentsize != struct.calcsize(raw.sh_fmt):
                    raise ElfError(p, f"damaged ELF file (section header size {raw.shentsize})")
                first = struct.unpack(raw.sh_fmt, raw.read(raw.shoff, raw.shentsize))
                extended = raw.shnum == 0 or raw.shstrndx == 0xFFFF
                shnum = raw.shnum or first[5]
                shstrndx = first[6] if raw.shstrndx == 0xFFFF else raw.shstrndx
                table = raw.read(raw.shoff, shnum * raw.shentsize)
                rows = list(struct.iter_unpack(raw.sh_fmt, table))
                if shstrndx >= len(rows):
                    raise ElfError(p, "damaged ELF file (section name table index out of range)")
                names_row = rows[shstrndx]
                names = StringTable(raw.read(names_row[4], names_row[5]) if names_row[1] != SHT_NOBITS else b"")
                for i, (name_off, typ, flags, addr, offset, size, link, info, align, entsize) in enumerate(rows):
                    if typ not in (0, SHT_NOBITS) and offset + size > raw.size:
                        raise ElfError(p, "section runs past the end of the file (truncated?)")
                    name = names.get(name_off).decode("utf-8", "surrogateescape")
                    _check_align(p, name, typ, flags, align)
                    sections.append(SectionHeader(i, name,
                                                  name_off, typ, flags, addr, offset, size, link, info, align,
                                                  entsize))
            return Headers(p, raw.is64, raw.end, raw.size, ehdr, raw.phoff, raw.phentsize, len(phdrs),
                           tuple(phdrs), tuple(sections), shstrndx, extended)
    except ElfError:
        raise
    except OSError as err:
        raise ElfError(p, f"cannot read: {err.strerror}") from None
    except _DAMAGE as err:
        raise _damaged(p, err) from None


SHT_STRTAB, SHT_RELA, SHT_HASH, SHT_REL, SHT_GROUP, SHT_SYMTAB_SHNDX = 3, 4, 5, 9, 17, 18
SHT_GNU_HASH, SHT_GNU_VERDEF, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 0x6FFFFFF6, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
SHF_INFO_LINK = 0x40
# What sh_link must name, by the linking section's type (gABI); other types: any existing section.
_LINK_TARGETS: dict[int, tuple[int, ...]] = {
    SHT_SYMTAB: (SHT_STRTAB,), SHT_DYNSYM: (SHT_STRTAB,), SHT_DYNAMIC: (SHT_STRTAB,),
    SHT_GNU_VERDEF: (SHT_STRTAB,), SHT_GNU_VERNEED: (SHT_STRTAB,),
    SHT_REL: (SHT_SYMTAB, SHT_DYNSYM), SHT_RELA: (SHT_SYMTAB, SHT_DYNSYM), SHT_GROUP: (SHT_SYMTAB,),
    SHT_HASH: (SHT_DYNSYM, SHT_SYMTAB), SHT_GNU_HASH: (SHT_DYNSYM,), SHT_GNU_VERSYM: (SHT_DYNSYM,),
    SHT_SYMTAB_SHNDX: (SHT_SYMTAB,),
}


def bad_section_links(h: Headers) -> list[str]:
    """Each section whose sh_link, or sh_info where it names a section (SHF_INFO_LINK, relocations),
    names no section or one of the wrong type: gdb, objdump and eu-unstrip refuse such a file.
    A NOBITS target passes (a debug file's .dynsym is NOBITS), and so does a NOBITS section's link."""
    secs = h.sections
    out = []
    for s in secs[1:]:
        if s.link:
            target = secs[s.link] if s.link < len(secs) else None
            wanted = _LINK_TARGETS.get(s.type, ()) if s.type != SHT_NOBITS else ()
            if target is None or target.ndx == 0:
                out.append(f"{s.name} sh_link {s.link}: no such section")
            elif wanted and target.type not in (*wanted, SHT_NOBITS):
                expected = " or ".join(SHT_NAMES[t] for t in wanted)
                out.append(f"{s.name} sh_link {s.link} names {target.name} "
                           f"({SHT_NAMES.get(target.type, hex(target.type))}), not a {expected}")
        if s.info and (s.flags & SHF_INFO_LINK or s.type in (SHT_REL, SHT_RELA)) and s.info >= len(secs):
            out.append(f"{s.name} sh_info {s.info}: no such section")
    return out


def build_id_of(h: Headers, f: BinaryIO) -> str | None:
    """The build-id of a file already read with read_headers (open as `f`)."""
    try:
        return _Raw(h.path, f).build_id([(s.name, s.type, s.flags, s.offset, s.size, s.link, s.entsize)
                                         for s in h.sections])
    except _DAMAGE as err:
        raise _damaged(h.path, err) from None


SHF_ALLOC = 0x2
MAX_ALIGN = 1 << 20  # no real section with bytes that are never loaded asks for more


def _check_align(path: str, name: str, typ: int, flags: int, align: int) -> None:
    """A section that is never loaded but has bytes, aligned past MAX_ALIGN, is crafted: written
    out (a debug file, by us or objcopy) it pads to its alignment (17 KB -> 1 GiB)."""
    if typ not in (0, SHT_NOBITS) and not flags & SHF_ALLOC and align > MAX_ALIGN:
        raise ElfError(path, f"section {name}: alignment {align} is past {MAX_ALIGN} (crafted?)")


class StringTable:
    """Names out of one ELF string table, each offset scanned once.

    A crafted table without NUL makes every name run to its end: N symbols cost N x its size in
    time and memory (GBs from a few MB). The bytes scanned are bounded by 4 x the table + 1 MiB
    (names a linker merged share tails, rarely more than twice over); past that, ValueError.
    """

    def __init__(self, table: bytes) -> None:
        self.table = table
        self.budget = 4 * len(table) + (1 << 20)
        self.memo: dict[int, bytes] = {}

    def get(self, at: int) -> bytes:
        name = self.memo.get(at)
        if name is None:
            if not 0 <= at < len(self.table):
                return b""
            end = self.table.find(b"\0", at)
            end = end if end >= 0 else len(self.table)
            self.budget -= end - at
            if self.budget < 0:
                raise ValueError("a string table whose names overlap without end (no NUL?)")
            name = self.memo[at] = self.table[at:end]
        return name


def _cstr(table: bytes, at: int) -> bytes:
    if not 0 <= at < len(table):
        return b""
    end = table.find(b"\0", at)
    return table[at:end if end >= 0 else len(table)]


def _read(path: str, f: BinaryIO) -> ElfInfo:
    raw = _Raw(path, f)
    sections = raw.sections()
    flags_1, soname = raw.dynamic(sections)
    return ElfInfo(
        path=path, elf_type=ET_NAMES.get(raw.e_type, f"ET_{raw.e_type}"), elfclass=64 if raw.is64 else 32,
        little_endian=raw.end == "<", machine=EM_NAMES.get(raw.e_machine, f"EM_{raw.e_machine}"),
        build_id=raw.build_id(sections),
        sections=tuple(Section(name, SHT_NAMES.get(typ, f"SHT_{typ:#x}"), flags, off, size)
                       for name, typ, flags, off, size, _, _ in sections),
        is_pie=bool(flags_1 & DF_1_PIE), has_interp=raw.has_interp(), soname=soname,
    )


def section_bytes(path: str | os.PathLike[str], info: ElfInfo, name: str) -> bytes | None:
    """The contents of one section, or None when the file has none (missing, or NOBITS)."""
    sec = info.section(name)
    if sec is None or sec.type == "SHT_NOBITS":
        return None
    try:
        with open_regular(path) as f:
            f.seek(sec.offset)
            return f.read(sec.size)
    except OSError as err:
        raise ElfError(os.fspath(path), f"cannot read {name}: {err.strerror}") from None


def symbol_versions(path: str | os.PathLike[str], info: ElfInfo,
                    count: int) -> tuple[frozenset[str], list[str | None]]:
    """(version node names, version of each of the first `count` .dynsym entries) from
    .gnu.version_d and .gnu.version. The base entry (the file's own name) is not a node."""
    verdef = section_bytes(path, info, ".gnu.version_d")
    if not verdef:
        return frozenset(), []
    e = "<" if info.little_endian else ">"
    strings = StringTable(section_bytes(path, info, ".dynstr") or b"")
    names: dict[int, str] = {}
    nodes: set[str] = set()
    at = 0
    try:
        for _ in range(len(verdef) // 20 + 1):
            _ver, flags, ndx, cnt, _hash, aux, nxt = struct.unpack_from(e + "HHHHIII", verdef, at)
            if cnt:
                (name_off, _) = struct.unpack_from(e + "II", verdef, at + aux)
                name = strings.get(name_off).decode("utf-8", "surrogateescape")
                names[ndx] = name
                if not flags & 1:  # VER_FLG_BASE names the file itself, not a node
                    nodes.add(name)
            if not nxt:
                break
            at += nxt
        versym = section_bytes(path, info, ".gnu.version") or b""
        raw = struct.unpack_from(f"{e}{min(count, len(versym) // 2)}H", versym, 0)
    except (struct.error, ValueError) as err:
        raise ElfError(os.fspath(path), f"damaged symbol version tables ({err})") from None
    versions: list[str | None] = []
    for v in raw:
        ndx = v & 0x7FFF  # the top bit only marks a hidden version
        versions.append(names.get(ndx) if ndx > 1 and names.get(ndx) in nodes else None)
    return frozenset(nodes), versions


def read_debuglink(path: str | os.PathLike[str], info: ElfInfo) -> tuple[str, int] | None:
    """The (file name, CRC32) stored in .gnu_debuglink."""
    data = section_bytes(path, info, ".gnu_debuglink")
    if data is None:
        return None
    name, _, _ = data.partition(b"\0")
    crc_at = (len(name) + 1 + 3) & ~3
    if crc_at + 4 > len(data):
        raise ElfError(os.fspath(path), ".gnu_debuglink is too short")
    (crc,) = struct.unpack_from("<I" if info.little_endian else ">I", data, crc_at)
    return name.decode("utf-8", "surrogateescape"), crc


def read_debugaltlink(path: str | os.PathLike[str], info: ElfInfo) -> tuple[str, str] | None:
    """The (path, build-id hex) stored in .gnu_debugaltlink: the dwz multifile a debug file uses."""
    data = section_bytes(path, info, ".gnu_debugaltlink")
    if data is None:
        return None
    name, sep, build_id = data.partition(b"\0")
    if not sep or not name or not build_id:
        raise ElfError(os.fspath(path), ".gnu_debugaltlink is too short")
    return name.decode("utf-8", "surrogateescape"), build_id.hex()


def debuglink_crc_offset(info: ElfInfo) -> int:
    """File offset of the CRC word inside .gnu_debuglink (to patch it after the debug file changes)."""
    sec = info.section(".gnu_debuglink")
    if sec is None:
        raise ElfError(info.path, "no .gnu_debuglink section")
    with open_regular(info.path) as f:
        f.seek(sec.offset)
        data = f.read(sec.size)
    name_len = data.find(b"\0")
    if name_len < 0 or ((name_len + 1 + 3) & ~3) + 4 > len(data):
        raise ElfError(info.path, ".gnu_debuglink is malformed")
    return sec.offset + ((name_len + 1 + 3) & ~3)


@functools.lru_cache(maxsize=1)
def _crc32_function() -> Callable[[bytes, int], int]:
    """ISA-L's crc32 when `isal` is installed (the same CRC-32, 10.6 GB/s here against zlib's 3.3 GB/s:
    every byte a split writes goes through it), else zlib's."""
    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.crc32
    return isal_zlib.crc32


def crc32(data: bytes, value: int = 0) -> int:
    """zlib's CRC-32 of `data`, continuing from `value`."""
    return _crc32_function()(data, value)


def crc32_file(path: str | os.PathLike[str]) -> int:
    """zlib's CRC32 of a whole file: what gdb compares with the .gnu_debuglink word."""
    crc = 0
    with open_regular(path) as f:
        while chunk := f.read(1 << 20):
            crc = crc32(chunk, crc)
    return crc & 0xFFFFFFFF


def iter_symbols(path: str | os.PathLike[str], table: str) -> Iterator[tuple[str, str, str, bool]]:
    """(name, type, binding, defined) for each symbol of `.symtab` or `.dynsym`."""
    p = os.fspath(path)
    try:
        with open_regular(p) as f:
            yield from _Raw(p, f).symbols(table)
    except ElfError:
        raise
    except OSError as err:
        raise ElfError(p, f"cannot read: {err.strerror}") from None
    except _DAMAGE as err:
        raise ElfError(p, f"damaged symbol table {table} ({err})") from None


SHF_COMPRESSED = 0x800
COMPRESSION_NAMES = {1: "zlib", 2: "zstd"}  # ELFCOMPRESS_* of an Elf_Chdr


def build_id_notes(path: str | os.PathLike[str], info: ElfInfo) -> list[str]:
    """Every GNU build-id note of the file, in order (gdb and libdwfl use the first they find: a second
    one, from a rogue `.note.gnu.build-id` or a note appended later, makes lookups disagree)."""
    return [desc.hex() for name, ntype, desc in notes(path, info) if ntype == NT_GNU_BUILD_ID and name == b"GNU"]


NT_FDO_PACKAGING_METADATA = 0xCAFE1A7E  # systemd's ELF package metadata: owner "FDO", JSON


def package_notes(path: str | os.PathLike[str], info: ElfInfo) -> list[bytes]:
    """The descriptors of every FDO package metadata note (`.note.package`), NUL padding included."""
    return [desc for name, ntype, desc in notes(path, info) if ntype == NT_FDO_PACKAGING_METADATA and name == b"FDO"]


def notes(path: str | os.PathLike[str], info: ElfInfo) -> list[tuple[bytes, int, bytes]]:
    """(owner, type, descriptor) of every note in the file's SHT_NOTE sections, in order."""
    found: list[tuple[bytes, int, bytes]] = []
    end = "<" if info.little_endian else ">"
    try:
        with open(path, "rb") as f:
            for sec in info.sections:
                if sec.type != "SHT_NOTE" or not sec.size:
                    continue
                f.seek(sec.offset)
                data = f.read(sec.size)
                pos = 0
                while pos + 12 <= len(data):
                    namesz, descsz, ntype = struct.unpack_from(end + "III", data, pos)
                    name_at, desc_at = pos + 12, pos + 12 + ((namesz + 3) & ~3)
                    if desc_at + descsz > len(data):
                        break
                    pos = desc_at + ((descsz + 3) & ~3)
                    found.append((data[name_at:name_at + namesz].rstrip(b"\0"), ntype,
                                  data[desc_at:desc_at + descsz]))
    except OSError as err:
        raise ElfError(os.fspath(path), f"cannot read notes: {err.strerror}") from None
    return found


def debug_compressions(path: str | os.PathLike[str], info: ElfInfo) -> dict[str, str]:
    """{section: "zlib" | "zstd" | "zlib-gnu" | "type N"} for each compressed .debug_* section: the
    ELF compression header's ch_type, or the old GNU `.zdebug_*` form (always zlib)."""
    out: dict[str, str] = {}
    end = "<" if info.little_endian else ">"
    try:
        with open(path, "rb") as f:
            for sec in info.sections:
                if sec.type == "SHT_NOBITS":
                    continue
                if sec.name.startswith(".zdebug_"):
                    out[sec.name] = "zlib-gnu"
                elif sec.name.startswith(".debug_") and sec.flags & SHF_COMPRESSED and sec.size >= 4:
                    f.seek(sec.offset)
                    (ch_type,) = struct.unpack(end + "I", f.read(4))
                    out[sec.name] = COMPRESSION_NAMES.get(ch_type, f"type {ch_type}")
    except (OSError, struct.error) as err:
        raise ElfError(os.fspath(path), f"cannot read compression headers: {err}") from None
    return out


MAX_MINIDEBUGINFO = 64 << 20  # most a .gnu_debugdata may inflate to (an xz bomb costs nothing)


def inflate_minidebuginfo(packed: bytes) -> tuple[bytes, str]:
    """(the ELF image of a .gnu_debugdata xz stream, "") or (b"", why not). Inflates at most 64 x the
    packed size + 1 MiB, and MAX_MINIDEBUGINFO: check and symbolize read it from untrusted binaries."""
    inflater = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    limit = min(MAX_MINIDEBUGINFO, 64 * len(packed) + (1 << 20))
    try:
        data = inflater.decompress(packed, max_length=limit)
    except lzma.LZMAError as err:
        return b"", f".gnu_debugdata is not xz data ({err})"
    if not inflater.eof:
        return b"", (".gnu_debugdata is a truncated xz stream" if inflater.needs_input else
                     f".gnu_debugdata inflates past {limit} bytes (an xz bomb?)")
    if inflater.unused_data.strip(b"\0"):
        return b"", ".gnu_debugdata has data after its xz stream"
    return data, ""
