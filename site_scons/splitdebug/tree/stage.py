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
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from .. import fs
from ..errors import SplitDebugError
from ..layout import Link, StageRoot
from ..policy import Policy

# Every temporary name we create starts so; a run killed part-way leaves only such names behind.
TEMP_PREFIX = ".splitdebug-"
T = TypeVar("T")


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
    dir_fd = open_dir_inside(stage, fs.parent)
    try:
        if _link_at(fs.name, dir_fd) == link.target:
            return fs
        tmp = f"{TEMP_PREFIX}{os.getpid()}.{threading.get_ident()}-{fs.name}.sym"
        with _quiet():
            os.unlink(tmp, dir_fd=dir_fd)
        os.symlink(link.target, tmp, dir_fd=dir_fd)
        os.replace(tmp, fs.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    return fs


def make_dir_inside(stage: StageRoot, directory: Path) -> None:
    """Create `directory` (and parents) under its root, never through a symlink that leaves the root.

    A staging tree may hold a symlinked `usr/lib/debug` or `.build-id` pointing anywhere; writing
    through it would modify files outside the package.
    """
    os.close(open_dir_inside(stage, directory))


DIR_MODE = 0o755  # explicit: a umask of 000 must not give world-writable directories
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40  # as the kernel's ELOOP


def open_dir_inside(stage: StageRoot, directory: Path) -> int:
    """An fd of `directory` under its base (the debug dir or the root), made (0755) where missing.

    Walked from the base one component at a time, each opened O_NOFOLLOW relative to its parent's
    fd: a directory swapped for a symlink while we run cannot send the walk elsewhere. A symlink of
    the tree is followed only as we resolve it ourselves, within the base. The caller closes the fd.
    """
    bases = [b for b in (stage.debug_dir, stage.root) if b is not None]
    base = next((b for b in bases if directory == b or directory.is_relative_to(b)), None)
    if base is None:
        raise SplitDebugError(f"{directory}: not under the staging root")
    if not base.is_dir():
        base.mkdir(parents=True, exist_ok=True)  # the root itself is the user's choice
    return _open_walk(base, list(directory.relative_to(base).parts), links_inside=True)


def open_dir_nofollow(base: Path, rel: str) -> int:
    """An fd of base/rel, made (0755) where missing; refuses a symlink at any component of rel.

    Relative to directory fds opened with O_NOFOLLOW, so nothing planted in the tree (a symlinked
    doc directory) can send a write elsewhere. The caller closes the fd.
    """
    parts = [p for p in rel.split("/") if p]
    for part in parts:
        if part in (".", ".."):
            raise SplitDebugError(f"{base}/{rel}: '{part}' in a path we write")
    return _open_walk(base, parts, links_inside=False)


def _open_walk(base: Path, parts: list[str], *, links_inside: bool) -> int:
    """Open base/parts component by component (O_NOFOLLOW, dir_fd), making what is missing.
    links_inside: a symlink met on the way is resolved by us within base (else refused)."""
    fd = os.open(base, _DIR_FLAGS)
    done: list[str] = []
    todo = list(parts)
    links = 0
    try:
        while todo:
            part = todo.pop(0)
            try:
                sub = _open_or_make(part, fd)
            except OSError as err:  # ELOOP, ENOTDIR: a symlink or a file where a directory goes
                here = base.joinpath(*done, part)
                link = _link_at(part, fd) if links_inside else None
                if link is None:
                    if links_inside:
                        raise SplitDebugError(f"{here}: not a directory") from None
                    raise SplitDebugError(f"{base}/{'/'.join(parts)}: {part!r} is not a directory of the tree "
                                          f"({err.strerror}); not written through") from None
                resolved = _resolve_within(base, done, link)
                links += 1
                if resolved is None or links > _MAX_LINKS:
                    raise SplitDebugError(f"{here}: a symlink that leads out of the staging root; "
                                          "not written through") from None
                os.close(fd)  # start again from the base along the resolved path
                fd = -1
                fd = os.open(base, _DIR_FLAGS)
                done, todo = [], resolved + todo
                continue
            os.close(fd)
            fd = sub
            done.append(part)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def _open_or_make(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        try:
            os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
        except FileExistsError:  # another worker made it first (or a symlink is there: refused next)
            pass
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _link_at(name: str, dir_fd: int) -> str | None:
    """The target of the symlink `name` in dir_fd, None when it is not one."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _resolve_within(base: Path, done: list[str], target: str) -> list[str] | None:
    """The components, from base, that a symlink at base/done/… with `target` names; None when
    they leave base (an absolute target counts only when it names a path under base)."""
    if target.startswith("/"):
        if not Path(target).is_relative_to(base):
            return None
        joined = Path(target).relative_to(base).as_posix()
    else:
        joined = "/".join([*done, target])
    out: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
        else:
            out.append(part)
    return out


def replace_at(dir_fd: int, name: str | None, write: Callable[[BinaryIO], T], mode: int) -> T:
    """Write a new temporary file in dir_fd with `write`, give it `mode` and rename it over `name`
    (None: the file is only measured, then removed); what `write` returned.

    The temporary is created O_CREAT|O_EXCL|O_NOFOLLOW and renamed within the same directory fd:
    no path is looked up again, so a directory swapped meanwhile cannot redirect the write.
    """
    fd, tmp = _new_temp(dir_fd)
    try:
        with os.fdopen(fd, "w+b") as out:
            result = write(out)
            os.fchmod(out.fileno(), mode)  # whatever the umask
        if name is not None:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return result
    except BaseException:
        with _quiet():
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    with _quiet():
        os.unlink(tmp, dir_fd=dir_fd)
    return result


def _new_temp(dir_fd: int) -> tuple[int, str]:
    for _ in range(100):
        name = f"{TEMP_PREFIX}{os.urandom(6).hex()}"
        try:
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(name, flags, 0o600, dir_fd=dir_fd), name
        except FileExistsError:
            continue
    raise SplitDebugError("no free temporary name")  # 100 collisions of 48 random bits


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
