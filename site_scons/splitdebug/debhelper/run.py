"""What dh_dwz followed by dh_strip do to a source package's binary packages, in one process.

Each package's tree (debian/<pkg>) is split with the debian policy (`tree/split.py`: dwz per
package on the debug files, then compression), into the place dh_strip would use:
  - automatic dbgsym: debian/.debhelper/<pkg>/dbgsym-root/usr/lib/debug, its build-ids appended to
    debian/.debhelper/<pkg>/dbgsym-build-ids, /usr/share/doc/<pkg>-dbgsym -> <pkg> (dh_gencontrol
    and dh_builddeb make the -dbgsym package from these);
  - --dbg-package: that package's usr/lib/debug, every build-id in its dbgsym-build-ids;
  - --keep-debug: the package's own usr/lib/debug;
  - otherwise (arch: all, udeb, a -dbg package…) the files are only stripped, as dh_strip does.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import SplitDebugError, printable
from ..layout import PackageInfo, StageRoot
from ..policy import Policy, load_policy
from ..tree import rewrite
from ..tree.scan import scan_tree
from ..tree.split import Report, split_tree
from .control import Control
from .options import Options

DEBUG_ROOT = "usr/lib/debug"


@dataclasses.dataclass
class Outcome:
    split: int = 0
    errors: int = 0


def check_dirs(debian: Path, opts: Options) -> None:
    """Before anything is written: every package acted on has its build directory."""
    for pkg in opts.packages:
        if not (debian / pkg).is_dir():
            raise SplitDebugError(f"package {pkg}: {debian / pkg} does not exist (nothing installed into it?)")


def run(debian: Path, control: Control, opts: Options, arch: str) -> Outcome:
    policy = dataclasses.replace(load_policy("debian"), missing_build_id="warn")  # dh_strip: warn, strip anyway
    tools = rewrite.Tools.from_environ()
    outcome = Outcome()
    dbg_ids: list[str] = []
    for name in opts.packages:
        pkg = control.get(name)
        assert pkg is not None
        root = debian / name
        exclude = _excluder(debian, name, opts.excludes)
        dbgsym = (opts.automatic_dbgsym and not pkg.arch_all and pkg.package_type != "udeb"
                  and control.get(f"{name}-dbgsym") is None and not name.endswith(("-dbg", "-dbgsym")))
        if opts.dbg_package:
            debug_dir: Path | None = debian / opts.dbg_package / DEBUG_ROOT
        elif dbgsym:
            debug_dir = debian / ".debhelper" / name / "dbgsym-root" / DEBUG_ROOT
        elif opts.keep_debug:
            debug_dir = None  # inside the package: debian/<pkg>/usr/lib/debug
        else:
            outcome.errors += _strip_only(root, policy, tools, exclude, opts.verbose)
            continue
        created = _missing_dirs(debug_dir) if debug_dir is not None else []
        report = split_tree(StageRoot(root.absolute(), debug_dir.absolute() if debug_dir else None), policy,
                            PackageInfo(package=name, arch=arch), jobs=opts.jobs, tools=tools, processes=True,
                            exclude=exclude)
        _print(report, opts.verbose)
        outcome.split += len(report.split)
        outcome.errors += len(report.errors)
        ids = [_build_id(debug) for _, debug in report.split]
        wrote = bool(report.split or report.dwz_multifiles)
        if not wrote:
            _remove_created(created)
        if dbgsym:
            dbgsym_root = debian / ".debhelper" / name / "dbgsym-root"
            if opts.noautodbgsym:  # the debuglinks stay: the main package is the same with or without
                shutil.rmtree(dbgsym_root, ignore_errors=True)
            elif wrote:
                _finish_dbgsym(debian, name, dbgsym_root, ids, opts.migration)
        elif opts.dbg_package:
            dbg_ids += ids
    if opts.dbg_package and dbg_ids:
        _append_build_ids(debian, opts.dbg_package, dbg_ids)
    return outcome


def _finish_dbgsym(debian: Path, name: str, dbgsym_root: Path, ids: list[str], migration: str | None) -> None:
    doc = dbgsym_root / "usr/share/doc" / f"{name}-dbgsym"
    if not doc.is_symlink() and not doc.exists():
        doc.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(name, doc)
    if migration:
        (debian / ".debhelper" / name / "dbgsym-migration").write_text(migration + "\n")
    if ids:
        _append_build_ids(debian, name, ids)


def _append_build_ids(debian: Path, name: str, ids: list[str]) -> None:
    """dh_strip's format exactly: sorted, space-separated, a space after the last; appended per run."""
    path = debian / ".debhelper" / name / "dbgsym-build-ids"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="ascii") as f:
        f.write(" ".join(sorted(ids)) + " ")


def _build_id(debug_image: str) -> str:
    """The build-id a debian debug file is named by: /usr/lib/debug/.build-id/xx/rest.debug."""
    parts = debug_image.split("/")
    return parts[-2] + parts[-1].removesuffix(".debug")


def _excluder(debian: Path, name: str, excludes: list[str]) -> Callable[[Path], bool] | None:
    """-X ITEM: a file whose path as debhelper sees it (debian/<pkg>/usr/…) contains ITEM."""
    if not excludes:
        return None
    base = (debian / name).absolute()
    prefix = f"debian/{name}"

    def excluded(path: Path) -> bool:
        rel = prefix + "/" + os.path.relpath(path, base).replace(os.sep, "/")
        return any(x in rel for x in excludes)
    return excluded


def _strip_only(root: Path, policy: Policy, tools: rewrite.Tools, exclude: Callable[[Path], bool] | None,
                verbose: bool) -> int:
    """No debug files kept: each file stripped with the policy's flags, as dh_strip does. Errors counted."""
    scan = scan_tree(StageRoot(root.absolute()), policy, exclude)
    errors = 0
    for w in scan.warnings:
        print(f"dh_splitdebug: warning: {printable(w)}", file=sys.stderr)
    for c in scan.candidates:
        flags = policy.strip.for_kind(c.kind)
        if flags is None:
            continue
        argv = [tools.strip, *flags, str(c.path)]
        if verbose:
            print("\t" + printable(" ".join(argv)))
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            errors += 1
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"dh_splitdebug: error: {printable(str(c.path))}: {tools.strip} failed: {printable(last)}",
                  file=sys.stderr)
    return errors


def _missing_dirs(path: Path) -> list[Path]:
    """The directories of `path` that do not exist yet, deepest first: removed again if nothing is split."""
    out = []
    while not path.exists():
        out.append(path)
        path = path.parent
    return out


def _remove_created(created: list[Path]) -> None:
    for d in created:
        try:
            d.rmdir()
        except OSError:
            return  # not empty (or already gone): what is above stays too


def _print(report: Report, verbose: bool) -> None:
    for w in report.warnings:
        print(f"dh_splitdebug: warning: {printable(w)}", file=sys.stderr)
    for e in report.errors:
        print(f"dh_splitdebug: error: {printable(e)}", file=sys.stderr)
    if verbose:
        for image, debug in report.split:
            print(printable(f"\tsplit {image} -> {debug}"))
        for image in report.archives:
            print(printable(f"\tstripped archive {image}"))
        for image in report.stripped_only:
            print(printable(f"\tstripped {image} (no build-id: no debug file)"))
        for image in report.dwz_multifiles:
            print(printable(f"\tdwz multifile {image}"))
