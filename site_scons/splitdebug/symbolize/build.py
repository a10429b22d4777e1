"""Building a module's AddressIndex from an ELF file with pyelftools: the DIE tree walked for
subprograms and inlined calls (types skipped), the line tables (lines.py), the function symbols.
"""

from __future__ import annotations

import io
import lzma
import posixpath
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.dwarf.die import DIE
from elftools.elf.elffile import ELFFile

from ..elf.read import inflate_minidebuginfo
from .demangle import demangle
from .dies import (AT_CALL_COLUMN, AT_CALL_FILE, AT_CALL_LINE, AT_COMP_DIR, AT_HIGH_PC, AT_LOW_PC, AT_RANGES,
                   AT_STMT_LIST, SCOPES, DieReader, Unit, Unsupported)
from .index import AddressIndex, IndexError_, Row, Scope
from .lines import LineProgram, line_rows

SCOPE_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine")
# Where functions and inlined calls are found below a CU; types, variables and parameters are skipped.
WALKED_TAGS = frozenset({"DW_TAG_lexical_block", "DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type",
                         "DW_TAG_union_type", "DW_TAG_module", "DW_TAG_try_block", "DW_TAG_catch_block"})
# pyelftools and construct fail in many shapes on damaged DWARF; to us they all mean "unreadable".
DAMAGE = (ELFError, ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError,
          NotImplementedError, EOFError, OverflowError, UnicodeDecodeError, lzma.LZMAError, OSError,
          RecursionError, ImportError)


class _Interner:
    def __init__(self, table: list[str]) -> None:
        self.table, self.ids = table, {s: i for i, s in enumerate(table)}

    def __call__(self, s: str) -> int:
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.table)
            self.table.append(s)
        return i


def build_index(path: str, data: bytes | None = None, *, dwarf: bool = True,
                symtab: str = ".symtab", alt_loader: Any = None) -> AddressIndex:
    """Index one ELF file (or an in-memory image): DWARF scopes and lines when `dwarf`, and the
    function symbols of `symtab`. IndexError_ with one line when it cannot be read."""
    try:
        stream: Any = io.BytesIO(data) if data is not None else open(path, "rb")
    except OSError as err:
        raise IndexError_(f"{path}: cannot read: {err.strerror}") from None
    try:
        with stream:
            elf = ELFFile(stream, stream_loader=alt_loader)
            index = AddressIndex()
            index.loads = [(s["p_vaddr"], s["p_memsz"], s["p_offset"]) for s in elf.iter_segments()
                           if s["p_type"] == "PT_LOAD"]
            names = _Interner(index.names)
            raw_names: list[str] = []
            if dwarf:
                if not elf.has_dwarf_info(strict=True):
                    raise IndexError_(f"{path}: no DWARF")
                _index_dwarf(elf, index, names, raw_names)
            _index_symbols(elf, index, names, raw_names, symtab)
            _demangle_names(index, raw_names)
            return index
    except IndexError_:
        raise
    except DAMAGE as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise IndexError_(f"{path}: unreadable debug information ({type(err).__name__}: {reason})") from None


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


def _demangle_names(index: AddressIndex, raw: list[str]) -> None:
    """Once for the module; unmangled names pass as they are."""
    if not raw:
        return
    plain = demangle(raw)
    index.names[:] = [plain.get(n, n) for n in index.names]


def _index_symbols(elf: ELFFile, index: AddressIndex, names: _Interner, raw: list[str], table: str) -> None:
    sec = elf.get_section_by_name(table)
    if sec is None or not hasattr(sec, "iter_symbols"):
        return
    sections = [(s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in elf.iter_sections()]
    syms = []
    for sym in sec.iter_symbols():
        if sym["st_info"]["type"] not in ("STT_FUNC", "STT_GNU_IFUNC") or sym["st_shndx"] == "SHN_UNDEF":
            continue
        if not sym.name:
            continue
        name = sym.name.split("@", 1)[0]
        raw.append(name)
        shndx = sym["st_shndx"]
        limit = sections[shndx][1] if isinstance(shndx, int) and shndx < len(sections) else sym["st_value"] + 1
        syms.append((sym["st_value"], sym["st_value"] + sym["st_size"], names(name), limit))
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


def _code_ranges(elf: ELFFile) -> list[tuple[int, int]]:
    return [(s["p_vaddr"], s["p_vaddr"] + s["p_memsz"]) for s in elf.iter_segments()
            if s["p_type"] == "PT_LOAD" and s["p_flags"] & 1]


def _index_dwarf(elf: ELFFile, index: AddressIndex, names: _Interner, raw: list[str]) -> None:
    dwarf = elf.get_dwarf_info(follow_links=True)
    line_data = _section_bytes(dwarf.debug_line_sec)
    code = _code_ranges(elf)

    def in_code(lo: int) -> bool:  # discarded functions keep address 0 or a tombstone
        return not code or any(a <= lo < b for a, b in code)

    files = _Interner(index.files)
    units: list[UnitScopes] | None
    try:
        units = list(_units_fast(dwarf, line_data, files, names, raw))
    except (Unsupported, ValueError, IndexError, KeyError):
        units = None  # what dies.py does not read (split DWARF's forms): pyelftools does
    if units is None:
        units = list(_units_pyelftools(dwarf, files, names, raw))
    chains: dict[tuple[Scope, ...], int] = {}
    intervals: list[tuple[int, int, int, int]] = []
    cu_ranges: list[tuple[int, int, int]] = []
    for lp, file_ids, unit_ranges, found in units:
        starts, rows = _cu_rows(lp, file_ids, in_code, line_data, elf.little_endian) if lp is not None else ([], [])
        cu_ranges.extend((lo, hi, len(index.line_starts)) for lo, hi in unit_ranges if lo < hi and in_code(lo))
        index.line_starts.append(array("Q", starts))
        index.line_file.append(array("i", [r[0] if r is not None else -1 for r in rows]))
        index.line_line.append(array("I", [r[1] if r is not None else 0 for r in rows]))
        index.line_col.append(array("I", [r[2] if r is not None else 0 for r in rows]))
        for chain, ranges in found:
            ranges = [r for r in ranges if r[0] < r[1] and in_code(r[0])]
            if ranges:
                chain_id = chains.setdefault(chain, len(chains))
                intervals.extend((lo, hi, len(chain), chain_id) for lo, hi in ranges)
    index.chains = [c for c, _ in sorted(chains.items(), key=lambda kv: kv[1])]
    starts, owners = _paint(intervals)
    index.scope_starts, index.scope_chain = array("Q", starts), array("i", owners)
    cu_ranges.sort()
    index.cu_starts = array("Q", [lo for lo, _, _ in cu_ranges])
    index.cu_of_range = array("i", [cu for _, _, cu in cu_ranges])
    index.cu_end = cu_ranges[-1][1] if cu_ranges else 0


Found = list[tuple[tuple[Scope, ...], list[tuple[int, int]]]]  # (inline chain, its ranges) per scope DIE
# per unit: (line program, file ids, the unit's ranges, its scopes)
UnitScopes = tuple[Any, list[int], list[tuple[int, int]], Found]


def _units_fast(dwarf: Any, line_data: bytes, files: _Interner, names: _Interner, raw: list[str]
                ) -> Iterator[UnitScopes]:
    """Every unit through dies.py and lines.py: no pyelftools DIE, abbrev table or line header."""
    sup = dwarf.supplementary_dwarfinfo
    reader = DieReader(dwarf, DieReader(sup, None) if sup is not None else None)
    strings = {0x1F: reader.line_str, 0x0E: reader.str}
    for unit in reader.units:
        attrs = reader.die(unit, unit.die_offset)[3]
        comp_dir = reader.string(*attrs[AT_COMP_DIR]) if AT_COMP_DIR in attrs else ""
        lp = (LineProgram(line_data, attrs[AT_STMT_LIST][1], reader.little_endian, strings)
              if AT_STMT_LIST in attrs and line_data else None)
        file_ids = _file_table(lp, comp_dir, files) if lp is not None else []
        base = attrs[AT_LOW_PC][1] if AT_LOW_PC in attrs else 0
        yield (lp, file_ids, _fast_ranges(reader, unit, attrs, base),
               _scopes_fast(reader, unit, file_ids, names, raw, base))


def _units_pyelftools(dwarf: Any, files: _Interner, names: _Interner, raw: list[str]) -> Iterator[UnitScopes]:
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        lp = dwarf.line_program_for_CU(cu)
        comp_dir = _string(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        file_ids = _file_table(lp, comp_dir, files) if lp is not None else []
        yield lp, file_ids, _die_ranges(dwarf, cu, top), _scopes_pyelftools(dwarf, cu, top, file_ids, names, raw)


def _scopes_fast(reader: DieReader, unit: Unit, file_ids: list[int], names: _Interner, raw: list[str],
                 base: int) -> Found:
    found: Found = []
    stack: list[tuple[int, tuple[Scope, ...]]] = []  # (depth, chain) of the open scopes
    nfiles = len(file_ids)
    for depth, offset, tag, attrs in reader.walk(unit):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if tag not in SCOPES:
            continue
        outer = stack[-1][1] if stack else ()
        name, is_raw = reader.name(offset, attrs)
        if is_raw:
            raw.append(name)
        cf = attrs.get(AT_CALL_FILE, (0, -1))[1]
        chain = outer + ((names(name), file_ids[cf] if 0 <= cf < nfiles else -1,
                          attrs.get(AT_CALL_LINE, (0, 0))[1], attrs.get(AT_CALL_COLUMN, (0, 0))[1]),)
        stack.append((depth, chain))
        found.append((chain, _fast_ranges(reader, unit, attrs, base)))
    return found


def _fast_ranges(reader: DieReader, unit: Unit, attrs: dict[int, tuple[int, Any]], base: int
                 ) -> list[tuple[int, int]]:
    if AT_LOW_PC in attrs and AT_HIGH_PC in attrs:
        lo = attrs[AT_LOW_PC][1]
        form, hi = attrs[AT_HIGH_PC]
        return [(lo, hi if form == 0x01 else lo + hi)]
    if AT_RANGES not in attrs:
        return []
    form, offset = attrs[AT_RANGES]
    if form == 0x23:  # rnglistx: split DWARF only
        return []
    return reader.range_list(unit, offset, base)


def _scopes_pyelftools(dwarf: Any, cu: Any, top: DIE, file_ids: list[int], names: _Interner,
                       raw: list[str]) -> Found:
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
                    raw.append(name)
                chain = outer + ((names(name), cf, _attr_int(die, "DW_AT_call_line"),
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


def _file_table(lp: Any, comp_dir: str, files: _Interner) -> list[int]:
    """Interned full paths of the line program's files, indexed as DW_AT_call_file and the rows do."""
    version = lp.header["version"]
    dirs = [_string(d) for d in lp.header["include_directory"]]
    if version < 5:
        dirs = [comp_dir] + dirs
    out = [] if version >= 5 else [files("??")]  # DWARF < 5 numbers files from 1
    for entry in lp.header["file_entry"]:
        name = _string(entry.name)
        d = dirs[entry.dir_index] if 0 <= entry.dir_index < len(dirs) else ""
        if not posixpath.isabs(d) and comp_dir:
            d = posixpath.join(comp_dir, d) if d else comp_dir
        out.append(files(name if posixpath.isabs(name) else posixpath.join(d, name) if d else name))
    return out


def _cu_rows(lp: Any, file_ids: list[int], in_code: Any, data: bytes, little_endian: bool
             ) -> tuple[list[int], list[Row]]:
    """One CU's line table as libdw sorts it: by address, an end of sequence before the rows at its
    address (so a row at a sequence's last address still answers, for the padding after it), then in
    sequence order; the table's last row always ends it."""
    rows: list[tuple[int, int, int, Row]] = []
    seq: list[tuple[int, int, int, Row]] = []
    nfiles = len(file_ids)
    for address, file, line, column, end in line_rows(lp, data, little_endian):
        fid = file_ids[file] if 0 <= file < nfiles else -1
        seq.append((address, 0 if end else 1, len(rows) + len(seq), None if end or fid < 0 else (fid, line, column)))
        if end:
            if in_code(seq[0][0]):  # a discarded function's sequence starts at 0 or a tombstone
                rows.extend(seq)
            seq = []
    rows.sort()
    if rows:  # libdw keeps an end of sequence last: past the CU's last address there is no line
        rows[-1] = rows[-1][:3] + (None,)
    return [addr for addr, _, _, _ in rows], [row for _, _, _, row in rows]


def _paint(intervals: Iterable[tuple[int, int, int, int]]) -> tuple[list[int], list[int]]:
    """Nested scope ranges -> elementary segments, each owned by the innermost scope covering it."""
    starts: list[int] = []
    owner: list[int] = []

    def emit(pos: int, chain: int) -> None:
        if starts and starts[-1] == pos:
            owner[-1] = chain
        elif not owner or owner[-1] != chain:
            starts.append(pos)
            owner.append(chain)

    stack: list[tuple[int, int]] = []  # (end, chain)
    for lo, hi, _depth, chain in sorted(intervals, key=lambda t: (t[0], -t[1], t[2])):
        while stack and stack[-1][0] <= lo:
            end, _ = stack.pop()
            emit(end, stack[-1][1] if stack and stack[-1][0] > end else -1)
        stack.append((hi, chain))
        emit(lo, chain)
    while stack:
        end, _ = stack.pop()
        emit(end, stack[-1][1] if stack and stack[-1][0] > end else -1)
    return starts, owner
