"""SD3xx: each binary's .gnu_debuglink leads to the layout's debug file, with the right CRC."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import Context, crc_of
from ..findings import Finding, finding


def rule_debuglink(ctx: Context) -> Iterator[Finding]:
    """SD301-SD305, SD401: the debuglink leads to the layout's debug file, with the right CRC and build-id."""
    paired = {p.binary.key for p in ctx.pairings}
    for b in ctx.binaries:
        if b.key in paired or b.info.has_debug or ctx.policy.strip.for_kind(b.info.kind or "") is None:
            continue
        if b.facts.debuglink is not None:
            continue  # a debuglink, but no place for its debug file (no build-id): SD201 says so
        if b.facts.debuglink_error:
            yield finding("SD901", b.image, b.facts.debuglink_error)
        else:
            yield finding("SD305", b.image, "stripped, but no .gnu_debuglink and no debug file where the "
                                            "policy puts it: its debug info is lost (installed stripped?)")
    for p in ctx.pairings:
        b, place = p.binary, p.placement
        link = b.facts.debuglink
        if b.facts.debuglink_error:
            yield finding("SD901", b.image, b.facts.debuglink_error)
        elif link is None:
            yield finding("SD301", b.image, f"no .gnu_debuglink (its debug file {place.debug_file} is found "
                                            "by build-id only)")
        elif link[0] != place.debuglink:
            yield finding("SD302", b.image, f".gnu_debuglink names {link[0]!r}, the policy {place.debuglink!r}")
        if p.debug is None:
            why = {"escape": "its path leaves the root", "loop": "a symlink loop on the way",
                   "missing": "nothing there", "notdir": p.debug_res.detail}.get(p.debug_res.problem,
                                                                                 "not a regular file")
            yield finding("SD303", b.image, f"no debug file at {place.debug_file} ({why})")
            continue
        dfacts = ctx.facts_at(p.debug)
        if dfacts is None:
            continue
        if dfacts.magic == "other":
            yield finding("SD303", b.image, f"{place.debug_file} is not an ELF file")
        if link is not None and not b.facts.debuglink_error:
            crc = dfacts.crc if dfacts.crc is not None else crc_of(p.debug.fs_path)
            if crc is not None and crc != link[1]:
                yield finding("SD304", b.image, f".gnu_debuglink CRC {link[1]:08x}, but {place.debug_file} "
                                                f"has CRC {crc:08x}")
        dinfo = dfacts.elf
        if dinfo is not None and b.info.build_id and dinfo.build_id != b.info.build_id:
            yield finding("SD401", dfacts.image, f"build-id {dinfo.build_id or 'none'}, but it is the debug "
                                                 f"file of {b.image} (build-id {b.info.build_id})")
