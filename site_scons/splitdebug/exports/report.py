"""`exports report`: what a library exports, its relocations and how well .gnu.hash spreads the names."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from ..elf import read as elfread
from ..errors import ElfError
from .symbols import DynamicSymbol, read_library

@dataclass(frozen=True)
class GnuHashStats:
    """The .gnu.hash table. A successful lookup of the k-th name of a bucket's chain costs k steps.

    total_steps: the sum over every name in the table; ideal_steps: the same sum if the names were
    spread over the buckets as evenly as possible; utilisation = ideal_steps / total_steps (1.0 is
    a perfectly balanced table; 1.0 too when the table is empty).
    """

    size: int  # bytes
    buckets: int
    bloom_words: int
    names: int
    empty_buckets: int
    longest_chain: int
    total_steps: int
    ideal_steps: int

    @property
    def utilisation(self) -> float:
        return self.ideal_steps / self.total_steps if self.total_steps else 1.0


@dataclass(frozen=True)
class ExportReport:
    path: str
    exported: tuple[DynamicSymbol, ...]
    version_nodes: frozenset[str]
    plt_relocations: int
    dynamic_relocations: int
    gnu_hash: GnuHashStats | None

    def as_json(self) -> dict[str, object]:
        h = self.gnu_hash
        return {
            "version": 1,
            "library": self.path,
            "exported_count": len(self.exported),
            "exported": [{"name": s.name, "demangled": s.demangled, "type": s.type, "version": s.version}
                         for s in self.exported],
            "version_nodes": sorted(self.version_nodes),
            "plt_relocations": self.plt_relocations,
            "dynamic_relocations": self.dynamic_relocations,
            "gnu_hash": None if h is None else {
                "size": h.size, "buckets": h.buckets, "bloom_words": h.bloom_words, "names": h.names,
                "empty_buckets": h.empty_buckets, "longest_chain": h.longest_chain,
                "total_steps": h.total_steps, "ideal_steps": h.ideal_steps,
                "utilisation": round(h.utilisation, 4),
            },
        }


def report_library(path: str | os.PathLike[str], *, cxxfilt: str | None = None) -> ExportReport:
    """Exports, PLT relocations and hash-table quality of one shared object."""
    symbols = read_library(path, cxxfilt=cxxfilt)
    info = elfread.read_elf(path)
    plt = sum(_relocation_count(info, s) for s in (".rela.plt", ".rel.plt"))
    dyn = sum(_relocation_count(info, s) for s in (".rela.dyn", ".rel.dyn"))
    sec = info.section(".gnu.hash")
    stats = None if sec is None else gnu_hash_stats(elfread.section_bytes(path, info, ".gnu.hash") or b"",
                                                     info.elfclass, info.little_endian)
    return ExportReport(symbols.path, symbols.exported, symbols.version_nodes, plt, dyn, stats)


def _relocation_count(info: elfread.ElfInfo, name: str) -> int:
    sec = info.section(name)
    if sec is None:
        return 0
    rela = sec.type == "SHT_RELA"
    entsize = (24 if rela else 16) if info.elfclass == 64 else (12 if rela else 8)
    return sec.size // entsize


def gnu_hash_stats(data: bytes, elfclass: int, little_endian: bool) -> GnuHashStats:
    """Chain lengths of a .gnu.hash section (its bytes), as lookup steps."""
    e = "<" if little_endian else ">"
    if len(data) < 16:
        raise ElfError("<.gnu.hash>", ".gnu.hash is too short")
    nbuckets, symoffset, bloom_size, _shift = struct.unpack_from(e + "4I", data, 0)
    word = 8 if elfclass == 64 else 4
    buckets_at = 16 + bloom_size * word
    chains_at = buckets_at + 4 * nbuckets
    if chains_at > len(data):
        raise ElfError("<.gnu.hash>", ".gnu.hash header runs past the section")
    buckets = struct.unpack_from(f"{e}{nbuckets}I", data, buckets_at)
    nchains = (len(data) - chains_at) // 4
    chains = struct.unpack_from(f"{e}{nchains}I", data, chains_at)
    lengths = []
    for start in buckets:
        length = 0
        if start:
            index = start - symoffset
            while 0 <= index < nchains:
                length += 1
                if chains[index] & 1:
                    break
                index += 1
        lengths.append(length)
    names = sum(lengths)
    return GnuHashStats(
        size=len(data), buckets=nbuckets, bloom_words=bloom_size, names=names,
        empty_buckets=sum(1 for n in lengths if n == 0), longest_chain=max(lengths, default=0),
        total_steps=sum(n * (n + 1) // 2 for n in lengths), ideal_steps=ideal_steps(names, nbuckets),
    )


def ideal_steps(names: int, buckets: int) -> int:
    """Lookup steps for `names` names spread as evenly as possible over `buckets` chains."""
    if not buckets:
        return 0
    q, r = divmod(names, buckets)
    return r * (q + 1) * (q + 2) // 2 + (buckets - r) * q * (q + 1) // 2
