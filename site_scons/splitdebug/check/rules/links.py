"""SD5xx: the policy's symlinks exist and lead where they should; no symlink dangles or leaves the root."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ... import layout
from ...errors import SplitDebugError
from ...layout import Link
from ..context import Context
from ..findings import Finding, WARNING, finding


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
    if entry is None and link.if_executable and not _executable(ctx, owner):
        ctx.excused.add(link.path)  # rpm makes it only for files with an exec bit
        return
    if entry is None or entry.kind != "link":
        what = "missing" if entry is None else f"a {entry.kind}, not a symlink"
        yield finding("SD501", link.path, f"{what}; the policy wants a symlink to {link.target} (for {owner})")
        return
    actual = ctx.model.resolve(link.path)
    if actual.path is None:
        return  # dangling or escaping: SD503/SD504 say so
    expected = ctx.model.resolve(posixpath.join(posixpath.dirname(link.path), link.target))
    if actual.path != expected.path and not _same_build_id_family(ctx, actual.path, expected.path):
        yield finding("SD502", link.path, f"leads to {actual.path}, the policy's target is "
                                          f"{expected.path or link.target} (for {owner})")


def _same_build_id_family(ctx: Context, actual: str, expected: str | None) -> bool:
    """Names of one build-id share its links: under `suffix` numbered ones (.1, .2 …) that rpm numbers
    in readdir order, not path order; under `reuse` one set, made for the first name. A link may lead
    to another name's file, as long as it is a file of the same build-id and kind (debug file or binary)."""
    if expected is None:
        return False
    got, want = ctx.model.entries.get(actual), ctx.model.entries.get(expected)
    if got is None or want is None:
        return False
    a = ctx.facts_at(got)
    b = ctx.facts_at(want)
    if a is None or b is None or a.elf is None or b.elf is None or not a.elf.build_id:
        return False
    return a.elf.build_id == b.elf.build_id and a.elf.is_debug_file == b.elf.is_debug_file


def _executable(ctx: Context, image: str) -> bool:
    entry = ctx.model.entries.get(image)
    return entry is not None and bool(entry.mode & 0o111)


def rule_symlinks(ctx: Context) -> Iterator[Finding]:
    """SD503-SD506: every symlink resolves inside the root, to a file of the build-id it is named by;
    SD601: under the debug root, only the policy's links (run after rule_policy_links, which collects them)."""
    stage_dir = str(ctx.survey.stage_root.root).rstrip("/")
    for image, entry in sorted(ctx.model.entries.items()):
        if entry.kind != "link":
            continue
        res = ctx.model.resolve(image)
        if entry.target.startswith("/") and (entry.target == stage_dir or entry.target.startswith(stage_dir + "/")):
            yield finding("SD506", image, f"-> {entry.target}: names the staging root {stage_dir}; installed, "
                                          f"it would lead to {entry.target[len(stage_dir):] or '/'}")
        elif res.problem == "escape":
            yield finding("SD504", image, f"-> {entry.target}: leaves the root (not followed)")
        elif res.problem == "loop":
            yield finding("SD503", image, f"-> {entry.target}: a symlink loop")
        elif res.problem:
            via = posixpath.normpath(posixpath.join(posixpath.dirname(image), entry.target))
            if via in ctx.excused:
                yield finding("SD503", image, f"-> {entry.target}: {res.detail}, as the policy allows (the "
                                              "link it leads to is made only for files with an exec bit)", WARNING)
            elif ctx.model.in_debug_root(image) or image in ctx.policy_links:
                yield finding("SD503", image, f"-> {entry.target}: {res.detail}")
            else:
                yield finding("SD503", image, f"-> {entry.target}: {res.detail} (a warning outside the debug "
                                              "root: it may lead into another package, e.g. a -dev link)", WARNING)
        elif ctx.model.in_debug_root(image) and image not in ctx.policy_links:
            yield finding("SD601", image, f"-> {entry.target}: a symlink the policy does not ask for")
    yield from _build_id_names(ctx)


def _build_id_names(ctx: Context) -> Iterator[Finding]:
    """SD505: a name in a .build-id directory is the build-id of the ELF file it leads to."""
    for image, entry in sorted(ctx.model.entries.items()):
        parts = image.rsplit("/", 3)
        if entry.kind not in ("file", "link") or len(parts) < 4 or parts[1] != ".build-id":
            continue
        named = _named_build_id(parts[2], parts[3])
        if named is None:
            continue
        target, _ = ctx.model.file_at(image)
        facts = ctx.facts_at(target) if target is not None else None
        if facts is None or facts.elf is None or facts.elf.build_id is None:
            continue  # dangling, not ELF or no build-id: other rules say so
        if facts.elf.build_id != named:
            where = f" (through {entry.target})" if entry.kind == "link" else ""
            yield finding("SD505", image, f"named for build-id {named}, but leads to {facts.image}{where}, "
                                          f"build-id {facts.elf.build_id}")


def _named_build_id(directory: str, name: str) -> str | None:
    """The build-id a `.build-id/xx/rest[.N][.debug]` name stands for, or None for another name."""
    stem = name.removesuffix(".debug")
    head, dot, dup = stem.rpartition(".")
    if dot and dup.isdigit():
        stem = head
    text = directory + stem
    if len(directory) != 2 or len(text) < 4 or any(c not in "0123456789abcdef" for c in text):
        return None
    return text
