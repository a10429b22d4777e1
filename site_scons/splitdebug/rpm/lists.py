"""The file lists find-debuginfo leaves in the build directory, in its format: rpm's `%debug_package`
reads `debugfiles.list` (`%files debuginfo -f`) and `debugsourcefiles.list` (`-S`); `debuglinks.list`
and `elfbins.list` are find-debuginfo's own, kept for specs that read them; `-l`/`-p` ... `-o` lists
take their files' debug files out of the main list (find-debuginfo's filtered_list and pattern_list).
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

from ..errors import SplitDebugError
from .options import Options

DEBUG = "/usr/lib/debug"


def _find(root: Path, top: str, *, dirs: bool, min_depth: int = 0, max_depth: int | None = None) -> list[str]:
    """`cd root && find top [-mindepth] [-maxdepth] (-type d | ! -type d)`, as image paths, parents first."""
    start = root / top.lstrip("/")
    out: list[str] = []
    if not start.is_dir():
        return out

    def walk(path: Path, image: str, depth: int) -> None:
        is_dir = path.is_dir() and not path.is_symlink()
        if depth >= min_depth and is_dir == dirs:
            out.append(image)
        if is_dir and (max_depth is None or depth < max_depth):
            for name in sorted(os.listdir(path)):
                walk(path / name, posixpath.join(image, name), depth + 1)

    walk(start, "/" + top.lstrip("/"), 0)
    return out


def main_list(root: Path, opts: Options) -> list[str]:
    """debugfiles.list: `%dir` lines (only without sub-package lists), the debug tree, and the
    sources' top entries unless -S names a list of their own."""
    lines: list[str] = []
    if (root / "usr/lib").is_dir() or (root / "usr/src").is_dir():
        if not opts.sublists:
            lines += [f"%dir {d}" for d in _find(root, DEBUG, dirs=True)]
        lines += _find(root, DEBUG, dirs=False)
        if not opts.srcout:
            lines += source_list(root)
    return lines


def source_list(root: Path) -> list[str]:
    """-S's list: the top entries of /usr/src/debug."""
    return sorted(_find(root, "/usr/src/debug", dirs=False, min_depth=1, max_depth=1)
                  + _find(root, "/usr/src/debug", dirs=True, min_depth=1, max_depth=1))


_DIRECTIVE = (re.compile(r"^%[a-z0-9_][a-z0-9_]*\([^)]*\) *"), re.compile(r"^%[a-z0-9_][a-z0-9_]* *"))


def _filelist_entries(builddir: Path, names: list[str]) -> list[str]:
    """The paths a `-l` file list names, `%attr(…)`/`%dir`-style directives taken off."""
    out = []
    for name in names:
        try:
            text = (builddir / name).read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as err:
            raise SplitDebugError(f"find-debuginfo: -l {name}: {err.strerror}") from None
        for line in text.splitlines():
            for directive in _DIRECTIVE:
                line = directive.sub("", line, count=1)
            if line:
                out.append(line)
    return out


def check_sublists(builddir: Path, opts: Options) -> None:
    """Every -l file readable and every -p a regular expression, before anything is written."""
    for sub in opts.sublists:
        _filelist_entries(builddir, sub.lists)
        _pattern(sub.pattern)


def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text) if text else None
    except re.error as err:
        raise SplitDebugError(f"find-debuginfo: -p {text!r}: {err}") from None


def _append_uniq(out: list[str], lines: list[str]) -> None:
    known = set(out)
    out += [line for line in lines if line not in known]


def _percent_dirs(root: Path, lines: list[str]) -> list[str]:
    dirs = set()
    for line in lines:
        while line.startswith(DEBUG + "/"):
            line = line.rsplit("/", 1)[0]
            dirs.add(line)
    return [f"%dir {d}" for d in sorted(dirs) if (root / d.lstrip("/")).is_dir()]


def split_lists(root: Path, builddir: Path, opts: Options, main: list[str],
                links: list[tuple[str, str]]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(the main list, [(sub-list file name, its lines)]): each `-l`/`-p` group takes its debug files
    (and the .debug symlinks leading to them) out of the main list; every list gets its `%dir` lines."""
    subs: list[tuple[str, list[str]]] = []
    for sub in opts.sublists:
        out: list[str] = []
        entries = _filelist_entries(builddir, sub.lists)
        if entries:
            wanted = {f"{DEBUG}{e}.debug" for e in entries}
            out += [line for line in main if line in wanted]
            _append_uniq(out, [link for link, target in links if target in wanted])
        ptn = _pattern(sub.pattern)
        if ptn is not None:
            out += [line for line in main if ptn.fullmatch(line) and line not in out]
            _append_uniq(out, [link for link, _ in links if ptn.fullmatch(link)])
        taken = set(out)
        main = [line for line in main if line not in taken]
        subs.append((sub.out, out))
    if not opts.sublists:
        return main, subs
    return (_percent_dirs(root, main) + main,
            [(name, _percent_dirs(root, lines) + lines) for name, lines in subs])


def write(path: Path, lines: list[str], sep: str = "\n") -> None:
    try:
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("".join(line + sep for line in lines))
    except OSError as err:
        raise SplitDebugError(f"{path}: cannot write: {err.strerror}") from None
