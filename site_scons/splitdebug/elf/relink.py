"""Section links put back by name in a file the tools wrote.

objcopy --only-keep-debug lays some inputs' section headers out in another order (Go's PIE, whose
.shstrtab sits among the loaded sections; a patchelf'd file, whose .dynsym comes after the debug
sections) but keeps the input's sh_link and sh_info numbers, which then name other sections: .dynsym
linking .interp, .rela.dyn a note. The fix needs no layout: each section links, in the output, the
section of the name its input namesake links.
"""

from __future__ import annotations

import os
import struct
from collections import Counter

from .read import SHF_INFO_LINK, SHT_REL, SHT_RELA, SHT_SYMTAB, Headers, read_headers


def _unique(h: Headers) -> dict[str, int]:
    """{name: index} of the sections whose name no other section has."""
    counts = Counter(s.name for s in h.sections[1:])
    return {s.name: s.ndx for s in h.sections[1:] if counts[s.name] == 1}


def relinked(src: Headers, out: Headers) -> dict[int, tuple[int, int]]:
    """{index in `out`: (sh_link, sh_info)} for each section of `out` whose links name other sections
    than its namesake's in `src`. A target `out` lacks (a removed .symtab) or a name used twice is
    left as the tools wrote it."""
    src_index, out_index = _unique(src), _unique(out)
    changes = {}
    for name, ndx in out_index.items():
        if name not in src_index:
            continue
        was, now = src.sections[src_index[name]], out.sections[ndx]
        link, info = now.link, now.info

        def target(i: int) -> int | None:
            return out_index.get(src.sections[i].name) if 0 < i < len(src.sections) else None
        if was.link and (t := target(was.link)) is not None:
            link = t
        if was.info and (was.flags & SHF_INFO_LINK or was.type in (SHT_REL, SHT_RELA)) and \
                (t := target(was.info)) is not None:
            info = t
        if (link, info) != (now.link, now.info):
            changes[ndx] = (link, info)
    return changes


def relink_like(src: str | os.PathLike[str], out: str | os.PathLike[str]) -> int:
    """Rewrite, in place, the section links of `out` (a file of ours, written by the tools from `src`)
    that name other sections than `src`'s do; the number of sections changed."""
    out_h = read_headers(out)
    changes = relinked(read_headers(src), out_h)
    write_links(out, out_h, changes)
    return len(changes)


def symtab_unlinked(h: Headers) -> dict[int, tuple[int, int]]:
    """{index: (0, sh_info)} of the loaded sections that link the .symtab (a static executable's
    .rela.plt): eu-strip keeps a .symtab a loaded section links, in the shipped binary and out of
    the debug file. objcopy writes 0 there, and so does the in-process split."""
    symtab = {s.ndx for s in h.sections if s.type == SHT_SYMTAB}
    return {s.ndx: (0, s.info) for s in h.sections if s.allocated and s.link in symtab}


def write_links(path: str | os.PathLike[str], h: Headers, changes: dict[int, tuple[int, int]]) -> None:
    """Write (sh_link, sh_info) of the sections in `changes`, in place, into `path` (headers `h`)."""
    if not changes:
        return
    bo = h.byte_order
    shoff = struct.unpack_from(bo + ("Q" if h.is64 else "I"), h.ehdr, 0x28 if h.is64 else 0x20)[0]
    entsize, link_at = (64, 40) if h.is64 else (40, 24)
    with open(path, "r+b") as f:
        for ndx, (link, info) in sorted(changes.items()):
            f.seek(shoff + ndx * entsize + link_at)
            f.write(struct.pack(bo + "II", link, info))
