"""`exports compare`: a library against an ABI baseline (an export list or a dpkg symbols file)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .lists import ExportEntry, ExportListError, read_text, parse_export_list
from .symbols import DynamicSymbol, LibrarySymbols

@dataclass(frozen=True)
class BaselineSymbol:
    """One symbol of a baseline: an export-list entry or a dpkg symbols-file line."""

    entry: ExportEntry
    version: str | None = None  # dpkg: name@VERSION ("Base" = unversioned); None = any
    regex: bool = False
    symver: bool = False  # dpkg (symver): the name is a version; all its symbols

    def matches(self, sym: DynamicSymbol) -> bool:
        if self.symver:
            return sym.version == self.entry.literal
        if self.version is not None and self.version != (sym.version or "Base"):
            return False
        if self.regex:
            return re.search(self.entry.literal, sym.demangled if self.entry.cxx else sym.name) is not None
        return self.entry.matches(sym.name, sym.demangled)

    def display(self) -> str:
        return self.entry.display() + (f"@{self.version}" if self.version else "")


@dataclass(frozen=True)
class Comparison:
    lost: tuple[str, ...]  # in the baseline, no longer exported
    new: tuple[str, ...]  # exported, not in the baseline


def load_baseline(path: str | os.PathLike[str], fmt: str = "auto", *, arch: str = "amd64") -> list[BaselineSymbol]:
    """An export list or a dpkg symbols file (DEBIAN/symbols, debian/libfoo1.symbols)."""
    p = os.fspath(path)
    text = read_text(p, "baseline")
    if fmt == "auto":
        fmt = "dpkg" if _looks_like_dpkg(text) else "list"
    if fmt == "dpkg":
        return parse_dpkg_symbols(text, p, arch=arch)
    return [BaselineSymbol(e) for e in parse_export_list(text, p).entries]


def _looks_like_dpkg(text: str) -> bool:
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first = line.split()
        return not line[0].isspace() and len(first) >= 2 and ".so" in first[0]
    return False


_DPKG_ARCH = re.compile(r"arch=(.+)")


def parse_dpkg_symbols(text: str, source: str, *, arch: str = "amd64") -> list[BaselineSymbol]:
    """Symbols of a dpkg symbols file (deb-symbols(5)): ` [(tags)]name@VERSION minver [id]`."""
    out: list[BaselineSymbol] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "|", "*")) or not line[0].isspace():
            continue  # comments, alternative dependencies, meta fields, library headers
        body = line.strip()
        if body.startswith(("|", "*")):
            continue
        tags: list[str] = []
        if body.startswith("("):
            end = body.find(")")
            if end < 0:
                raise ExportListError(source, number, "unterminated (tags)")
            tags = [t.strip() for t in body[1:end].split("|")]
            body = body[end + 1:]
        if body.startswith('"'):
            end = body.find('"', 1)
            if end < 0:
                raise ExportListError(source, number, "unterminated quoted symbol")
            spec = body[1:end]
        else:
            spec = body.split()[0] if body.split() else ""
        if any(_arch_excluded(t, arch) for t in tags):
            continue
        optional = "optional" in tags
        if "symver" in tags:  # ` (symver)LIBFOO_1 1.0`: every symbol of that version
            out.append(BaselineSymbol(_literal_entry(spec, number, False, optional), None, symver=True))
            continue
        name, at, version = spec.rpartition("@")
        if not at or not name:
            raise ExportListError(source, number, f"{spec!r}: expected name@VERSION")
        if name == version and not tags:
            continue  # `LIBFOO_1@LIBFOO_1`: the version node's own symbol, not an export (ours skip it too)
        out.append(BaselineSymbol(_literal_entry(name, number, "c++" in tags, optional), version,
                                  regex="regex" in tags))
    return out


def _literal_entry(name: str, line: int, cxx: bool, optional: bool) -> ExportEntry:
    return ExportEntry(name, line, None, cxx, optional, tuple((False, c) for c in name))


def _arch_excluded(tag: str, arch: str) -> bool:
    """dpkg's (arch=…), (arch-bits=…), (arch-endian=…) tags, for `arch` (a 64-bit little-endian one)."""
    if tag.startswith("arch-bits="):
        return tag != "arch-bits=64"
    if tag.startswith("arch-endian="):
        return tag != "arch-endian=little"
    m = _DPKG_ARCH.fullmatch(tag)
    if not m:
        return False
    arches = m.group(1).split()
    if all(a.startswith("!") for a in arches):
        return f"!{arch}" in arches
    return arch not in arches and not any(a in ("any", "linux-any", f"any-{arch}") for a in arches)


def compare(baseline: Sequence[BaselineSymbol], symbols: LibrarySymbols) -> Comparison:
    """dpkg-gensymbols' view: symbols lost since the baseline and symbols new in the library."""
    lost = [b.display() for b in baseline
            if not b.entry.optional and not any(b.matches(s) for s in symbols.exported)]
    new = [s.display() + (f"@{s.version}" if s.version else "") for s in symbols.exported
           if not any(b.matches(s) for b in baseline)]
    return Comparison(tuple(lost), tuple(new))
