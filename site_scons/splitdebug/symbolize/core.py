"""A core file as input: the mapped files from its NT_FILE note, each module's build-id read from its
first page in the core's memory (the kernel dumps ELF headers), and each thread's program counter
from its NT_PRSTATUS note, as `eu-unstrip -n --core` and `eu-stack --core` find them. The PCs become
requests like any log's (an ELF virtual address of a module named by build-id and path).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from ..elf.read import open_regular
from ..errors import SplitDebugError
from .inputs import Request

ET_CORE, PT_LOAD, PT_NOTE = 4, 1, 4
NT_PRSTATUS, NT_FILE, NT_GNU_BUILD_ID = 1, 0x46494C45, 3
# Where elf_prstatus holds pr_pid and the PC among pr_reg, per machine (64-bit little-endian Linux).
PRSTATUS = {62: (32, 112 + 16 * 8), 183: (32, 112 + 32 * 8)}  # x86-64: rip; aarch64: pc
MAX_NOTES = 64 << 20  # bytes of notes read: a core's are kilobytes; a damaged header must not cost more


@dataclass(frozen=True)
class CoreModule:
    path: str
    start: int  # where its first page (file offset 0) is mapped
    end: int  # the end of its last mapping
    build_id: str | None
    bias: int  # load address - ELF vaddr


@dataclass(frozen=True)
class CoreThread:
    pid: int
    pc: int


class CoreError(SplitDebugError):
    pass


class _Core:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open_regular(path) as f:
                self.data = f.read()
        except OSError as err:
            raise CoreError(f"{path}: cannot read: {err.strerror}") from None
        d = self.data
        if d[:4] != b"\x7fELF" or len(d) < 64:
            raise CoreError(f"{path}: not an ELF file")
        if d[4] != 2 or d[5] != 1:
            raise CoreError(f"{path}: only 64-bit little-endian cores are read")
        e_type, self.machine = struct.unpack_from("<HH", d, 16)
        if e_type != ET_CORE:
            raise CoreError(f"{path}: not a core file (e_type {e_type})")
        phoff, = struct.unpack_from("<Q", d, 32)
        phentsize, phnum = struct.unpack_from("<HH", d, 54)
        if phentsize != 56 or phoff + phnum * 56 > len(d):
            raise CoreError(f"{path}: damaged program headers")
        self.phdrs = [struct.unpack_from("<IIQQQQQQ", d, phoff + i * 56) for i in range(phnum)]

    def notes(self, data: bytes) -> list[tuple[bytes, int, bytes]]:
        out, at = [], 0
        while at + 12 <= len(data):
            namesz, descsz, typ = struct.unpack_from("<III", data, at)
            at += 12
            name = data[at:at + namesz].rstrip(b"\0")
            at += (namesz + 3) & ~3
            out.append((name, typ, data[at:at + descsz]))
            at += (descsz + 3) & ~3
        return out

    def core_notes(self) -> list[tuple[bytes, int, bytes]]:
        out = []
        for typ, _, offset, _, _, filesz, _, _ in self.phdrs:
            if typ == PT_NOTE:
                out += self.notes(self.data[offset:offset + min(filesz, MAX_NOTES)])
        return out

    def memory(self, addr: int, size: int) -> bytes:
        """Bytes the core holds at `addr` (fewer, or none, where it dumped less)."""
        for typ, _, offset, vaddr, _, filesz, _, _ in self.phdrs:
            if typ == PT_LOAD and vaddr <= addr < vaddr + filesz:
                return self.data[offset + addr - vaddr:offset + min(addr - vaddr + size, filesz)]
        return b""


def _module(core: _Core, path: str, start: int, end: int) -> CoreModule:
    """Its build-id and load bias, from the ELF and program headers in its first mapped page."""
    head = core.memory(start, 4096)
    if head[:4] != b"\x7fELF" or len(head) < 64:
        return CoreModule(path, start, end, None, start)
    phoff, = struct.unpack_from("<Q", head, 32)
    phnum, = struct.unpack_from("<H", head, 56)
    phdrs = [struct.unpack_from("<IIQQQQQQ", head, phoff + i * 56) for i in range(phnum)
             if phoff + (i + 1) * 56 <= len(head)]
    loads = [p[3] for p in phdrs if p[0] == PT_LOAD]
    bias = start - (min(loads) & ~0xFFF) if loads else start
    build_id = None
    for typ, _, _, vaddr, _, filesz, _, _ in phdrs:
        if typ == PT_NOTE and build_id is None:
            for name, ntype, desc in core.notes(core.memory(bias + vaddr, min(filesz, 4096))):
                if name == b"GNU" and ntype == NT_GNU_BUILD_ID and desc:
                    build_id = desc.hex()
    return CoreModule(path, start, end, build_id, bias)


def read_core(path: str | os.PathLike[str]) -> tuple[list[CoreModule], list[CoreThread]]:
    """The modules mapped in a core and each thread's PC; CoreError (one line) when it is not one."""
    core = _Core(os.fspath(path))
    if core.machine not in PRSTATUS:
        raise CoreError(f"{core.path}: cores of machine {core.machine} are not read")
    pid_at, pc_at = PRSTATUS[core.machine]
    threads: list[CoreThread] = []
    spans: dict[str, tuple[int, int]] = {}
    first: dict[str, int] = {}
    for name, typ, desc in core.core_notes():
        if name == b"CORE" and typ == NT_PRSTATUS and len(desc) >= pc_at + 8:
            threads.append(CoreThread(struct.unpack_from("<i", desc, pid_at)[0],
                                      struct.unpack_from("<Q", desc, pc_at)[0]))
        elif name == b"CORE" and typ == NT_FILE and len(desc) >= 16:
            count, _page = struct.unpack_from("<QQ", desc, 0)
            if 16 + count * 24 > len(desc):
                raise CoreError(f"{core.path}: damaged NT_FILE note")
            names = desc[16 + count * 24:].split(b"\0")
            for i in range(count):
                start, end, ofs = struct.unpack_from("<QQQ", desc, 16 + i * 24)
                file = names[i].decode("utf-8", "surrogateescape") if i < len(names) else "??"
                lo, hi = spans.get(file, (start, end))
                spans[file] = (min(lo, start), max(hi, end))
                if ofs == 0 and file not in first:
                    first[file] = start
    modules = sorted((_module(core, f, first.get(f, lo), hi) for f, (lo, hi) in spans.items()),
                     key=lambda m: m.start)
    return modules, threads


def core_requests(path: str | os.PathLike[str]) -> list[tuple[str, Request]]:
    """Per thread: a heading line, and the request for its PC (kind `unmapped` when no file maps it)."""
    modules, threads = read_core(path)
    out = []
    for thread in threads:
        module = next((m for m in modules if m.start <= thread.pc < m.end), None)
        if module is None:
            out.append((f"thread {thread.pid}: #0 {thread.pc:#018x} (no mapped file)",
                        Request(thread.pc, thread.pc, "unmapped")))
            continue
        request = Request(thread.pc, thread.pc - module.bias, "vaddr", build_id=module.build_id, path=module.path)
        out.append((f"thread {thread.pid}: #0 {thread.pc:#018x} in {module.path}", request))
    return out
