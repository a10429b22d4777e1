"""The DWARF line-number program, decoded with plain byte arithmetic: pyelftools parses each opcode
through construct (5 s of a 12 s index build for a 1.5 MB lua binary); its header parse is kept.

Gives the rows sequence by sequence, as lists of addresses, file indexes, lines and columns in program
order; define_file entries are appended to the header's file list, as pyelftools does.
"""

from __future__ import annotations

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


Sequence = tuple[list[int], list[int], list[int], list[int]]  # addresses, files (-1: end), lines, columns


def sequences(lp: Any, data: bytes, little_endian: bool) -> list[Sequence]:
    """The sequences of the line program `lp` (ours or pyelftools') whose section bytes are `data`,
    each as parallel lists in program order, its end_sequence row last with file -1. Special opcodes
    (most of a program) cost one table look-up each."""
    h = lp.header
    min_len = h["minimum_instruction_length"]
    line_base, line_range, opcode_base = h["line_base"], h["line_range"], h["opcode_base"]
    lengths = list(h["standard_opcode_lengths"])
    advance = [((op - opcode_base) // line_range) * min_len if op >= opcode_base else 0 for op in range(256)]
    step = [line_base + (op - opcode_base) % line_range if op >= opcode_base else 0 for op in range(256)]
    order: Literal["little", "big"] = "little" if little_endian else "big"
    at, end = lp.program_start_offset, min(lp.program_end_offset, len(data))
    out: list[Sequence] = []
    addrs: list[int] = []
    files: list[int] = []
    lines: list[int] = []
    cols: list[int] = []
    address, file, line, column = 0, 1, 1, 0
    while at < end:
        op = data[at]
        at += 1
        if op >= opcode_base:
            address += advance[op]
            line += step[op]
            addrs.append(address)
            files.append(file)
            lines.append(line)
            cols.append(column)
        elif op == 0:
            size, at = _uleb(data, at)
            if size == 0:
                continue
            sub, body, at = data[at], at + 1, at + size
            if sub == 1:  # end_sequence
                addrs.append(address)
                files.append(-1)
                lines.append(line)
                cols.append(column)
                out.append((addrs, files, lines, cols))
                addrs, files, lines, cols = [], [], [], []
                address, file, line, column = 0, 1, 1, 0
            elif sub == 2:  # set_address
                address = int.from_bytes(data[body:at], order)
            elif sub == 3:  # define_file (DWARF < 5)
                name_end = data.index(b"\0", body)
                h["file_entry"].append(_FileEntry(data[body:name_end], _uleb(data, name_end + 1)[0]))
        elif op == 1:  # copy
            addrs.append(address)
            files.append(file)
            lines.append(line)
            cols.append(column)
        elif op == 2:  # advance_pc
            n = data[at]
            if n < 0x80:
                at += 1
            else:
                n, at = _uleb(data, at)
            address += n * min_len
        elif op == 3:  # advance_line
            n = data[at]
            if n < 0x40:
                line += n
                at += 1
            else:
                n, at = _sleb(data, at)
                line += n
        elif op == 4:  # set_file
            file, at = _uleb(data, at)
        elif op == 5:  # set_column (gcc writes one before most rows: its one-byte form inline)
            column = data[at]
            if column < 0x80:
                at += 1
            else:
                column, at = _uleb(data, at)
        elif op == 6 or op == 7:  # negate_stmt, basic_block
            pass
        elif op == 8:  # const_add_pc
            address += ((255 - opcode_base) // line_range) * min_len
        elif op == 9:  # fixed_advance_pc
            address += int.from_bytes(data[at:at + 2], order)
            at += 2
        else:  # negate_stmt, basic_block, prologue/epilogue, isa, and opcodes we do not know
            for _ in range(lengths[op - 1] if op - 1 < len(lengths) else 0):
                _, at = _uleb(data, at)
    return out


class _FileEntry:
    """What the index reads of a file entry (pyelftools' Container has the same fields)."""

    def __init__(self, name: bytes, dir_index: int) -> None:
        self.name, self.dir_index = name, dir_index


class LineProgram:
    """A line program's header, read from .debug_line (DWARF 2-5), shaped as pyelftools' LineProgram
    for sequences() and the file table: `header[...]`, `program_start_offset`, `program_end_offset`."""

    def __init__(self, data: bytes, at: int, little_endian: bool, strings: dict[int, bytes]) -> None:
        order: Literal["little", "big"] = "little" if little_endian else "big"

        def u(size: int) -> int:
            nonlocal at
            value = int.from_bytes(data[at:at + size], order)
            at += size
            return value

        def cstr() -> bytes:
            nonlocal at
            end = data.index(b"\0", at)
            value, at = data[at:end], end + 1
            return value

        length, offset_size = u(4), 4
        if length == 0xFFFFFFFF:
            length, offset_size = u(8), 8
        self.program_end_offset = at + length
        version = u(2)
        if version >= 5:
            at += 2  # address_size, segment_selector_size
        header_length = u(offset_size)
        self.program_start_offset = at + header_length
        h: dict[str, Any] = {"version": version, "minimum_instruction_length": u(1)}
        if version >= 4:
            at += 1  # maximum_operations_per_instruction
        at += 1  # default_is_stmt
        h["line_base"] = int.from_bytes(data[at:at + 1], order, signed=True)
        at += 1
        h["line_range"], h["opcode_base"] = u(1), u(1)
        h["standard_opcode_lengths"] = list(data[at:at + h["opcode_base"] - 1])
        at += h["opcode_base"] - 1
        if version < 5:
            dirs = []
            while data[at]:
                dirs.append(cstr())
            at += 1
            files = []
            while data[at]:
                name = cstr()
                dir_index, at = _uleb(data, at)
                _, at = _uleb(data, at)
                _, at = _uleb(data, at)
                files.append(_FileEntry(name, dir_index))
        else:
            def entries() -> list[dict[int, Any]]:
                nonlocal at
                formats = []
                for _ in range(u(1)):
                    kind, at = _uleb(data, at)
                    form, at = _uleb(data, at)
                    formats.append((kind, form))
                count, at = _uleb(data, at)
                out = []
                for _ in range(count):
                    entry: dict[int, Any] = {}
                    for kind, form in formats:
                        if form == 0x08:
                            entry[kind] = cstr()
                        elif form in (0x1F, 0x0E):  # line_strp, strp
                            table = strings[form]
                            off = u(offset_size)
                            entry[kind] = table[off:table.index(b"\0", off)]
                        elif form == 0x0F:
                            entry[kind], at = _uleb(data, at)
                        elif form in (0x0B, 0x05, 0x06, 0x07, 0x1E):
                            entry[kind] = u({0x0B: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x1E: 16}[form])
                        elif form == 0x09:
                            size, at = _uleb(data, at)
                            at += size
                        else:
                            raise ValueError(f"line table entry form {form:#x}")
                    out.append(entry)
                return out

            dirs = [e.get(1, b"") for e in entries()]  # DW_LNCT_path
            files = [_FileEntry(e.get(1, b""), e.get(2, 0)) for e in entries()]  # path, directory_index
        h["include_directory"], h["file_entry"] = dirs, files
        self.header = h
