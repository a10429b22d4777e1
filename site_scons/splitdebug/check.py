"""`splitdebug check`: does a staged tree satisfy its policy? Rules over plain data.

Two phases. Gathering walks the tree once without following any link and records every directory,
file and symlink by image path (`TreeModel`); then a pool of worker processes, created once, reads
what the rules need from each regular file: ELF header, section table, notes, `.gnu_debuglink`, the
ELF inside `.gnu_debugdata`, archive members' section tables, the CRC32 of debug files. Never DWARF,
and no Python process per file (the reading is Python, so threads would share one core).

The rules then run over that plain data only. Symlinks are resolved inside the model with chroot
semantics (an absolute target starts at ROOT, `..` above ROOT is an escape), so nothing is ever
followed out of the root. A damaged file is a finding, never a crash.
"""

from __future__ import annotations

import hashlib
import importlib
import lzma
import multiprocessing
import os
import posixpath
import stat
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TypeVar

from . import elfread, layout
from .errors import ElfError, SplitDebugError
from .layout import Link, PackageInfo, Placement, StageRoot
from .policy import Policy

ERROR = "error"
WARNING = "warning"

MAX_MINIDEBUGINFO = 256 << 20  # refuse to inflate a .gnu_debugdata past this (an xz bomb)
MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str  # the usual severity; a few rules lower it (named in `checks`)
    checks: str


RULES: tuple[Rule, ...] = (
    Rule("SD101", "debug-sections-in-shipped-binary", ERROR,
         "a shipped executable, shared library or (when the policy strips them) static archive member "
         "has .debug_* or .zdebug_* sections"),
    Rule("SD102", "symtab-in-shipped-binary", ERROR,
         "keep_symbols is none or minidebuginfo, yet the shipped binary has .symtab"),
    Rule("SD103", "symtab-missing", ERROR, "keep_symbols is all, yet the shipped binary has no .symtab"),
    Rule("SD104", "minidebuginfo-missing", ERROR,
         "keep_symbols is minidebuginfo, yet the shipped binary has no .gnu_debugdata"),
    Rule("SD105", "minidebuginfo-invalid", ERROR,
         ".gnu_debugdata is not one xz stream of an ELF file with a .symtab"),
    Rule("SD201", "missing-build-id", ERROR,
         "a shipped binary has no GNU build-id note (a warning when the policy's missing_build_id is warn)"),
    Rule("SD202", "build-id-wrong-length", ERROR, "the build-id's length is not one of the policy's build_id_bytes"),
    Rule("SD203", "duplicate-build-id", ERROR,
         "two different shipped binaries (or two different debug files) carry one build-id; hard links "
         "and identical copies (equal but for .gnu_debuglink) are not collisions"),
    Rule("SD301", "no-debuglink", WARNING,
         "a stripped shipped binary has no .gnu_debuglink (stripped before it was installed?)"),
    Rule("SD302", "debuglink-name-mismatch", ERROR,
         "the name in .gnu_debuglink is not the one the policy's layout gives"),
    Rule("SD303", "debug-file-missing", ERROR,
         "no regular file where the policy's layout puts the binary's debug file"),
    Rule("SD304", "debuglink-crc-mismatch", ERROR,
         "the CRC32 in .gnu_debuglink is not the CRC32 of the debug file (gdb rejects it)"),
    Rule("SD401", "debug-file-build-id-mismatch", ERROR, "the debug file's build-id is not the binary's"),
    Rule("SD402", "debug-file-with-no-debug-symbols", ERROR,
         "a binary's debug file has no .debug_info or no .debug_line; another file under the debug root "
         "(a dwz multifile) no .debug_* section (lintian's tag)"),
    Rule("SD403", "debug-symbols-not-detached", ERROR,
         "an ELF file under the debug root holds code: its .text is not NOBITS (lintian's tag)"),
    Rule("SD404", "orphan-debug-file", WARNING, "a debug file that no shipped binary's layout leads to"),
    Rule("SD405", "debug-file-mode", WARNING, "a binary's debug file's mode is not the policy's debug_file_mode"),
    Rule("SD406", "debug-altlink-broken", ERROR,
         "a debug file's .gnu_debugaltlink (dwz) names no file in the tree, or one of another build-id"),
    Rule("SD501", "build-id-link-missing", ERROR,
         "a symlink the policy asks for (build_id_links, or <link>.debug of a symlinked binary) is missing"),
    Rule("SD502", "build-id-link-wrong-target", ERROR,
         "a policy symlink resolves to another file than the policy's target"),
    Rule("SD503", "dangling-symlink", ERROR,
         "a symlink resolves to nothing inside the root, or loops (a warning outside the debug root)"),
    Rule("SD504", "path-leaves-root", ERROR, "a symlink's target climbs out of the root (it is not followed)"),
    Rule("SD601", "non-debug-file-in-debug-root", ERROR,
         "under the debug root: a file that is not ELF, or a symlink that is not one of the policy's links"),
    Rule("SD602", "unstripped-object", WARNING,
         "an ELF object (.o, .ko) outside the debug root carries debug sections"),
    Rule("SD603", "debug-file-outside-debug-root", ERROR,
         "a separated debug file lies outside the debug root and no binary's layout puts it there"),
    Rule("SD701", "export-list-mismatch", ERROR,
         "with --exports: a shared library does not export exactly its list"),
    Rule("SD702", "export-list-missing", WARNING,
         "with --exports: no list for a shared library (an error when the policy requires export lists)"),
    Rule("SD901", "damaged-elf", ERROR, "a file with the ELF or ar magic cannot be read as one (truncated, corrupt)"),
    Rule("SD902", "unreadable-path", ERROR, "a file or directory that cannot be read"),
)
RULES_BY_ID: Mapping[str, Rule] = MappingProxyType({r.id: r for r in RULES})


@dataclass(frozen=True)
class Finding:
    rule: str  # a rule id, SDnnn
    severity: str  # error or warning
    path: str  # image path: where the file sits in the installed system
    reason: str

    @property
    def name(self) -> str:
        return RULES_BY_ID[self.rule].name


def finding(rule: str, path: str, reason: str, severity: str | None = None) -> Finding:
    return Finding(rule, severity or RULES_BY_ID[rule].severity, path, reason)


# ---------------------------------------------------------------------------------------------
# The tree, as plain data


Key = tuple[int, int]  # (st_dev, st_ino): one file, whatever its names


@dataclass(frozen=True)
class Entry:
    kind: str  # dir, file, link, other
    fs_path: str
    target: str = ""  # a link's target, as written
    key: Key = (0, 0)
    mode: int = 0
    size: int = 0


@dataclass(frozen=True)
class Resolved:
    """Where an image path leads, links followed inside the model."""

    path: str | None  # final image path; None when it leads nowhere
    problem: str = ""  # missing, escape, loop, notdir
    detail: str = ""


@dataclass(frozen=True)
class TreeModel:
    entries: Mapping[str, Entry]
    debug_root: str  # the policy's debug root (image path)

    def in_debug_root(self, image: str) -> bool:
        return image == self.debug_root or image.startswith(self.debug_root.rstrip("/") + "/")

    def resolve(self, image: str, follow_last: bool = True) -> Resolved:
        """Follow links component by component (chroot semantics); never leaves the model."""
        done: list[str] = []
        todo = [p for p in reversed(image.split("/")) if p]
        hops = 0
        while todo:
            comp = todo.pop()
            if comp == ".":
                continue
            if comp == "..":
                if not done:
                    return Resolved(None, "escape", "climbs above the root")
                done.pop()
                continue
            here = "/" + "/".join([*done, comp])
            entry = self.entries.get(here)
            if entry is None:
                return Resolved(None, "missing", f"{here} does not exist")
            if entry.kind == "link" and (todo or follow_last):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    return Resolved(None, "loop", "too many levels of symbolic links")
                if entry.target.startswith("/"):
                    done = []
                todo.extend(p for p in reversed(entry.target.split("/")) if p)
                continue
            if todo and entry.kind != "dir":
                return Resolved(None, "notdir", f"{here} is not a directory")
            done.append(comp)
        return Resolved("/" + "/".join(done))

    def file_at(self, image: str) -> tuple[Entry | None, Resolved]:
        """The regular file an image path leads to (through links), if any."""
        res = self.resolve(image)
        entry = self.entries.get(res.path) if res.path is not None else None
        return (entry if entry is not None and entry.kind == "file" else None), res


@dataclass(frozen=True)
class Member:
    """One member of a static archive."""

    name: str
    debug_sections: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class FileFacts:
    """What the rules need to know of one regular file (one inode)."""

    image: str
    magic: str  # elf, ar, other, unreadable
    elf: elfread.ElfInfo | None = None
    error: str | None = None  # why it could not be read (as ELF or archive)
    debuglink: tuple[str, int] | None = None
    debuglink_error: str | None = None
    crc: int | None = None  # CRC32 of the whole file (debug files only)
    minidebuginfo: str | None = None  # None: no .gnu_debugdata; "": valid; else why it is not
    members: tuple[Member, ...] = ()
    altlink: tuple[str, str] | None = None  # .gnu_debugaltlink: (path, build-id)


@dataclass(frozen=True)
class Task:
    fs_path: str
    image: str
    want_crc: bool
    archive: bool  # read archive members (lib*.a under a policy that strips archives)


def inspect_file(task: Task) -> FileFacts:
    """Read one file; runs in a worker process. Every failure becomes part of the facts."""
    try:
        return _inspect(task)
    except Exception as err:  # noqa: BLE001 - a malformed file must be a finding, whatever it raises
        reason = str(err).splitlines()[0] if str(err) else ""
        return FileFacts(task.image, "elf", error=f"damaged file ({type(err).__name__}: {reason})")


def _inspect(task: Task) -> FileFacts:
    image = task.image
    magic = elfread.file_magic(task.fs_path)
    crc = None
    if task.want_crc:
        try:
            crc = elfread.crc32_file(task.fs_path)
        except OSError as err:
            return FileFacts(image, "unreadable", error=f"cannot read: {err.strerror}")
    if magic == elfread.AR_MAGIC or magic == b"!<thin>\n":
        if not task.archive:
            return FileFacts(image, "ar", crc=crc)
        try:
            members = tuple(_member(name, data) for name, data in elfread.iter_archive_members(task.fs_path))
        except SplitDebugError as err:
            return FileFacts(image, "ar", error=_reason(err, task.fs_path), crc=crc)
        return FileFacts(image, "ar", crc=crc, members=members)
    if magic[:4] != elfread.ELF_MAGIC:
        if not magic and not os.access(task.fs_path, os.R_OK):
            return FileFacts(image, "unreadable", error="cannot read: permission denied")
        return FileFacts(image, "other", crc=crc)
    try:
        info = elfread.read_elf(task.fs_path)
    except SplitDebugError as err:
        return FileFacts(image, "elf", error=_reason(err, task.fs_path), crc=crc)
    link, altlink, link_error = None, None, None
    try:
        link = elfread.read_debuglink(task.fs_path, info)
        altlink = elfread.read_debugaltlink(task.fs_path, info)
    except (SplitDebugError, OSError) as err:
        link_error = _reason(err, task.fs_path)
    mini = _minidebuginfo(task.fs_path, info) if info.section(".gnu_debugdata") else None
    return FileFacts(image, "elf", elf=info, debuglink=link, debuglink_error=link_error, crc=crc,
                     minidebuginfo=mini, altlink=altlink)


def _reason(err: BaseException, fs_path: str) -> str:
    """The message of an error without the file name it starts with (findings name the path)."""
    text = str(err) if not isinstance(err, OSError) else f"cannot read: {err.strerror}"
    return text[len(fs_path) + 2:] if text.startswith(fs_path + ": ") else text


def _member(name: str, data: bytes) -> Member:
    if data[:4] != elfread.ELF_MAGIC:
        return Member(name, ())  # not an object (an LTO bitcode, a text file): nothing to strip
    try:
        info = elfread.read_elf_bytes(name, data)
    except SplitDebugError as err:
        return Member(name, (), _reason(err, name))
    return Member(name, tuple(s.name for s in info.sections if s.name.startswith((".debug_", ".zdebug_"))))


def _minidebuginfo(fs_path: str, info: elfread.ElfInfo) -> str:
    """"" when .gnu_debugdata is one xz stream of an ELF with a .symtab, else why not."""
    sec = info.section(".gnu_debugdata")
    assert sec is not None
    if sec.type == "SHT_NOBITS" or sec.size == 0:
        return ".gnu_debugdata is empty"
    try:
        packed = elfread.section_bytes(fs_path, info, ".gnu_debugdata") or b""
    except ElfError as err:
        return str(err)
    inflater = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    try:
        data = inflater.decompress(packed, max_length=MAX_MINIDEBUGINFO)
    except lzma.LZMAError as err:
        return f".gnu_debugdata is not xz data ({err})"
    if not inflater.eof:
        return ".gnu_debugdata is a truncated xz stream" if inflater.needs_input else \
            f".gnu_debugdata inflates past {MAX_MINIDEBUGINFO >> 20} MiB"
    if inflater.unused_data.strip(b"\0"):
        return ".gnu_debugdata has data after its xz stream"
    try:
        inner = elfread.read_elf_bytes(".gnu_debugdata", data)
    except SplitDebugError as err:
        return f"the data inside .gnu_debugdata is not a readable ELF file ({_reason(err, '.gnu_debugdata')})"
    symtab = inner.section(".symtab")
    if symtab is None or symtab.type != "SHT_SYMTAB" or symtab.size == 0:
        return "the ELF file inside .gnu_debugdata has no .symtab"
    return ""


# ---------------------------------------------------------------------------------------------
# Gathering


@dataclass(frozen=True)
class Survey:
    """Everything gathered from a tree: the model, the facts of each file, and reading errors."""

    stage_root: StageRoot
    model: TreeModel
    facts: Mapping[Key, FileFacts]
    names: Mapping[Key, tuple[str, ...]]  # image paths of each file, sorted
    unreadable: tuple[tuple[str, str], ...]  # (image path, reason)
    misplaced: tuple[str, ...]  # files in ROOT's own debug root while --debug-root points elsewhere


T = TypeVar("T")
R = TypeVar("R")


class Workers:
    """A pool of worker processes created once (fork: the workers start with everything imported).

    Forking is safe from the command line; a caller running threads of its own (SCons in-process)
    should pass jobs=1 or run `splitdebug check` as a command, as the SConstruct's `check` alias does.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool: Executor | None = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if self.jobs == 1 or len(items) < 2 * self.jobs or "fork" not in multiprocessing.get_all_start_methods():
            return [fn(item) for item in items]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("fork"))
        chunk = max(1, len(items) // (self.jobs * 8))
        return list(self._pool.map(fn, items, chunksize=chunk))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _walk(top: Path, image_top: str, skip: set[Path], entries: dict[str, Entry],
          unreadable: list[tuple[str, str]]) -> None:
    """Record everything under `top` as image paths under `image_top`; links are not followed."""
    stack = [(top, image_top)]
    while stack:
        directory, image_dir = stack.pop()
        try:
            with os.scandir(directory) as it:
                children = list(it)
        except OSError as err:
            unreadable.append((image_dir, f"cannot read directory: {err.strerror}"))
            continue
        for child in children:
            image = posixpath.join(image_dir, child.name)
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as err:
                unreadable.append((image, f"cannot stat: {err.strerror}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(child.path)
                except OSError as err:
                    unreadable.append((image, f"cannot read link: {err.strerror}"))
                    continue
                entries[image] = Entry("link", child.path, target=target)
            elif stat.S_ISDIR(st.st_mode):
                entries[image] = Entry("dir", child.path)
                if Path(child.path) not in skip:
                    stack.append((Path(child.path), image))
            elif stat.S_ISREG(st.st_mode):
                entries[image] = Entry("file", child.path, key=(st.st_dev, st.st_ino),
                                       mode=stat.S_IMODE(st.st_mode), size=st.st_size)
            else:
                entries[image] = Entry("other", child.path)


def gather(stage_root: StageRoot, policy: Policy, workers: Workers) -> Survey:
    droot = policy.debug_root.rstrip("/") or "/"
    entries: dict[str, Entry] = {"/": Entry("dir", str(stage_root.root))}
    unreadable: list[tuple[str, str]] = []
    misplaced: list[str] = []
    skip: set[Path] = set()
    if stage_root.debug_dir is not None:
        # The debug root is another directory: ROOT's own copy of that path is not it.
        own = stage_root.root / droot.lstrip("/")
        skip |= {stage_root.debug_dir, own}
        if own.is_dir() and not own.is_symlink():
            for dirpath, _, files in os.walk(own):
                misplaced += [stage_root.image_path(Path(dirpath) / f) for f in files]
    _walk(stage_root.root, "/", skip, entries, unreadable)
    if stage_root.debug_dir is not None:
        if stage_root.debug_dir.is_dir():
            parts = droot.strip("/").split("/")
            for i in range(1, len(parts)):  # the debug root's parents, as directories of the image
                entries.setdefault("/" + "/".join(parts[:i]), Entry("dir", ""))
            entries[droot] = Entry("dir", str(stage_root.debug_dir))
            _walk(stage_root.debug_dir, droot, set(), entries, unreadable)
        else:
            unreadable.append((droot, f"--debug-root {stage_root.debug_dir} is not a directory"))
    model = TreeModel(MappingProxyType(entries), droot)

    names: dict[Key, list[str]] = defaultdict(list)
    for image, entry in entries.items():
        if entry.kind == "file":
            names[entry.key].append(image)
    tasks = []
    for key, paths in names.items():
        paths.sort()
        first = entries[paths[0]]
        in_debug = any(model.in_debug_root(p) for p in paths)
        base = posixpath.basename(paths[0])
        archive = (policy.strip.static_archive is not None and base.startswith("lib") and base.endswith(".a"))
        tasks.append((key, Task(first.fs_path, paths[0], want_crc=in_debug, archive=archive)))
    results = workers.map(inspect_file, [t for _, t in tasks])
    facts = {key: res for (key, _), res in zip(tasks, results, strict=True)}
    return Survey(stage_root, model, MappingProxyType(facts),
                  MappingProxyType({k: tuple(v) for k, v in names.items()}),
                  tuple(unreadable), tuple(sorted(misplaced)))


# ---------------------------------------------------------------------------------------------
# Rules


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

    @property
    def model(self) -> TreeModel:
        return self.survey.model

    def facts_at(self, entry: Entry) -> FileFacts | None:
        return self.survey.facts.get(entry.key)


def _shipped(ctx: Context) -> list[Binary]:
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
            copies[_digest(ctx, b.key, mask_debuglink=False)].append(b)
        for same in copies.values():
            names = tuple(sorted(n for b in same for n in b.names))
            first = min(same, key=lambda b: b.image)
            out.append(Binary(first.key, names[0], names, first.info, first.facts))
    return sorted(out, key=lambda b: b.image)


def _debug_sections(info: elfread.ElfInfo) -> list[str]:
    return [s.name for s in info.sections if s.name.startswith((".debug_", ".zdebug_"))]


def _list(names: Iterable[str], limit: int = 4) -> str:
    items = list(names)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def rule_stripped(ctx: Context) -> Iterator[Finding]:
    """SD101-SD105: shipped binaries and archives are stripped as the policy says."""
    keep = ctx.policy.keep_symbols
    for b in ctx.binaries:
        if ctx.policy.strip.for_kind(b.info.kind or "") is None:
            continue  # the policy leaves this kind alone
        debug = _debug_sections(b.info)
        if debug:
            yield finding("SD101", b.image, f"has {_list(debug)} (not split)")
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
                yield finding("SD101", facts.image, f"member {m.name} has {_list(m.debug_sections)}")


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
        if facts.elf is not None and facts.elf.build_id and _is_debug_file(facts.elf) \
                and ctx.model.in_debug_root(facts.image):
            groups["debug:" + facts.elf.build_id].append((facts.image, key))
    for bid, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        # Shipped binaries split as separate copies differ in their .gnu_debuglink only.
        digests = {image: _digest(ctx, key, mask_debuglink=not bid.startswith("debug:")) for image, key in members}
        if len(set(digests.values())) < 2:
            continue  # identical copies: the same binary installed twice
        for image, digest in sorted(digests.items()):
            others = [i for i, d in sorted(digests.items()) if d != digest]
            what = "debug file" if bid.startswith("debug:") else "binary"
            yield finding("SD203", image, f"build-id {bid.removeprefix('debug:')} is also that of "
                                          f"{_list(others)}, a different {what}")


def _digest(ctx: Context, key: Key, *, mask_debuglink: bool) -> str:
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


def _is_debug_file(info: elfread.ElfInfo) -> bool:
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
                scores = [(-sum(_link_ok(ctx, link) for link in place.links), dup)
                          for dup in range(len(names)) if dup not in taken
                          for place in [_place(ctx, name, bid, dup)] if place is not None]
                if scores:
                    dup_of[name] = min(scores)[1]
                    taken.add(dup_of[name])
    for b in ctx.binaries:
        if b.facts.debuglink is None and b.info.has_debug:
            continue  # not split at all: SD101 says so
        best: tuple[int, Pairing] | None = None
        links: list[Link] = []
        for name in b.names:
            place = _place(ctx, name, b.info.build_id, dup_of.get(name, 0))
            if place is None:
                continue
            debug, res = ctx.model.file_at(place.debug_file)
            if debug is not None:  # each further name may have its own (find-debuginfo hard-links it)
                ctx.referenced.add(debug.key)
            score = (100 if b.facts.debuglink and b.facts.debuglink[0] == place.debuglink else 0) \
                + (10 if debug is not None else 0) + sum(_link_ok(ctx, link) for link in place.links)
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


def _place(ctx: Context, image: str, build_id: str | None, dup: int) -> Placement | None:
    try:
        return layout.place(ctx.policy, image, build_id, ctx.pkg, dup)
    except SplitDebugError:
        return None  # no build-id under a build-id layout: SD201 says so


def _link_ok(ctx: Context, link: Link) -> bool:
    actual = ctx.model.resolve(link.path)
    expected = ctx.model.resolve(posixpath.join(posixpath.dirname(link.path), link.target))
    return actual.path is not None and actual.path == expected.path


def rule_debuglink(ctx: Context) -> Iterator[Finding]:
    """SD301-SD304, SD401: the debuglink leads to the layout's debug file, with the right CRC and build-id."""
    paired = {p.binary.key for p in ctx.pairings}
    for b in ctx.binaries:
        if b.key in paired or b.info.has_debug or ctx.policy.strip.for_kind(b.info.kind or "") is None:
            continue
        if b.facts.debuglink is not None:
            continue  # a debuglink, but no place for its debug file (no build-id): SD201 says so
        if b.facts.debuglink_error:
            yield finding("SD901", b.image, b.facts.debuglink_error)
        else:
            yield finding("SD301", b.image, "stripped, but no .gnu_debuglink and no debug file where the "
                                            "policy puts it: its debug info is lost")
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
            crc = dfacts.crc if dfacts.crc is not None else _crc(p.debug.fs_path)
            if crc is not None and crc != link[1]:
                yield finding("SD304", b.image, f".gnu_debuglink CRC {link[1]:08x}, but {place.debug_file} "
                                                f"has CRC {crc:08x}")
        dinfo = dfacts.elf
        if dinfo is not None and b.info.build_id and dinfo.build_id != b.info.build_id:
            yield finding("SD401", dfacts.image, f"build-id {dinfo.build_id or 'none'}, but it is the debug "
                                                 f"file of {b.image} (build-id {b.info.build_id})")


def _crc(fs_path: str) -> int | None:
    try:
        return elfread.crc32_file(fs_path)
    except OSError:
        return None


def rule_debug_files(ctx: Context) -> Iterator[Finding]:
    """SD402-SD405, SD601, SD603: what lies under the debug root, and debug files elsewhere."""
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
            elif info is not None and info.is_debug_file:
                yield finding("SD603", facts.image, "a separated debug file outside the debug root "
                                                    f"{ctx.policy.debug_root}")
            continue
        if facts.magic in ("other", "ar"):
            yield finding("SD601", facts.image, "not an ELF file" if facts.magic == "other" else
                          "a static archive")
            continue
        if info is None:
            continue  # unreadable or damaged: SD901/SD902
        if not _is_debug_file(info):
            kind = info.kind.replace("_", " ") if info.kind else info.elf_type
            yield finding("SD403", facts.image, f"its .text holds code ({kind}): not a separated debug file")
            continue
        yield from _debug_contents(ctx, facts, info, of_binary=key in referenced)
        mode = ctx.model.entries[facts.image].mode
        if key in referenced and mode != ctx.policy.debug_file_mode:
            yield finding("SD405", facts.image, f"mode {mode:04o}, policy {ctx.policy.debug_file_mode:04o}")
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
            yield finding("SD503", image, f"-> {entry.target}: {why}", sev)
        elif ctx.model.in_debug_root(image) and image not in ctx.policy_links:
            yield finding("SD601", image, f"-> {entry.target}: a symlink the policy does not ask for")


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
            yield finding("SD602", facts.image, f"{info.elf_type} with {_list(_debug_sections(info))}")


RULE_FUNCTIONS: tuple[Callable[[Context], Iterator[Finding]], ...] = (
    rule_stripped, rule_build_ids, rule_debuglink, rule_debug_files, rule_policy_links, rule_symlinks,
    rule_stray,
)


# ---------------------------------------------------------------------------------------------
# Exports (the rule calls splitdebug.exports, imported only when --exports is given)


def exports_module() -> ModuleType:
    """splitdebug.exports, written separately; imported only when --exports is given."""
    try:
        return importlib.import_module(f"{__package__}.exports")
    except ImportError:
        raise SplitDebugError("--exports needs the splitdebug.exports module, which this installation "
                              "lacks") from None


def _exports_one(item: tuple[str, str]) -> list[str]:
    library, export_list = item
    try:
        return [str(p) for p in exports_module().check_library(Path(library), Path(export_list))]
    except SplitDebugError as err:
        return [str(err)]


def rule_exports(ctx: Context, exports_dir: Path, workers: Workers) -> list[Finding]:
    """SD701-SD702: each shared library exports exactly DIR/<soname or file name>.exports."""
    out: list[Finding] = []
    todo: list[tuple[Binary, Path]] = []
    for b in ctx.binaries:
        if b.info.kind != "shared_library":
            continue
        candidates = [b.info.soname] if b.info.soname else []
        candidates += [posixpath.basename(n) for n in b.names]
        found = next((exports_dir / f"{c}.exports" for c in candidates if (exports_dir / f"{c}.exports").is_file()),
                     None)
        if found is None:
            sev = ERROR if ctx.policy.require_export_list else WARNING
            out.append(finding("SD702", b.image, f"no {candidates[0]}.exports in {exports_dir}", sev))
        else:
            todo.append((b, found))
    results = workers.map(_exports_one, [(ctx.survey.model.entries[b.image].fs_path, str(lst)) for b, lst in todo])
    for (b, lst), problems in zip(todo, results, strict=True):
        out += [finding("SD701", b.image, f"{problem} (list {lst.name})") for problem in problems]
    return out


# ---------------------------------------------------------------------------------------------
# The whole check


@dataclass(frozen=True)
class CheckReport:
    policy: Policy
    root: str
    debug_dir: str  # file system path of the debug root
    checked: tuple[str, ...]  # image paths examined
    findings: tuple[Finding, ...]

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def failed(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def check_tree(stage_root: StageRoot, policy: Policy, pkg: PackageInfo, *, jobs: int = 1,
               exports_dir: Path | None = None) -> CheckReport:
    """Check a staged tree against a policy. SplitDebugError only for bad input (package fields)."""
    layout.check_package_fields(policy, pkg)
    if exports_dir is not None:
        exports_module()
        if not exports_dir.is_dir():
            raise SplitDebugError(f"--exports {exports_dir}: not a directory")
    with Workers(jobs) as workers:
        survey = gather(stage_root, policy, workers)
        ctx = Context(policy, pkg, survey)
        ctx.binaries = _shipped(ctx)
        pair(ctx)
        found: list[Finding] = []
        for rule in RULE_FUNCTIONS:
            found.extend(rule(ctx))
        if exports_dir is not None:
            found.extend(rule_exports(ctx, exports_dir, workers))
    checked: set[str] = set()
    for key, facts in survey.facts.items():
        names = survey.names[key]
        if facts.magic in ("elf", "ar", "unreadable") or any(survey.model.in_debug_root(n) for n in names):
            checked.update(names)
    for image, entry in survey.model.entries.items():
        if entry.kind == "link" and (survey.model.in_debug_root(image) or image in ctx.policy_links):
            checked.add(image)
    unique = sorted(set(found), key=lambda f: (f.path, f.rule, f.reason))
    debug_dir = stage_root.fs_path(policy, policy.debug_root)
    return CheckReport(policy, str(stage_root.root), str(debug_dir), tuple(sorted(checked)), tuple(unique))
