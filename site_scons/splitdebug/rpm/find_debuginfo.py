"""`splitdebug find-debuginfo`: find-debuginfo's job (debugedit 5.0) inside rpmbuild, done by the split.

Per file, the step that decides the build-id is find-debuginfo's own: `debugedit -b BASE -d DEST [-n] -i
[--build-id-seed=SEED] -l LIST FILE` (source paths rewritten, build-id recomputed as debugedit does). Then
the redhat policy, adjusted to the options (debug file names, minidebuginfo, dwz, strictness, -i as the
policy's gdb_index: each debug file indexed after dwz, where find-debuginfo runs gdb-add-index on the
binary before), splits the tree: in-process, in parallel, dwz on the debug files. rpm makes the build-id
links when it packages (`%_build_id_links`), as with find-debuginfo; we make none. Last, the sources debugedit
listed are copied to /usr/src/debug/…, the `<link>.debug` symlinks made, and the lists written.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import SplitDebugError
from ..layout import PackageInfo, StageRoot
from ..policy import Policy, StripFlags, load_policy
from ..tree import gdb_index, sources
from ..tree.rewrite import Tools
from ..tree.scan import Candidate, scan_tree
from ..tree.split import Report, split_tree
from . import lists
from .options import Options

_PSEUDO = re.compile(r"(^|/)<[a-z _-]+>$")  # <built-in>: compiler names, not files (find-debuginfo's filter)


@dataclass(frozen=True)
class RpmBuild:
    """What rpmbuild exports to %__debug_install_post (find-debuginfo needs the first three)."""

    root: Path
    build_dir: str
    pkg: PackageInfo

    @classmethod
    def from_environ(cls, environ: dict[str, str] | os._Environ[str]) -> RpmBuild:
        for var in ("RPM_BUILD_ROOT", "RPM_PACKAGE_NAME"):
            if not environ.get(var):
                raise SplitDebugError(f"find-debuginfo: {var} is not set (run from rpmbuild, or set it)")
        root = Path(environ["RPM_BUILD_ROOT"])
        if not root.is_dir():
            raise SplitDebugError(f"find-debuginfo: RPM_BUILD_ROOT {root}: not a directory")
        pkg = PackageInfo(environ["RPM_PACKAGE_NAME"], environ.get("RPM_PACKAGE_VERSION", ""),
                          environ.get("RPM_PACKAGE_RELEASE", ""), environ.get("RPM_ARCH", ""))
        return cls(Path(os.path.abspath(root)), environ.get("RPM_BUILD_DIR", ""), pkg)


def front_policy(base: Policy, opts: Options) -> Policy:
    """The redhat policy as these options make find-debuginfo behave."""
    flags = ["--remove-comment", *(["--reloc-debug-sections"] if opts.reloc else []), *opts.section_args]
    g = [*flags, "-g"]
    suffix = opts.unique_debug_suffix.replace("{", "{{").replace("}", "}}")
    keep = "all" if opts.strip_g else "minidebuginfo" if opts.minidebuginfo else "none"
    dwz = "none" if not opts.run_dwz else "single" if opts.dwz_single_file else "multifile"
    dwz_args = ([f"-l{opts.dwz_low_mem_die_limit}"] if opts.dwz_low_mem_die_limit else []) + \
               ([f"-L{opts.dwz_max_die_limit}"] if opts.dwz_max_die_limit else [])
    return dataclasses.replace(
        base, name=f"{base.name} (find-debuginfo)",
        debug_file="{debug_root}/{path}" + suffix + ".debug", debuglink="{debug_file_name}",
        build_id_links=(),  # rpm makes them when it packages (%_build_id_links)
        symlinked_binaries="ignore",  # made here, by find-debuginfo's own rule
        keep_symbols=keep,
        strip=StripFlags(tuple(g if opts.strip_g else flags), tuple(g if opts.strip_g or opts.strip_glibs else flags),
                         None),  # archives: rpm's brp-strip-static-archive
        missing_build_id="error" if opts.strict else "warn",
        source_dir=None, dwz=dwz, dwz_args=tuple(dwz_args),
        # -i: the tree pass indexes each debug file after dwz, the multifile too (tree/gdb_index.py),
        # not gdb-add-index on the binary before the split, which writes beside it by path.
        gdb_index=opts.gdb_index)


def refuse_unsupported(opts: Options) -> None:
    if opts.strip_glibs and opts.minidebuginfo:
        # find-debuginfo then gives executables a minidebuginfo and libraries their .symtab; our
        # minidebuginfo is policy-wide.
        raise SplitDebugError("find-debuginfo: --g-libs together with -m is not supported by splitdebug "
                              "(use -g, or drop -m)")
    if opts.gdb_index and gdb_index.find_gdb() is None:
        raise SplitDebugError("find-debuginfo: -i: GDB index requested, but no gdb installed (apt-get install gdb)")


def run(opts: Options, build: RpmBuild, say: Callable[[str], None]) -> Report:
    """Split the build root as find-debuginfo would and write its lists into the build directory."""
    builddir = Path(opts.builddir)
    if not builddir.is_dir():
        raise SplitDebugError(f"find-debuginfo: build directory {opts.builddir}: not a directory")
    refuse_unsupported(opts)
    lists.check_sublists(builddir, opts)
    if opts.unique_debug_src_base:
        base, dest = os.path.abspath(builddir), f"/usr/src/debug/{opts.unique_debug_src_base}"
    elif build.build_dir:
        base, dest = build.build_dir, "/usr/src/debug"
    else:
        raise SplitDebugError("find-debuginfo: RPM_BUILD_DIR is not set (or give --unique-debug-src-base)")
    debugedit = sources.require_debugedit()
    policy = front_policy(load_policy("redhat"), opts)
    stage_root = StageRoot(build.root)
    tools = Tools.from_environ()
    if opts.reloc or opts.section_args:  # eu-strip's own wildcards and relocations: eu-strip does it
        tools = dataclasses.replace(tools, engine="tools")
    scan = scan_tree(stage_root, policy, exec_bit_only=True)
    if scan.errors:  # refused before anything is written, as split does
        return Report(errors=list(scan.errors))
    edited = _edit_all(scan.candidates, opts, base, dest, debugedit, say)
    lists.write(builddir / "debugsources.list", edited, sep="\0")
    report = split_tree(stage_root, policy, build.pkg, jobs=opts.jobs, tools=tools, processes=True,
                        exec_bit_only=True)
    links = _symlink_debug_links(stage_root)
    copy_sources(edited, Path(base), stage_root, policy, dest)
    main = lists.main_list(build.root, opts)
    main, subs = lists.split_lists(build.root, builddir, opts, main, links)
    lists.write(builddir / opts.out, main)
    for name, lines in subs:
        lists.write(builddir / name, lines)
    if opts.srcout:
        lists.write(builddir / opts.srcout, lists.source_list(build.root))
    lists.write(builddir / "debuglinks.list", [f"{link} {target}" for link, target in links])
    lists.write(builddir / "elfbins.list", [f"./{image}" for image, _ in report.split])
    return report


def _edit_all(candidates: list[Candidate], opts: Options, base: str, dest: str, debugedit: str,
              say: Callable[[str], None]) -> list[str]:
    """debugedit on every file to split, in parallel: the sources they name."""
    todo = [c for c in candidates if c.kind != "static_archive"]
    with tempfile.TemporaryDirectory(prefix="splitdebug-fdi-") as tmp:
        def edit(item: tuple[int, Candidate]) -> list[str]:
            n, c = item
            listing = Path(tmp) / str(n)
            argv = [debugedit, "-b", base, "-d", dest, *(["-n"] if opts.no_recompute else []), "-i",
                    *([f"--build-id-seed={opts.build_id_seed}"] if opts.build_id_seed else []),
                    "-l", str(listing), str(c.path)]
            _tool(argv, c.image)
            data = listing.read_bytes() if listing.exists() else b""
            return [os.fsdecode(name) for name in data.split(b"\0") if name]

        for c in todo:
            say(f"extracting debug info from {c.path}")
        with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
            return [name for names in pool.map(edit, enumerate(todo)) for name in names]


def _tool(argv: list[str], image: str) -> None:
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        raise SplitDebugError(f"{image}: {os.path.basename(argv[0])} failed: {lines[-1] if lines else proc.returncode}")


def _symlink_debug_links(stage_root: StageRoot) -> list[tuple[str, str]]:
    """find-debuginfo's rule: a symlink outside the debug tree whose fully resolved target has a
    `/usr/lib/debug<target>.debug` file gets `/usr/lib/debug<link>.debug` pointing to it.
    (With --unique-debug-suffix, rpm's default, no such file exists, so no link is made.)"""
    root = stage_root.root
    debug = root / "usr/lib/debug"
    made = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == debug:
            dirnames[:] = []
            continue
        for name in sorted(filenames + [d for d in dirnames if (here / d).is_symlink()]):
            link = here / name
            if not link.is_symlink():
                continue
            resolved = Path(os.path.realpath(link))
            if not resolved.is_relative_to(root):
                continue
            target = "/usr/lib/debug/" + resolved.relative_to(root).as_posix() + ".debug"
            if not (root / target.lstrip("/")).is_file():
                continue
            path = "/usr/lib/debug/" + link.relative_to(root).as_posix() + ".debug"
            fs = root / path.lstrip("/")
            fs.parent.mkdir(parents=True, exist_ok=True)
            if fs.is_symlink() or fs.exists():
                fs.unlink()
            os.symlink(posixpath.relpath(target, posixpath.dirname(path)), fs)
            made.append((path, target))
    return made


def copy_sources(names: list[str], base: Path, stage_root: StageRoot, policy: Policy, dest: str) -> None:
    """find-debuginfo's `cpio -pd0mL` of debugsources.list into the build root, by the tree's own copy:
    symlinks followed only while they stay under `base`, the destination never reached through one,
    modes no wider than the source's, mtimes kept, directories 0755 (what security asks of
    --source-root applies to rpm's build directory too)."""
    wanted = sorted({posixpath.normpath(n) for n in names if n and not _PSEUDO.search(n)})
    wanted = [n for n in wanted if not n.startswith(("/", "../")) and n not in (".", "..")]
    if wanted:
        sources.copy_sources(wanted, base, stage_root, policy, dest)
