"""DWARF source paths: where they point, and the sources they name (rpm's -debugsource).

The policy's `source_dir` says what DWARF should call the build directory: Red Hat's
`/usr/src/debug/<name>-<version>-<release>.<arch>` (the sources are then shipped there), Debian's
`.` (dpkg-buildflags' fixfilepath; nothing shipped). At compile time that is `-ffile-prefix-map`;
for binaries built elsewhere, `debugedit` rewrites the paths as find-debuginfo does. Listing the
sources is debugedit's job too (`-l`): DWARF is never parsed here. debugedit writes the file it
reads, so it only ever runs on a private copy.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import layout
from . import rewrite
from . import stage
from .. import fs
from ..errors import SplitDebugError
from ..layout import PackageInfo, StageRoot
from ..policy import Policy

# Names compilers invent that are not files: <built-in>, <command-line>, <artificial> …
_PSEUDO = re.compile(r"(^|/)<[a-z _-]+>$")
SOURCE_MODE = 0o644


@dataclass(frozen=True)
class SourceMap:
    """DWARF paths under `base` (the build's directory) become `dest` (an image path, or `.`)."""

    base: str
    dest: str

    def prefix_map_flag(self) -> str:
        return f"-ffile-prefix-map={self.base}={self.dest}"


def source_dir(policy: Policy, pkg: PackageInfo) -> str | None:
    """The policy's sources directory for this package (None: DWARF paths are left alone)."""
    if policy.source_dir is None:
        return None
    missing = sorted(k for k in policy.source_needs() if not getattr(pkg, k))
    if missing:
        raise SplitDebugError(
            f"policy {policy.name!r} maps source paths to {policy.source_dir!r}: give "
            f"{' '.join('--' + m for m in missing)} (SCons: "
            f"{', '.join('PACKAGE_' + ('NAME' if m == 'package' else m.upper()) for m in missing)})")
    return layout.package_path(policy, policy.source_dir, pkg)


def source_map(policy: Policy, pkg: PackageInfo, base: str | os.PathLike[str]) -> SourceMap | None:
    dest = source_dir(policy, pkg)
    if dest is None:
        return None
    return SourceMap(os.path.abspath(base), dest)


def find_debugedit(environ: dict[str, str] | None = None) -> str | None:
    """$DEBUGEDIT, rpm's private copy, or the `debugedit` package's."""
    env = os.environ if environ is None else environ
    for cand in (env.get("DEBUGEDIT"), "/usr/lib/rpm/debugedit", "debugedit"):
        if cand and shutil.which(cand):
            return cand
    return None


def require_debugedit() -> str:
    tool = find_debugedit()
    if tool is None:
        raise SplitDebugError("debugedit not found: install it (apt-get install debugedit) or set DEBUGEDIT")
    return tool


def rewrite_in_place(binary: Path, smap: SourceMap, debugedit: str) -> list[str]:
    """Rewrite `binary`'s DWARF paths (the build-id is kept: -n) and return the sources it names,
    relative to smap.base. Only for a private copy: debugedit writes the file it is given.

    With an absolute destination the names are listed after the rewrite, under the destination:
    that also finds the sources of binaries compiled with -ffile-prefix-map=<base>=<dest>.
    """
    listing = binary.with_name(binary.name + ".sources")
    try:
        if smap.dest.startswith("/") and smap.dest != smap.base:
            rewrite.run([debugedit, "-n", "-b", smap.base, "-d", smap.dest, str(binary)], binary)
            smap = SourceMap(smap.dest, smap.dest)
        rewrite.run([debugedit, "-n", "-b", smap.base, "-d", smap.dest, "-l", str(listing), str(binary)], binary)
        return parse_listing(listing.read_bytes()) if listing.exists() else []
    finally:
        listing.unlink(missing_ok=True)


@contextmanager
def mapped(binary: Path, smap: SourceMap | None, debugedit: str | None) -> Iterator[tuple[Path, list[str]]]:
    """(file to split, sources it names): a rewritten private copy beside `binary`, or `binary`
    itself when no mapping is asked for."""
    if smap is None or debugedit is None:
        yield binary, []
        return
    with rewrite.scratch_dir(binary.parent) as tmp:
        copy = tmp / binary.name
        shutil.copy2(binary, copy)
        yield copy, rewrite_in_place(copy, smap, debugedit)


def list_sources(binary: Path, dest: str, debugedit: str) -> list[str]:
    """Sources named by a binary whose DWARF already says `dest` (built with -ffile-prefix-map)."""
    with mapped(binary, SourceMap(dest, dest), debugedit) as (_, names):
        return names


def parse_listing(data: bytes) -> list[str]:
    """debugedit's NUL-separated list -> sorted, unique relative paths that name files."""
    out = set()
    for raw in data.split(b"\0"):
        name = os.fsdecode(raw)
        if not name or _PSEUDO.search(name):
            continue
        norm = posixpath.normpath(name)
        if norm.startswith(("/", "../")) or norm in (".", ".."):
            continue
        out.add(norm)
    return sorted(out)


def copy_sources(names: Iterable[str], from_dir: Path, stage_root: StageRoot, policy: Policy,
                 dest_image: str) -> tuple[list[str], list[str]]:
    """Copy each named source that exists under `from_dir` to `dest_image/<name>` in the tree
    (mode 0644 or narrower as the source's, directories 0755, mtimes kept, symlinks followed as cpio -L
    does while they stay under `from_dir`; the destination directory is never reached through one).

    Returns (image paths written, names not found). A name that is not a regular file is skipped.
    """
    written, missing = [], []
    dest_root = stage_root.fs_path(policy, dest_image)
    if dest_root.is_relative_to(stage_root.root):  # no symlink on the way in: refused, not followed
        os.close(stage.open_dir_nofollow(stage_root.root, dest_root.relative_to(stage_root.root).as_posix()))
    real_from = os.path.realpath(from_dir)
    for name in sorted(set(names)):
        src = from_dir / name
        try:
            st = os.stat(src)
        except OSError:
            missing.append(name)
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        real = os.path.realpath(src)
        if os.path.commonpath([real, real_from]) != real_from:
            continue  # a symlink that leaves the source root (to /etc/shadow…) is not a source
        image = posixpath.join(dest_image, name)
        dest = stage_root.fs_path(policy, image)
        if not dest.is_relative_to(dest_root):
            continue
        if not (dest.is_file() and _unchanged(dest, st)):
            stage.make_dir_inside(stage_root, dest.parent)
            # never wider than the source: a 0600 file stays 0600
            stage.install_file(src, dest, SOURCE_MODE & stat.S_IMODE(st.st_mode))
            os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        written.append(image)
    if written:
        for dirpath, _, _ in fs.walk(dest_root):  # does not follow symlinked subdirectories
            os.chmod(dirpath, 0o755)
    return written, missing


def _unchanged(dest: Path, st: os.stat_result) -> bool:
    """Already copied (same size and mtime): copying again would only churn the tree."""
    dst = dest.stat()
    return dst.st_size == st.st_size and dst.st_mtime_ns == st.st_mtime_ns
