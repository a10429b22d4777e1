"""Debian packages of a prepared tree: `<name>` and `<name>-dbgsym`, as dh_builddeb leaves them.

The debug root goes to `<name>-dbgsym` with the control fields dh_gencontrol writes for it
(`Auto-Built-Package: debug-symbols`, `Depends: <name> (= <version>)`, `Section: debug`, sorted
`Build-Ids`) and the `/usr/share/doc/<name>-dbgsym -> <name>` link dh_strip makes. The rest goes to
`<name>` with what lintian expects of any package: `/usr/share/doc/<name>/copyright` and
`changelog.Debian.gz`, dh_fixperms' modes, `DEBIAN/md5sums`, and `Depends` from dpkg-shlibdeps.
Installed-Size is counted as dpkg-gencontrol counts it. Everything is owned by root and no mtime
is newer than SOURCE_DATE_EPOCH.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import stat
import time
from fnmatch import fnmatch
from pathlib import Path

from ..elf import read as elfread
from ..tree import stage
from .. import fs
from ..errors import ElfError, SplitDebugError
from .common import Built, Prepared, clamp_mtimes, run_tool, tool_env

_MODE_0644 = ("*.so.*", "*.so", "*.la", "*.a")  # dh_fixperms: libraries are not executable
_EXEC_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games", "usr/libexec")
DEFAULT_SUMMARY = "programs and libraries packaged by splitdebug"
DEFAULT_DESCRIPTION = "The files of {name}, split into this package and its debug symbols by splitdebug."


def debian_version(version: str, release: str) -> str:
    return f"{version}-{release}" if release else version


def build(p: Prepared, output: Path) -> list[Built]:
    m = p.meta
    version = debian_version(m.version, m.release)
    deb = p.work / "debian"
    main_dir, dbg_dir = deb / m.name, deb / f"{m.name}-dbgsym"
    deb.mkdir()
    p.tree.rename(main_dir)
    debug_rel = p.debug_root.lstrip("/")
    debug_part = main_dir / debug_rel
    has_debug = debug_part.is_dir() and any(f for _, _, f in fs.walk(debug_part))
    if debug_part.exists():
        (dbg_dir / debug_rel).parent.mkdir(parents=True)
        debug_part.rename(dbg_dir / debug_rel)
        stage.remove_empty_dirs(debug_part.parent, main_dir)
    _doc_files(p, main_dir)
    fix_perms(main_dir)
    built = []
    depends = shlib_depends(p, deb, main_dir)
    control = [("Package", m.name), ("Version", version), ("Architecture", p.arch),
               ("Maintainer", m.maintainer), ("Installed-Size", ""), ("Depends", depends),
               ("Section", m.section), ("Priority", "optional"),
               ("Description", _description(m.summary or DEFAULT_SUMMARY,
                                            m.description or DEFAULT_DESCRIPTION.format(name=m.name)))]
    shlibs, trigger = shlibs_of(main_dir, m.name)
    built.append(Built(_build_deb(p, main_dir, control, output / f"{m.name}_{version}_{p.arch}.deb",
                                  shlibs=shlibs, ldconfig=trigger), "main"))
    if has_debug:
        doc = dbg_dir / "usr/share/doc"
        doc.mkdir(parents=True, exist_ok=True)
        (doc / f"{m.name}-dbgsym").symlink_to(m.name)
        fix_perms(dbg_dir)
        control = [("Package", f"{m.name}-dbgsym"), ("Source", m.name), ("Version", version),
                   ("Auto-Built-Package", "debug-symbols"), ("Architecture", p.arch),
                   ("Maintainer", m.maintainer), ("Installed-Size", ""),
                   ("Depends", f"{m.name} (= {version})"), ("Section", "debug"), ("Priority", "optional"),
                   ("Description", f"debug symbols for {m.name}"),
                   ("Build-Ids", " ".join(build_ids(dbg_dir / debug_rel)))]
        name = f"{m.name}-dbgsym_{version}_{p.arch}.deb"
        built.append(Built(_build_deb(p, dbg_dir, control, output / name), "dbgsym"))
    return built


def _build_deb(p: Prepared, pkg_dir: Path, control: list[tuple[str, str]], out: Path, *, shlibs: str = "",
               ldconfig: bool = False) -> Path:
    meta_dir = pkg_dir / "DEBIAN"
    meta_dir.mkdir(mode=0o755)
    fields = [(k, str(installed_size(pkg_dir)) if k == "Installed-Size" else v) for k, v in control if v or
              k == "Installed-Size"]
    (meta_dir / "control").write_text("".join(f"{k}: {v}\n" for k, v in fields), encoding="utf-8")
    # file names are bytes: one that is not UTF-8 is written as it is (dpkg compares bytes)
    (meta_dir / "md5sums").write_bytes(md5sums(pkg_dir).encode("utf-8", "surrogateescape"))
    written = ["control", "md5sums"]
    if shlibs:  # dh_makeshlibs' two files: what other packages depend on, and ldconfig's cache
        (meta_dir / "shlibs").write_text(shlibs, encoding="utf-8")
        written.append("shlibs")
    if ldconfig:
        (meta_dir / "triggers").write_text("# Triggers added by splitdebug (as dh_makeshlibs)\n"
                                           "activate-noawait ldconfig\n", encoding="utf-8")
        written.append("triggers")
    for f in written:
        os.chmod(meta_dir / f, 0o644)
    clamp_mtimes(pkg_dir, p.epoch)
    run_tool(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(pkg_dir), str(out)],
             f"{out.name}", env=tool_env(p.epoch))
    return out


# ld.so's own directories: a library there needs ldconfig's trigger (Debian policy 8.1.1).
LD_DIRS = ("lib", "usr/lib", "lib64", "usr/lib64")


def shlibs_of(pkg_dir: Path, package: str) -> tuple[str, bool]:
    """(DEBIAN/shlibs, whether the ldconfig trigger is needed), as dh_makeshlibs makes them by default
    (no -V): one line `libfoo N package` per shared library with a SONAME libfoo.so.N (or libfoo-N.so)
    in ld.so's directories, multiarch ones included."""
    lines: set[str] = set()
    trigger = False
    for top in LD_DIRS:
        base = pkg_dir / top
        if not base.is_dir() or base.is_symlink():
            continue
        dirs = [base] + [d for d in sorted(base.iterdir()) if d.is_dir() and not d.is_symlink()
                         and d.name.count("-") >= 2 and d.name.endswith(("-gnu", "-gnueabihf", "-gnueabi", "-musl"))]
        for d in dirs:
            for f in sorted(d.iterdir()):
                if f.is_symlink() or not f.is_file() or ".so" not in f.name or not elfread.is_elf(f):
                    continue
                try:
                    info = elfread.read_elf(f)
                except ElfError:
                    continue
                if info.kind != "shared_library" or not info.soname:
                    continue
                trigger = True
                m = re.fullmatch(r"(.+)\.so\.(.+)", info.soname) or re.fullmatch(r"(.+)-(\d[^-]*)\.so", info.soname)
                if m:
                    lines.add(f"{m.group(1)} {m.group(2)} {package}\n")
    return "".join(sorted(lines)), trigger


def _description(summary: str, long: str) -> str:
    lines = [f" {line}" if line.strip() else " ." for line in long.splitlines()]
    return "\n".join([summary, *lines])


def _doc_files(p: Prepared, main_dir: Path) -> None:
    """copyright and changelog.Debian.gz in /usr/share/doc/<name>, unless the tree has them.

    The tree came from the upstream build: a symlink at any of these names, dangling or not, is
    refused rather than written through (directory fds, O_NOFOLLOW, O_EXCL).
    """
    m = p.meta
    rel = f"usr/share/doc/{m.name}"
    if m.copyright_file is not None:
        copyright = m.copyright_file.read_bytes()
    else:
        copyright = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
                     f"Upstream-Name: {m.name}\n\nFiles: *\nCopyright: {time.gmtime(p.epoch).tm_year} {m.maintainer}\n"
                     f"License: {m.license}\n"
                     f" The {m.name} binaries, packaged by splitdebug.\n").encode()
    date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(p.epoch))
    text = (f"{m.name} ({debian_version(m.version, m.release)}) unstable; urgency=medium\n\n"
            f"  * Packaged by splitdebug.\n\n -- {m.maintainer}  {date}\n")
    # gzip -9n: no name, no timestamp in the header, so the bytes depend on the text only.
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
        gz.write(text.encode())
    changelog = raw.getvalue()
    fd = stage.open_dir_nofollow(main_dir, rel)
    try:
        stage.write_new_file(fd, "copyright", copyright, 0o644, main_dir / rel)
        stage.write_new_file(fd, "changelog.Debian.gz", changelog, 0o644, main_dir / rel)
    finally:
        os.close(fd)


def fix_perms(pkg_dir: Path) -> None:
    """dh_fixperms' rules: go=rX,u+rw,a-s everywhere; docs and libraries 0644; bin dirs a+x."""
    for dirpath, dirnames, filenames in fs.walk(pkg_dir):
        here = Path(dirpath)
        rel = here.relative_to(pkg_dir).as_posix()
        for name in dirnames + filenames:
            path = here / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode) & ~0o7000 | 0o600
            mode = (mode & ~0o077) | (0o055 if mode & 0o111 or stat.S_ISDIR(st.st_mode) else 0o044)
            if stat.S_ISREG(st.st_mode):
                in_doc = rel == "usr/share/doc" or rel.startswith("usr/share/doc/")
                if in_doc or any(fnmatch(name, pat) for pat in _MODE_0644):
                    mode = 0o644
                elif rel in _EXEC_DIRS:
                    mode |= 0o111
            else:
                mode = 0o755
            os.chmod(path, mode)


def installed_size(pkg_dir: Path) -> int:
    """dpkg-gencontrol's count: KiB rounded up per file or symlink (hard links once), 1 per other entry."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in fs.walk(pkg_dir):
        here = Path(dirpath)
        total += 1  # the directory itself
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            st = (here / name).lstat()
            if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key not in seen:
                    total += -(-st.st_size // 1024)
                if st.st_nlink > 1:
                    seen.add(key)
            else:
                total += 1
    return total


def md5sums(pkg_dir: Path) -> str:
    """DEBIAN/md5sums as dh_md5sums writes it: regular files outside DEBIAN, sorted."""
    lines = []
    for dirpath, dirnames, filenames in fs.walk(pkg_dir):
        here = Path(dirpath)
        if here == pkg_dir:
            dirnames[:] = [d for d in dirnames if d != "DEBIAN"]
        for name in filenames:
            path = here / name
            if path.is_symlink() or not path.is_file():
                continue
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            lines.append((os.fsencode(path.relative_to(pkg_dir).as_posix()), f"{digest}  "))
    return "".join(prefix + os.fsdecode(rel) + "\n" for rel, prefix in sorted(lines))


def build_ids(debug_dir: Path) -> list[str]:
    """Build-ids of the debug files (not dwz's multifile), sorted: the Build-Ids field."""
    ids = set()
    for dirpath, dirnames, filenames in fs.walk(debug_dir):
        dirnames[:] = [d for d in dirnames if d != ".dwz"]
        for name in filenames:
            path = Path(dirpath) / name
            if path.is_symlink() or not elfread.is_elf(path):
                continue
            try:
                build_id = elfread.read_elf(path).build_id
            except SplitDebugError:
                continue
            if build_id:
                ids.add(build_id)
    return sorted(ids)


def shlib_depends(p: Prepared, deb: Path, main_dir: Path) -> str:
    """dpkg-shlibdeps over the package's ELF files (as dh_shlibdeps does); '' when there are none."""
    elfs, libdirs = [], set()
    for dirpath, _, filenames in fs.walk(main_dir):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not elfread.is_elf(path):
                continue
            try:
                info = elfread.read_elf(path)
            except SplitDebugError:
                continue
            if info.elf_type in ("ET_EXEC", "ET_DYN") and info.section(".dynamic") is not None:
                elfs.append(path.relative_to(deb.parent).as_posix())
                if info.kind == "shared_library":
                    libdirs.add(path.parent.relative_to(deb.parent).as_posix())
    if not elfs or shutil.which("dpkg-shlibdeps") is None:
        return ""
    (deb / "control").write_text(f"Source: {p.meta.name}\n\nPackage: {p.meta.name}\nArchitecture: any\n")
    argv = ["dpkg-shlibdeps", "-O", "--ignore-missing-info", *[f"-l{d}" for d in sorted(libdirs)], *sorted(elfs)]
    proc = run_tool(argv, f"the dependencies of {p.meta.name}", cwd=deb.parent, env=tool_env(p.epoch))
    for line in proc.stdout.splitlines():
        if line.startswith("shlibs:Depends="):
            return line.split("=", 1)[1].strip()
    return ""
