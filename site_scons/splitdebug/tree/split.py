"""`splitdebug split`: what dh_strip / find-debuginfo do, on any staging root.

Scan first (read-only, `scan.py`): classify every file, and refuse the whole run if an ELF lacks a build-id
so nothing is left half-done. Then split, largest files first: in forked workers on the command
line (an in-process split is partly Python, and threads would share one GIL), in threads when the
caller has threads of its own (SCons). With dwz, debug files come first, then dwz runs while the
stripped binaries are written. Links come last, serially.
"""

from __future__ import annotations

import functools
import os
import posixpath
import signal
from collections import defaultdict
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from . import dwz
from . import gdb_index
from ..elf import read as elfread
from .. import layout
from . import rewrite
from . import sources
from . import stage
from .. import fs
from ..errors import SplitDebugError, ToolError
from ..layout import PackageInfo, Placement, StageRoot
from ..policy import Policy
from .scan import Candidate, scan_tree


@dataclass
class Report:
    split: list[tuple[str, str]] = field(default_factory=list)  # (image path, debug image path)
    archives: list[str] = field(default_factory=list)
    stripped_only: list[str] = field(default_factory=list)  # no build-id: no debug file
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    shipped_bytes: int = 0
    debug_bytes: int = 0
    sources: list[str] = field(default_factory=list)  # image paths of the sources copied in
    dwz_multifiles: list[str] = field(default_factory=list)


def plan(policy: Policy, candidates: list[Candidate], pkg: PackageInfo,
         errors: list[str]) -> list[tuple[Candidate, Placement, bool]]:
    """Placement of each candidate; the bool says whether it writes its debug file.

    Same build-id twice: `reuse` writes the debug file once (dh_strip), `suffix` numbers the
    second file's links .1, .2 … (rpm). A file that cannot be placed is an error of its own.
    """
    seen: dict[str, int] = defaultdict(int)
    dup_of = _dup_numbers(candidates) if policy.duplicate_build_id == "suffix" else {}
    out = []
    for c in candidates:
        if c.kind == "static_archive" or c.build_id is None:
            out.append((c, Placement(c.image, "", "", ()), False))
            continue
        n = seen[c.build_id]
        dup = dup_of.get(c.image, n) if policy.duplicate_build_id == "suffix" else 0
        try:
            placed = layout.place(policy, c.image, c.build_id, pkg, dup)
            if dup_of and c.aliases:
                placed = _with_alias_links(policy, c, pkg, placed, dup_of)
            if n and policy.duplicate_build_id == "reuse":
                # A build-id's links are its first name's (path order), as check expects; a later
                # copy's would overwrite them, each named by the same build-id.
                placed = Placement(placed.binary, placed.debug_file, placed.debuglink, ())
            # `reuse` shares a debug file named by build-id; a path-named one is every binary's own.
            out.append((c, placed, n == 0 or dup > 0 or not policy.uses_build_id_path))
        except SplitDebugError as err:
            errors.append(str(err))
            continue
        seen[c.build_id] += 1
    return out


def _alias_images(c: Candidate) -> list[str]:
    here = posixpath.dirname(c.image)
    return [posixpath.normpath(posixpath.join(here, os.path.relpath(a, c.path.parent).replace(os.sep, "/")))
            for a in c.aliases]


def _dup_numbers(candidates: list[Candidate]) -> dict[str, int]:
    """rpm numbers every name of one build-id in path order, hard links included: {image: n}."""
    names = sorted((image, c.build_id) for c in candidates if c.build_id and c.kind != "static_archive"
                   for image in (c.image, *_alias_images(c)))
    count: dict[str, int] = defaultdict(int)
    out = {}
    for image, build_id in names:
        out[image] = count[build_id]
        count[build_id] += 1
    return out


def _with_alias_links(policy: Policy, c: Candidate, pkg: PackageInfo, placed: Placement,
                      dup_of: dict[str, int]) -> Placement:
    """Hard links are names of their own to rpm: each gets its numbered build-id links."""
    extra = [link for image in _alias_images(c)
             for link in layout.place(policy, image, c.build_id, pkg, dup_of[image]).links]
    return Placement(placed.binary, placed.debug_file, placed.debuglink, placed.links + tuple(extra))


def split_tree(stage_root: StageRoot, policy: Policy, pkg: PackageInfo, *, jobs: int,
               tools: rewrite.Tools, source_root: Path | None = None, processes: bool = False,
               exclude: Callable[[Path], bool] | None = None, exec_bit_only: bool = False) -> Report:
    """Split every candidate; with `source_root`, DWARF paths under it are rewritten to the
    policy's source_dir first (debugedit) and the sources named are copied into the tree.
    `processes`: the caller has no threads of its own (the command line), so forked workers may
    split; else threads do (SCons). `exclude`: paths left alone (debhelper's -X). `exec_bit_only`:
    ELF files without an execute bit are left alone (find-debuginfo's rule)."""
    layout.check_package_fields(policy, pkg)
    missing = tools.missing(policy)
    if missing:
        raise SplitDebugError(f"needed tools not found: {', '.join(missing)}")
    smap, debugedit = _source_mapping(policy, pkg, source_root)
    dwz_tool = _dwz_tool(policy)
    # The tree-level pass (dwz.run_dwz) runs for dwz, for .gdb_index, or both: it compresses after them.
    tree_pass = dwz_tool is not None or policy.gdb_index
    if policy.gdb_index:
        gdb_index.require_gdb(policy)  # before anything is written
    named_sources: dict[str, list[str]] = {}
    report_notes: list[str] = []
    for leftover in stage.sweep_leftovers(stage_root.root):
        scan_note = f"{stage_root.image_path(leftover)}: removed what an interrupted run left"
        report_notes.append(scan_note)
    scan = scan_tree(stage_root, policy, exclude, exec_bit_only=exec_bit_only)
    report = Report(skipped=[(stage_root.image_path(p), r) for p, r in scan.skipped],
                    warnings=report_notes + list(scan.warnings), errors=list(scan.errors))
    if scan.errors:
        return report  # refused before anything was written
    work = plan(policy, scan.candidates, pkg, report.errors)
    # With dwz, an in-process split writes debug files first and dwz starts on them while the
    # stripped binaries (minidebuginfo: xz) are written: the two longest parts overlap.
    overlap = tree_pass and smap is None and bool(work)
    earlier: list[tuple[Path, Path]] = []
    if overlap:
        try:  # binaries an earlier, interrupted run split: dwz goes over them too
            earlier = dwz.shipped_pairs(stage_root, policy, pkg)
        except (SplitDebugError, OSError) as err:
            report.errors.append(f"dwz pass: {err}")
            overlap = False

    def finish(outcome: Outcome) -> Outcome:
        c, place, res = outcome
        return (c, place, res.finish()) if isinstance(res, rewrite.Deferred) else outcome

    dwz_done: dwz.DwzReport | None = None
    # Largest files first: with few workers, a big file started last would leave the others idle.
    by_size = sorted(work, key=lambda item: -_size(item[0].path))
    task = functools.partial(_split_one, stage_root, policy, tools, smap=smap, debugedit=debugedit,
                             compress=not tree_pass, defer=overlap)
    # An in-process split spends part of its time in Python, where threads share one GIL: the
    # command line (no threads of its own) forks its workers instead, before any thread exists.
    pool = _process_pool(jobs) if processes and jobs > 1 and len(work) > jobs and not overlap else None
    forked = pool is not None
    # dwz's groups known from the scan (every input's DWARF plain): dwz starts on a group once its
    # files are written, while the next group's are, so those are split in the groups' (path) order.
    early = overlap and all(c.dwarf_bytes is not None for c, _, write in work if write and c.build_id)
    if early:
        by_size = list(work)
    pass_: Future[dwz.DwzReport] | None = None
    with pool or ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, ThreadPoolExecutor(max_workers=1) as side:
        if forked:  # a few batches per worker: one message each way per batch, not one per file
            batches = [by_size[i::jobs * 4] for i in range(jobs * 4)]
            futures = [pool.submit(_split_batch, task, batch) for batch in batches]
            submitted = {id(item): _settled(r) for batch, fut in zip(batches, futures, strict=True)
                         for item, r in zip(batch, _batch_results(fut, len(batch)), strict=True)}
        else:
            submitted = {id(item): pool.submit(task, item) for item in by_size}
        if early:
            fresh = {stage_root.fs_path(policy, item[1].debug_file):
                     dwz.Fresh(submitted[id(item)].result, item[0].has_debug_info, item[0].dwarf_bytes or 0)
                     for item in work if item[2] and item[0].build_id}
            every = sorted(set(earlier) | {(c.path, stage_root.fs_path(policy, place.debug_file))
                                           for c, place, _ in work if c.build_id and c.kind != "static_archive"})
            pass_ = side.submit(dwz.run_dwz, stage_root, policy, pkg, every, tools, dwz_tool, jobs=jobs,
                                fix_crc=False, fresh=fresh)
        done: list[Outcome] = []
        for outcome, names in _collect(report, [(item[0], submitted[id(item)]) for item in work]):
            named_sources[outcome[0].image] = names
            done.append(outcome)
        if overlap:
            pairs = sorted(set(earlier) | {(c.path, stage_root.fs_path(policy, place.debug_file))
                                           for c, place, res in done if res is not None})
            if pass_ is None:
                pass_ = side.submit(dwz.run_dwz, stage_root, policy, pkg, pairs, tools, dwz_tool, jobs=jobs,
                                    fix_crc=False)
            done = _collect(report, [(c, pool.submit(finish, (c, place, res))) for c, place, res in done])
            dwz_done = _dwz_outcome(report, pass_.result)
            if dwz_done is not None:
                dwz.fix_crcs(pairs)  # every binary is written now: its CRC names its final debug file
    debug_of: dict[Path, str] = {}
    counted: set[str] = set()
    for c, place, res in done:
        try:
            _relink_aliases(stage_root, policy, pkg, c, place)
        except (SplitDebugError, OSError) as err:
            report.errors.append(f"{c.image}: {err}")
            continue
        if res is None:
            (report.archives if c.kind == "static_archive" else report.stripped_only).append(c.image)
            continue
        assert isinstance(res, rewrite.SplitResult)
        debug_of[c.path.resolve()] = place.debug_file
        report.split.append((c.image, place.debug_file))
        report.shipped_bytes += res.stripped_bytes
        if place.debug_file not in counted:
            counted.add(place.debug_file)
            report.debug_bytes += res.debug_bytes
    if dwz_done is not None:
        report.debug_bytes = dwz_done.bytes_after
    for link, target in scan.symlinks:
        if target not in debug_of:
            continue
        dl = layout.symlink_debug_link(policy, stage_root.image_path(link), stage_root.image_path(target), pkg)
        if dl is not None:
            try:
                stage.install_symlink(stage_root, policy, dl)
            except (SplitDebugError, OSError) as err:
                report.errors.append(f"{dl.path}: {err}")
    if tree_pass and not overlap and (debug_of or not scan.candidates):
        try:
            pairs = dwz.shipped_pairs(stage_root, policy, pkg)
        except (SplitDebugError, OSError) as err:
            report.errors.append(f"dwz pass: {err}")
            pairs = []
        if pairs:
            dwz_done = _dwz_outcome(report, functools.partial(dwz.run_dwz, stage_root, policy, pkg, pairs, tools,
                                                              dwz_tool, jobs=jobs))
            if dwz_done is not None:
                report.debug_bytes = dwz_done.bytes_after
    if smap is not None and source_root is not None and policy.ships_sources:
        names = sorted({n for found in named_sources.values() for n in found})
        report.sources, lost = sources.copy_sources(names, source_root, stage_root, policy, smap.dest)
        report.warnings += [f"{smap.base}/{n}: named by the debug info but not found" for n in lost]
    report.split.sort()
    return report


def _source_mapping(policy: Policy, pkg: PackageInfo,
                    source_root: Path | None) -> tuple[sources.SourceMap | None, str | None]:
    if source_root is None:
        return None, None
    if policy.source_dir is None:
        raise SplitDebugError(f"--source-root: policy {policy.name!r} has no source_dir to map source paths to")
    if not source_root.is_dir():
        raise SplitDebugError(f"{source_root}: not a directory")
    return sources.source_map(policy, pkg, source_root), sources.require_debugedit()


def _dwz_tool(policy: Policy) -> str | None:
    if policy.dwz == "none":
        return None
    tool = dwz.find_dwz()
    if tool is None:
        raise SplitDebugError(f"policy {policy.name!r} runs dwz, which is not installed (apt-get install dwz)")
    return tool


def _dwz_outcome(report: Report, result_of: Callable[[], dwz.DwzReport]) -> dwz.DwzReport | None:
    """The tree-level pass (dwz, then compression; dwz.py): its result (running it, or waiting for
    it) put into the report.

    It goes over every split binary of the tree, not only this run's: a run killed during the pass
    is finished by the next one (files dwz already did are skipped, CRCs fixed where stale).
    """
    try:
        result = result_of()
    except (SplitDebugError, OSError) as err:
        report.errors.append(f"dwz pass: {err}")
        return None
    report.warnings += result.warnings
    report.dwz_multifiles = result.multifiles
    return result


Outcome = tuple[Candidate, Placement, "rewrite.SplitResult | rewrite.Deferred | None"]
T = TypeVar("T")


def _split_batch(task: Callable[[tuple[Candidate, Placement, bool]], tuple[Outcome, list[str]]],
                 batch: list[tuple[Candidate, Placement, bool]]) -> list[tuple[Outcome, list[str]] | BaseException]:
    """Run `task` over a batch in a forked worker; a failure is returned in its place, not raised."""
    out: list[tuple[Outcome, list[str]] | BaseException] = []
    for item in batch:
        try:
            out.append(task(item))
        except Exception as err:  # the parent reports it as it would a thread's
            out.append(err)
    return out


def _batch_results(fut: Future[list[tuple[Outcome, list[str]] | BaseException]],
                   n: int) -> list[tuple[Outcome, list[str]] | BaseException]:
    try:
        return fut.result()
    except Exception as err:  # the worker itself died: every file of the batch failed with it
        return [err] * n


def _settled(value: tuple[Outcome, list[str]] | BaseException) -> Future[tuple[Outcome, list[str]]]:
    fut: Future[tuple[Outcome, list[str]]] = Future()
    if isinstance(value, BaseException):
        fut.set_exception(value)
    else:
        fut.set_result(value)
    return fut


def _process_pool(jobs: int) -> Executor | None:
    """Forked workers, or None where the system cannot give them (no /dev/shm for multiprocessing's
    semaphores in some build chroots): the split then runs in threads, slower but the same.
    multiprocessing is imported here, only when a pool is made: a small package never pays for it."""
    try:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_die_with_parent)
    except (OSError, ImportError, NotImplementedError, ValueError):
        return None


def _die_with_parent() -> None:
    """A forked worker goes when the run does (a killed run leaves no worker writing behind it)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _split_one(stage_root: StageRoot, policy: Policy, tools: rewrite.Tools, item: tuple[Candidate, Placement, bool],
               *, smap: sources.SourceMap | None, debugedit: str | None, compress: bool,
               defer: bool) -> tuple[Outcome, list[str]]:
    """Split one candidate (in a thread or a forked worker): its outcome and the sources it names."""
    c, place, write_debug = item
    if c.kind == "static_archive":
        rewrite.strip_archive(c.path, c.path, policy=policy, tools=tools)
        return (c, place, None), []
    if c.build_id is None:  # missing_build_id: warn
        rewrite.strip_only(c.path, c.path, policy=policy, kind=c.kind, tools=tools)
        return (c, place, None), []
    # Order matters for a run killed part-way: links first (a rerun makes them again), then
    # the debug file, then the stripped binary. Once the binary is stripped, all of it exists.
    debug_fs = stage_root.fs_path(policy, place.debug_file)
    stage.make_dir_inside(stage_root, debug_fs.parent)
    for link in place.links:
        stage.install_symlink(stage_root, policy, link)
    with sources.mapped(c.path, smap, debugedit) as (src, names):
        res = rewrite.split_binary(src, c.path, debug_fs, policy=policy, kind=c.kind,
                                   debuglink=place.debuglink, tools=tools, write_debug=write_debug,
                                   compress=compress, defer_strip=defer, stage_root=stage_root)
    return (c, place, res), names


def _collect(report: Report, futures: list[tuple[Candidate, Future[T]]]) -> list[T]:
    """The outcomes that succeeded; each failure becomes one line of the report (the others go on)."""
    done = []
    for cand, fut in futures:
        try:
            done.append(fut.result())
        except ToolError as err:
            if any(m in err.stderr for m in FOREIGN_FORMAT):
                # Another architecture than our binutils read: left untouched, with the remedy.
                reason = (f"{err.argv[0]} cannot read {cand.machine} ELF files; left alone "
                          "(set OBJCOPY/STRIP to that architecture's binutils, e.g. s390x-linux-gnu-objcopy)")
                report.warnings.append(f"{cand.image}: {reason}")
                report.skipped.append((cand.image, reason))
            else:
                report.errors.append(str(err))
        except SplitDebugError as err:
            report.errors.append(str(err))
        except OSError as err:  # strerror and filename when the system raised it, else its message
            where = f": {err.filename}" if err.filename else ""
            report.errors.append(f"{cand.image}: {err.strerror or err}{where}")
        except Exception as err:  # one odd file must not stop the tree; say what happened
            report.errors.append(f"{cand.image}: unexpected {type(err).__name__}: {err}")
    return done


# What objcopy, strip and eu-strip say of an ELF file of a machine they were not built for.
FOREIGN_FORMAT = ("Unable to recognise the format", "file format not recognized", "unknown ELF machine")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _relink_aliases(stage_root: StageRoot, policy: Policy, pkg: PackageInfo, c: Candidate, place: Placement) -> None:
    """The other hard-linked names of a split file (and of its debug file) name the new file too."""
    for alias in c.aliases:
        stage.install_hardlink(c.path, alias)
        if place.debug_file and not policy.uses_build_id_path:
            alias_dbg = layout.place(policy, stage_root.image_path(alias), c.build_id, pkg).debug_file
            stage.install_hardlink(stage_root.fs_path(policy, place.debug_file),
                                   stage_root.fs_path(policy, alias_dbg))


@dataclass(frozen=True)
class Totals:
    binaries: int
    shipped_bytes: int
    debug_bytes: int


def totals(root: str | os.PathLike[str], policy: Policy) -> Totals:
    """Split binaries (ELF files carrying a .gnu_debuglink) and bytes of debug files in a staged tree."""
    stage_root = StageRoot(Path(os.path.abspath(root)))
    debug_dir = stage_root.fs_path(policy, policy.debug_root)
    binaries = shipped = debug = 0
    for dirpath, _, filenames in fs.walk(stage_root.root):
        in_debug = Path(dirpath).is_relative_to(debug_dir)
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            if in_debug:
                debug += p.stat().st_size
            elif elfread.is_elf(p):
                try:
                    info = elfread.read_elf(p)
                    if info.is_debug_file:  # beside the binary, as Yocto's <dir>/.debug/<name>
                        debug += p.stat().st_size
                    elif info.section(".gnu_debuglink") is not None:
                        binaries += 1
                        shipped += p.stat().st_size
                except SplitDebugError:
                    continue
    return Totals(binaries, shipped, debug)
