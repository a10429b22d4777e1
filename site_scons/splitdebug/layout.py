"""Where a policy puts things: pure functions from (policy, install path, build-id) to image paths.

"Image paths" are absolute paths inside the installed system (`/usr/lib/debug/...`); `StageRoot`
maps them onto the staging directory, honouring a separate debug root when one is given.
"""

from __future__ import annotations

import json
import os
import platform
import posixpath
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


def check_package_fields(policy: Policy, pkg: PackageInfo) -> None:
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
