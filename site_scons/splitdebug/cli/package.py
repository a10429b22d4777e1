"""Build the distribution's packages, with their debug packages, from a split tree (rpm or deb).

rpm: <name>, <name>-debuginfo and <name>-debugsource; deb: <name> and <name>-dbgsym, as the
policy's package_format says.

ROOT is a tree split by `splitdebug split` or staged by the SCons tool; it is copied, never
changed. With --dwz the policy's dwz pass runs on the copy first (for trees split file by file,
as the SCons stage is). Timestamps are clamped to --source-date-epoch (default: $SOURCE_DATE_EPOCH),
owners are root: the same tree and epoch give the same packages.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import SplitDebugError, printable
from ..package.build import build_packages
from ..package.common import PackageMeta
from ..policy import load_policy
from ..tree.rewrite import Tools


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="NAME|FILE",
                        help="distribution policy: a name from configs/ (debian, redhat…) or a YAML file")
    parser.add_argument("--name", required=True, help="package name")
    parser.add_argument("--version", "--pkg-version", dest="pkg_version", required=True, metavar="VERSION",
                        help="upstream version")
    parser.add_argument("--release", default="", help="package release (rpm Release; Debian revision)")
    parser.add_argument("--arch", default="", help="architecture (default: this machine's, in the policy's spelling)")
    parser.add_argument("--output", "-o", required=True, type=Path, metavar="DIR", help="where the packages go")
    parser.add_argument("--summary", default="", help="one-line summary")
    parser.add_argument("--description", default="", help="longer description")
    parser.add_argument("--maintainer", default=_default_maintainer(),
                        help="Maintainer (default: $DEBFULLNAME <$DEBEMAIL>, as dch does)")
    parser.add_argument("--license", default="unspecified", help="License (rpm) / copyright License (Debian)")
    parser.add_argument("--section", default="misc", help="Section of the main Debian package")
    parser.add_argument("--copyright", type=Path, metavar="FILE", help="the Debian copyright file to ship")
    parser.add_argument("--source-date-epoch", type=int, metavar="SECONDS",
                        default=_env_epoch(), help="clamp timestamps to this (default: $SOURCE_DATE_EPOCH)")
    parser.add_argument("--dwz", action="store_true",
                        help="run the policy's dwz pass on the copy first (for trees the SCons tool staged)")
    parser.add_argument("root", type=Path, metavar="ROOT", help="the split tree")


def _default_maintainer() -> str:
    name, email = os.environ.get("DEBFULLNAME", ""), os.environ.get("DEBEMAIL", "")
    return f"{name} <{email}>" if name and email else PackageMeta.maintainer


def _env_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else None


def execute(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    if args.copyright is not None and not args.copyright.is_file():
        raise SplitDebugError(f"{args.copyright}: no such file")
    meta = PackageMeta(name=args.name, version=args.pkg_version, release=args.release, arch=args.arch,
                       summary=args.summary, description=args.description, maintainer=args.maintainer,
                       license=args.license, section=args.section, copyright_file=args.copyright,
                       source_date_epoch=args.source_date_epoch)
    built = build_packages(args.root, policy, meta, args.output, run_dwz=args.dwz, tools=Tools.from_environ())
    for b in built:
        print(printable(f"{b.role} {b.path}"))
    if not built:
        print("splitdebug: no package built", file=sys.stderr)
        return 1
    return 0
