"""Where a policy puts things: pure functions from (policy, install path, build-id) to image paths.

"Image paths" are absolute paths inside the installed system (`/usr/lib/debug/...`); `StageRoot`
maps them onto the staging directory, honouring a separate debug root when one is given.
"""

from __future__ import annotations

import json
import os
import platform
import posixpath
import re
import string
from collections import Counter
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from .errors import SplitDebugError
from .policy import OS_RELEASE_FIELDS, Policy


@dataclass(frozen=True)
class PackageInfo:
    """The package fields a policy's templates may use (rpm's name-version-release.arch)."""

    package: str = ""
    version: str = ""
    release: str = ""
    arch: str = ""

    def with_defaults(self) -> PackageInfo:
        return PackageInfo(self.package, self.version, self.release, self.arch or default_arch())


def default_arch() -> str:
    return platform.machine() or "noarch"


# GNU multiarch tuples (Debian's /usr/lib/<multiarch>, dh_dwz's .dwz/<multiarch>/), by machine or
# Debian architecture name. Read-only.
MULTIARCH = MappingProxyType({
    "x86_64": "x86_64-linux-gnu", "amd64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu", "arm64": "aarch64-linux-gnu",
    "i386": "i386-linux-gnu", "i686": "i386-linux-gnu",
    "armv7l": "arm-linux-gnueabihf", "armhf": "arm-linux-gnueabihf",
    "ppc64le": "powerpc64le-linux-gnu", "ppc64el": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu", "riscv64": "riscv64-linux-gnu",
})


def arch_of(policy: Policy, pkg: PackageInfo) -> str:
    """{arch}: the given architecture, or this machine's, in the distribution's spelling."""
    return policy.arch_name(pkg.arch or default_arch())


def multiarch_of(arch: str) -> str:
    return MULTIARCH.get(arch, f"{arch}-linux-gnu")


def package_path(policy: Policy, template: str, pkg: PackageInfo) -> str:
    """Expand a package-wide template (source_dir, dwz_multifile); relative results stay relative."""
    arch = arch_of(policy, pkg)
    text = template.format(debug_root=policy.debug_root, package=pkg.package, version=pkg.version,
                           release=pkg.release, arch=arch, multiarch=multiarch_of(arch))
    return posixpath.normpath(text) if text.startswith("/") else text


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5), values unquoted as a shell would."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            out[key] = words[0] if words else ""
    return out


def package_note(policy: Policy, pkg: PackageInfo, os_release: Mapping[str, str]) -> str | None:
    """The compact JSON of the policy's ELF package metadata note, or None when it asks for none."""
    if not policy.package_note:
        return None
    arch = arch_of(policy, pkg)
    fields = {"package": pkg.package, "version": pkg.version, "release": pkg.release, "arch": arch,
              "multiarch": multiarch_of(arch)}
    fields |= {name: os_release.get(key, "") for name, key in OS_RELEASE_FIELDS.items()}
    return json.dumps({key: template.format(**fields) for key, template in policy.package_note},
                      separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Link:
    path: str    # image path of the symlink
    target: str  # relative target, as written into the symlink
    if_executable: bool = False  # the policy expects it only for a binary with an exec bit (check)


@dataclass(frozen=True)
class Placement:
    """Where one binary's debug file and build-id links go."""

    binary: str      # image path of the shipped binary
    debug_file: str  # image path of its .debug file
    debuglink: str   # name written into .gnu_debuglink
    links: tuple[Link, ...]


def _fields(policy: Policy, image_path: str, build_id: str | None, pkg: PackageInfo, dup: int) -> dict[str, str]:
    image_path = posixpath.normpath("/" + image_path.lstrip("/"))
    bid = build_id or ""
    return {
        "debug_root": policy.debug_root,
        "path": image_path.lstrip("/"),
        "dir": posixpath.dirname(image_path),
        "name": posixpath.basename(image_path),
        "build_id": bid, "build_id_dir": bid[:2], "build_id_rest": bid[2:],
        "package": pkg.package, "version": pkg.version, "release": pkg.release,
        "arch": arch_of(policy, pkg), "multiarch": multiarch_of(arch_of(policy, pkg)),
        "dup": f".{dup}" if dup else "",
    }


def _expand(template: str, fields: dict[str, str]) -> str:
    return posixpath.normpath("/" + template.format(**fields).lstrip("/"))


# What the package fields may hold: they become path components of the layout's templates, so
# no '/', no '..' and nothing a file name or a command line would read twice.
_FIELD = re.compile(r"[A-Za-z0-9_+.~^:-]*")
_ARCH = re.compile(r"[A-Za-z0-9_-]*")


def check_field_values(pkg: PackageInfo) -> None:
    """Refuse package fields that could leave a template's directory or carry syntax. A package name may
    carry one category (`category/name`, as portage's ${CATEGORY}/${PN}): one directory level more, each
    part held to the same rule."""
    for key in ("package", "version", "release", "arch"):
        value = getattr(pkg, key)
        pattern = _ARCH if key == "arch" else _FIELD
        parts = value.split("/", 1) if key == "package" and "/" in value else [value]
        if any(not pattern.fullmatch(part) or ".." in part or part.startswith(".") or (len(parts) > 1 and not part)
               for part in parts) or "/" in parts[-1]:
            raise SplitDebugError(f"--{key} {value!r}: must be letters, digits and "
                                  f"{'_-' if key == 'arch' else '_+.~^:-'}, with no '..' and no leading '.'"
                                  + (" (a package may be category/name)" if key == "package" else ""))


def check_package_fields(policy: Policy, pkg: PackageInfo) -> None:
    check_field_values(pkg)
    missing = sorted(k for k in policy.needs() if k != "arch" and not getattr(pkg, k))
    if missing:
        scons_var = "PACKAGE_NAME" if missing[0] == "package" else f"PACKAGE_{missing[0].upper()}"
        raise SplitDebugError(
            f"policy {policy.name!r} names its debug files with {', '.join('{'+m+'}' for m in missing)}: "
            f"give {' '.join('--' + m for m in missing)} (SCons: {scons_var})")


def debuglink_name(policy: Policy, binary_name: str, build_id: str | None, pkg: PackageInfo) -> str:
    """The name the stripped binary carries in .gnu_debuglink; depends on its file name only."""
    return place(policy, "/" + binary_name, build_id, pkg).debuglink


def place(policy: Policy, image_path: str, build_id: str | None, pkg: PackageInfo, dup: int = 0) -> Placement:
    if policy.uses_build_id_path and not build_id:
        raise SplitDebugError(f"{image_path}: no build-id, and policy {policy.name!r} names debug files by build-id")
    f = _fields(policy, image_path, build_id, pkg, dup)
    debug_file = _expand(policy.debug_file, f)
    f_link = dict(f, debug_file_name=posixpath.basename(debug_file))
    debuglink = policy.debuglink.format(**f_link)
    if "/" in debuglink or not debuglink:
        raise SplitDebugError(f"policy {policy.name!r}: debuglink {debuglink!r} must be a plain file name")
    links = []
    if build_id:
        binary = f["dir"].rstrip("/") + "/" + f["name"]
        for spec in policy.build_id_links:
            link = _expand(spec.link, f)
            target = {"binary": binary, "debug_file": debug_file}.get(spec.target) or _expand(spec.target, f)
            links.append(Link(link, _relative(target, posixpath.dirname(link), spec.relative), spec.if_executable))
    return Placement(f["dir"].rstrip("/") + "/" + f["name"], debug_file, debuglink, tuple(links))


def _relative(target: str, start: str, style: str) -> str:
    """`shortest` (../bin/prog) or `from_root`: up to / and down again, as rpm writes build-id
    links (../../../../usr/bin/prog)."""
    if style == "from_root":
        depth = len([part for part in start.split("/") if part])
        return "/".join([".."] * depth + [target.lstrip("/")])
    return posixpath.relpath(target, start)


def symlink_debug_link(policy: Policy, link_path: str, target_path: str, pkg: PackageInfo) -> Link | None:
    """For a symlinked binary, `<link>.debug -> <target>.debug` (rpm); None when the policy does not."""
    if policy.symlinked_binaries != "debug_link" or policy.uses_build_id_path:
        return None
    link_dbg = place(policy, link_path, None, pkg).debug_file
    target_dbg = place(policy, target_path, None, pkg).debug_file
    return Link(link_dbg, posixpath.relpath(target_dbg, posixpath.dirname(link_dbg)))


@dataclass(frozen=True)
class StageRoot:
    """A staging directory (DESTDIR) and, optionally, a separate directory for the debug root."""

    root: Path
    debug_dir: Path | None = None

    def fs_path(self, policy: Policy, image_path: str) -> Path:
        """The file system path of an image path; refuses anything that leaves the root."""
        norm = posixpath.normpath("/" + image_path.lstrip("/"))
        base, rel = self.root, norm.lstrip("/")
        if self.debug_dir is not None:
            droot = policy.debug_root.rstrip("/")
            if norm == droot or norm.startswith(droot + "/"):
                base, rel = self.debug_dir, norm[len(droot):].lstrip("/")
        if rel.startswith("../") or rel == "..":
            raise SplitDebugError(f"{image_path}: path leaves the staging root")
        return base / rel if rel else base

    def image_path(self, fs_path: Path) -> str:
        rel = os.path.relpath(fs_path, self.root)
        if rel.startswith(".."):
            raise SplitDebugError(f"{fs_path}: not under the staging root {self.root}")
        return "/" + rel.replace(os.sep, "/") if rel != "." else "/"


# What each template field may match when a debug file name is read back (rpm forbids '-' in a
# version or release; an arch has no dot).
_READ_BACK = {"path": r".+", "dir": r".*", "name": r"[^/]+", "package": r"[^/]+",
              "version": r"[^/-]+", "release": r"[^/-]+", "arch": r"[^/.-]+"}


def infer_package(stage_root: StageRoot, policy: Policy) -> tuple[PackageInfo, str] | None:
    """The package fields read back from the tree's debug file names (redhat:
    `/usr/lib/debug/<path>-<version>-<release>.<arch>.debug`), for a tree checked without being told
    them: (fields, an image path they were read from), or None when the names do not carry them.

    A name counts only when its <path> is a file of the tree; the most common reading wins.
    """
    pattern, seen = [], set()
    for literal, name, _, _ in string.Formatter().parse(policy.debug_file):
        pattern.append(re.escape(literal))
        if name is None:
            continue
        if name == "debug_root":
            pattern.append(re.escape(policy.debug_root))
        elif name not in _READ_BACK:
            return None  # a build-id in the name says nothing of the package
        else:
            pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>{_READ_BACK[name]})")
            seen.add(name)
    if not {"version", "release"} & seen:
        return None
    regex = re.compile("/" + "".join(pattern).lstrip("/"))
    top = stage_root.fs_path(policy, policy.debug_root)
    readings: Counter[tuple[str, str, str, str]] = Counter()
    first: dict[tuple[str, str, str, str], str] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))  # .build-id, .dwz
        for fname in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, fname), top).replace(os.sep, "/")
            image = posixpath.join(policy.debug_root, rel)
            m = regex.fullmatch(image)
            if m is None:
                continue
            got = m.groupdict()
            binary = got.get("path") or posixpath.join(got.get("dir", ""), got.get("name", ""))
            try:
                if not stage_root.fs_path(policy, "/" + binary.lstrip("/")).is_file():
                    continue
            except SplitDebugError:
                continue
            key = (got.get("package", ""), got.get("version", ""), got.get("release", ""), got.get("arch", ""))
            readings[key] += 1
            first.setdefault(key, image)
    if not readings:
        return None
    best = max(sorted(readings), key=lambda k: readings[k])
    return PackageInfo(*best), first[best]
