"""Gathering: one walk of the tree (`TreeModel`), then a pool of worker processes, created once,
reads what the rules need from each regular file: ELF header, section table, notes, `.gnu_debuglink`,
the ELF inside `.gnu_debugdata`, archive members' section tables, the CRC32 of debug files. Never
DWARF, and no Python process per file (the reading is Python, so threads would share one core).
A damaged file is a finding, never a crash.
"""

from __future__ import annotations

import multiprocessing
import os
import posixpath
import stat
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from ..elf import read as elfread
from .. import fs
from ..errors import ElfError, SplitDebugError
from ..layout import StageRoot
from ..policy import Policy
from .model import Entry, Key, TreeModel


# .gnu_debugdata inflates to at most this, and to at most 64 x its packed size + 1 MiB (symbol tables
# compress under 10 x; an xz bomb of zeros 1000 x or more): bounded memory per checker worker.

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
    build_ids: tuple[str, ...] = ()  # every GNU build-id note, in file order
    compressions: tuple[tuple[str, str], ...] = ()  # (section, format) of compressed DWARF (debug files)
    bad_links: tuple[str, ...] = ()  # section headers whose sh_link/sh_info name no fitting section
    package_notes: tuple[bytes, ...] = ()  # descriptors of FDO package metadata notes, in file order


@dataclass(frozen=True)
class Task:
    fs_path: str
    image: str
    want_crc: bool
    archive: bool  # read archive members (under a policy that strips archives)


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
    try:
        notes = tuple(elfread.build_id_notes(task.fs_path, info))
        pkg_notes = tuple(elfread.package_notes(task.fs_path, info))
        packed = tuple(sorted(elfread.debug_compressions(task.fs_path, info).items())) if info.is_debug_file \
            else ()
    except ElfError:
        notes, pkg_notes, packed = (), (), ()  # the header read already succeeded; a damaged note is SD901's
    bad_links = tuple(elfread.bad_section_links(elfread.read_headers(task.fs_path)))
    return FileFacts(image, "elf", elf=info, debuglink=link, debuglink_error=link_error, crc=crc,
                     minidebuginfo=mini, altlink=altlink, build_ids=notes, compressions=packed, bad_links=bad_links,
                     package_notes=pkg_notes)


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
    return Member(name, info.debug_sections)


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
    data, problem = elfread.inflate_minidebuginfo(packed)
    if problem:
        return problem
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
            for dirpath, _, files in fs.walk(own):
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
        # Every ar archive is read (its ELF members are shipped code, whatever its name).
        archive = policy.strip.static_archive is not None
        tasks.append((key, Task(first.fs_path, paths[0], want_crc=in_debug, archive=archive)))
    results = workers.map(inspect_file, [t for _, t in tasks])
    facts = {key: res for (key, _), res in zip(tasks, results, strict=True)}
    return Survey(stage_root, model, MappingProxyType(facts),
                  MappingProxyType({k: tuple(v) for k, v in names.items()}),
                  tuple(unreadable), tuple(sorted(misplaced)))
