"""What every package format shares: metadata checks, the prepared copy of the tree, tool runs.

The tree is copied into a private work directory (the staging root is never changed), dwz runs
over it when asked (trees staged by SCons are split per link, so the tree-level pass happens here),
modification times are clamped to SOURCE_DATE_EPOCH, and the policy's `package_format` builds:

- `rpm`: `<name>`, `<name>-debuginfo` (the debug root) and `<name>-debugsource` (the sources
  directory) with rpmbuild, from a generated spec that turns off rpm's own debuginfo machinery
  (no find-debuginfo, no brp-strip, `%_build_id_links none`: the tree is already split and linked);
- `deb`: `<name>_<version>_<arch>.deb` and `<name>-dbgsym_<version>_<arch>.deb` with dpkg-deb
  and the control fields dh_gencontrol writes.

The format modules (`rpm.py`, `deb.py`) get plain data: the prepared tree and which of its paths go
to which package; `build.py` chooses between them, so this module imports neither.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..tree import dwz
from .. import layout
from ..tree import rewrite
from ..tree import sources
from .. import fs
from ..errors import SplitDebugError
from ..layout import PackageInfo, StageRoot
from ..policy import Policy

# Every field is matched whole (\A…\Z, never '$', which accepts a trailing newline): rpm's NVRA
# (no '-' in version and release, no '%' anywhere) and Debian policy (names, versions, architectures).
_RPM_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_+.-]*")
_RPM_VERSION = re.compile(r"[A-Za-z0-9_+.~^]+")
_RPM_ARCH = re.compile(r"[A-Za-z0-9_]+")
_DEB_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_DEB_VERSION = re.compile(r"[0-9][A-Za-z0-9.+~]*")
_DEB_REVISION = re.compile(r"[A-Za-z0-9.+~]+")
_DEB_ARCH = re.compile(r"[a-z0-9][a-z0-9-]*")
_DEB_SECTION = re.compile(r"[a-z0-9][a-z0-9/+.-]*")
# Control characters end a line or a field in a spec or a control file (\t is harmless text).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class PackageMeta:
    """What the packages say about themselves."""

    name: str
    version: str
    release: str = ""
    arch: str = ""  # empty: this machine's, in the policy's spelling
    summary: str = ""
    description: str = ""
    maintainer: str = "splitdebug <splitdebug@example.org>"
    license: str = "unspecified"
    section: str = "misc"
    copyright_file: Path | None = None
    source_date_epoch: int | None = None

    def info(self) -> PackageInfo:
        return PackageInfo(self.name, self.version, self.release, self.arch)


@dataclass(frozen=True)
class Built:
    path: Path
    role: str  # main, debuginfo, debugsource, dbgsym


@dataclass(frozen=True)
class Prepared:
    """A private copy of the split tree, ready to be cut into packages."""

    tree: Path
    policy: Policy
    meta: PackageMeta
    arch: str                 # the policy's spelling (x86_64, amd64)
    debug_root: str           # image path: goes to -debuginfo / -dbgsym
    source_dir: str | None    # image path: goes to -debugsource (None when not shipped)
    epoch: int                # SOURCE_DATE_EPOCH (or now)
    work: Path                # scratch space for the format module

    def fs(self, image: str) -> Path:
        return self.tree / image.lstrip("/")


def check_meta(policy: Policy, meta: PackageMeta) -> None:
    """Metadata is data: every field that reaches a spec, a control file, a file name or an argv."""
    if policy.package_format == "none":
        raise SplitDebugError(f"policy {policy.name!r} has no package format (package_format: none)")
    for what, text in (("--summary", meta.summary), ("--maintainer", meta.maintainer),
                       ("--license", meta.license), ("--section", meta.section),
                       ("--description", meta.description)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise SplitDebugError(f"{what} {text!r}: not UTF-8") from None
        if _CONTROL.search(text.replace("\n", "") if what == "--description" else text):
            raise SplitDebugError(f"{what} {text!r}: must be one line of printable text")
    for what, value in (("--name", meta.name), ("--version", meta.version), ("--release", meta.release),
                        ("--arch", meta.arch)):
        if ".." in value:  # the layout's templates make path components of these
            raise SplitDebugError(f"{what} {value!r}: '..' is not allowed")
    if policy.package_format == "rpm":
        if not _RPM_NAME.fullmatch(meta.name):
            raise SplitDebugError(f"--name {meta.name!r}: not an rpm package name")
        for what, value in (("--version", meta.version), ("--release", meta.release)):
            if not _RPM_VERSION.fullmatch(value):
                raise SplitDebugError(f"{what} {value!r}: rpm needs a non-empty value of letters, digits and ._+~^")
        if meta.arch and not _RPM_ARCH.fullmatch(meta.arch):
            raise SplitDebugError(f"--arch {meta.arch!r}: not an rpm architecture (letters, digits, _)")
        for line in meta.description.split("\n"):
            # rpm expands %% to % before it looks for sections (%post, %prep) and conditionals.
            if line.lstrip().startswith("%"):
                raise SplitDebugError(f"--description: line {line!r} starts with '%' (rpm would read a section)")
    else:
        if not _DEB_NAME.fullmatch(meta.name):
            raise SplitDebugError(f"--name {meta.name!r}: not a Debian package name (lower case, digits, +-.)")
        if not _DEB_VERSION.fullmatch(meta.version) or (meta.release and not _DEB_REVISION.fullmatch(meta.release)):
            raise SplitDebugError(f"version {meta.version!r}-{meta.release!r}: not a Debian version")
        if meta.arch and not _DEB_ARCH.fullmatch(meta.arch):
            raise SplitDebugError(f"--arch {meta.arch!r}: not a Debian architecture (lower case, digits, -)")
        if not _DEB_SECTION.fullmatch(meta.section):
            raise SplitDebugError(f"--section {meta.section!r}: not a Debian section")


def prepare(root: Path, policy: Policy, meta: PackageMeta, work: Path, *, run_dwz: bool,
            tools: rewrite.Tools) -> Prepared:
    tree = work / "tree"
    copy_tree(root, tree)
    info = meta.info()
    if run_dwz and (policy.dwz != "none" or policy.gdb_index):
        stage_root = StageRoot(tree)
        pairs = dwz.shipped_pairs(stage_root, policy, info)
        if pairs:
            dwz.run_dwz(stage_root, policy, info, pairs, tools, jobs=os.cpu_count() or 1,
                        compressed_are_pending=True)
    source_dir = sources.source_dir(policy, info) if policy.ships_sources else None
    epoch = meta.source_date_epoch if meta.source_date_epoch is not None else int(time.time())
    clamp_mtimes(tree, epoch)
    arch = layout.arch_of(policy, info)  # the policy's arch_names may rename it: checked again
    if not (_RPM_ARCH if policy.package_format == "rpm" else _DEB_ARCH).fullmatch(arch):
        raise SplitDebugError(f"architecture {arch!r}: not a {policy.package_format} architecture")
    return Prepared(tree, policy, meta, arch, policy.debug_root, source_dir, epoch, work)


def copy_tree(src: Path, dest: Path) -> None:
    """`cp -a`: modes, symlinks and hard links kept (dpkg-deb and rpm both record hard links)."""
    try:
        proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", f"{src}/.", str(dest)],
                              capture_output=True, text=True, errors="replace", check=False)
    except OSError as err:
        raise SplitDebugError(f"cannot run cp: {err.strerror}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise SplitDebugError(f"{src}: cannot copy the tree: {last}")


def clamp_mtimes(tree: Path, epoch: int) -> None:
    """No entry newer than SOURCE_DATE_EPOCH (what reproducible-builds.org asks of archivers)."""
    for path in _walk(tree):
        st = path.lstat()
        if st.st_mtime > epoch:
            os.utime(path, (epoch, epoch), follow_symlinks=False)


def _walk(tree: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in fs.walk(tree):
        here = Path(dirpath)
        for name in dirnames + filenames:
            yield here / name
    yield tree


def entries(tree: Path) -> list[str]:
    """Every path of the tree as an image path, sorted (C locale, like LC_ALL=C sort)."""
    out = []
    for dirpath, dirnames, filenames in fs.walk(tree):
        here = Path(dirpath)
        for name in dirnames + filenames:
            out.append("/" + (here / name).relative_to(tree).as_posix())
    return sorted(out, key=lambda p: os.fsencode(p))


def under(image: str, top: str | None) -> bool:
    return top is not None and (image == top or image.startswith(top.rstrip("/") + "/"))


def run_tool(argv: list[str], what: str, *, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a packaging tool; its last line of complaint becomes a one-line error."""
    if shutil.which(argv[0]) is None:
        raise SplitDebugError(f"{argv[0]} not found: it is needed to build {what}")
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace")
    except OSError as err:
        raise SplitDebugError(f"cannot run {argv[0]}: {err.strerror}") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        # rpmbuild ends with a bare "RPM build errors:" heading: the line that says what is wrong is earlier
        errors = ([line for line in lines if line.lower().startswith("error")]
                  or [line for line in lines if "error" in line.lower() and not line.rstrip().endswith(":")] or lines)
        raise SplitDebugError(f"{argv[0]} failed building {what}: {errors[-1] if errors else 'no message'}")
    return proc


def tool_env(epoch: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SOURCE_DATE_EPOCH=str(epoch), LC_ALL="C", TZ="UTC")
    return env
