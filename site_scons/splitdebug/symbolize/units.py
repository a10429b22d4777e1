"""A module's CUs for the index: their address ranges read up front (one DIE per unit), their line
rows and their functions' ranges decoded only when an address falls in them, and a function's scopes
only when an address falls in it (CuFiller), as libdw reads only the units it is asked about. A cold
run over many modules with a few addresses each then decodes a fraction of the DWARF; the pyelftools
walk in build.py fills every unit at once through fill_unit().
"""

from __future__ import annotations

import posixpath
from array import array
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from .demangle import demangle
from .dies import (AT_CALL_COLUMN, AT_CALL_FILE, AT_CALL_LINE, AT_COMP_DIR, AT_HIGH_PC, AT_LOW_PC, AT_RANGES,
                   AT_STMT_LIST, SCOPES, DieReader, DwarfSections, Unit, Unsupported)
from .image import Image
from .index import AddressIndex, Scope
from .lines import LineProgram, sequences

Found = list[tuple[tuple[Scope, ...], list[tuple[int, int]]]]  # (inline chain, its ranges) per scope DIE
SECTIONS = {".debug_info": "info", ".debug_abbrev": "abbrev", ".debug_str": "str", ".debug_line_str": "line_str",
            ".debug_line": "line", ".debug_ranges": "ranges", ".debug_rnglists": "rnglists"}


class Interner:
    def __init__(self, table: list[str]) -> None:
        self.table, self.ids = table, {s: i for i, s in enumerate(table)}

    def __call__(self, s: str) -> int:
        i = self.ids.get(s)
        if i is None:
            i = self.ids[s] = len(self.table)
            self.table.append(s)
        return i


class Tables:
    """The index's interned names, files and inline chains, added to as units are filled."""

    def __init__(self, index: AddressIndex) -> None:
        self.names, self.files = Interner(index.names), Interner(index.files)
        self.chains = {c: i for i, c in enumerate(index.chains)}
        self.raw: list[str] = []  # linkage names to demangle once the unit is in

    def chain_id(self, index: AddressIndex, chain: tuple[Scope, ...]) -> int:
        i = self.chains.get(chain)
        if i is None:
            i = self.chains[chain] = len(index.chains)
            index.chains.append(chain)
        return i

    def demangle_new(self, index: AddressIndex) -> None:
        if self.raw:
            for raw, plain in demangle(self.raw).items():
                index.names[self.names.ids[raw]] = plain
            self.raw = []


def read_sections(image: Image) -> DwarfSections:
    """The DWARF sections of an image (SHF_COMPRESSED ones inflated)."""
    out = DwarfSections(image.little_endian)
    for sec in image.sections:
        if sec.name.startswith(".zdebug"):
            raise Unsupported("GNU .zdebug sections")  # pyelftools' own DWARF reader inflates them
        attr = SECTIONS.get(sec.name)
        if attr is not None and not getattr(out, attr):
            setattr(out, attr, image.data(sec))
    return out


def in_code(code: list[tuple[int, int]], lo: int) -> bool:
    """Discarded functions keep address 0 or a tombstone, outside every executable segment."""
    if len(code) == 1:  # most files: no generator for each of their scopes' ranges
        return code[0][0] <= lo < code[0][1]
    return not code or any(a <= lo < b for a, b in code)


def set_unit_ranges(index: AddressIndex, cu_ranges: list[tuple[int, int, int]]) -> None:
    """The sorted (start, end, CU) ranges that unit_at() bisects."""
    cu_ranges = sorted((lo, hi, cu) for lo, hi, cu in cu_ranges if lo < hi and in_code(index.code, lo))
    index.cu_starts = array("Q", [lo for lo, _, _ in cu_ranges])
    index.cu_of_range = array("i", [cu for _, _, cu in cu_ranges])
    index.cu_end = cu_ranges[-1][1] if cu_ranges else 0


def open_reader(image: Image, alt_loader: Callable[[str], BinaryIO] | None,
                alt_cache: dict[str, DieReader] | None = None) -> DieReader:
    """The byte reader over a debug file (and its dwz multifile, read once per run for all the
    modules that share it: `alt_cache` by path); Unsupported for what it leaves to pyelftools, so
    that the caller walks every unit with pyelftools instead."""
    alt = None
    link = image.section_data(".gnu_debugaltlink")
    if link is not None:
        if alt_loader is None:
            raise Unsupported("a dwz multifile and no loader")
        with alt_loader(link.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")) as f:
            key = getattr(f, "name", None)
            if not isinstance(key, str):
                raise Unsupported("a dwz multifile that is not a file")
            alt = alt_cache.get(key) if alt_cache is not None else None
            if alt is None:
                alt = DieReader(read_sections(Image.of_file(key)), None)
                if alt_cache is not None:
                    alt_cache[key] = alt
    return DieReader(read_sections(image), alt)


def add_units(index: AddressIndex, reader: DieReader) -> None:
    """Every unit, unfilled, with its address ranges (read from its own DIE only); Unsupported, with
    the index untouched, when those DIEs use forms left to pyelftools."""
    tops = []
    for unit in reader.units:
        attrs = reader.die(unit, unit.die_offset)[3]
        base = attrs[AT_LOW_PC][1] if AT_LOW_PC in attrs else 0
        tops.append((unit.offset, fast_ranges(reader, unit, attrs, base)))
    if not reader.decodable():
        raise Unsupported("forms that need a unit's base")
    ranges = []
    for offset, unit_ranges in tops:
        cu = index.add_unit(offset)
        ranges += [(lo, hi, cu) for lo, hi in unit_ranges]
    set_unit_ranges(index, ranges)


class CuFiller:
    """Fills one CU of an index from the debug file's bytes: with `entries` None its line rows and
    the (ranges, DIE offset) of its functions, else the scopes of the functions at those offsets
    (most units are asked about a few addresses: their other functions' DIEs are never decoded).
    `open` gives the reader on first use (a cached index is filled further without reading the file
    until something not cached is asked for)."""

    def __init__(self, open_: Callable[[], DieReader], on_damage: Callable[[str], None]) -> None:
        self._open = open_
        self._reader: DieReader | None = None
        self._tables: Tables | None = None
        self._units: dict[int, Unit] = {}
        self._context: dict[int, tuple[Unit, list[int], int]] = {}  # CU -> (unit, file ids, base)
        self.on_damage = on_damage

    def __call__(self, index: AddressIndex, cu: int, entries: list[int] | None) -> None:
        tables = self._tables = self._tables or Tables(index)
        try:
            if self._reader is None:
                self._reader = self._open()
                self._units = {u.offset: u for u in self._reader.units}
            if entries is None:
                self._fill(index, cu, self._reader, tables)
            else:
                if cu not in self._context:  # a unit filled by an earlier run
                    self._context[cu] = self._unit(index, cu, self._reader, tables)[:3]
                unit, file_ids, base = self._context[cu]
                found: Found = []
                for offset in entries:
                    found += _scopes(self._reader, unit, file_ids, tables, base, offset)
                add_scopes(index, cu, tables, found)
        except (Unsupported, ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as err:
            # Damage found late: this unit answers nothing, the frame degrades to the symbols.
            self.on_damage(f"unreadable debug information in the unit at {index.cu_offsets[cu]:#x} "
                           f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})")
        tables.demangle_new(index)

    def _unit(self, index: AddressIndex, cu: int, reader: DieReader, tables: Tables
              ) -> tuple[Unit, list[int], int, Any]:
        """(unit, its file ids, its base address, its line program)."""
        unit = self._units[index.cu_offsets[cu]]
        attrs = reader.die(unit, unit.die_offset)[3]
        comp_dir = reader.string(*attrs[AT_COMP_DIR]) if AT_COMP_DIR in attrs else ""
        strings = {0x1F: reader.line_str, 0x0E: reader.str}
        lp = (LineProgram(reader.line, attrs[AT_STMT_LIST][1], reader.little_endian, strings)
              if AT_STMT_LIST in attrs and reader.line else None)
        file_ids = file_table(lp, comp_dir, tables.files) if lp is not None else []
        return unit, file_ids, attrs[AT_LOW_PC][1] if AT_LOW_PC in attrs else 0, lp

    def _fill(self, index: AddressIndex, cu: int, reader: DieReader, tables: Tables) -> None:
        unit, file_ids, base, lp = self._unit(index, cu, reader, tables)
        self._context[cu] = (unit, file_ids, base)
        set_lines(index, cu, lp, file_ids, reader.line, reader.little_endian)
        pending = []
        for _, offset, tag, attrs in reader.walk(unit, enter_scopes=False):
            if tag in SCOPES:
                pending += [(lo, hi, offset) for lo, hi in fast_ranges(reader, unit, attrs, base)
                            if lo < hi and in_code(index.code, lo)]
        index.scope_pending[cu] = pending
        index.cu_filled[cu] = 1


def fill_unit(index: AddressIndex, cu: int, tables: Tables, lp: Any, file_ids: list[int], found: Found,
              line_data: bytes, little_endian: bool) -> None:
    """A CU's rows and every scope at once (the pyelftools walk)."""
    set_lines(index, cu, lp, file_ids, line_data, little_endian)
    add_scopes(index, cu, tables, found)
    index.cu_filled[cu] = 1


def set_lines(index: AddressIndex, cu: int, lp: Any, file_ids: list[int], line_data: bytes, little_endian: bool
              ) -> None:
    starts, files, lines, cols = (cu_rows(lp, file_ids, index.code, line_data, little_endian) if lp is not None
                                  else ([], [], [], []))
    index.line_starts[cu] = array("Q", starts)
    index.line_file[cu] = array("i", files)
    index.line_line[cu] = array("I", lines)
    index.line_col[cu] = array("I", cols)


def add_scopes(index: AddressIndex, cu: int, tables: Tables, found: Found) -> None:
    """Scopes added to a CU's, and the CU's painted again from all it has."""
    intervals = index.scope_spans[cu]
    for chain, ranges in found:
        ranges = [r for r in ranges if r[0] < r[1] and in_code(index.code, r[0])]
        if ranges:
            chain_id = tables.chain_id(index, chain)
            intervals += [(lo, hi, len(chain), chain_id) for lo, hi in ranges]
    scope_starts, owners = paint(intervals)
    index.scope_starts[cu], index.scope_chain[cu] = array("Q", scope_starts), array("i", owners)


def _scopes(reader: DieReader, unit: Unit, file_ids: list[int], tables: Tables, base: int,
            start: int | None = None) -> Found:
    """The scopes of the unit (or of the function at `start`) with their inline chains and ranges."""
    found: Found = []
    stack: list[tuple[int, tuple[Scope, ...]]] = []  # (depth, chain) of the open scopes
    nfiles = len(file_ids)
    names = tables.names
    for depth, offset, tag, attrs in reader.walk(unit, start):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if tag not in SCOPES:
            continue
        outer = stack[-1][1] if stack else ()
        name, is_raw = reader.name(offset, attrs)
        if is_raw:
            tables.raw.append(name)
        cf = attrs.get(AT_CALL_FILE, (0, -1))[1]
        chain = outer + ((names(name), file_ids[cf] if 0 <= cf < nfiles else -1,
                          attrs.get(AT_CALL_LINE, (0, 0))[1], attrs.get(AT_CALL_COLUMN, (0, 0))[1]),)
        stack.append((depth, chain))
        found.append((chain, fast_ranges(reader, unit, attrs, base)))
    return found


def fast_ranges(reader: DieReader, unit: Unit, attrs: dict[int, tuple[int, Any]], base: int
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


def _string(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def file_table(lp: Any, comp_dir: str, files: Interner) -> list[int]:
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


def cu_rows(lp: Any, file_ids: list[int], code: list[tuple[int, int]], data: bytes, little_endian: bool
            ) -> tuple[list[int], list[int], list[int], list[int]]:
    """One CU's line table as libdw sorts it: by address, an end of sequence before the rows at its
    address (so a row at a sequence's last address still answers, for the padding after it), then in
    sequence order; the table's last row always ends it. As (addresses, file ids (-1: no line), lines,
    columns). Sequences that do not overlap (nearly always) are put in order whole, not row by row."""
    nfiles = len(file_ids)
    kept = []
    for n, (addrs, files, lines, cols) in enumerate(sequences(lp, data, little_endian)):
        if addrs and in_code(code, addrs[0]):  # a discarded function's sequence starts at 0 or a tombstone
            kept.append((addrs[0], n, addrs, [file_ids[f] if 0 <= f < nfiles else -1 for f in files], lines, cols))
    kept.sort(key=lambda k: (k[0], k[1]))
    out: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])
    whole = [_end_first(k[2:]) for k in kept if k[2] == sorted(k[2])]
    # Whole sequences in address order are libdw's order when each ends below the next one's start,
    # or at it with its end row last (that row sorts first at the address anyway).
    if len(whole) == len(kept) and all(a[0][-1] < b[0][0] or (a[0][-1] == b[0][0] and a[1][-1] == -1)
                                       for a, b in zip(whole, whole[1:], strict=False)):
        for columns in whole:
            for table, values in zip(out, columns, strict=True):
                table.extend(values)
    else:  # overlapping sequences, or rows at a sequence's end address: libdw's sort, row by row
        rows = sorted((a, 0 if f == -1 and i == len(k[2]) - 1 else 1, k[1], i, f, ln, c)
                      for k in kept for i, (a, f, ln, c) in enumerate(zip(k[2], k[3], k[4], k[5], strict=True)))
        for a, _, _, _, f, ln, c in rows:
            for table, value in zip(out, (a, f, ln, c), strict=True):
                table.append(value)
    if out[0]:  # libdw keeps an end of sequence last: past the CU's last address there is no line
        out[1][-1] = -1
    return out


def _end_first(seq: tuple[list[int], list[int], list[int], list[int]]
               ) -> tuple[list[int], list[int], list[int], list[int]]:
    """A sequence whose last rows share the end row's address, with the end row before them (gcc
    ends a third of its sequences so): libdw sorts an end of sequence first at its address."""
    addrs = seq[0]
    j = len(addrs) - 1
    while j > 0 and addrs[j - 1] == addrs[-1]:
        j -= 1
    if j == len(addrs) - 1:
        return seq
    return tuple(c[:j] + c[-1:] + c[j:-1] for c in seq)  # type: ignore[return-value]


def paint(intervals: Iterable[tuple[int, int, int, int]]) -> tuple[list[int], list[int]]:
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
