"""What a linked shared library exports (.dynsym, versions) and hides (.symtab), demangled."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..elf import read as elfread
from ..errors import ElfError, ToolError

@dataclass(frozen=True)
class DynamicSymbol:
    """One exported symbol: defined in .dynsym, not a toolchain or version-node symbol."""

    name: str
    demangled: str
    type: str  # FUNC, OBJECT, TLS, IFUNC, NOTYPE…
    version: str | None  # the version node it is bound to; None when unversioned

    def display(self) -> str:
        return self.demangled if self.demangled != self.name else self.name


@dataclass(frozen=True)
class LibrarySymbols:
    path: str
    exported: tuple[DynamicSymbol, ...]
    version_nodes: frozenset[str]
    internal: tuple[tuple[str, str], ...]  # (name, demangled) defined in .symtab, not exported
    has_symtab: bool


def read_library(path: str | os.PathLike[str], *, cxxfilt: str | None = None) -> LibrarySymbols:
    """The exported symbols of a shared object (and, from .symtab, the defined ones it hides).

    ElfError for a file that is not a readable ELF; ToolError when c++filt fails.
    """
    p = os.fspath(path)
    info = elfread.read_elf(p)
    if info.section(".dynsym") is None:
        raise ElfError(p, "no .dynsym section (not a dynamically linked object)")
    dynsym = list(elfread.iter_symbols(p, ".dynsym"))
    nodes, versions = elfread.symbol_versions(p, info, len(dynsym))
    exported: list[tuple[str, str, str | None]] = []
    for index, (name, stype, bind, defined) in enumerate(dynsym):
        if not name or not defined or bind == "STB_LOCAL":
            continue
        if name in elfread.TOOLCHAIN_SYMBOLS or name in nodes:
            continue
        exported.append((name, _short_type(stype), versions[index] if index < len(versions) else None))
    exported_names = {n for n, _, _ in exported}
    internal: list[str] = []
    has_symtab = info.section(".symtab") is not None
    if has_symtab:
        seen: set[str] = set()
        for name, stype, _, defined in elfread.iter_symbols(p, ".symtab"):
            if (defined and name and stype not in ("STT_FILE", "STT_SECTION") and name not in exported_names
                    and name not in seen and name not in elfread.TOOLCHAIN_SYMBOLS):
                seen.add(name)
                internal.append(name)
    demangled = demangle([n for n, _, _ in exported] + internal, cxxfilt=cxxfilt)
    return LibrarySymbols(
        path=p,
        exported=tuple(sorted((DynamicSymbol(n, demangled.get(n, n), t, v) for n, t, v in exported),
                              key=lambda s: (s.name, s.version or ""))),
        version_nodes=nodes,
        internal=tuple((n, demangled.get(n, n)) for n in internal),
        has_symtab=has_symtab,
    )


def _short_type(stype: str) -> str:
    short = stype.removeprefix("STT_")
    return {"GNU_IFUNC": "IFUNC", "LOOS": "IFUNC"}.get(short, short)


def _interrupted(returncode: int) -> None:
    """A tool killed by the user's Ctrl-C (the whole process group gets it): an interrupt, not a
    tool failure, so the caller (SCons) says "interrupted" rather than quoting c++filt."""
    if returncode == -signal.SIGINT:
        raise KeyboardInterrupt


def demangle(names: Iterable[str], *, cxxfilt: str | None = None) -> dict[str, str]:
    """Demangled form of each mangled (`_Z…`) name: one c++filt run for all of them."""
    mangled = sorted({n for n in names if n.startswith("_Z")})
    if not mangled:
        return {}
    tool = cxxfilt or os.environ.get("CXXFILT", "c++filt")
    argv = [tool]
    try:
        proc = subprocess.run(argv, input="\n".join(mangled) + "\n", capture_output=True, text=True)
    except OSError as err:
        raise ToolError(tool, argv, err.strerror or str(err)) from None
    _interrupted(proc.returncode)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(mangled):
        raise ToolError(tool, argv, proc.stderr or f"expected {len(mangled)} lines, got {len(lines)}")
    return dict(zip(mangled, lines, strict=True))


def archive_symbols(archives: Sequence[str | os.PathLike[str]], *, nm: str | None = None) -> dict[str, str]:
    """Global symbols the static archives define: name -> archive (the first one, as ld searches).

    One `nm` run for all of them. ToolError when nm fails.
    """
    paths = [os.fspath(a) for a in archives]
    if not paths:
        return {}
    tool = nm or os.environ.get("NM", "nm")
    argv = [tool, "-A", "-P", "-g", "--defined-only", *paths]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except OSError as err:
        raise ToolError(paths[0], argv, err.strerror or str(err)) from None
    _interrupted(proc.returncode)
    if proc.returncode != 0:
        raise ToolError(paths[0], argv, proc.stderr)
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        where, sep, rest = line.partition(": ")  # "lib.a[member.o]: name T value size"
        fields = rest.split()
        if sep and fields:
            out.setdefault(fields[0], where.split("[", 1)[0])
    return out


@dataclass(frozen=True)
class DeclaredSymbol:
    """A symbol an object file defines with GLOBAL binding and default visibility: declared API."""

    name: str
    demangled: str
    object: str


def declared_symbols(objects: Sequence[str | os.PathLike[str]], *,
                     cxxfilt: str | None = None) -> list[DeclaredSymbol]:
    """What the library's own objects declare as API (built with -fvisibility=hidden, that is what the
    sources mark `visibility("default")`). Weak definitions are vague linkage (templates, inline
    functions instantiated in every object), not declarations, and are left out.

    pyelftools reads the objects (relocatable files, read once per link). ElfError for a bad object.
    """
    from elftools.common.exceptions import ELFError  # the build check only: not every run needs it
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    found: list[tuple[str, str]] = []
    for obj in objects:
        path = os.fspath(obj)
        try:
            with open(path, "rb") as f:
                symtab = ELFFile(f).get_section_by_name(".symtab")
                if not isinstance(symtab, SymbolTableSection):
                    continue
                for sym in symtab.iter_symbols():
                    if (sym["st_info"]["bind"] == "STB_GLOBAL" and sym["st_shndx"] != "SHN_UNDEF"
                            and sym["st_other"]["visibility"] == "STV_DEFAULT"
                            and sym["st_info"]["type"] not in ("STT_SECTION", "STT_FILE") and sym.name):
                        found.append((sym.name, path))
        except (OSError, ELFError) as err:
            raise ElfError(path, f"cannot read the object's symbols: {err}") from None
    names = demangle([n for n, _ in found], cxxfilt=cxxfilt)
    return [DeclaredSymbol(n, names.get(n, n), o) for n, o in found]
