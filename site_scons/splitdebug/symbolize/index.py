"""A module's address index: sorted function scopes (with their inline chains), line rows and ELF
symbols, searched by bisection. Plain lists, so it pickles into the on-disk cache (cache.py) and a warm
run imports no pyelftools at all; build.py makes it from DWARF.

The units are filled lazily: the index starts with every CU's address ranges, a CU's line rows and
its functions' ranges are decoded the first time an address falls in it, and a function's scopes the
first time an address falls in that function (units.py), as libdw reads only the units it is asked
about. A cached index keeps what was filled so far; `dirty` says it gained some.

The answers follow libdw (what `eu-addr2line -f -i -C` prints): the line row is the last row at the
greatest address not above the one asked, an end-of-sequence row means no line; a function's name is
its linkage name (demangled) when it has one, through DW_AT_abstract_origin and DW_AT_specification,
else its DW_AT_name; where DWARF knows no function, the symbol table names it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import SplitDebugError

INDEX_VERSION = 10  # bump when the pickled shape changes: old cache entries are then rebuilt


class IndexError_(SplitDebugError):
    """A debug source that cannot be read; the frame degrades to the next source."""


@dataclass(frozen=True)
class Frame:
    """One function of an answer; `inlined` frames sit inside the next one."""

    function: str | None
    file: str | None
    line: int
    column: int
    inlined: bool = False


# A scope of a chain: (name id, call file id, call line, call column); the call site is where the
# scope was inlined into its parent (-1 for an out-of-line function).
Scope = tuple[int, int, int, int]
Row = tuple[int, int, int] | None  # a line row: (file id, line, column); None: no line here


@dataclass
class AddressIndex:
    """Everything needed to answer an address, as plain lists (pickled as is)."""

    version: int = INDEX_VERSION
    names: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    chains: list[tuple[Scope, ...]] = field(default_factory=list)  # outermost first
    # Arrays, not lists of ints: a cache entry loads as a few byte copies.
    cu_offsets: list[int] = field(default_factory=list)  # each CU's offset in .debug_info
    cu_filled: bytearray = field(default_factory=bytearray)  # per CU: 1 once its rows and its entries are here
    scope_starts: list[array[int]] = field(default_factory=list)  # per CU, painted from scope_spans
    scope_chain: list[array[int]] = field(default_factory=list)  # -1: no function here
    # per CU: (low, high, depth, chain id) of the scopes decoded so far, and (low, high, DIE offset) of
    # the functions not decoded yet (a unit's scopes are decoded function by function, when asked)
    scope_spans: list[list[tuple[int, int, int, int]]] = field(default_factory=list)
    scope_pending: list[list[tuple[int, int, int]]] = field(default_factory=list)
    line_starts: list[array[int]] = field(default_factory=list)  # per CU
    line_file: list[array[int]] = field(default_factory=list)  # file id, -1: no line here
    line_line: list[array[int]] = field(default_factory=list)
    line_col: list[array[int]] = field(default_factory=list)
    cu_starts: array[int] = field(default_factory=lambda: array("Q"))  # every CU's address ranges, sorted
    cu_of_range: array[int] = field(default_factory=lambda: array("i"))
    cu_end: int = 0
    sym_starts: array[int] = field(default_factory=lambda: array("Q"))
    sym_ends: array[int] = field(default_factory=lambda: array("Q"))
    sym_names: array[int] = field(default_factory=lambda: array("i"))
    loads: list[tuple[int, int, int]] = field(default_factory=list)  # PT_LOAD (vaddr, memsz, offset)
    code: list[tuple[int, int]] = field(default_factory=list)  # executable PT_LOAD ranges
    # Not pickled: what fills a CU on demand (units.CuFiller: its rows and entries with None, else the
    # functions at those DIE offsets), and whether one was filled since loading.
    filler: Callable[[AddressIndex, int, list[int] | None], None] | None = None
    dirty: bool = False

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "filler": None, "dirty": False}

    def add_unit(self, offset: int) -> int:
        """A CU, not filled yet; its rows and scopes are placeholders until then."""
        self.cu_offsets.append(offset)
        self.cu_filled.append(0)
        for table, code in ((self.scope_starts, "Q"), (self.scope_chain, "i"), (self.line_starts, "Q"),
                            (self.line_file, "i"), (self.line_line, "I"), (self.line_col, "I")):
            table.append(array(code))
        self.scope_spans.append([])
        self.scope_pending.append([])
        return len(self.cu_offsets) - 1

    def unit_at(self, addr: int) -> int:
        """The CU answering `addr` (filled now if it was not), or -1."""
        # The CU is the one whose range starts last at or below the address, as libdwfl's
        # addrarange takes it (a gap belongs to the range before it), up to the last range's end.
        c = bisect_right(self.cu_starts, addr) - 1
        if c < 0 or addr > self.cu_end:
            return -1
        cu = self.cu_of_range[c]
        if not self.cu_filled[cu]:
            if self.filler is None:
                return -1
            self.filler(self, cu, None)
            self.cu_filled[cu] = 1
            self.dirty = True
        return cu

    def _decode_scopes(self, cu: int, addr: int | None) -> None:
        """The functions of the CU not decoded yet that hold `addr` (None: all of them)."""
        pending = self.scope_pending[cu]
        if not pending or self.filler is None:
            return
        hits = {off for lo, hi, off in pending if addr is None or lo <= addr < hi}
        if hits:
            self.scope_pending[cu] = [p for p in pending if p[2] not in hits]  # once, even when damaged
            self.filler(self, cu, sorted(hits))
            self.dirty = True

    def fill_all(self) -> None:
        """Every CU (for comparisons in the tests)."""
        for c in range(len(self.cu_of_range)):
            self.unit_at(self.cu_starts[c])
        for cu in range(len(self.cu_offsets)):
            self._decode_scopes(cu, None)

    def symbol_at(self, addr: int) -> str | None:
        i = bisect_right(self.sym_starts, addr) - 1
        while i >= 0 and self.sym_starts[i] <= addr:
            if addr < self.sym_ends[i]:
                return self.names[self.sym_names[i]]
            if i == 0 or self.sym_starts[i - 1] != self.sym_starts[i]:
                break
            i -= 1
        return None

    def symbol_address(self, name: str) -> int | None:
        """The address of the symbol `name` (for `prog(main+0x1a)`)."""
        for start, nid in zip(self.sym_starts, self.sym_names, strict=True):
            if self.names[nid] == name:
                return start
        return None

    def _row(self, addr: int) -> tuple[int, int]:
        """(CU, row index) of the line row answering `addr`, or (-1, -1)."""
        cu = self.unit_at(addr)
        if cu < 0:
            return -1, -1
        i = bisect_right(self.line_starts[cu], addr) - 1
        return (cu, i) if i >= 0 and self.line_file[cu][i] >= 0 else (-1, -1)

    def line_at(self, addr: int) -> tuple[str | None, int, int]:
        cu, i = self._row(addr)
        if i < 0:
            return None, 0, 0
        return self.files[self.line_file[cu][i]], self.line_line[cu][i], self.line_col[cu][i]

    def row_address(self, addr: int) -> int | None:
        """Where the line row answering `addr` starts (eu-addr2line -i builds its chain there)."""
        cu, i = self._row(addr)
        return self.line_starts[cu][i] if i >= 0 else None

    def lookup(self, addr: int) -> list[Frame]:
        """Frames for `addr`, innermost first; [] when nothing here knows it."""
        cu = self.unit_at(addr)
        chain: tuple[Scope, ...] = ()
        if cu >= 0:
            self._decode_scopes(cu, addr)
            i = bisect_right(self.scope_starts[cu], addr) - 1
            if i >= 0 and self.scope_chain[cu][i] >= 0:
                chain = self.chains[self.scope_chain[cu][i]]
        file, line, col = self.line_at(addr)
        if not chain:
            name = self.symbol_at(addr)
            if name is None and file is None:
                return []
            return [Frame(name, file, line, col)]
        frames = []
        for depth in range(len(chain) - 1, -1, -1):
            name_id, call_file, call_line, call_col = chain[depth]
            frames.append(Frame(self.names[name_id], file, line, col, inlined=depth > 0))
            file = self.files[call_file] if call_file >= 0 else None
            line, col = call_line, call_col
        return frames

    def vaddr_of_offset(self, offset: int) -> int:
        """A module-relative address (from the lowest mapped page, as dwfl and systemd print it)."""
        if not self.loads:
            return offset
        return offset + (min(v for v, _, _ in self.loads) & ~0xFFF)


