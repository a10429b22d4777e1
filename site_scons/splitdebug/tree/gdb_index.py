"""`.gdb_index` in debug files (the policy's gdb_index, Fedora's %_include_gdb_index): gdb opens a
large program from the index instead of reading every DWARF unit first.

What gdb-add-index does (gdb 13: `gdb -batch -ex 'file F' -ex 'save gdb-index DIR'`, then objcopy
--add-section .gdb_index=DIR/F.gdb-index --set-section-flags .gdb_index=readonly), with two changes:

- gdb and objcopy see private copies only. gdb-add-index writes `<file>.gdb-index` beside the file
  and objcopy rewrites it by path; in a hostile tree either could be sent through a symlink. Here
  each debug file is read from a directory fd walked from the root (stage.open_dir_inside, the file
  O_NOFOLLOW), copied into a private temporary directory, indexed there, and the result renamed over
  the tree's file within that same directory fd (stage.replace_at).
- A debug file with a .gnu_debugaltlink needs its dwz multifile indexed as well: gdb uses a file's
  index only when the multifile has one too (else "Cooked index in use" in `maint print objfiles`).
  gdb-add-index indexes the multifile with the first file that names it; so does this, in sorted
  order. gdb finds the multifile's private copy by build-id (debug-file-directory is the private
  directory), whatever path the altlink names (dh_dwz's absolute one points outside the stage).

gdb writes `.gdb_index` version 8, with no paths in it; run single-threaded (below) it writes the same
bytes for the same DWARF, so the output stays reproducible. gdb-add-index runs gdb threaded.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from ..elf import read as elfread
from ..errors import SplitDebugError, ToolError
from ..layout import StageRoot
from ..policy import Policy
from . import rewrite, stage

COPY_NAME = "splitdebug-indexed.debug"  # the debug file's private copy; gdb names its index after it
MAX_CLIMB = 64  # a relative altlink climbing further (not dwz's) is left to the build-id lookup
INDEX_SECTIONS = (".gdb_index", ".debug_names")  # either one: gdb-add-index leaves the file alone


def find_gdb(environ: dict[str, str] | None = None) -> str | None:
    """$GDB as gdb-add-index reads it, else gdb; None when it cannot be run."""
    env = os.environ if environ is None else environ
    tool = env.get("GDB", "gdb")
    return tool if shutil.which(tool) else None


def require_gdb(policy: Policy) -> str:
    tool = find_gdb()
    if tool is None:
        raise SplitDebugError(f"policy {policy.name!r} asks for .gdb_index, which needs gdb "
                              "(apt-get install gdb)")
    return tool


def has_index(info: elfread.ElfInfo) -> bool:
    return any(info.section(name) is not None for name in INDEX_SECTIONS)


def add_indexes(stage_root: StageRoot, debug_files: list[Path], multifiles: list[Path], gdb: str,
                objcopy: str, jobs: int = 1) -> list[str]:
    """Give each debug file (and each dwz multifile they name) a .gdb_index; warnings for the files
    gdb made none for. Files already indexed, or without DWARF, are left as they are."""
    warnings: list[str] = []
    multifile_of: dict[str, Path] = {}
    for path in multifiles:
        build_id = elfread.read_elf(path).build_id
        if build_id is not None:
            multifile_of.setdefault(build_id, path)
    todo: list[tuple[Path, Path | None]] = []
    for path in sorted(set(debug_files)):
        info = elfread.read_elf(path)
        if has_index(info) or info.section(".debug_info") is None:
            continue
        alt = elfread.read_debugaltlink(path, info)
        multifile = None
        if alt is not None:
            multifile = multifile_of.get(alt[1])
            if multifile is None:
                warnings.append(f"{path}: no .gdb_index: its dwz multifile (build-id {alt[1]}) is not in this pass")
                continue
        todo.append((path, multifile))
    # Each multifile from the first file naming it, before the others run at once (they read it).
    firsts = {m: p for p, m in reversed(todo) if m is not None and not has_index(elfread.read_elf(m))}
    for multifile, first in sorted(firsts.items(), key=lambda item: item[1]):
        warnings += _index_or_warn(stage_root, first, multifile, gdb, objcopy, with_multifile=True)
    rest = [(p, m) for p, m in todo if p not in firsts.values()]
    if jobs > 1 and len(rest) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            found = list(pool.map(lambda pm: _index_or_warn(stage_root, pm[0], pm[1], gdb, objcopy), rest))
    else:
        found = [_index_or_warn(stage_root, p, m, gdb, objcopy) for p, m in rest]
    return warnings + [w for ws in found for w in ws]


def _index_or_warn(stage_root: StageRoot, path: Path, multifile: Path | None, gdb: str, objcopy: str,
                   with_multifile: bool = False) -> list[str]:
    """_index_one; gdb or objcopy failing on a file is a warning (the file stays valid, unindexed:
    check says SD408), so that the pass still compresses and fixes every CRC."""
    try:
        return _index_one(stage_root, path, multifile, gdb, objcopy, with_multifile)
    except ToolError as err:
        return [f"no .gdb_index: {err}"]


def altlink_place(private: Path, altlink: str) -> tuple[Path, Path | None]:
    """(directory for the debug file's copy, where the multifile's copy goes or None) in `private`.

    The copy sits as deep as a relative altlink (-r) climbs, so that the altlink resolves inside the
    private directory, to the multifile's copy, never to a file of this machine's (gdb opens what the
    altlink names first, and takes any file there with the right build-id). Any other altlink (an
    absolute one, or one climbing further than MAX_CLIMB) is left to gdb's build-id lookup.
    """
    work = private / "w"
    rel = posixpath.normpath(altlink)
    climbs = rel.split("/").count("..")
    if posixpath.isabs(rel) or climbs > MAX_CLIMB or posixpath.basename(rel) in ("", ".", ".."):
        return work, None
    work = work.joinpath(*["d"] * climbs)
    beside = Path(posixpath.normpath(posixpath.join(work, rel)))
    # Only ever inside the private directory (an absolute name would replace `work`).
    if not beside.is_relative_to(private) or beside == work / COPY_NAME:
        return work, None
    return work, beside


def _index_one(stage_root: StageRoot, path: Path, multifile: Path | None, gdb: str, objcopy: str,
               with_multifile: bool = False) -> list[str]:
    """Index one debug file in a private directory (and its multifile, `with_multifile`)."""
    with tempfile.TemporaryDirectory(prefix="splitdebug-gdb-index-") as tmp:
        private = Path(tmp)
        out = private / "out"
        out.mkdir()
        work = private / "w"
        alt_copy = None
        if multifile is not None:
            alt = elfread.read_debugaltlink(path, elfread.read_elf(path))
            assert alt is not None
            alt_copy = private / ".build-id" / alt[1][:2] / f"{alt[1][2:]}.debug"
            alt_copy.parent.mkdir(parents=True)
            _copy_in(stage_root, multifile, alt_copy)
            work, beside = altlink_place(private, alt[0])
            if beside is not None and not os.path.lexists(beside):
                beside.parent.mkdir(parents=True, exist_ok=True)
                os.link(alt_copy, beside)
        work.mkdir(parents=True, exist_ok=True)
        copy = work / COPY_NAME
        _copy_in(stage_root, path, copy)
        # One thread: gdb 13 builds its index in worker threads, and for a file with dwz's imported
        # units the order they finish in shows in the bytes written (two runs differ, 2 of 6 here).
        argv = [gdb, "-batch", "-nx", "-iex", "maint set worker-threads 0", "-iex", "set auto-load no",
                "-iex", "set debuginfod enabled off", "-iex", f"set debug-file-directory {private}",
                "-ex", f"file {copy}", "-ex", f"save gdb-index {out}"]
        rewrite.run(argv, path)
        warnings = [_add_section(stage_root, path, copy, out / f"{COPY_NAME}.gdb-index", objcopy)]
        if with_multifile and alt_copy is not None and multifile is not None:
            # named after the multifile's name as gdb opened it: the altlink's or the build-id one
            index = next((p for p in sorted(out.iterdir()) if p.name != f"{COPY_NAME}.gdb-index"), out / "none")
            warnings.append(_add_section(stage_root, multifile, alt_copy, index, objcopy))
        return [w for w in warnings if w is not None]


def _add_section(stage_root: StageRoot, dest: Path, copy: Path, index: Path, objcopy: str) -> str | None:
    """objcopy the index into a new file beside the copy, then rename that over `dest` in the tree."""
    if not index.is_file():  # gdb-add-index: not an error (no DWARF gdb could index)
        return f"{dest}: gdb made no .gdb_index"
    indexed = copy.with_name(copy.name + ".indexed")
    rewrite.run([objcopy, "--add-section", f".gdb_index={index}", "--set-section-flags", ".gdb_index=readonly",
          str(copy), str(indexed)], dest)
    dir_fd = stage.open_dir_inside(stage_root, dest.parent)
    try:
        mode = stat.S_IMODE(os.stat(dest.name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        with open(indexed, "rb") as src:
            stage.replace_at(dir_fd, dest.name, _copier(src), mode)
    finally:
        os.close(dir_fd)
    return None


def _copy_in(stage_root: StageRoot, path: Path, dest: Path) -> None:
    """Copy a regular file of the tree to `dest` (private), never through a symlink."""
    dir_fd = stage.open_dir_inside(stage_root, path.parent)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as err:
        raise SplitDebugError(f"{path}: cannot read for .gdb_index: {err.strerror}") from None
    finally:
        os.close(dir_fd)
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise SplitDebugError(f"{path}: not a regular file; no .gdb_index")
        with open(dest, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


def _copier(src: BinaryIO) -> Callable[[BinaryIO], None]:
    def write(out: BinaryIO) -> None:
        shutil.copyfileobj(src, out, 1 << 20)
    return write
