"""Walking a directory tree without recursion: a hostile tree may be thousands of levels deep.

Python 3.11's os.walk recurses once per level and ends in RecursionError near 1000 levels.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator


def walk(top: str | os.PathLike[str],
         onerror: Callable[[OSError], object] | None = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk(top) (top-down, symlinked directories listed but not entered, unreadable ones
    reported to `onerror`), with a stack instead of recursion. Pruning `dirnames` in place works as there."""
    stack = [os.fspath(top)]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError as err:
            if onerror is not None:
                onerror(err)
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        yield here, dirs, files
        for name in reversed(dirs):
            path = os.path.join(here, name)
            if not os.path.islink(path):
                stack.append(path)


def remove_tree(top: str | os.PathLike[str]) -> None:
    """shutil.rmtree(top, ignore_errors=True) without recursion (3.11's recurses per level);
    symlinks are removed, never followed."""
    dirs = []
    for here, dirnames, filenames in walk(top):
        dirs.append(here)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(here, d))]:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(here, name))
    for here in reversed(dirs):
        with contextlib.suppress(OSError):
            os.rmdir(here)
