"""dwz over a tree's debug files, after every split: shared DWARF into one multifile, then the
policy's compression, then every binary's debuglink CRC.

find-debuginfo runs `dwz -h -q -r -m .dwz/<name>-<ver>-<rel>.<arch>` over the `.debug` files and
fixes CRCs with sepdebugcrcfix; dh_dwz runs `dwz -m… -M/usr/lib/debug/.dwz/<multiarch>/<pkg>.debug`
over the *unstripped* binaries, so Debian's shipped binaries keep a `.gnu_debugaltlink`. Here dwz
always runs on the separated `.debug` files, so no shipped binary carries one. dwz 0.15 refuses
compressed input: compressed debug files are decompressed first and everything is compressed after,
as the policy says.
"""

from __future__ import annotations

import filecmp
import functools
import os
import shutil
import stat
import subprocess
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..elf import read as elfread
from .. import layout
from . import gdb_index
from . import rewrite
from . import stage
from .. import fs
from ..errors import SplitDebugError, ToolError
from ..layout import PackageInfo, StageRoot
from ..policy import DWZ_GROUP_MIN_MIB, Policy

SHF_COMPRESSED = 0x800
T = TypeVar("T")
R = TypeVar("R")
MULTIFILE_MODE = 0o644  # dh_dwz and rpm ship the multifile 0644 whatever the .debug files' mode


@dataclass
class DwzReport:
    multifiles: list[str] = field(default_factory=list)  # image paths of the multifiles written
    files: int = 0                # debug files dwz was given
    bytes_before: int = 0
    bytes_after: int = 0          # debug files (one per inode) + multifile, after compression
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Fresh:
    """A debug file the split is writing: `written` waits for it (raises if its split failed);
    DWARF as its input's."""
    written: Callable[[], object]
    has_debug_info: bool
    dwarf_bytes: int


def find_dwz(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    tool = env.get("DWZ", "dwz")
    return tool if shutil.which(tool) else None


def is_compressed(info: elfread.ElfInfo) -> bool:
    return any(s.name.startswith(".zdebug") or (s.name.startswith(".debug_") and s.flags & SHF_COMPRESSED)
               for s in info.sections)


def run_dwz(stage_root: StageRoot, policy: Policy, pkg: PackageInfo, pairs: Iterable[tuple[Path, Path]],
            tools: rewrite.Tools, dwz_tool: str | None = None, jobs: int = 1,
            compressed_are_pending: bool = False, fix_crc: bool = True,
            fresh: Mapping[Path, Fresh] | None = None) -> DwzReport:
    """Run the policy's dwz pass over `pairs` of (shipped binary, its debug file), file system paths;
    then the policy's .gdb_index (gdb_index.py; the pass runs for it alone when the policy has no dwz).

    A debug file with a .gnu_debugaltlink has been through dwz already. So has a compressed one,
    unless `compressed_are_pending` (a tree split file by file with compression, as the SCons
    stage is): `split` leaves files uncompressed until this pass, so a rerun of an interrupted
    pass redoes only what it had not finished.

    Debug files that are hard links of one another go to dwz once (and are re-linked after, as
    dh_dwz does); every binary's CRC is rewritten only when its debug file changed. The
    (de)compression passes run `jobs` objcopy processes at once, and so does dwz (-j). Past the
    policy's dwz_multifile_mib, files go to dwz in groups, one multifile each (`dwz_groups`).

    `fresh`: debug files of `pairs` still being written (by the split), with what the input said
    of their DWARF: the groups are cut from that, and each group's dwz starts once its own files
    are written. The same groups as from the written files, so the same bytes. A file whose split
    failed is left out.
    """
    report = DwzReport()
    pairs = sorted(set(pairs))
    tool = dwz_tool or find_dwz()
    if tool is None and policy.dwz != "none":
        raise SplitDebugError(f"policy {policy.name!r} runs dwz, which is not installed (apt-get install dwz)")
    gdb = gdb_index.require_gdb(policy) if policy.gdb_index else None
    fresh = dict(fresh or {})
    groups = _by_inode(debug for _, debug in pairs if debug not in fresh)
    eligible, to_decompress, compressed_before = [], [], set()
    failed: set[Path] = set()
    lock = threading.Lock()  # the groups' threads wait for their files at once

    def written(path: Path) -> bool:
        """Waits for a fresh file; False if its split failed (the split reports it)."""
        with lock:
            pending = fresh.pop(path, None)
        if pending is not None:
            try:
                pending.written()
                size = path.stat().st_size
            except Exception:  # noqa: BLE001 - the split's own report says what went wrong
                size = -1
            with lock:
                if size < 0:
                    failed.add(path)
                else:
                    report.bytes_before += size
        return path not in failed

    for primary in groups:
        info = elfread.read_elf(primary)
        report.bytes_before += primary.stat().st_size
        compressed = is_compressed(info)
        if info.section(".gnu_debugaltlink") is not None or (compressed and not compressed_are_pending):
            if compressed:  # dwz already ran on it (an earlier pass)
                compressed_before.add(primary)
            continue
        if compressed and policy.dwz != "none":  # for dwz; gdb (the index alone) reads it compressed
            to_decompress.append(primary)
        if info.section(".debug_info") is not None and policy.dwz != "none":
            eligible.append(primary)
    elfutils = policy.tool == "elfutils"
    _each(jobs, lambda path: rewrite.recompress_debug(path, "none", tools, elfutils=elfutils), to_decompress)
    for path in sorted(fresh):  # dwz 0.15 takes uncompressed DWARF without an altlink: so are these
        groups[path] = []
        if fresh[path].has_debug_info and policy.dwz != "none":
            eligible.append(path)
    report.files = len(eligible)
    to_compress = [p for p in groups if p not in compressed_before]
    # In shipped-binary order, so that a group holds neighbours (one program's libraries), which
    # share more than files in build-id order would.
    first_binary = {debug: binary for binary, debug in reversed(pairs)}
    eligible.sort(key=lambda debug: min(first_binary[p] for p in [debug, *groups[debug]]))
    limit = policy.dwz_multifile_mib * 2**20 if policy.dwz_multifile_mib is not None else None
    batches = dwz_groups([(p, fresh[p].dwarf_bytes if p in fresh else dwarf_bytes(p)) for p in eligible],
                         limit, policy.dwz_groups)
    # Names first, in group order, then the groups run `jobs` at once: the same names and bytes
    # whatever -j is. Each dwz gets the cores the others leave (its -j parallelises its first phase).
    multifiles = [_multifile(stage_root, policy, pkg, report) if len(batch) > 1 else None for batch in batches]
    at_once = max(1, min(jobs, len(batches)))
    compressing = policy.compress_debug_sections != "none"
    # With an index to add, no file is final before gdb has read it and its multifile: no overlap.
    overlap = compressing and gdb is None

    def compress(path: Path) -> None:
        rewrite.recompress_debug(path, policy.compress_debug_sections, tools, policy.compress_level,
                                 policy.zlib_encoder, elfutils=elfutils)

    # Largest first throughout: no big file left to compress alone at the end.
    with _Overlap(jobs if compressing else 0, compress) as squeeze:
        def group(i: int) -> str | None:
            batches[i] = [p for p in batches[i] if written(p)]
            warning = _dwz(tool or "dwz", policy, batches[i], multifiles[i] if len(batches[i]) > 1 else None,
                           max(1, jobs // at_once)) if batches[i] else None
            # A group's files are final once its dwz is done: compressed while the other groups' dwz
            # runs, not after the slowest one.
            if overlap:
                squeeze.submit(sorted(batches[i], key=lambda path: -path.stat().st_size))
            return warning

        outcomes = _map(at_once, group, list(range(len(batches))))
        to_compress = [p for p in to_compress if written(p)]  # every fresh file written from here on
        if overlap:
            in_batches = {p for batch in batches for p in batch}
            to_compress = [p for p in to_compress if p not in in_batches]
        to_compress += _multifile_outcomes(stage_root, policy, report, batches, multifiles, outcomes)
        if gdb is not None:  # on dwz's output, before compression and the CRCs: each index covers final DWARF
            report.warnings += gdb_index.add_indexes(
                stage_root, [p for p in groups if p not in compressed_before and p not in failed],
                [stage_root.fs_path(policy, image) for image in report.multifiles], gdb, tools.objcopy, jobs)
        # Groups that share the same DWARF (the same headers) get byte-identical multifiles, one build-id:
        # those are one file with several names, compressed once.
        copy_of = _identical(stage_root.fs_path(policy, image) for image in report.multifiles)
        squeeze.submit(sorted((p for p in to_compress if p not in copy_of), key=lambda path: -path.stat().st_size))
    for primary, aliases in groups.items():
        if primary in failed:
            continue
        for alias in aliases:
            if not os.path.samefile(primary, alias):
                stage.install_hardlink(primary, alias)
        report.bytes_after += primary.stat().st_size
    for copy, first in copy_of.items():
        stage.install_hardlink(first, copy)
    for image in report.multifiles:
        fs = stage_root.fs_path(policy, image)
        if fs not in copy_of:
            report.bytes_after += fs.stat().st_size
    if fix_crc:  # else the caller does, once binaries still being written are done
        fix_crcs([(binary, debug) for binary, debug in pairs if debug not in failed])
    return report


def _identical(paths: Iterable[Path]) -> dict[Path, Path]:
    """{file: an earlier one with the same build-id and bytes} among `paths`."""
    first_of: dict[str, list[Path]] = defaultdict(list)
    copy_of: dict[Path, Path] = {}
    for path in paths:
        build_id = elfread.read_elf(path).build_id or f"none:{path}"
        same = next((f for f in first_of[build_id] if filecmp.cmp(f, path, shallow=False)), None)
        if same is None:
            first_of[build_id].append(path)
        else:
            copy_of[path] = same
    return copy_of


def dwarf_bytes(path: Path) -> int:
    """What dwz's multifile pass holds in memory for a file: about its .debug_info, .debug_types and
    .debug_str (measured: 0.94 byte of peak memory per byte of them for C, 1.0 for C++)."""
    return dwarf_size(elfread.read_elf(path))


def dwarf_size(info: elfread.ElfInfo) -> int:
    """dwarf_bytes of a file read already (an input binary's, before its debug file is written)."""
    return sum(s.size for s in info.sections if s.name in (".debug_info", ".debug_types", ".debug_str"))


def dwz_groups(files: list[tuple[Path, int]], limit: int | None, parts: int = 1) -> list[list[Path]]:
    """Cut (path, DWARF bytes) into runs, in order, each given to one dwz with its own multifile.

    dwz's multifile pass holds every file's shareable DIEs at once: 433 MB for 1500 files. Each run
    holds at most `limit` bytes (a file bigger than that alone; None: no limit), and the runs are as
    few and as even as that allows, so that the last one is not a few files with little to share.
    `parts` (the policy's dwz_groups) asks for at least that many runs, run at once on as many cores,
    as long as each holds DWZ_GROUP_MIN_MIB; parts=1 and no limit: one run, as dh_dwz does.
    """
    total = sum(size for _, size in files)
    wanted = max(1, min(parts, total // (DWZ_GROUP_MIN_MIB << 20)))
    if wanted == 1 and (limit is None or total <= limit):
        return [[path for path, _ in files]] if files else []
    bound = limit if limit is not None else total
    fewest = _cut(files, None, bound)  # greedy: the fewest runs within the limit
    runs = max(len(fewest), wanted)
    even = _cut(files, total / runs, bound)
    return even if len(even) <= runs else fewest


def _cut(files: list[tuple[Path, int]], target: float | None, limit: int) -> list[list[Path]]:
    """Runs in order: a new one where a file would pass the limit, or cross the next multiple of
    `target` (an even share of the total)."""
    runs: list[list[Path]] = [[]]
    held = done = 0
    for path, size in files:
        if runs[-1] and (held + size > limit or (target is not None and done + size > len(runs) * target)):
            runs.append([])
            held = 0
        runs[-1].append(path)
        held += size
        done += size
    return runs


def _map(jobs: int, work: Callable[[T], R], items: list[T]) -> list[R]:
    """[work(item) for item in items], `jobs` at a time (the work is in external tools), in order."""
    if jobs <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(work, items))  # re-raises the first failure


def _each(jobs: int, work: Callable[[Path], None], paths: list[Path]) -> None:
    """work(path) for every path, `jobs` at a time (the work is in external tools)."""
    _map(jobs, work, paths)


class _Overlap:
    """work(path) for paths submitted from any thread, `jobs` at a time, while the submitters go on;
    leaving the block waits for all of it and re-raises the first failure. jobs 1: at once, in the
    submitter's thread (-j1 runs one thing at a time); 0: nothing is done."""

    def __init__(self, jobs: int, work: Callable[[Path], None]) -> None:
        self.jobs, self.work = jobs, work
        self.pool = ThreadPoolExecutor(max_workers=jobs) if jobs > 1 else None
        self.futures: list[Future[None]] = []

    def __enter__(self) -> _Overlap:
        return self

    def submit(self, paths: list[Path]) -> None:
        if self.pool is None:
            for path in paths if self.jobs else []:
                self.work(path)
        else:
            self.futures += [self.pool.submit(self.work, path) for path in paths]

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            for fut in self.futures if exc_type is None else []:  # else the block's own error goes up
                fut.result()


def _multifile_outcomes(stage_root: StageRoot, policy: Policy, report: DwzReport, batches: list[list[Path]],
                        multifiles: list[tuple[str, Path] | None], warnings: list[str | None]) -> list[Path]:
    """Each group's dwz warning into the report; its multifile kept (and returned, to be compressed)
    when a file of the group refers to it, else removed."""
    kept = []
    for batch, multifile, warning in zip(batches, multifiles, warnings, strict=True):
        if warning is not None:
            report.warnings.append(warning)
        if multifile is not None:
            image, fs = multifile
            if (_chmod_regular(fs, MULTIFILE_MODE) and os.path.getsize(fs)
                    and any(elfread.read_elf(p).section(".gnu_debugaltlink") for p in batch)):
                report.multifiles.append(image)
                kept.append(fs)
            else:  # dwz found nothing worth sharing: an unreferenced multifile is only clutter
                fs.unlink(missing_ok=True)
                stage.remove_empty_dirs(fs.parent, stage_root.fs_path(policy, policy.debug_root))
    return kept


def fix_crcs(pairs: Iterable[tuple[Path, Path]]) -> int:
    """Make each binary's .gnu_debuglink CRC match its debug file; returns how many changed.

    A binary with several names is patched in a copy (see rewrite.set_debuglink_crc): its other
    names in the tree are linked to the copy, a name outside the root keeps the old file.
    """
    crc_of: dict[Path, int] = {}
    done: dict[tuple[int, int], Path | None] = {}  # inode: the copy that replaced it, if one did
    changed = 0
    for binary, debug in pairs:
        st = binary.lstat()
        key = (st.st_dev, st.st_ino)
        if key in done:
            copy = done[key]
            if copy is not None and not os.path.samefile(copy, binary):
                stage.install_hardlink(copy, binary)
            continue
        done[key] = None
        crc = crc_of.setdefault(debug, elfread.crc32_file(debug))
        info = elfread.read_elf(binary)
        carried = elfread.read_debuglink(binary, info)
        if carried is not None and carried[1] != crc:
            if rewrite.set_debuglink_crc(binary, crc):
                done[key] = binary
            changed += 1
    return changed


def _by_inode(paths: Iterable[Path]) -> dict[Path, list[Path]]:
    """{first name of each inode: its other names}, in sorted order."""
    names: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for p in sorted(set(paths)):
        st = p.stat()
        names[(st.st_dev, st.st_ino)].append(p)
    return {group[0]: group[1:] for group in names.values()}


def _multifile(stage_root: StageRoot, policy: Policy, pkg: PackageInfo,
               report: DwzReport) -> tuple[str, Path] | None:
    """(image path, file system path) of the multifile to write, or None for per-file dwz."""
    if policy.dwz != "multifile" or policy.dwz_multifile is None:
        return None
    missing = [k for k in ("package", "version", "release")
               if "{" + k + "}" in policy.dwz_multifile and not getattr(pkg, k)]
    if missing:
        warning = (f"no {', '.join('--' + m for m in missing)}: dwz runs file by file "
                   f"(the multifile {policy.dwz_multifile} needs them)")
        if warning not in report.warnings:  # once, not once per group
            report.warnings.append(warning)
        return None
    image = base = layout.package_path(policy, policy.dwz_multifile, pkg)
    stem, suffix = (base[:-6], ".debug") if base.endswith(".debug") else (base, "")
    fs = stage_root.fs_path(policy, image)
    stage.make_dir_inside(stage_root, fs.parent)  # dwz does not create it
    # find-debuginfo's rule: a multifile of that name already there (an earlier pass, or an earlier
    # group of this one) gets .1, .2 … (before Debian's .debug suffix).
    n = 0
    while os.path.lexists(fs):  # a dangling symlink is not a free name
        if fs.is_symlink():
            raise SplitDebugError(f"{fs}: a symlink where the dwz multifile goes; not written through")
        n += 1
        image = f"{stem}.{n}{suffix}"
        fs = stage_root.fs_path(policy, image)
    _create_private(fs)
    return image, fs


def _create_private(path: Path) -> None:
    """Make `path` a new empty regular file of ours before dwz writes it.

    dwz opens its multifile with O_RDWR|O_CREAT and follows a symlink there; a file we created with
    O_EXCL|O_NOFOLLOW is what it then writes into. (dwz cannot write into a temporary directory to be
    renamed after: with -r it records the path it was given, relative to each debug file.)
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        raise SplitDebugError(f"{path}: cannot create the dwz multifile: {err.strerror}") from None
    os.close(fd)


def _chmod_regular(path: Path, mode: int) -> bool:
    """chmod a regular file, never through a symlink; False when `path` is not one (any more)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        os.fchmod(fd, mode)
        return True
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=8)
def _takes_jobs(tool: str) -> bool:
    """dwz 0.15 processes files in parallel with -j; older ones do not know the option."""
    try:
        proc = subprocess.run([tool, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace")
    except OSError:
        return False
    return "--jobs" in proc.stdout + proc.stderr


def _dwz(tool: str, policy: Policy, files: list[Path], multifile: tuple[str, Path] | None,
         jobs: int = 1) -> str | None:
    """Run dwz over one group; a warning when it failed (the files it did not finish stay valid)."""
    argv = [tool, "-h"]
    if jobs > 1 and _takes_jobs(tool):
        argv += ["-j", str(jobs)]
    if multifile is not None:
        image, fs = multifile
        argv += ["-m", str(fs)] + (["-r"] if policy.dwz_altlink == "relative" else ["-M", image])
    if policy.dwz_max_dies is not None:  # before dwz_args: the rpm front end's own -L comes last and wins
        argv += ["-L", str(policy.dwz_max_dies)]
    argv += [*policy.dwz_args, "--", *map(str, files)]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    except OSError as err:
        raise ToolError(str(files[0]), argv, f"cannot run: {err.strerror}") from None
    # "DWARF compression not beneficial" is dwz declining a small file: not a problem.
    # Nor is "Too many DIEs, not optimizing": the policy's dwz_max_dies keeping dwz's memory bounded
    # (and when that leaves fewer than two files, "Too few files for multifile optimization").
    declined = [line for line in proc.stderr.splitlines() if "Too many DIEs" in line or "Too few files" in line]
    notes = [line for line in proc.stderr.splitlines()
             if line.strip() and "not beneficial" not in line and line not in declined]
    if proc.returncode != 0 and (notes or not declined):
        # dwz replaces only the files it finished; the others stay valid, uncompressed by it.
        return f"dwz exited {proc.returncode}: {notes[-1] if notes else 'no message'}"
    return None


def shipped_pairs(stage_root: StageRoot, policy: Policy, pkg: PackageInfo) -> list[tuple[Path, Path]]:
    """(binary, debug file) for every shipped ELF of a split tree, through the policy's layout.

    For trees split earlier (the SCons stage): the package step runs dwz over them.
    """
    pairs = []
    debug_dir = stage_root.fs_path(policy, policy.debug_root)
    for dirpath, dirnames, filenames in fs.walk(stage_root.root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if here / d != debug_dir and not (here / d).is_symlink())
        for name in sorted(filenames):
            p = here / name
            if p.is_symlink() or not elfread.is_elf(p):
                continue
            try:
                info = elfread.read_elf(p)
                if info.is_debug_file or info.build_id is None or elfread.read_debuglink(p, info) is None:
                    continue
                place = layout.place(policy, stage_root.image_path(p), info.build_id, pkg)
            except SplitDebugError:
                continue
            debug = stage_root.fs_path(policy, place.debug_file)
            if debug.is_file():
                pairs.append((p, debug))
    return pairs
