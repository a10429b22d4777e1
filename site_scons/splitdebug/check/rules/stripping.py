"""SD1xx: shipped binaries and archives are stripped as the policy says, into files tools can read."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import Context, debug_sections, short_list
from ..findings import Finding, finding


def rule_stripped(ctx: Context) -> Iterator[Finding]:
    """SD101-SD105: shipped binaries and archives are stripped as the policy says."""
    keep = ctx.policy.keep_symbols
    for b in ctx.binaries:
        if ctx.policy.strip.for_kind(b.info.kind or "") is None:
            continue  # the policy leaves this kind alone
        debug = debug_sections(b.info)
        if debug:
            yield finding("SD101", b.image, f"has {short_list(debug)} (not split)")
        if keep == "all" and not b.info.has_symtab:
            yield finding("SD103", b.image, "no .symtab, but the policy keeps all symbols")
        if keep != "all" and b.info.has_symtab:
            yield finding("SD102", b.image, f"has .symtab (policy keep_symbols: {keep})")
        if keep == "minidebuginfo" and not debug:
            if b.facts.minidebuginfo is None:
                yield finding("SD104", b.image, "no .gnu_debugdata (minidebuginfo)")
            elif b.facts.minidebuginfo:
                yield finding("SD105", b.image, b.facts.minidebuginfo)
    if ctx.policy.strip.static_archive is None:
        return
    for facts in ctx.survey.facts.values():
        if facts.magic != "ar" or ctx.model.in_debug_root(facts.image):
            continue
        for m in facts.members:
            if m.debug_sections:
                yield finding("SD101", facts.image, f"member {m.name} has {short_list(m.debug_sections)}")


def rule_section_links(ctx: Context) -> Iterator[Finding]:
    """SD106: every section link of a shipped binary or debug file names a fitting section."""
    for facts in ctx.survey.facts.values():
        info = facts.elf
        if info is None or not facts.bad_links or info.elf_type not in ("ET_EXEC", "ET_DYN"):
            continue
        yield finding("SD106", facts.image, short_list(facts.bad_links, 2))
