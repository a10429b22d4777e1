"""An ELF file's headers and section bytes for the index, read with struct (elf.read.read_headers)
and inflated when SHF_COMPRESSED: pyelftools makes an object per segment and section through
construct (a dynamic segment parses its whole table), which cost a cold run more than the units it
reads. In-memory images (minidebuginfo) come through pyelftools, as they are small.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from ..elf.read import SectionHeader, open_regular, read_headers
from .dies import Unsupported

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1


class Image:
    """Sections (elf.read.SectionHeader), program headers as (type, flags, offset, vaddr, filesz,
    memsz), and the bytes of a section."""

    def __init__(self, label: str, sections: list[SectionHeader], segments: list[tuple[int, ...]],
                 little_endian: bool, is64: bool, blob: Any) -> None:
        self.label, self.sections, self.segments = label, sections, segments
        self.little_endian, self.is64, self._blob = little_endian, is64, blob
        self.by_name = {s.name: s for s in reversed(sections)}  # the first of a name wins, as pyelftools

    @classmethod
    def of_file(cls, path: str) -> Image:
        h = read_headers(path)
        segments: list[tuple[int, ...]] = [(p[0], p[1], p[2], p[3], p[5], p[6]) for p in h.program_headers]
        return cls(path, list(h.sections), segments, h.byte_order == "<", h.is64, path)

    @classmethod
    def of_pyelftools(cls, label: str, elf: Any) -> Image:
        sections = [SectionHeader(i, s.name, s["sh_name"], _num(s["sh_type"]), s["sh_flags"], s["sh_addr"],
                                  s["sh_offset"], s["sh_size"], s["sh_link"], _num(s["sh_info"]),
                                  s["sh_addralign"], s["sh_entsize"]) for i, s in enumerate(elf.iter_sections())]
        return cls(label, sections, [], bool(elf.little_endian), elf.elfclass == 64, elf.stream)

    def data(self, sec: SectionHeader) -> bytes:
        if sec.type == 8:  # SHT_NOBITS
            return b""
        if isinstance(self._blob, str):
            with open_regular(self._blob) as f:
                f.seek(sec.offset)
                raw = f.read(sec.size)
        else:
            self._blob.seek(sec.offset)
            raw = self._blob.read(sec.size)
        if not sec.flags & SHF_COMPRESSED:
            return bytes(raw)
        order = "<" if self.little_endian else ">"
        fmt = order + ("IIQQ" if self.is64 else "III")
        ch_type, size = struct.unpack_from(fmt, raw)[0], struct.unpack_from(fmt, raw)[-2 if self.is64 else 1]
        if ch_type != ELFCOMPRESS_ZLIB:
            raise Unsupported(f"{sec.name}: compression type {ch_type}")
        return zlib.decompressobj().decompress(raw[struct.calcsize(fmt):], size)

    def section_data(self, name: str) -> bytes | None:
        sec = self.by_name.get(name)
        return self.data(sec) if sec is not None else None


def _num(value: Any) -> int:
    """pyelftools names the values it knows; the index needs the type numbers it compares."""
    return value if isinstance(value, int) else {"SHT_NOBITS": 8, "SHT_SYMTAB": 2, "SHT_DYNSYM": 11}.get(value, 0)
