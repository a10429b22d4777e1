"""Building a module's AddressIndex from an ELF file: its segments and function symbols, and its
units (units.py fills each when first asked); pyelftools' own DIE walk fills every unit at once where
dies.py declines (split DWARF's forms, .zdebug sections).
"""

from __future__ import annotations

import io
import lzma
import struct
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.dwarf.die import DIE
from elftools.elf.elffile import ELFFile

from ..elf.read import inflate_minidebuginfo
from ..errors import ElfError
from .image import Image
from .dies import DieReader, Unsupported
from .index import AddressIndex, IndexError_, Scope
from .units import CuFiller, Found, Tables, add_units, file_table, fill_unit, open_reader, set_unit_ranges

SCOPE_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine")
# Where functions and inlined calls are found below a CU; types, variables and parameters are skipped.
WALKED_TAGS = frozenset({"DW_TAG_lexical_block", "DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type",
                         "DW_TAG_union_type", "DW_TAG_module", "DW_TAG_try_block", "DW_TAG_catch_block"})
# pyelftools and construct fail in many shapes on damaged DWARF; to us they all mean "unreadable".
PT_LOAD, SHT_SYMTAB, SHT_DYNSYM = 1, 2, 11
DAMAGE = (ELFError, ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError,
          NotImplementedError, EOFError, OverflowError, UnicodeDecodeError, lzma.LZMAError, OSError,
          RecursionError, ImportError)


def build_index(path: str, data: bytes | None = None, *, dwarf: bool = True, symtab: str = ".symtab",
                alt_loader: Any = None, warn: Callable[[str], None] | None = None,
                alt_cache: dict[str, DieReader] | None = None) -> AddressIndex:
    """Index one ELF file (or an in-memory image): DWARF scopes and lines when `dwarf` (each unit
    filled when first asked, see units.py), and the function symbols of `symtab`. IndexError_ with
    one line when it cannot be read; damage found in a unit later goes to `warn`."""
    try:
        if data is None:
            return _build(Image.of_file(path), dwarf, symtab, alt_loader, warn, alt_cache)
        with io.BytesIO(data) as stream:
            return _build(Image.of_pyelftools(path, ELFFile(stream)), dwarf, symtab, alt_loader, warn, alt_cache)
    except IndexError_:
        raise
    except ElfError as err:
        raise IndexError_(str(err)) from None
    except DAMAGE as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise IndexError_(f"{path}: unreadable debug information ({type(err).__name__}: {reason})") from None


def _build(image: Image, dwarf: bool, symtab: str, alt_loader: Any, warn: Callable[[str], None] | None,
           alt_cache: dict[str, DieReader] | None) -> AddressIndex:
    path = image.label
    index = AddressIndex()
    index.loads = [(v, memsz, off) for typ, _, off, v, _, memsz in image.segments if typ == PT_LOAD]
    index.code = [(v, v + memsz) for typ, flags, _, v, _, memsz in image.segments if typ == PT_LOAD and flags & 1]
    tables = Tables(index)
    _index_symbols(image, index, tables, symtab)
    tables.demangle_new(index)
    if dwarf:
        if ".debug_info" not in image.by_name:
            raise IndexError_(f"{path}: no DWARF")
        try:
            reader = open_reader(image, alt_loader, alt_cache)
            add_units(index, reader)
        except (Unsupported, ValueError, IndexError, KeyError):
            # what dies.py does not read (split DWARF's forms): pyelftools walks every unit now
            with open(path, "rb") as f:
                _index_pyelftools(ELFFile(f, stream_loader=alt_loader), index)
        else:
            index.filler = CuFiller(lambda: reader, lambda m: (warn or _ignore)(f"{path}: {m}"))
    return index


def _ignore(_message: str) -> None:
    return None


def reopen_filler(path: str, alt_loader: Any, warn: Callable[[str], None],
                  alt_cache: dict[str, DieReader] | None = None) -> CuFiller:
    """For a cached index: the debug file is opened again only when a unit not cached is asked for."""
    def open_() -> DieReader:
        return open_reader(Image.of_file(path), alt_loader, alt_cache)
    return CuFiller(open_, lambda m: warn(f"{path}: {m}"))


def minidebuginfo_image(path: str) -> bytes | None:
    """The ELF image in the binary's .gnu_debugdata (xz), or None when it has none."""
    try:
        with open(path, "rb") as f:
            sec = ELFFile(f).get_section_by_name(".gnu_debugdata")
            if sec is None:
                return None
            data, problem = inflate_minidebuginfo(sec.data())
    except DAMAGE as err:
        raise IndexError_(f"{path}: unreadable .gnu_debugdata ({type(err).__name__})") from None
    if problem:
        raise IndexError_(f"{path}: {problem}")
    return data


def _index_symbols(image: Image, index: AddressIndex, tables: Tables, table: str) -> None:
    """Function symbols, unpacked with struct (pyelftools builds one object per symbol)."""
    sec = image.by_name.get(table) if table else None
    if sec is None or sec.type not in (SHT_SYMTAB, SHT_DYNSYM) or not sec.entsize:
        return
    sections = [(s.addr, s.addr + s.size) for s in image.sections]
    strtab = image.data(image.sections[sec.link]) if 0 < sec.link < len(image.sections) else b""
    wide = image.is64
    fmt = ("<" if image.little_endian else ">") + ("IBBHQQ" if wide else "IIIBBH")
    size = struct.calcsize(fmt)
    data = image.data(sec)
    syms = []
    for entry in struct.iter_unpack(fmt, data[:len(data) - len(data) % size] if size == sec.entsize else b""):
        if wide:
            name_at, info, _other, shndx, value, sym_size = entry
        else:
            name_at, value, sym_size, info, _other, shndx = entry
        if info & 0xF not in (2, 10) or shndx == 0 or not name_at:  # STT_FUNC, STT_GNU_IFUNC; defined
            continue
        name = strtab[name_at:strtab.find(b"\0", name_at)].decode("utf-8", "replace").split("@", 1)[0]
        if not name:
            continue
        tables.raw.append(name)
        limit = sections[shndx][1] if shndx < len(sections) and shndx < 0xFF00 else value + 1
        syms.append((value, value + sym_size, tables.names(name), limit))
    # A sizeless symbol (crt code such as _init, deregister_tm_clones) reaches the next symbol or
    # its section's end, as libdw's dwfl_module_addrsym takes it.
    syms.sort()
    starts = sorted({s for s, _, _, _ in syms})
    for i, (start, end, nid, limit) in enumerate(syms):
        if end == start:
            j = bisect_right(starts, start)
            syms[i] = (start, min(starts[j] if j < len(starts) else limit, limit), nid, limit)
    syms.sort()
    index.sym_starts = array("Q", [s for s, _, _, _ in syms])
    index.sym_ends = array("Q", [e for _, e, _, _ in syms])
    index.sym_names = array("i", [n for _, _, n, _ in syms])


def _index_pyelftools(elf: ELFFile, index: AddressIndex) -> None:
    """Every unit at once, through pyelftools' DIEs (split DWARF's forms, .zdebug sections)."""
    dwarf = elf.get_dwarf_info(follow_links=True)
    line_data = _section_bytes(dwarf.debug_line_sec)
    tables = Tables(index)
    ranges = []
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        lp = dwarf.line_program_for_CU(cu)
        comp_dir = _string(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        file_ids = file_table(lp, comp_dir, tables.files) if lp is not None else []
        n = index.add_unit(cu.cu_offset)
        ranges += [(lo, hi, n) for lo, hi in _die_ranges(dwarf, cu, top)]
        fill_unit(index, n, tables, lp, file_ids, _scopes_pyelftools(dwarf, cu, top, file_ids, tables),
                  line_data, elf.little_endian)
    set_unit_ranges(index, ranges)
    tables.demangle_new(index)


def _scopes_pyelftools(dwarf: Any, cu: Any, top: DIE, file_ids: list[int], tables: Tables) -> Found:
    """The same walk through pyelftools' DIEs (what dies.py does not decode: split DWARF's forms)."""
    found: Found = []
    # Walk only what can hold code; DW_AT_sibling lets pyelftools skip the types' subtrees.
    stack: list[tuple[DIE, tuple[Scope, ...]]] = [(top, ())]
    while stack:
        parent, outer = stack.pop()
        for die in parent.iter_children():
            if die.tag in SCOPE_TAGS:
                call_file = die.attributes.get("DW_AT_call_file")
                cf = (file_ids[call_file.value] if call_file is not None and 0 <= call_file.value < len(file_ids)
                      else -1)
                name, is_raw = _die_name(die)
                if is_raw:
                    tables.raw.append(name)
                chain = outer + ((tables.names(name), cf, _attr_int(die, "DW_AT_call_line"),
                                  _attr_int(die, "DW_AT_call_column")),)
                found.append((chain, _die_ranges(dwarf, cu, die)))
                if die.has_children:
                    stack.append((die, chain))
            elif die.has_children and die.tag in WALKED_TAGS:
                stack.append((die, outer))
    return found


def _section_bytes(sec: Any) -> bytes:
    """A DWARF section's (decompressed) bytes, as pyelftools holds them."""
    if sec is None:
        return b""
    sec.stream.seek(0)
    return bytes(sec.stream.read())


def _attr_int(die: DIE, name: str) -> int:
    attr = die.attributes.get(name)
    return int(attr.value) if attr is not None and isinstance(attr.value, int) else 0


def _integrate(die: DIE) -> Iterator[DIE]:
    """The DIE and those it refers to for its attributes (libdw's dwarf_attr_integrate)."""
    seen = 0
    while die is not None and seen < 16:
        yield die
        seen += 1
        ref = next((a for a in ("DW_AT_abstract_origin", "DW_AT_specification") if a in die.attributes), None)
        if ref is None:
            return
        die = die.get_DIE_from_attribute(ref)


def _string(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _die_name(die: DIE) -> tuple[str, bool]:
    """(name, is a linkage name to demangle), as eu-addr2line's get_diename."""
    for attr in ("DW_AT_MIPS_linkage_name", "DW_AT_linkage_name"):
        for d in _integrate(die):
            if attr in d.attributes:
                return _string(d.attributes[attr].value), True
    for d in _integrate(die):
        if "DW_AT_name" in d.attributes:
            return _string(d.attributes["DW_AT_name"].value), False
    return "??", False


def _die_ranges(dwarf: Any, cu: Any, die: DIE) -> list[tuple[int, int]]:
    attrs = die.attributes
    if "DW_AT_low_pc" in attrs and "DW_AT_high_pc" in attrs:
        lo = attrs["DW_AT_low_pc"].value
        hi_attr = attrs["DW_AT_high_pc"]
        hi = hi_attr.value if hi_attr.form == "DW_FORM_addr" else lo + hi_attr.value
        return [(lo, hi)]
    if "DW_AT_ranges" not in attrs:
        return []
    attr = attrs["DW_AT_ranges"]
    if attr.form == "DW_FORM_rnglistx":
        return []  # split DWARF only; gcc writes section offsets in linked files
    return _range_list(dwarf, cu, attr.value)


def _range_list(dwarf: Any, cu: Any, offset: int) -> list[tuple[int, int]]:
    rl = dwarf.range_lists()
    if rl is None:
        return []
    base = _attr_int(cu.get_top_DIE(), "DW_AT_low_pc")
    out = []
    for entry in rl.get_range_list_at_offset(offset, cu=cu):
        if hasattr(entry, "base_address"):
            base = entry.base_address
            continue
        lo, hi = entry.begin_offset, entry.end_offset
        if not getattr(entry, "is_absolute", False):
            lo, hi = lo + base, hi + base
        out.append((lo, hi))
    return out
