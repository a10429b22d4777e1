"""debian/control as debhelper reads it: the binary packages, which of them this build makes
(Architecture against the host, Build-Profiles against DEB_BUILD_PROFILES), and their types."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SplitDebugError

# A field line, a continuation line, a comment, or a blank line: anything else is not deb822.
_FIELD = re.compile(r"^[^\s:#-][^\s:]*:")


@dataclass(frozen=True)
class BinaryPackage:
    name: str
    arch: str        # the Architecture field as written: "any", "all", "amd64 arm64", "linux-any"…
    package_type: str  # deb, udeb
    built: bool      # this build makes it (host architecture and build profiles allow it)

    @property
    def arch_all(self) -> bool:
        return self.arch == "all"


@dataclass(frozen=True)
class Control:
    path: Path
    source: str
    packages: tuple[BinaryPackage, ...]

    def get(self, name: str) -> BinaryPackage | None:
        return next((p for p in self.packages if p.name == name), None)

    def selected(self, kind: str) -> list[str]:
        """debhelper's getpackages: "arch", "indep" or "both", among the packages this build makes."""
        return [p.name for p in self.packages if p.built and (
            kind == "both" or (kind == "indep") == p.arch_all)]


def read_control(path: Path, host_arch: str, profiles: list[str]) -> Control:
    """Parse debian/control with python-debian (deb822); refuse what debhelper would refuse."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SplitDebugError(f"{path}: not found (run dh_splitdebug from the source package's top directory)") \
            from None
    except (OSError, UnicodeDecodeError) as err:
        raise SplitDebugError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.startswith(("#", " ", "\t")) and not _FIELD.match(line):
            raise SplitDebugError(f"{path}:{n}: cannot parse: not a field, continuation or comment line")
    deb822 = _import_deb822()
    stanzas = list(deb822.Deb822.iter_paragraphs(text.splitlines(), use_apt_pkg=False))
    if not stanzas or "Source" not in stanzas[0]:
        raise SplitDebugError(f"{path}: cannot parse: the first stanza has no Source field")
    packages: list[BinaryPackage] = []
    for stanza in stanzas[1:]:
        name = stanza.get("Package", "").strip()
        arch = " ".join(stanza.get("Architecture", "").split())
        if not name or not arch:
            missing = "Package" if not name else "Architecture"
            raise SplitDebugError(f"{path}: cannot parse: a binary stanza has no {missing} field"
                                  + (f" ({name})" if name else ""))
        if any(p.name == name for p in packages):
            raise SplitDebugError(f"{path}: package {name} is listed twice")
        ptype = (stanza.get("Package-Type") or stanza.get("XC-Package-Type") or "deb").strip()
        built = _profiles_allow(stanza.get("Build-Profiles", ""), profiles) and (
            arch in ("all", "any") or _arch_matches(host_arch, arch.split()))
        packages.append(BinaryPackage(name, arch, ptype, built))
    return Control(path, stanzas[0]["Source"].strip(), tuple(packages))


def _import_deb822() -> Any:
    """python-debian's deb822, without its encoding guessers where it can do without them: it is
    given str, decoded here, so charset_normalizer (or chardet) never runs, and importing it costs
    more than splitting a small package's files (0.05-0.1 s). bookworm's 0.1.49 imports chardet
    unconditionally: then it is imported after all."""
    import sys

    blocked = [m for m in ("charset_normalizer", "chardet") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # type: ignore[assignment]  # makes `import m` raise ImportError
    try:
        from debian import deb822
        return deb822
    except ImportError:
        pass
    finally:
        for m in blocked:
            if sys.modules.get(m, 0) is None:
                del sys.modules[m]
    try:
        from debian import deb822
    except ImportError as err:
        raise SplitDebugError(f"python-debian is needed to read debian/control (apt-get install python3-debian): "
                              f"{err}") from None
    return deb822


def _arch_matches(host: str, wanted: list[str]) -> bool:
    if host in wanted:
        return True
    wildcards = [w for w in wanted if "any" in w]
    # dpkg's own matching for wildcards (linux-any, any-amd64…), as debhelper's samearch does.
    return any(subprocess.run(["dpkg-architecture", f"-a{host}", f"-i{w}"], capture_output=True).returncode == 0
               for w in wildcards)


def _profiles_allow(formula: str, active: list[str]) -> bool:
    """A Build-Profiles formula: <a !b> <c> holds when any group has all its terms true."""
    groups = re.findall(r"<([^>]*)>", formula)
    if not groups:
        return True
    return any(all((t[1:] not in active) if t.startswith("!") else (t in active) for t in g.split())
               for g in groups)


def host_arch(environ: dict[str, str] | os._Environ[str]) -> str:
    """DEB_HOST_ARCH: dpkg-buildpackage exports it; else this machine's (`dpkg --print-architecture`, a
    C program: dpkg-architecture is a Perl start-up of 0.1 s, more than a small package's split)."""
    arch = environ.get("DEB_HOST_ARCH", "")
    if arch:
        return arch
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as err:
        raise SplitDebugError(f"dpkg --print-architecture: cannot run: {err}") from None
