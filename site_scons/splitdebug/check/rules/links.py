"""SD5xx: the policy's symlinks exist and lead where they should; no symlink dangles or leaves the root."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ... import layout
from ...errors import SplitDebugError
from ...layout import Link
from ..context import Context
from ..findings import ERROR, Finding, WARNING, finding


def rule_policy_links(ctx: Context) -> Iterator[Finding]:
    """SD501-SD502: the build-id links of each binary, and <link>.debug of symlinked binaries."""
    for p in ctx.pairings:
        for link in p.links:
            yield from _check_link(ctx, link, p.binary.image)
    if ctx.policy.symlinked_binaries != "debug_link":
        return
    debug_of = {p.binary.key: p for p in ctx.pairings}
    for image, entry in sorted(ctx.model.entries.items()):
        if entry.kind != "link" or ctx.model.in_debug_root(image) or image in ctx.policy_links:
            continue
        target, _ = ctx.model.file_at(image)
        pairing = debug_of.get(target.key) if target is not None else None
        if pairing is None or pairing.debug is None:
            continue
        final = ctx.model.resolve(image).path or ""
        try:
            dl = layout.symlink_debug_link(ctx.policy, image, final, ctx.pkg)
        except SplitDebugError:
            continue
        if dl is not None:
            ctx.policy_links.add(dl.path)
            yield from _check_link(ctx, dl, image)


def _check_link(ctx: Context, link: Link, owner: str) -> Iterator[Finding]:
    entry = ctx.model.entries.get(link.path)
    if entry is None and _to_file_without_exec_bit(ctx, link, owner):
        # rpm links only files with an execute bit, and brp-elfperms takes it off shared libraries.
        ctx.not_made_by_rpm.add(link.path)
        yield finding("SD501", link.path, f"missing; the policy wants a symlink to {link.target} (for {owner}, "
                                          "which has no execute bit: rpm makes no build-id link to it)", WARNING)
        return
    if entry is None or entry.kind != "link":
        what = "missing" if entry is None else f"a {entry.kind}, not a symlink"
        yield finding("SD501", link.path, f"{what}; the policy wants a symlink to {link.target} (for {owner})")
        return
    actual = ctx.model.resolve(link.path)
    if actual.path is None:
        return  # dangling or escaping: SD503/SD504 say so
    expected = ctx.model.resolve(posixpath.join(posixpath.dirname(link.path), link.target))
    if actual.path != expected.path:
        yield finding("SD502", link.path, f"leads to {actual.path}, the policy's target is "
                                          f"{expected.path or link.target} (for {owner})")


def _to_file_without_exec_bit(ctx: Context, link: Link, owner: str) -> bool:
    target = posixpath.normpath(posixpath.join(posixpath.dirname(link.path), link.target))
    entry = ctx.model.entries.get(owner)
    return target == owner and entry is not None and entry.kind == "file" and not entry.mode & 0o111


def rule_symlinks(ctx: Context) -> Iterator[Finding]:
    """SD503-SD504: every symlink resolves inside the root; SD601: under the debug root, only the
    policy's links (run after rule_policy_links, which collects them)."""
    for image, entry in sorted(ctx.model.entries.items()):
        if entry.kind != "link":
            continue
        res = ctx.model.resolve(image)
        if res.problem == "escape":
            yield finding("SD504", image, f"-> {entry.target}: leaves the root (not followed)")
        elif res.problem:
            sev = ERROR if ctx.model.in_debug_root(image) or image in ctx.policy_links else WARNING
            why = "a symlink loop" if res.problem == "loop" else res.detail
            if posixpath.normpath(posixpath.join(posixpath.dirname(image), entry.target)) in ctx.not_made_by_rpm:
                sev, why = WARNING, f"{why} (rpm's compat link to a build-id link rpm does not make)"
            yield finding("SD503", image, f"-> {entry.target}: {why}", sev)
        elif ctx.model.in_debug_root(image) and image not in ctx.policy_links:
            yield finding("SD601", image, f"-> {entry.target}: a symlink the policy does not ask for")
