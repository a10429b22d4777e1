"""SD2xx: every shipped binary has a build-id of an accepted length, and no two share one; and the
package metadata note where the policy asks for it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

from ..context import Context, file_digest, is_debug_file, short_list
from ..findings import ERROR, Finding, WARNING, finding
from ..model import Key


def rule_build_ids(ctx: Context) -> Iterator[Finding]:
    """SD201-SD203: a build-id of the policy's length on every shipped binary, each its own."""
    lengths = ctx.policy.build_id_bytes
    groups: dict[str, list[tuple[str, Key]]] = defaultdict(list)
    for b in ctx.binaries:
        bid = b.info.build_id
        if bid is None:
            sev = WARNING if ctx.policy.missing_build_id == "warn" else ERROR
            yield finding("SD201", b.image, "no build-id note (link with -Wl,--build-id)", sev)
            continue
        if len(bid) // 2 not in lengths:
            yield finding("SD202", b.image, f"build-id {bid} has {len(bid) // 2} bytes "
                                            f"(policy: {'/'.join(map(str, lengths))})")
        groups[bid].append((b.image, b.key))
    for key, facts in ctx.survey.facts.items():
        if facts.elf is not None and facts.elf.build_id and is_debug_file(facts.elf) \
                and ctx.model.in_debug_root(facts.image):
            groups["debug:" + facts.elf.build_id].append((facts.image, key))
    for facts in sorted(ctx.survey.facts.values(), key=lambda f: f.image):
        if len(facts.build_ids) > 1 and facts.elf is not None and (facts.elf.kind or is_debug_file(facts.elf)):
            yield finding("SD204", facts.image, f"{len(facts.build_ids)} GNU build-id notes "
                                                f"({short_list(facts.build_ids)}): tools disagree on which one counts")
    for bid, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        # Shipped binaries split as separate copies differ in their .gnu_debuglink only.
        digests = {image: file_digest(ctx, key, mask_debuglink=not bid.startswith("debug:")) for image, key in members}
        if len(set(digests.values())) < 2:
            continue  # identical copies: the same binary installed twice
        for image, digest in sorted(digests.items()):
            others = [i for i, d in sorted(digests.items()) if d != digest]
            what = "debug file" if bid.startswith("debug:") else "binary"
            yield finding("SD203", image, f"build-id {bid.removeprefix('debug:')} is also that of "
                                          f"{short_list(others)}, a different {what}")


def rule_package_note(ctx: Context) -> Iterator[Finding]:
    """SD205-SD207: with the policy's package_note, one valid note on every shipped binary (a missing
    one only a warning where the policy lets a package opt out)."""
    wanted = [key for key, _ in ctx.policy.package_note]
    if not wanted:
        return
    for b in ctx.binaries:
        found = b.facts.package_notes
        if not found:
            code = "SD205" if ctx.policy.package_note_required else "SD207"
            yield finding(code, b.image, "no .note.package (link with -Wl,--package-metadata=JSON, "
                                         "binutils >= 2.39, or splitdebug package-note --print-ldflags)")
            continue
        if len(found) > 1:
            yield finding("SD206", b.image, f"{len(found)} package metadata notes: readers take one")
        problem = _note_problem(found[0], wanted)
        if problem:
            yield finding("SD206", b.image, problem)


def _note_problem(desc: bytes, wanted: list[str]) -> str | None:
    text = desc.rstrip(b"\0")
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        return f"package metadata note is not JSON ({err})"
    if not isinstance(doc, dict):
        return "package metadata note is JSON but not an object"
    missing = [key for key in wanted if key not in doc]
    if missing:
        return f"package metadata note lacks {', '.join(missing)} (policy's package_note)"
    return None
