"""SD6xx: what has no business where it is: stray files in the debug root, unstripped objects."""

from __future__ import annotations

from collections.abc import Iterator

from ..context import Context, debug_sections, short_list
from ..findings import Finding, finding


def rule_stray(ctx: Context) -> Iterator[Finding]:
    """SD602, SD901, SD902: unstripped objects, damaged and unreadable files."""
    for image, reason in ctx.survey.unreadable:
        yield finding("SD902", image, reason)
    for image in ctx.survey.misplaced:
        yield finding("SD603", image, f"in ROOT{ctx.policy.debug_root} while the debug root is "
                                      f"{ctx.survey.stage_root.debug_dir}: it would ship in the main package")
    for _, facts in sorted(ctx.survey.facts.items(), key=lambda kv: kv[1].image):
        if facts.magic == "unreadable":
            yield finding("SD902", facts.image, facts.error or "cannot read")
        elif facts.error:
            yield finding("SD901", facts.image, facts.error)
        for m in facts.members:
            if m.error:
                yield finding("SD901", facts.image, f"member {m.name}: {m.error}")
        info = facts.elf
        if info is not None and not ctx.model.in_debug_root(facts.image) and info.kind is None \
                and not info.is_debug_file and info.has_debug:
            yield finding("SD602", facts.image, f"{info.elf_type} with {short_list(debug_sections(info))}")
