"""Recognising addresses in log lines: each format's regular expression turns a line into requests
(a module, an address and what the address is relative to); any other line is not ours and is echoed.

Address kinds: `vaddr` is the ELF's own virtual address (llvm-symbolizer's and eu-addr2line's input,
and glibc's and the sanitizers' `+0x…`: the PC minus the load bias); `offset` is relative to the
module's lowest mapped page (systemd-coredump, `BUILDID+0x…`), the same as a vaddr for PIE and shared
objects; `symbol` is `name+0x…` (glibc without -rdynamic); markup addresses are absolute and are
turned into vaddrs through the `mmap` elements seen before them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One address to symbolize."""

    address: int         # as the log gave it (for the output)
    value: int           # the number to look up, of `kind`
    kind: str            # vaddr, offset or symbol
    build_id: str | None = None
    path: str | None = None  # a path or a bare file name (libfoo.so.1)
    symbol: str | None = None
    return_address: bool = False  # the PC after a call: look up value - 1, as gdb does


@dataclass
class MarkupState:
    """Symbolizer Markup's module and mmap elements seen so far (a reset forgets them)."""

    modules: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (name, build-id)
    starts: list[int] = field(default_factory=list)
    maps: list[tuple[int, int, str, int]] = field(default_factory=list)  # (start, end, module id, vaddr)

    def add_map(self, start: int, size: int, module: str, vaddr: int) -> None:
        i = bisect_right(self.starts, start)
        self.starts.insert(i, start)
        self.maps.insert(i, (start, start + size, module, vaddr))

    def find(self, addr: int) -> tuple[str, str, int] | None:
        """(name, build-id, vaddr) of an absolute address, by bisection over the mapped ranges."""
        i = bisect_right(self.starts, addr) - 1
        if i < 0 or addr >= self.maps[i][1]:
            return None
        start, _, module, vaddr = self.maps[i]
        name, build_id = self.modules.get(module, ("", ""))
        return name, build_id, addr - start + vaddr


@dataclass
class ParseState:
    markup: MarkupState = field(default_factory=MarkupState)
    coredump_modules: dict[str, str] = field(default_factory=dict)  # name -> build-id


HEX = r"(?:0x)?[0-9a-fA-F]+"
BUILD_ID = r"[0-9a-fA-F]{8,128}"
R_BUILDID_PLUS = re.compile(rf"^\s*(?P<bid>{BUILD_ID})\+(?P<off>0x[0-9a-fA-F]+)\s*$")
R_LLVM_BUILDID = re.compile(rf"^\s*BUILDID:(?P<bid>{BUILD_ID})\s+(?P<addr>0x[0-9a-fA-F]+)\s*$")
R_PATH_ADDR = re.compile(r"^\s*(?P<path>/\S+|\S+/\S+)\s+(?P<addr>0x[0-9a-fA-F]+)\s*$")
# glibc backtrace_symbols_fd: FILE(SYMBOL+0xOFF)[0xPC] or FILE(+0xOFF)[0xPC] or FILE[0xPC]
R_GLIBC = re.compile(r"^(?P<lead>.*?)(?P<path>[^\s()\[\]]+)\((?P<sym>[^()+\s]*)(?:\+(?P<off>0x[0-9a-fA-F]+))?\)"
                     r"\s*\[(?P<pc>0x[0-9a-fA-F]+)\]\s*$")
# sanitizers: #3 0x55d2 in f (/usr/bin/prog+0x1234) (BuildId: abcd)
R_SANITIZER = re.compile(r"^\s*#(?P<n>\d+)\s+(?P<pc>0x[0-9a-fA-F]+)\s+(?:in\s+.*?\s+)?\((?P<path>[^()\s]+)\+"
                         rf"(?P<off>0x[0-9a-fA-F]+)\)(?:\s+\(BuildId:\s*(?P<bid>{BUILD_ID})\))?\s*$")
# systemd-coredump: Module libfoo.so.1 with build-id abcd…  /  #0 0x00007f… n/a (libfoo.so.1 + 0x1234)
R_CORE_MODULE = re.compile(rf"^\s*Module\s+(?P<name>\S+)\s+(?:from\s+\S+\s+)?with\s+build-id\s+(?P<bid>{BUILD_ID})")
R_CORE_FRAME = re.compile(r"^\s*#(?P<n>\d+)\s+(?P<pc>0x[0-9a-fA-F]+)\s+\S.*?\((?P<name>[^()\s]+)\s+\+\s+"
                          r"(?P<off>0x[0-9a-fA-F]+)\)\s*$")
R_MARKUP = re.compile(r"\{\{\{(?P<tag>[a-z]+)(?::(?P<body>[^}]*))?\}\}\}")


def _int(text: str) -> int:
    return int(text, 16)


def parse_line(line: str, state: ParseState) -> list[Request] | None:
    """The requests in one line (without its newline), or None when it is not an input of ours.

    A line that only declares context (a markup module or mmap, a coredump Module line) returns []:
    it is echoed, and later frames use it."""
    if "{{{" in line:
        return _markup(line, state.markup)
    m = R_CORE_MODULE.match(line)
    if m:
        state.coredump_modules[m["name"]] = m["bid"].lower()
        return []
    m = R_CORE_FRAME.match(line)
    if m:
        name = m["name"]
        return [Request(_int(m["pc"]), _int(m["off"]), "offset", build_id=state.coredump_modules.get(name),
                        path=name, return_address=m["n"] != "0")]
    m = R_SANITIZER.match(line)
    if m:  # the sanitizers already print the call's own address (PC - 1) for outer frames
        bid = m["bid"].lower() if m["bid"] else None
        return [Request(_int(m["pc"]), _int(m["off"]), "vaddr", build_id=bid, path=m["path"])]
    m = R_BUILDID_PLUS.match(line)
    if m:
        return [Request(_int(m["off"]), _int(m["off"]), "offset", build_id=m["bid"].lower())]
    m = R_LLVM_BUILDID.match(line)
    if m:
        return [Request(_int(m["addr"]), _int(m["addr"]), "vaddr", build_id=m["bid"].lower())]
    m = R_GLIBC.match(line)
    if m:
        pc = _int(m["pc"])
        if m["sym"]:
            return [Request(pc, _int(m["off"] or "0"), "symbol", path=m["path"], symbol=m["sym"],
                            return_address=True)]
        if m["off"]:
            return [Request(pc, _int(m["off"]), "vaddr", path=m["path"], return_address=True)]
        return None  # FILE[0xPC] alone: an absolute PC with no load address to relate it to
    m = R_PATH_ADDR.match(line)
    if m:
        return [Request(_int(m["addr"]), _int(m["addr"]), "vaddr", path=m["path"])]
    return None


def _markup(line: str, st: MarkupState) -> list[Request] | None:
    found: list[Request] = []
    recognised = False
    for m in R_MARKUP.finditer(line):
        tag, fields = m["tag"], (m["body"] or "").split(":")
        try:
            if tag == "reset":
                st.modules.clear()
                st.starts.clear()
                st.maps.clear()
            elif tag == "module" and len(fields) >= 4:  # module:ID:NAME:elf:BUILDID
                st.modules[fields[0]] = (fields[1], fields[3].lower())
            elif tag == "mmap" and len(fields) >= 6 and fields[2] == "load":  # mmap:START:SIZE:load:ID:FLAGS:VADDR
                st.add_map(_int(fields[0]), _int(fields[1]), fields[3], _int(fields[5]))
            elif tag in ("bt", "pc") and fields:
                addr = _int(fields[1] if tag == "bt" else fields[0])
                rest = fields[2:] if tag == "bt" else fields[1:]
                kind = rest[0] if rest else ""
                ra = kind == "ra" or (tag == "bt" and kind == "" and fields[0] != "0")
                hit = st.find(addr)
                if hit is None:
                    found.append(Request(addr, addr, "unmapped", return_address=ra))
                else:
                    name, bid, vaddr = hit
                    found.append(Request(addr, vaddr, "vaddr", build_id=bid or None, path=name or None,
                                         return_address=ra))
            else:
                continue
            recognised = True
        except (ValueError, IndexError):
            continue
    return found if recognised else None
