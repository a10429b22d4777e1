"""The DWARF line-number program, decoded with plain byte arithmetic: pyelftools parses each opcode
through construct (5 s of a 12 s index build for a 1.5 MB lua binary); its header parse is kept.

Yields the rows as (address, file index, line, column, end_sequence), in program order; define_file
entries are appended to the header's file list, as pyelftools does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal


def _uleb(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, at


def _sleb(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return (value - (1 << shift) if b & 0x40 else value), at


def line_rows(lp: Any, data: bytes, little_endian: bool) -> Iterator[tuple[int, int, int, int, bool]]:
    """Rows of the line program `lp` (a pyelftools LineProgram) whose section bytes are `data`."""
    h = lp.header
    min_len = h["minimum_instruction_length"]
    line_base, line_range, opcode_base = h["line_base"], h["line_range"], h["opcode_base"]
    lengths = list(h["standard_opcode_lengths"])
    order: Literal["little", "big"] = "little" if little_endian else "big"
    at, end = lp.program_start_offset, min(lp.program_end_offset, len(data))
    address, file, line, column = 0, 1, 1, 0
    while at < end:
        op = data[at]
        at += 1
        if op >= opcode_base:
            adjusted = op - opcode_base
            address += (adjusted // line_range) * min_len
            line += line_base + adjusted % line_range
            yield address, file, line, column, False
        elif op == 0:
            size, at = _uleb(data, at)
            if size == 0:
                continue
            sub, body, at = data[at], at + 1, at + size
            if sub == 1:  # end_sequence
                yield address, file, line, column, True
                address, file, line, column = 0, 1, 1, 0
            elif sub == 2:  # set_address
                address = int.from_bytes(data[body:at], order)
            elif sub == 3:  # define_file (DWARF < 5)
                name_end = data.index(b"\0", body)
                h["file_entry"].append(_FileEntry(data[body:name_end], _uleb(data, name_end + 1)[0]))
        elif op == 1:  # copy
            yield address, file, line, column, False
        elif op == 2:  # advance_pc
            n, at = _uleb(data, at)
            address += n * min_len
        elif op == 3:  # advance_line
            n, at = _sleb(data, at)
            line += n
        elif op == 4:  # set_file
            file, at = _uleb(data, at)
        elif op == 5:  # set_column
            column, at = _uleb(data, at)
        elif op == 8:  # const_add_pc
            address += ((255 - opcode_base) // line_range) * min_len
        elif op == 9:  # fixed_advance_pc
            address += int.from_bytes(data[at:at + 2], order)
            at += 2
        else:  # negate_stmt, basic_block, prologue/epilogue, isa, and opcodes we do not know
            for _ in range(lengths[op - 1] if op - 1 < len(lengths) else 0):
                _, at = _uleb(data, at)


class _FileEntry:
    """What the index reads of a file entry (pyelftools' Container has the same fields)."""

    def __init__(self, name: bytes, dir_index: int) -> None:
        self.name, self.dir_index = name, dir_index
