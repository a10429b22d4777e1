"""A .debug_info reader for the index: DIEs decoded with byte arithmetic, only the attributes the index
reads kept, the subtrees of types skipped by DW_AT_sibling. pyelftools parses every attribute of every
DIE through construct (70 % of a cold index once the line programs were decoded by hand); pyelftools
still finds the units' headers and decompresses the sections; lines.py reads the line programs.

Forms that need a unit's str_offsets/addr base (split DWARF's strx/addrx) raise Unsupported: the
caller then walks with pyelftools instead.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .lines import _sleb, _uleb


class Unsupported(Exception):
    """A shape this reader does not decode; pyelftools does."""


# attribute codes and tags the index reads
AT_SIBLING, AT_NAME, AT_LOW_PC, AT_HIGH_PC, AT_COMP_DIR = 0x01, 0x03, 0x11, 0x12, 0x1B
AT_ABSTRACT_ORIGIN, AT_SPECIFICATION, AT_RANGES = 0x31, 0x47, 0x55
AT_CALL_COLUMN, AT_CALL_FILE, AT_CALL_LINE, AT_LINKAGE_NAME, AT_MIPS_LINKAGE_NAME = 0x57, 0x58, 0x59, 0x6E, 0x2007
AT_STMT_LIST = 0x10
KEPT = frozenset({AT_STMT_LIST, AT_COMP_DIR, AT_SIBLING, AT_NAME, AT_LOW_PC, AT_HIGH_PC, AT_ABSTRACT_ORIGIN,
                  AT_SPECIFICATION, AT_RANGES,
                  AT_CALL_COLUMN, AT_CALL_FILE, AT_CALL_LINE, AT_LINKAGE_NAME, AT_MIPS_LINKAGE_NAME})
TAG_SUBPROGRAM, TAG_INLINED = 0x2E, 0x1D
SCOPES = frozenset({TAG_SUBPROGRAM, TAG_INLINED})
WALKED = frozenset({0x0B, 0x39, 0x02, 0x13, 0x17, 0x1E, 0x32, 0x25})  # lexical block, namespace, class…
WANTED = SCOPES | WALKED

FIXED = {0x05: 2, 0x06: 4, 0x07: 8, 0x0B: 1, 0x0C: 1, 0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x19: 0, 0x1C: 4,
         0x1E: 16, 0x20: 8, 0x21: 0, 0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2, 0x2B: 3,
         0x2C: 4}
OFFSET_FORMS = frozenset({0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21})  # strp, sec_offset, strp_sup, line_strp, alt
REF_FORMS = frozenset({0x11, 0x12, 0x13, 0x14, 0x15})
NEEDS_BASE = frozenset({0x1A, 0x1B, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x1F01, 0x1F02})

Attrs = dict[int, tuple[int, Any]]  # attribute -> (form, value)
# An abbreviation's attributes: (attribute, form, implicit constant), or the byte size of a run of
# fixed-size attributes the index does not read (skipped in one step).
Plan = list[tuple[int, int, int] | int]


# How to step over a DIE without decoding it: byte counts (>= 0) and variable-size forms (-form);
# None where a form needs decoding (indirect, or those left to pyelftools).
Skip = list[int] | None
VARIABLE = frozenset({0x08, 0x09, 0x18, 0x0A, 0x0F, 0x0D, 0x15, 0x22, 0x23})  # block2/4: decoded
# tag, has children, plan, byte size of its DIEs (-1: varies), how to skip one, has DW_AT_sibling
Abbrev = tuple[int, bool, Plan, int, Skip, bool]


class AbbrevTable(dict[int, Abbrev]):
    """A unit's abbreviations, read up to the code asked for: a unit's own DIE (code 1, first)
    costs one entry, and only the units that are filled read their whole table. Each entry knows
    the size of its DIEs when every form has a fixed one for the units' offset and address sizes,
    else how to step over one (a location's exprloc, an inline string): walk() passes gcc's
    parameters, variables and call sites so, without decoding their attributes."""

    def __init__(self, data: bytes, at: int, offset_size: int, address_size: int, version: int) -> None:
        super().__init__()
        self.data, self.at = data, at  # the next entry not read yet; -1: all read
        self.sizes = {**FIXED, **{f: offset_size for f in OFFSET_FORMS}, 0x01: address_size,
                      0x10: address_size if version == 2 else offset_size}

    def __missing__(self, code: int) -> Abbrev:
        while self.at >= 0:
            got, entry = self._next()
            if got == code:
                return entry
        raise KeyError(code)

    def _next(self) -> tuple[int, Abbrev]:
        data, at = self.data, self.at
        code, at = _uleb(data, at)
        if code == 0:
            self.at = -1
            return 0, (0, False, [], -1, None, False)
        tag, at = _uleb(data, at)
        children = data[at] != 0
        at += 1
        specs: Plan = []
        skip: Skip = [0]
        sibling = False
        while True:
            attr, form = data[at], data[at + 1]  # one byte each, nearly always
            if attr < 0x80 and form < 0x80:
                at += 2
            else:
                attr, at = _uleb(data, at)
                form, at = _uleb(data, at)
            if attr == 0 and form == 0:
                break
            sibling = sibling or attr == AT_SIBLING
            if skip is not None:
                if form in self.sizes:
                    if skip[-1] >= 0:
                        skip[-1] += self.sizes[form]
                    else:
                        skip.append(self.sizes[form])
                else:
                    skip = skip + [-form] if form in VARIABLE else None
            const = 0
            if form == 0x21:
                const, at = _sleb(data, at)
            if form in FIXED and attr not in KEPT:  # skipped: one step for a run of them
                if specs and isinstance(specs[-1], int):
                    specs[-1] += FIXED[form]
                else:
                    specs.append(FIXED[form])
            else:
                specs.append((attr, form, const))
        self.at = at
        size = skip[0] if skip is not None and len(skip) == 1 else -1
        self[code] = (tag, children, specs, size, skip, sibling)
        return code, self[code]


def _skip(data: bytes, at: int, skip: list[int]) -> int:
    """The offset after a DIE's attributes, stepped over as its abbreviation's Skip says."""
    for step in skip:
        if step >= 0:
            at += step
        elif step == -0x08:  # string
            at = data.index(b"\0", at) + 1
        elif step in (-0x18, -0x09):  # exprloc, block
            n = data[at]
            if n < 0x80:
                at += 1 + n
            else:
                n, at = _uleb(data, at)
                at += n
        elif step == -0x0A:  # block1
            at += 1 + data[at]
        else:  # a LEB128 number
            while data[at] & 0x80:
                at += 1
            at += 1
    return at


class Unit:
    __slots__ = ("offset", "end", "die_offset", "version", "address_size", "offset_size", "abbrevs")

    def __init__(self, offset: int, end: int, die_offset: int, version: int, address_size: int, offset_size: int,
                 abbrevs: AbbrevTable) -> None:
        self.offset, self.end, self.die_offset = offset, end, die_offset
        self.version, self.address_size, self.offset_size = version, address_size, offset_size
        self.abbrevs = abbrevs


@dataclass
class DwarfSections:
    """A file's DWARF sections (decompressed), as the reader and lines.py need them."""

    little_endian: bool
    info: bytes = b""
    abbrev: bytes = b""
    str: bytes = b""
    line_str: bytes = b""
    line: bytes = b""
    ranges: bytes = b""
    rnglists: bytes = b""


class DieReader:
    """One file's .debug_info (and, for dwz's DW_FORM_GNU_*_alt, its multifile's reader)."""

    def __init__(self, sections: DwarfSections, alt: DieReader | None) -> None:
        self.info = sections.info
        self.abbrev = sections.abbrev
        self.str = sections.str
        self.line_str = sections.line_str
        self.line = sections.line
        self.little_endian = sections.little_endian
        self.order: Literal["little", "big"] = "little" if sections.little_endian else "big"
        self.ranges = sections.ranges
        self.rnglists = sections.rnglists
        self.alt = alt
        self._tables: dict[tuple[int, int, int, bool], AbbrevTable] = {}
        self.units = list(self._unit_headers())
        self._starts = [u.offset for u in self.units]
        # name() of a DIE that has no name of its own, by (in the multifile, offset) of the DIE it
        # refers to: every inlined copy of a function asks for the same one
        self._names: dict[tuple[bool, int], tuple[str, bool]] = {}

    def _unit_headers(self) -> Iterator[Unit]:
        """Every unit header of .debug_info (DWARF 2-5), read with byte arithmetic."""
        data, at = self.info, 0

        def u(pos: int, size: int) -> int:
            return int.from_bytes(data[pos:pos + size], self.order)

        while at + 11 <= len(data):
            length, offset_size, p = u(at, 4), 4, at + 4
            if length == 0xFFFFFFFF:
                length, offset_size, p = u(p, 8), 8, p + 8
            end = p + length
            version = u(p, 2)
            if end > len(data) or not 2 <= version <= 5:
                raise Unsupported(f"unit at {at:#x}: length {length:#x}, version {version}")
            p += 2
            if version >= 5:
                kind, address_size, abbrev_at = data[p], data[p + 1], u(p + 2, offset_size)
                p += 2 + offset_size + {2: 8 + offset_size, 6: 8 + offset_size, 4: 8, 5: 8}.get(kind, 0)
            else:
                abbrev_at, address_size = u(p, offset_size), data[p + offset_size]
                p += offset_size + 1
            key = (abbrev_at, offset_size, address_size, version == 2)
            if key not in self._tables:
                self._tables[key] = AbbrevTable(self.abbrev, abbrev_at, offset_size, address_size, version)
            yield Unit(at, end, p, version, address_size, offset_size, self._tables[key])
            at = end

    def decodable(self) -> bool:
        """False when the abbreviations read so far (the units' own DIEs' at least) use forms left to
        pyelftools: split DWARF's and clang's strx/addrx, which a producer uses in every unit's DIE."""
        return not any(not isinstance(spec, int) and spec[1] in NEEDS_BASE
                       for table in self._tables.values() for _, _, specs, *_ in table.values() for spec in specs)

    def unit_of(self, offset: int) -> Unit:
        i = bisect_right(self._starts, offset) - 1
        if i < 0 or offset >= self.units[i].end:
            raise Unsupported(f"no unit holds DIE offset {offset:#x}")
        return self.units[i]

    def die(self, unit: Unit, at: int) -> tuple[int, int, bool, Attrs, int]:
        """(abbrev code, tag, has children, kept attributes, next offset); code 0 is a null entry."""
        data = self.info
        code = data[at]
        if code < 0x80:
            at += 1
        else:
            code, at = _uleb(data, at)
        if code == 0:
            return 0, 0, False, {}, at
        tag, children, specs = unit.abbrevs[code][:3]
        attrs: Attrs = {}
        for spec in specs:
            if isinstance(spec, int):
                at += spec
                continue
            attr, form, const = spec
            if form == 0x16:  # indirect
                form, at = _uleb(data, at)
            if form in FIXED:
                size = FIXED[form]
                if attr in KEPT:
                    value = const if form == 0x21 else int.from_bytes(data[at:at + size], self.order)
                    attrs[attr] = (form, value + unit.offset if form in REF_FORMS else value)
                at += size
            elif form in OFFSET_FORMS:
                if attr in KEPT:
                    attrs[attr] = (form, int.from_bytes(data[at:at + unit.offset_size], self.order))
                at += unit.offset_size
            elif form == 0x01:  # addr
                if attr in KEPT:
                    attrs[attr] = (form, int.from_bytes(data[at:at + unit.address_size], self.order))
                at += unit.address_size
            elif form == 0x10:  # ref_addr: an offset in .debug_info (an address-sized one in DWARF 2)
                size = unit.address_size if unit.version == 2 else unit.offset_size
                if attr in KEPT:
                    attrs[attr] = (form, int.from_bytes(data[at:at + size], self.order))
                at += size
            elif form in (0x0F, 0x15, 0x22, 0x23):  # udata, ref_udata, loclistx, rnglistx
                value, at = _uleb(data, at)
                if attr in KEPT:
                    attrs[attr] = (form, value + unit.offset if form == 0x15 else value)
            elif form == 0x0D:  # sdata
                value, at = _sleb(data, at)
                if attr in KEPT:
                    attrs[attr] = (form, value)
            elif form == 0x08:  # string
                end = data.index(b"\0", at)
                if attr in KEPT:
                    attrs[attr] = (form, data[at:end])
                at = end + 1
            elif form in (0x09, 0x18):  # block, exprloc
                size, at = _uleb(data, at)
                at += size
            elif form in (0x0A, 0x03, 0x04):  # block1, block2, block4
                width = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
                at += width + int.from_bytes(data[at:at + width], self.order)
            elif form in NEEDS_BASE:
                raise Unsupported(f"form {form:#x} needs a unit's base")
            else:
                raise Unsupported(f"unknown form {form:#x}")
        return code, tag, children, attrs, at

    def range_list(self, unit: Unit, offset: int, base: int) -> list[tuple[int, int]]:
        """A DW_AT_ranges list: .debug_ranges (DWARF < 5) or .debug_rnglists, from the unit's base."""
        data, size = self.ranges if unit.version < 5 else self.rnglists, unit.address_size
        out: list[tuple[int, int]] = []

        def addr(at: int) -> int:
            return int.from_bytes(data[at:at + size], self.order)

        at = offset
        if unit.version < 5:
            top = (1 << (8 * size)) - 1
            while True:
                begin, end = addr(at), addr(at + size)
                at += 2 * size
                if begin == 0 and end == 0:
                    return out
                if begin == top:
                    base = end
                else:
                    out.append((base + begin, base + end))
        while True:
            kind = data[at]
            at += 1
            if kind == 0:  # end_of_list
                return out
            if kind == 4:  # offset_pair
                a, at = _uleb(data, at)
                b, at = _uleb(data, at)
                out.append((base + a, base + b))
            elif kind == 5:  # base_address
                base, at = addr(at), at + size
            elif kind == 6:  # start_end
                out.append((addr(at), addr(at + size)))
                at += 2 * size
            elif kind == 7:  # start_length
                start = addr(at)
                length, at = _uleb(data, at + size)
                out.append((start, start + length))
            else:  # the x forms need the unit's .debug_addr base
                raise Unsupported(f"range list entry {kind}")

    def string(self, form: int, value: Any) -> str:
        if form == 0x08:
            raw = value
        else:
            table = {0x0E: self.str, 0x1F: self.line_str}.get(form)
            if table is None and form == 0x1F21 and self.alt is not None:
                table = self.alt.str
            if table is None:
                raise Unsupported(f"string form {form:#x}")
            raw = table[value:table.index(b"\0", value)]
        return bytes(raw).decode("utf-8", "replace")

    def name(self, offset: int, attrs: Attrs) -> tuple[str, bool]:
        """(name, is a linkage name), following abstract_origin and specification (libdw's integrate)."""
        ref = attrs.get(AT_ABSTRACT_ORIGIN) or attrs.get(AT_SPECIFICATION)
        if ref is None or AT_NAME in attrs or AT_LINKAGE_NAME in attrs or AT_MIPS_LINKAGE_NAME in attrs:
            return self._name(attrs)
        key = (ref[0] == 0x1F20, ref[1])
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = self._name(attrs)
        return found

    def _name(self, attrs: Attrs) -> tuple[str, bool]:
        chain: list[tuple[DieReader, Attrs]] = [(self, attrs)]
        reader: DieReader = self
        for _ in range(16):
            ref = attrs.get(AT_ABSTRACT_ORIGIN) or attrs.get(AT_SPECIFICATION)
            if ref is None:
                break
            form, target = ref
            if form == 0x1F20:  # GNU_ref_alt: a DIE of the dwz multifile
                if reader.alt is None:
                    raise Unsupported("DW_FORM_GNU_ref_alt without the multifile")
                reader = reader.alt
            elif form in (0x1C, 0x24, 0x20):
                raise Unsupported(f"reference form {form:#x}")
            attrs = reader.die(reader.unit_of(target), target)[3]
            chain.append((reader, attrs))
        for key in (AT_MIPS_LINKAGE_NAME, AT_LINKAGE_NAME):
            for r, a in chain:
                if key in a:
                    return r.string(*a[key]), True
        for r, a in chain:
            if AT_NAME in a:
                return r.string(*a[AT_NAME]), False
        return "??", False

    def walk(self, unit: Unit, start: int | None = None, enter_scopes: bool = True
             ) -> Iterator[tuple[int, int, int, Attrs]]:
        """(depth, offset, tag, attributes) of the scope DIEs and of what may hold them, in order;
        other subtrees are skipped (by DW_AT_sibling, else by reading through them). `start`: only
        the subtree of the DIE there; `enter_scopes` False: a scope's subtree is skipped too (the
        unit's entries, see units.py)."""
        end = unit.end
        if start is None:
            code, tag, children, attrs, at = self.die(unit, unit.die_offset)  # the unit's own DIE
            if not children:
                return
        else:
            at = start
        depth, skip_below = 1, 0  # skip_below: inside a subtree we read through without reporting
        data, abbrevs = self.info, unit.abbrevs
        while at < end and depth > 0:
            if depth == 1 and start is not None and at != start:
                return  # the subtree asked for is read
            code = data[at]
            if code == 0:
                at += 1
                depth -= 1
                if skip_below and depth < skip_below:
                    skip_below = 0
                continue
            if code < 0x80:  # a DIE that is not reported, and not left by its DW_AT_sibling: stepped over
                tag, children, _, size, skip, sibling = abbrevs[code]
                if skip is not None and (skip_below or not (tag in WANTED or children and sibling)):
                    at = at + 1 + size if size >= 0 else _skip(data, at + 1, skip)
                    if children:
                        depth += 1
                        skip_below = skip_below or depth
                    continue
            offset = at
            code, tag, children, attrs, at = self.die(unit, at)
            if skip_below:
                depth += children
                continue
            wanted = tag in WANTED
            if wanted:
                yield depth, offset, tag, attrs
            if children:
                if wanted and (enter_scopes or tag not in SCOPES):
                    depth += 1
                elif AT_SIBLING in attrs:
                    at = attrs[AT_SIBLING][1]
                else:
                    depth += 1
                    skip_below = depth
