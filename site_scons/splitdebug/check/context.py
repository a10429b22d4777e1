"""What the rules share: the shipped binaries (hard links and identical copies as one) and where the
policy's layout puts each one's debug file and links, paired with what the tree holds."""

from __future__ import annotations

import hashlib
import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..elf import read as elfread
from .. import layout
from ..errors import SplitDebugError
from ..layout import Link, PackageInfo, Placement
from ..policy import Policy
from .model import Entry, Key, Resolved, TreeModel
from .survey import FileFacts, Survey


@dataclass(frozen=True)
class Binary:
    """A shipped executable or shared library: one file, or byte-identical copies of it (hard links
    broken by a copy are still one binary), and its primary name."""

    key: Key
    image: str
    names: tuple[str, ...]  # every name of the file and of its identical copies
    info: elfread.ElfInfo
    facts: FileFacts


@dataclass(frozen=True)
class Pairing:
    """A shipped binary and what the policy's layout says of it, checked against the tree."""

    binary: Binary
    placement: Placement
    debug: Entry | None  # the regular file at placement.debug_file
    debug_res: Resolved
    links: tuple[Link, ...] = ()  # the symlinks the policy wants for the binary (for each of its names)


@dataclass
class Context:
    policy: Policy
    pkg: PackageInfo
    survey: Survey
    binaries: list[Binary] = field(default_factory=list)
    pairings: list[Pairing] = field(default_factory=list)
    policy_links: set[str] = field(default_factory=set)  # image paths of links the policy asks for
    referenced: set[Key] = field(default_factory=set)  # debug files some binary's layout leads to
    # Links to a binary without an execute bit: rpm makes none (brp-elfperms clears libraries' bit).
    not_made_by_rpm: set[str] = field(default_factory=set)

    @property
    def model(self) -> TreeModel:
        return self.survey.model

    def facts_at(self, entry: Entry) -> FileFacts | None:
        return self.survey.facts.get(entry.key)


def shipped(ctx: Context) -> list[Binary]:
    found: list[Binary] = []
    for key, facts in ctx.survey.facts.items():
        names = tuple(n for n in ctx.survey.names[key] if not ctx.model.in_debug_root(n))
        info = facts.elf
        if not names or info is None or info.kind not in ("executable", "shared_library"):
            continue
        found.append(Binary(key, names[0], names, info, facts))
    by_id: dict[str, list[Binary]] = defaultdict(list)
    out: list[Binary] = []
    for b in found:
        (by_id[b.info.build_id] if b.info.build_id else out).append(b)
    for group in by_id.values():
        if len(group) == 1:
            out += group
            continue
        copies: dict[str, list[Binary]] = defaultdict(list)
        for b in group:
            copies[file_digest(ctx, b.key, mask_debuglink=False)].append(b)
        for same in copies.values():
            names = tuple(sorted(n for b in same for n in b.names))
            first = min(same, key=lambda b: b.image)
            out.append(Binary(first.key, names[0], names, first.info, first.facts))
    return sorted(out, key=lambda b: b.image)


def debug_sections(info: elfread.ElfInfo) -> list[str]:
    return [s.name for s in info.sections if s.name.startswith((".debug_", ".zdebug_"))]


def short_list(names: Iterable[str], limit: int = 4) -> str:
    items = list(names)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more

def file_digest(ctx: Context, key: Key, *, mask_debuglink: bool) -> str:
    """SHA-256 of a file; with mask_debuglink, of its sections but .gnu_debuglink (copies of one
    binary split under path-named debug files differ in that section's length, so in every offset)."""
    facts = ctx.survey.facts[key]
    entry = ctx.model.entries[facts.image]
    try:
        with open(entry.fs_path, "rb") as f:
            data = f.read()
    except OSError:
        return f"unreadable:{facts.image}"
    if not mask_debuglink or facts.elf is None:
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    for sec in facts.elf.sections:
        if sec.name == ".gnu_debuglink":
            continue
        h.update(f"{sec.name}\0{sec.type}\0{sec.flags}\0{sec.size}\0".encode("utf-8", "surrogateescape"))
        if sec.type != "SHT_NOBITS":
            h.update(data[sec.offset:sec.offset + sec.size])
    return h.hexdigest()


def is_debug_file(info: elfread.ElfInfo) -> bool:
    """Holds no code: .text NOBITS (objcopy --only-keep-debug, eu-strip -f) or absent (a dwz file)."""
    text = info.section(".text")
    return text is None or text.type == "SHT_NOBITS"


def pair(ctx: Context) -> None:
    """Where the policy puts each shipped binary's debug file and links, checked against the tree.

    A binary with several names (hard links, identical copies) is paired by the name its
    .gnu_debuglink agrees with. Under `duplicate_build_id: suffix` every name of one build-id has
    its own numbered links (rpm numbers them in path order; the SCons stage takes the first free
    number): each name is given, in path order, the free number whose links the tree agrees with.
    """
    suffix = ctx.policy.duplicate_build_id == "suffix"
    dup_of: dict[str, int] = {}
    if suffix:
        names_of_id: dict[str, list[str]] = defaultdict(list)
        for b in ctx.binaries:
            if b.info.build_id:
                names_of_id[b.info.build_id] += b.names
        for bid, names in names_of_id.items():
            taken: set[int] = set()
            for name in sorted(names):
                scores = [(-sum(link_ok(ctx, link) for link in place.links), dup)
                          for dup in range(len(names)) if dup not in taken
                          for place in [placement_of(ctx, name, bid, dup)] if place is not None]
                if scores:
                    dup_of[name] = min(scores)[1]
                    taken.add(dup_of[name])
    for b in ctx.binaries:
        if b.facts.debuglink is None and b.info.has_debug:
            continue  # not split at all: SD101 says so
        best: tuple[int, Pairing] | None = None
        links: list[Link] = []
        for name in b.names:
            place = placement_of(ctx, name, b.info.build_id, dup_of.get(name, 0))
            if place is None:
                continue
            debug, res = ctx.model.file_at(place.debug_file)
            if debug is not None:  # each further name may have its own (find-debuginfo hard-links it)
                ctx.referenced.add(debug.key)
            score = (100 if b.facts.debuglink and b.facts.debuglink[0] == place.debuglink else 0) \
                + (10 if debug is not None else 0) + sum(link_ok(ctx, link) for link in place.links)
            if best is None or score > best[0]:
                best = (score, Pairing(b, place, debug, res))
            if suffix:
                links += place.links
        if best is None:
            continue
        chosen = best[1]
        if b.facts.debuglink is None and chosen.debug is None:
            continue  # never split (stripped before install): SD301 says so
        chosen = Pairing(b, chosen.placement, chosen.debug, chosen.debug_res,
                         tuple(links) if suffix else chosen.placement.links)
        ctx.pairings.append(chosen)
        ctx.policy_links.update(link.path for link in chosen.links)


def placement_of(ctx: Context, image: str, build_id: str | None, dup: int) -> Placement | None:
    try:
        return layout.place(ctx.policy, image, build_id, ctx.pkg, dup)
    except SplitDebugError:
        return None  # no build-id under a build-id layout: SD201 says so


def link_ok(ctx: Context, link: Link) -> bool:
    actual = ctx.model.resolve(link.path)
    expected = ctx.model.resolve(posixpath.join(posixpath.dirname(link.path), link.target))
    return actual.path is not None and actual.path == expected.path


def crc_of(fs_path: str) -> int | None:
    try:
        return elfread.crc32_file(fs_path)
    except OSError:
        return None
