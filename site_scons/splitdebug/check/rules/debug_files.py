"""SD4xx: debug files: build-id, contents, mode, dwz altlinks, orphans, .gdb_index."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from ...elf import read as elfread
from ..context import Context, is_debug_file, short_list
from ..findings import WARNING, Finding, finding
from ..model import Key
from ..survey import FileFacts


def rule_debug_files(ctx: Context) -> Iterator[Finding]:
    """SD402-SD405, SD408, SD601, SD603: what lies under the debug root, and debug files elsewhere."""
    # Debug files some binary's layout leads to (through any of its names).
    referenced = {p.debug.key for p in ctx.pairings if p.debug is not None} | ctx.referenced
    alt_targets: set[Key] = set()
    for key in sorted(referenced, key=lambda k: ctx.survey.facts[k].image):
        yield from _altlink(ctx, ctx.survey.facts[key], alt_targets)
    for key, facts in sorted(ctx.survey.facts.items(), key=lambda kv: kv[1].image):
        in_root = ctx.model.in_debug_root(facts.image)
        info = facts.elf
        if not in_root:
            if key in referenced:  # the policy's layout puts debug files elsewhere
                yield from _debug_contents(ctx, facts, info, of_binary=True)
                yield from _compression(ctx, facts)
                yield from _gdb_index(ctx, facts, info)
            elif info is not None and info.is_debug_file:
                yield finding("SD603", facts.image, "a separated debug file outside the debug root "
                                                    f"{ctx.policy.debug_root}")
            continue
        if facts.magic == "other" and _gdb_script_of_debug_file(ctx, facts.image):
            continue  # <debug file>-gdb.py: gdb auto-loads it with the debug file (Python, glib ship them)
        if facts.magic in ("other", "ar"):
            yield finding("SD601", facts.image, "not an ELF file" if facts.magic == "other" else
                          "a static archive")
            continue
        if info is None:
            continue  # unreadable or damaged: SD901/SD902
        if not is_debug_file(info):
            kind = info.kind.replace("_", " ") if info.kind else info.elf_type
            yield finding("SD403", facts.image, f"its .text holds code ({kind}): not a separated debug file")
            continue
        yield from _debug_contents(ctx, facts, info, of_binary=key in referenced)
        yield from _compression(ctx, facts)
        if key in referenced or key in alt_targets:
            yield from _gdb_index(ctx, facts, info)
        mode = ctx.model.entries[facts.image].mode
        packaged = ctx.policy.debug_file_mode_packaged
        if key in referenced and mode not in (ctx.policy.debug_file_mode, packaged):
            also = "" if packaged is None else f" ({packaged:04o} as packaged)"
            yield finding("SD405", facts.image, f"mode {mode:04o}, policy {ctx.policy.debug_file_mode:04o}{also}")
        if key not in referenced and key not in alt_targets:
            yield finding("SD404", facts.image, "no shipped binary's layout leads to it (stale?)")


def _altlink(ctx: Context, facts: FileFacts, alt_targets: set[Key]) -> Iterator[Finding]:
    """SD406: the dwz multifile a debug file names exists in the tree and has the build-id named."""
    if facts.altlink is None:
        return
    name, build_id = facts.altlink
    where = name if name.startswith("/") else posixpath.join(posixpath.dirname(facts.image), name)
    target, res = ctx.model.file_at(where)
    tfacts = ctx.facts_at(target) if target is not None else None
    if target is None or tfacts is None:
        yield finding("SD406", facts.image, f".gnu_debugaltlink names {name}: {res.detail or 'not a regular file'}")
        return
    alt_targets.add(target.key)
    if tfacts.elf is not None and tfacts.elf.build_id != build_id:
        yield finding("SD406", facts.image, f".gnu_debugaltlink wants build-id {build_id} of {name}, "
                                            f"which has {tfacts.elf.build_id or 'none'}")


def _debug_contents(ctx: Context, facts: FileFacts, info: elfread.ElfInfo | None, *,
                    of_binary: bool) -> Iterator[Finding]:
    """SD402. A binary's debug file needs .debug_info and .debug_line; any other file under the debug
    root (a dwz multifile, which may hold only .debug_str) needs some DWARF."""
    if info is None:
        return
    names = {s.name.replace(".zdebug_", ".debug_", 1) for s in info.sections if s.type != "SHT_NOBITS"}
    if of_binary:
        missing = [n for n in (".debug_info", ".debug_line") if n not in names]
        if missing:
            yield finding("SD402", facts.image, f"no {' or '.join(missing)}")
    elif not any(n.startswith(".debug_") for n in names):
        yield finding("SD402", facts.image, "no .debug_* section at all")


GDB_SCRIPT_SUFFIXES = ("-gdb.py", "-gdb.gdb", "-gdb.scm")


def _gdb_script_of_debug_file(ctx: Context, image: str) -> bool:
    """gdb's auto-load script of a debug file: `<debug file>-gdb.py` beside an existing file."""
    for suffix in GDB_SCRIPT_SUFFIXES:
        if image.endswith(suffix):
            owner = ctx.model.entries.get(image[:-len(suffix)])
            return owner is not None and owner.kind in ("file", "link")
    return False


def _compression(ctx: Context, facts: FileFacts) -> Iterator[Finding]:
    """SD407: compressed DWARF in the format the policy names, which the distribution's readers read."""
    wanted = ctx.policy.compress_debug_sections
    formats = sorted({fmt for _, fmt in facts.compressions})
    foreign = [f for f in formats if f not in (wanted, "zlib-gnu" if wanted == "zlib" else wanted)]
    if not foreign:
        return
    sections = short_list(name for name, fmt in facts.compressions if fmt in foreign)
    # zlib is read by every tool; anything else where the policy did not ask for it may not be.
    lenient = all(f in ("zlib", "zlib-gnu") for f in foreign)
    yield finding("SD407", facts.image, f"{sections} compressed with {'/'.join(foreign)}, the policy says "
                                        f"{wanted}", WARNING if lenient else None)


def _gdb_index(ctx: Context, facts: FileFacts, info: elfread.ElfInfo | None) -> Iterator[Finding]:
    """SD408: the policy's gdb_index: a file with DWARF carries an index (gdb makes none without)."""
    if not ctx.policy.gdb_index or info is None:
        return
    if info.section(".debug_info") is None and info.section(".zdebug_info") is None:
        return
    if info.section(".gdb_index") is None and info.section(".debug_names") is None:
        yield finding("SD408", facts.image, "no .gdb_index (the policy's gdb_index)")
