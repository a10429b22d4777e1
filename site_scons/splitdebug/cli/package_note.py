"""Print the linker flags that stamp the policy's package metadata note (.note.package).

For build systems other than the SCons tool: LDFLAGS += $(shell splitdebug package-note --print-ldflags …).

With a linker that has --package-metadata (binutils >= 2.39) the flags are that option, quoted for a
shell; with --script FILE (needed for an older ld, or where LDFLAGS is not re-read by a shell, as in
an rpm spec's environment) the note is written to FILE as a linker script and the flag is -Wl,-dT,FILE.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .. import layout, ldflags
from ..errors import SplitDebugError
from ..policy import load_policy
from .split import package_from


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print-ldflags", action="store_true", required=True,
                        help="print the flags (one line, shell words)")
    parser.add_argument("--policy", required=True, metavar="NAME|FILE", help="distribution policy with a package_note")
    parser.add_argument("--package", help="package name (default: $RPM_PACKAGE_NAME)")
    parser.add_argument("--version", "--pkg-version", dest="pkg_version", metavar="VERSION",
                        help="package version (default: $RPM_PACKAGE_VERSION)")
    parser.add_argument("--release", help="package release (default: $RPM_PACKAGE_RELEASE)")
    parser.add_argument("--arch", help="architecture (default: $RPM_ARCH, else this machine's)")
    parser.add_argument("--os-release", type=Path, default=Path("/etc/os-release"), metavar="FILE",
                        help="os-release file for {os_id} {os_version_id} {os_cpe_name} (default /etc/os-release)")
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="write the note as a linker script to FILE and print -Wl,-dT,FILE")
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"), metavar="CMD",
                        help="compiler driver whose linker is asked (default: $CC, else cc)")


def execute(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    try:
        release = args.os_release.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SplitDebugError(f"{args.os_release}: cannot read ({err})") from None
    note = layout.package_note(policy, package_from(args), layout.parse_os_release(release))
    if note is None:
        raise SplitDebugError(f"policy {policy.name} has no package_note: nothing to stamp")
    if args.script is not None:
        ldflags.write_script(str(args.script), ldflags.linker_script(note, ldflags.has_readonly(args.cc)))
        flags = ldflags.script_flags(str(args.script.resolve()))
    elif ldflags.has_package_metadata(args.cc):
        flags = ldflags.option_flags(note)
    else:
        raise SplitDebugError(f"{args.cc}: its linker has no --package-metadata (binutils < 2.39): "
                              "give --script FILE for a linker script")
    sys.stdout.write(shlex.join(flags) + "\n")
    return 0
