"""Scanning a staging root, read-only: every file classified (executable, shared library, static
archive, or left alone with the reason), hard links grouped, symlinks kept inside the root, build-ids
read, so that the split can refuse a whole run before it writes anything."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..elf import read as elfread
from . import dwz
from . import stage
from .. import fs
from ..errors import SplitDebugError
from ..layout import StageRoot
from ..policy import Policy


@dataclass(frozen=True)
class Candidate:
    """One file to process, and the other names (hard links) of the same inode."""

    path: Path
    image: str
    kind: str  # executable, shared_library, static_archive
    build_id: str | None
    aliases: tuple[Path, ...] = ()
    machine: str = ""
    # What its debug file will hold for dwz, read here so that dwz's groups can be cut before the
    # debug files are written: its .debug_info, and dwz.dwarf_size's bytes; None when the input's
    # DWARF is compressed or already dwz'd (its debug file is then read once written).
    has_debug_info: bool = False
    dwarf_bytes: int | None = None


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    symlinks: list[tuple[Path, Path]] = field(default_factory=list)  # (link, resolved target), both in root
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _skip_dirs(stage_root: StageRoot, policy: Policy) -> set[Path]:
    dirs = {stage_root.fs_path(policy, policy.debug_root)}
    if stage_root.debug_dir is not None:
        dirs.add(stage_root.debug_dir)
    return {Path(os.path.abspath(d)) for d in dirs}


def scan_tree(stage_root: StageRoot, policy: Policy, exclude: Callable[[Path], bool] | None = None, *,
              exec_bit_only: bool = False) -> Scan:
    """`exclude`: paths (files, and directories with all they hold) left alone, as debhelper's -X.
    `exec_bit_only`: find-debuginfo's rule, an ELF without an execute bit is left alone (rpm's
    brp-strip deals with it later)."""
    root = stage_root.root
    scan = Scan()
    skip = _skip_dirs(stage_root, policy)
    by_inode: dict[tuple[int, int], list[Path]] = defaultdict(list)
    links: list[Path] = []
    for dirpath, dirnames, filenames in fs.walk(root, onerror=lambda e: scan.errors.append(
            f"{e.filename}: cannot read directory: {e.strerror}")):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if Path(os.path.abspath(here / d)) not in skip
                             and not (exclude and exclude(here / d)))
        for name in sorted(filenames + [d for d in dirnames if (here / d).is_symlink()]):
            p = here / name
            if exclude and exclude(p):
                scan.skipped.append((p, "excluded"))
                continue
            try:
                st = p.lstat()
            except OSError as err:
                scan.skipped.append((p, f"cannot stat: {err.strerror}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                links.append(p)
            elif stat.S_ISREG(st.st_mode):
                by_inode[(st.st_dev, st.st_ino)].append(p)
    for paths in by_inode.values():
        paths.sort()
        if exec_bit_only and not paths[0].lstat().st_mode & 0o111:
            if elfread.file_magic(paths[0])[:4] == elfread.ELF_MAGIC:
                scan.skipped.append((paths[0], "no execute bit (find-debuginfo's rule)"))
            continue
        cand = _classify(stage_root, policy, paths[0], scan)
        if cand is not None:
            scan.candidates.append(dataclasses.replace(cand, aliases=tuple(paths[1:])))
    scan.candidates.sort(key=lambda c: c.image)
    processed = {c.path.resolve(): c for c in scan.candidates}
    for link in links:
        if not stage.inside(root, link):
            scan.skipped.append((link, "symlink points outside the staging root: not followed"))
            continue
        target = Path(os.path.realpath(link))
        if target in processed and processed[target].kind != "static_archive":
            scan.symlinks.append((link, target))
    return scan


def _classify(stage_root: StageRoot, policy: Policy, path: Path, scan: Scan) -> Candidate | None:
    magic = elfread.file_magic(path)
    image = stage_root.image_path(path)
    if magic == elfread.AR_MAGIC:
        if path.name.startswith("lib") and path.name.endswith(".a") and policy.strip.static_archive is not None:
            return Candidate(path, image, "static_archive", None)
        return None
    if magic[:4] != elfread.ELF_MAGIC:
        return None
    try:
        info = elfread.read_elf(path)
    except SplitDebugError as err:
        scan.warnings.append(f"{err} (left alone)")
        scan.skipped.append((path, str(err)))
        return None
    kind = info.kind
    if kind is None:
        reason = "debug file" if info.is_debug_file else f"{info.elf_type} object"
        scan.skipped.append((path, reason))
        return None
    if info.is_stripped:
        scan.skipped.append((path, "already stripped"))
        return None
    if not info.has_debug and info.section(".gnu_debuglink") is not None:
        # Split once already, keeping its .symtab (-g policies keep it; so did eu-strip for a static
        # executable's .rela.plt before rewrite unlinked it): splitting again would replace its debug file.
        scan.skipped.append((path, "already split (a .gnu_debuglink and no debug sections)"))
        return None
    if policy.strip.for_kind(kind) is None:
        scan.skipped.append((path, f"policy does not strip {kind}"))
        return None
    if info.build_id is None:
        if policy.missing_build_id == "error":
            scan.errors.append(f"{image}: ELF {kind.replace('_', ' ')} has no build-id "
                               "(link it with -Wl,--build-id)")
            return None
        # dh_strip's way: stripped all the same, with no debug file to find it by.
        scan.warnings.append(f"{image}: no build-id: stripped without a debug file")
        return Candidate(path, image, kind, None, machine=info.machine)
    if len(info.build_id) // 2 not in policy.build_id_bytes:
        scan.warnings.append(f"{image}: build-id of {len(info.build_id) // 2} bytes "
                             f"(policy expects {'/'.join(map(str, policy.build_id_bytes))})")
    predictable = not dwz.is_compressed(info) and info.section(".gnu_debugaltlink") is None
    return Candidate(path, image, kind, info.build_id, machine=info.machine,
                     has_debug_info=info.section(".debug_info") is not None,
                     dwarf_bytes=dwz.dwarf_size(info) if predictable else None)
