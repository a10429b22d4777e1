"""Finding what knows a module, in gdb's order: the build-id path in each debug directory, then the
policy's path-based layout and the binary's .gnu_debuglink (CRC checked), then debuginfod; failing
those the shipped binary's minidebuginfo, then its .dynsym. The first source that reads wins; one
that does not read (a corrupt debug file) is one warning and the next source is tried.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import SplitDebugError
from ..elf.read import ElfInfo, crc32_file, package_notes, read_debugaltlink, read_debuglink, read_elf
from ..layout import PackageInfo, check_package_fields, place
from ..policy import Policy
from . import cache
from .debuginfod import fetch_debuginfo, server_urls
from .dies import DieReader
from .index import AddressIndex, IndexError_

DEFAULT_DEBUG_DIR = Path("/usr/lib/debug")


def _package_of(binary: Path, info: ElfInfo) -> tuple[str, str] | None:
    """(name, version) of the package the binary's ELF package metadata note names, or None."""
    for desc in package_notes(binary, info):
        try:
            doc = json.loads(desc.rstrip(b"\0").decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue  # check reports a broken note (SD206); here it only names nothing
        if isinstance(doc, dict) and isinstance(doc.get("name"), str):
            version = doc.get("version")
            return doc["name"], version if isinstance(version, str) else ""
    return None


@dataclass(frozen=True)
class Options:
    """Where to look. With no roots and no debug directories, the host's /usr/lib/debug is used."""

    roots: tuple[Path, ...] = ()
    debug_dirs: tuple[Path, ...] = ()
    policy: Policy | None = None
    package: PackageInfo = PackageInfo()
    debuginfod_urls: tuple[str, ...] | None = None  # None: $DEBUGINFOD_URLS
    cache_dir: Path | None = field(default_factory=cache.default_cache_dir)  # None: no cache at all


@dataclass
class Module:
    """What answered for one module: its index and the source's name, or why nothing did."""

    label: str
    build_id: str | None
    index: AddressIndex | None
    source: str  # dwarf, minidebuginfo, dynsym, none
    reason: str = ""
    fallback_loader: Callable[[], AddressIndex | None] | None = None  # the binary's .dynsym, read when needed
    package: tuple[str, str] | None = None  # (name, version) from the binary's .note.package
    _fallback: list[AddressIndex | None] = field(default_factory=list)

    def fallback(self) -> AddressIndex | None:
        """The index that names what the first source does not cover (read once, on first use)."""
        if not self._fallback:
            self._fallback.append(self.fallback_loader() if self.fallback_loader is not None else None)
        return self._fallback[0]


class Resolver:
    def __init__(self, options: Options, warn: Callable[[str], None]) -> None:
        self.options = options
        self.warn = warn
        self.urls = server_urls() if options.debuginfod_urls is None else options.debuginfod_urls
        self.debug_dirs = list(options.debug_dirs)
        debug_root = options.policy.debug_root if options.policy else str(DEFAULT_DEBUG_DIR)
        self.debug_dirs += [r / debug_root.lstrip("/") for r in options.roots]
        if not options.roots and not options.debug_dirs:
            self.debug_dirs.append(DEFAULT_DEBUG_DIR)
        self.modules: dict[tuple[str | None, str | None], Module] = {}
        self._by_id: dict[str, Path] | None = None
        self._by_name: dict[str, list[Path]] = {}
        self._warned: set[str] = set()
        self._to_store: list[tuple[str | None, AddressIndex]] = []
        self._alt_readers: dict[str, DieReader] = {}  # dwz multifiles by path, shared by their modules

    def module(self, build_id: str | None, path: str | None) -> Module:
        key = (build_id, path)
        if key not in self.modules:
            self.modules[key] = self._resolve(build_id, path)
        return self.modules[key]

    # -- the shipped binary --------------------------------------------------------------------

    def sibling(self, warn: Callable[[str], None]) -> Resolver:
        """A resolver of its own modules and warnings that shares this one's scan of the roots and
        its dwz multifiles' readers (a forked child's, see parallel.py)."""
        other = Resolver(self.options, warn)
        other.urls, other._by_id, other._by_name = self.urls, self.scan(), self._by_name
        other._alt_readers = self._alt_readers
        return other

    def scan(self) -> dict[str, Path]:
        """Every ELF in the roots (outside the debug root) by build-id and file name, read once."""
        if self._by_id is None:
            self._by_id = {}
            skip = {os.path.realpath(d) for d in self.debug_dirs}
            for root in self.options.roots:
                for dirpath, dirnames, filenames in os.walk(root):
                    dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in skip]
                    for name in filenames:
                        p = Path(dirpath, name)
                        if p.is_symlink() or not p.is_file():
                            continue
                        try:
                            info = read_elf(p)
                        except SplitDebugError:
                            continue
                        if info.build_id and not info.is_debug_file:
                            self._by_id.setdefault(info.build_id, p)
                        self._by_name.setdefault(name, []).append(p)
        return self._by_id

    def _binary(self, build_id: str | None, path: str | None) -> tuple[Path | None, Path | None]:
        """(the binary, the root it lies in) for a build-id or a logged path."""
        by_id = self.scan()
        if build_id and build_id in by_id:
            found = by_id[build_id]
            return found, next((r for r in self.options.roots if found.is_relative_to(r)), None)
        if not path:
            return None, None
        for root in self.options.roots:
            candidate = root / path.lstrip("/")
            if candidate.is_file():
                return candidate, root
        names = self._by_name.get(posixpath.basename(path), [])
        if names:
            return names[0], next((r for r in self.options.roots if names[0].is_relative_to(r)), None)
        if os.path.isfile(path):  # a file of this machine, or a binary given by its own path
            return Path(path), None
        return None, None

    # -- the sources, in order -----------------------------------------------------------------

    def _resolve(self, build_id: str | None, path: str | None) -> Module:
        label = path or build_id or "??"
        binary, root = self._binary(build_id, path)
        package = None
        if binary is not None:
            try:
                info = read_elf(binary)
            except SplitDebugError as err:
                self._warn(str(err))
                binary = None
            else:
                if build_id and info.build_id and info.build_id != build_id:
                    self._warn(f"{binary}: build-id {info.build_id}, the log names {build_id}: not used")
                    binary = None
                else:
                    build_id = build_id or info.build_id
                    package = _package_of(binary, info)
        reasons = []
        for find in (lambda _: self._own_dwarf(binary), self._by_build_id_path,
                     lambda b: self._by_path(binary, root, b), self._by_debuginfod):
            candidates, reason = find(build_id)
            if reason:
                reasons.append(reason)
            for candidate in candidates:
                index = self._dwarf(candidate, build_id)
                if index is not None:
                    return Module(label, build_id, index, "dwarf", fallback_loader=self._dynsym_of(binary, build_id),
                                  package=package)
        if binary is not None:
            why = "; ".join(reasons) or "no debug file"
            dynsym = self._symbols(binary, build_id, "dynsym")
            mini = self._symbols(binary, build_id, "minidebuginfo")
            if mini is not None and mini.sym_starts:  # it holds what .dynsym does not: both are read
                return Module(label, build_id, mini, "minidebuginfo", reason=why, fallback_loader=lambda: dynsym,
                              package=package)
            if dynsym is not None and dynsym.sym_starts:
                return Module(label, build_id, dynsym, "dynsym", reason=why, package=package)
            reasons.append(f"{binary}: no minidebuginfo and no .dynsym functions")
        else:
            reasons.insert(0, f"no binary for {label}" + (f" (build-id {build_id})" if build_id and path else ""))
        return Module(label, build_id, None, "none", reason="; ".join(reasons))

    @staticmethod
    def _own_dwarf(binary: Path | None) -> tuple[list[Path], str]:
        """An unstripped binary carries its DWARF: gdb reads it before looking elsewhere."""
        try:
            return ([binary], "") if binary is not None and read_elf(binary).section(".debug_info") else ([], "")
        except SplitDebugError:
            return [], ""

    def _by_build_id_path(self, build_id: str | None) -> tuple[list[Path], str]:
        if not build_id:
            return [], "no build-id"
        found = [d / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug" for d in self.debug_dirs]
        found = [p for p in found if p.is_file()]
        return found, "" if found else f"no .build-id/{build_id[:2]}/{build_id[2:]}.debug in the debug directories"

    def _by_path(self, binary: Path | None, root: Path | None, build_id: str | None) -> tuple[list[Path], str]:
        if binary is None:
            return [], ""
        found: list[Path] = []
        image = "/" + str(binary.relative_to(root)) if root is not None else str(binary)
        policy = self.options.policy
        if policy is not None and root is not None and not policy.uses_build_id_path:
            try:
                check_package_fields(policy, self.options.package)
                candidate = root / place(policy, image, build_id, self.options.package).debug_file.lstrip("/")
                if candidate.is_file():
                    found.append(candidate)
            except SplitDebugError:
                pass  # the policy needs package fields we were not given: the debuglink still leads there
        try:
            link = read_debuglink(binary, read_elf(binary))
        except SplitDebugError as err:
            self._warn(str(err))
            link = None
        if link is None:
            return found, "" if found else f"{binary}: no .gnu_debuglink"
        name, crc = link
        image_dir = posixpath.dirname(image)
        places = [binary.parent / name, binary.parent / ".debug" / name]
        places += [d / image_dir.lstrip("/") / name for d in self.debug_dirs]
        for candidate in places:
            if candidate.is_file() and candidate not in found:
                if crc32_file(candidate) == crc:
                    found.append(candidate)
                else:
                    self._warn(f"{candidate}: CRC does not match {binary}'s .gnu_debuglink: not used")
        return found, "" if found else f"no debug file {name} by path"

    def _by_debuginfod(self, build_id: str | None) -> tuple[list[Path], str]:
        if not build_id:
            return [], ""
        if not self.urls:
            return [], ""
        found, reason = fetch_debuginfo(build_id, self.urls, self._debuginfod_cache())
        return ([found], "") if found is not None else ([], reason)

    def _debuginfod_cache(self) -> Path:
        env = os.environ.get("DEBUGINFOD_CACHE_PATH")
        if env:
            return Path(env)
        return (self.options.cache_dir or cache.default_cache_dir()) / "debuginfod"

    # -- reading -------------------------------------------------------------------------------

    def _dwarf(self, debug_file: Path, build_id: str | None) -> AddressIndex | None:
        cached = cache.load(self.options.cache_dir, build_id, "dwarf")
        if cached is not None:
            cached.filler = self._late_filler(debug_file)
            self._to_store.append((build_id, cached))
            return cached
        try:
            info = read_elf(debug_file)
            if build_id and info.build_id and info.build_id != build_id:
                self._warn(f"{debug_file}: build-id {info.build_id}, expected {build_id}: not used")
                return None
            from .build import build_index  # pyelftools only when an index is built
            index = build_index(str(debug_file), alt_loader=self._alt_loader(debug_file), warn=self._warn,
                                alt_cache=self._alt_readers)
        except SplitDebugError as err:
            self._warn(f"{err}; trying the next source")
            return None
        index.dirty = True
        self._to_store.append((build_id, index))
        return index

    def _late_filler(self, debug_file: Path) -> Callable[[AddressIndex, int, list[int] | None], None]:
        """A cached index's units not filled yet: the debug file is opened (and pyelftools imported)
        only when an address falls in one of them."""
        def fill(index: AddressIndex, cu: int, entries: list[int] | None) -> None:
            from .build import reopen_filler
            index.filler = reopen_filler(str(debug_file), self._alt_loader(debug_file), self._warn,
                                         self._alt_readers)
            index.filler(index, cu, entries)
        return fill

    def flush(self) -> None:
        """Each index that gained units this run goes to the cache (one write per module)."""
        for build_id, index in self._to_store:
            if index.dirty:
                cache.store(self.options.cache_dir, build_id, "dwarf", index)
                index.dirty = False

    def _alt_loader(self, debug_file: Path) -> Callable[[str], BinaryIO]:
        """pyelftools' stream_loader for the dwz multifile named by .gnu_debugaltlink."""
        def load(_name: str) -> BinaryIO:
            alt = read_debugaltlink(debug_file, read_elf(debug_file))
            if alt is None:
                raise IndexError_(f"{debug_file}: no .gnu_debugaltlink")
            name, alt_id = alt
            places = [d / ".build-id" / alt_id[:2] / f"{alt_id[2:]}.debug" for d in self.debug_dirs]
            if posixpath.isabs(name):
                # under a root, or under a debug directory standing for the debug root it names
                places += [r / name.lstrip("/") for r in self.options.roots]
                droot = (self.options.policy.debug_root if self.options.policy else str(DEFAULT_DEBUG_DIR)).rstrip("/")
                if name.startswith(droot + "/"):
                    places += [d / name[len(droot) + 1:] for d in self.debug_dirs]
                places.append(Path(name))
            else:
                places.append(Path(os.path.realpath(debug_file)).parent / name)
            for p in places:
                if p.is_file():
                    try:
                        if read_elf(p).build_id == alt_id:
                            return open(p, "rb")
                    except SplitDebugError:
                        continue
            fetched, _ = self._by_debuginfod(alt_id)
            if fetched:
                return open(fetched[0], "rb")
            raise IndexError_(f"{debug_file}: dwz multifile {name} (build-id {alt_id}) not found")
        return load

    def _symbols(self, binary: Path, build_id: str | None, kind: str) -> AddressIndex | None:
        cached = cache.load(self.options.cache_dir, build_id, kind)
        if cached is not None:
            return cached
        from .build import build_index, minidebuginfo_image
        try:
            if kind == "minidebuginfo":
                image = minidebuginfo_image(str(binary))
                if image is None:
                    return None
                index = build_index(f"{binary} .gnu_debugdata", image, dwarf=False)
                index.loads = build_index(str(binary), dwarf=False, symtab="").loads
            else:
                index = build_index(str(binary), dwarf=False, symtab=".dynsym")
        except SplitDebugError as err:
            self._warn(str(err))
            return None
        cache.store(self.options.cache_dir, build_id, kind, index)
        return index

    def _dynsym_of(self, binary: Path | None, build_id: str | None) -> Callable[[], AddressIndex | None] | None:
        return (lambda: self._symbols(binary, build_id, "dynsym")) if binary is not None else None

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warn(message)
