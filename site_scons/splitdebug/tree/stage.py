"""Writing into a staging root: atomic copies and symlinks that can never point out of the root.

Shared by `splitdebug split` (which splits in place in a staging tree) and the SCons install
builder (which copies split outputs from the build directory).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from .. import fs
from ..errors import SplitDebugError
from ..layout import Link, StageRoot
from ..policy import Policy

# Every temporary name we create starts so; a run killed part-way leaves only such names behind.
TEMP_PREFIX = ".splitdebug-"


def install_file(src: Path, dest: Path, mode: int | None = None) -> None:
    """Copy src to dest through a temporary file in dest's directory, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.chmod(tmp, mode if mode is not None else os.stat(src).st_mode & 0o7777)
        os.replace(tmp, dest)
    except BaseException:
        with _quiet():
            os.unlink(tmp)
        raise


def install_hardlink(existing: Path, dest: Path) -> None:
    """Make dest another name of existing (atomically replacing what dest was)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}-{dest.name}.lnk"
    with _quiet():
        os.unlink(tmp)
    os.link(existing, tmp)
    os.replace(tmp, dest)
    with _quiet():
        os.unlink(tmp)  # rename(2) does nothing when tmp and dest are already one file: tmp stays


def install_symlink(stage: StageRoot, policy: Policy, link: Link) -> Path:
    """Create one symlink at link.path; refuses a target that resolves outside the root."""
    # relative to the root: normpath keeps a leading ".." there (of "/.." it makes "/", hiding the climb)
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link.path).lstrip("/"), link.target))
    if link.target.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise SplitDebugError(f"{link.path}: link target {link.target!r} leaves the staging root")
    fs = stage.fs_path(policy, link.path)
    make_dir_inside(stage, fs.parent)
    if fs.is_symlink() and os.readlink(fs) == link.target:
        return fs
    tmp = fs.parent / f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}-{fs.name}.sym"
    with _quiet():
        os.unlink(tmp)
    os.symlink(link.target, tmp)
    os.replace(tmp, fs)
    return fs


def make_dir_inside(stage: StageRoot, directory: Path) -> None:
    """Create `directory` (and parents) under its root, never through a symlink that leaves the root.

    A staging tree may hold a symlinked `usr/lib/debug` or `.build-id` pointing anywhere; writing
    through it would modify files outside the package.
    """
    bases = [b for b in (stage.debug_dir, stage.root) if b is not None]
    base = next((b for b in bases if directory == b or directory.is_relative_to(b)), None)
    if base is None:
        raise SplitDebugError(f"{directory}: not under the staging root")
    if not base.is_dir():
        base.mkdir(parents=True, exist_ok=True)  # the root itself is the user's choice
    current = base
    for part in directory.relative_to(base).parts:  # one lstat per level: this runs for every file
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            try:
                current.mkdir(DIR_MODE)
            except FileExistsError:  # another worker made it first: check what it is below
                pass
            mode = os.lstat(current).st_mode
        if stat.S_ISLNK(mode):
            if not inside(base, current):
                raise SplitDebugError(f"{current}: a symlink that leads out of the staging root; not written through")
        elif not stat.S_ISDIR(mode):
            raise SplitDebugError(f"{current}: not a directory")


DIR_MODE = 0o755  # explicit: a umask of 000 must not give world-writable directories


def open_dir_nofollow(base: Path, rel: str) -> int:
    """An fd of base/rel, made (0755) where missing; refuses a symlink at any component of rel.

    Relative to directory fds opened with O_NOFOLLOW, so nothing planted in the tree (a symlinked
    doc directory) can send a write elsewhere. The caller closes the fd.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(base, flags)
    try:
        for part in [p for p in rel.split("/") if p]:
            if part in (".", ".."):
                raise SplitDebugError(f"{base}/{rel}: '{part}' in a path we write")
            try:
                os.mkdir(part, DIR_MODE, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, flags, dir_fd=fd)
            except OSError as err:  # ELOOP, ENOTDIR: a symlink or a file where a directory goes
                raise SplitDebugError(f"{base}/{rel}: {part!r} is not a directory of the tree "
                                      f"({err.strerror}); not written through") from None
            os.close(fd)
            fd = sub
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_new_file(dir_fd: int, name: str, data: bytes, mode: int, where: Path) -> bool:
    """Create `name` in dir_fd with `data` unless a regular file is there (False: kept as it is).

    O_EXCL|O_NOFOLLOW: a symlink there, dangling or not, is refused, never written through.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISREG(st.st_mode):
            return False
        raise SplitDebugError(f"{where / name}: not a regular file (a symlink?); not written through")
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as err:
        raise SplitDebugError(f"{where / name}: cannot create: {err.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        os.fchmod(out.fileno(), mode)  # whatever the umask
    return True


def inside(root: Path, path: Path) -> bool:
    """True when path, with every symlink resolved, stays within root."""
    try:
        real = Path(os.path.realpath(path))
        return real == root.resolve() or real.is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # symlink loops
        return False


class _quiet:
    """Ignore a missing file while cleaning up."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, *_: object) -> bool:
        return typ is not None and issubclass(typ, FileNotFoundError)



def sweep_leftovers(root: Path) -> list[Path]:
    """Remove temporary files and directories a killed run left (only ours: `.splitdebug-*`)."""
    removed = []
    for dirpath, dirnames, filenames in fs.walk(root):
        for name in [d for d in dirnames if d.startswith(TEMP_PREFIX)]:
            p = Path(dirpath) / name
            if p.is_symlink():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
            dirnames.remove(name)
            removed.append(p)
        for name in filenames:
            if name.startswith(TEMP_PREFIX):
                p = Path(dirpath) / name
                with _quiet():
                    p.unlink()
                removed.append(p)
    return removed


def remove_tree_inside(stage: StageRoot, directory: Path) -> None:
    """Remove a directory tree we staged, unless a symlink on its way leads out of the root (then the
    tree is not ours: it is left alone), and the parents it leaves empty."""
    if not directory.is_relative_to(stage.root) or directory == stage.root:
        return
    current = stage.root
    for part in directory.relative_to(stage.root).parts:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return
    shutil.rmtree(directory, ignore_errors=True)
    remove_empty_dirs(directory.parent, stage.root)


def remove_empty_dirs(start: Path, stop: Path) -> None:
    """Remove `start` and its parents while they are empty, up to (not including) `stop`."""
    d = start
    while d != stop and d.is_relative_to(stop):
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent
