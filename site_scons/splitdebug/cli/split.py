"""Split every unstripped ELF under a staging root, as dh_strip or find-debuginfo would.

Executables and shared libraries are stripped in place per the policy and their debug files laid
out under ROOT/usr/lib/debug (or --debug-root). Non-ELF files, objects and stripped files are left
alone. An ELF without a build-id stops the run before anything is written (exit 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import SplitDebugError, printable
from ..layout import PackageInfo, StageRoot
from ..policy import load_policy
from ..tree.rewrite import Tools
from ..tree.split import split_tree


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="NAME|FILE",
                        help="distribution policy: a name from configs/ (debian, redhat…) or a YAML file")
    parser.add_argument("--debug-root", metavar="DIR", type=Path,
                        help="directory standing for the policy's debug root (default ROOT/usr/lib/debug)")
    parser.add_argument("--package", default="", help="package name, for policies that use {package}")
    parser.add_argument("--version", "--pkg-version", dest="pkg_version", default="",
                        metavar="VERSION", help="package version, for {version}")
    parser.add_argument("--release", default="", help="package release, for {release}")
    parser.add_argument("--arch", default="", help="architecture, for {arch} (default: this machine's)")


def package_from(args: argparse.Namespace) -> PackageInfo:
    return PackageInfo(args.package, args.pkg_version, args.release, args.arch)


def stage_from(args: argparse.Namespace) -> StageRoot:
    root: Path = args.root
    if not root.is_dir():
        raise SplitDebugError(f"{root}: not a directory")
    debug = Path(os.path.abspath(args.debug_root)) if args.debug_root else None
    return StageRoot(Path(os.path.abspath(root)), debug)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="files split at once (default: the CPU count)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only warnings and errors")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list the files left alone, and why")
    parser.add_argument("--source-root", type=Path, metavar="DIR",
                        help="the directory the binaries were built in: debugedit rewrites DWARF paths under it "
                             "to the policy's source_dir, and the sources they name are copied into the tree")
    parser.add_argument("root", type=Path, metavar="ROOT", help="the staging root (DESTDIR)")


def execute(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    report = split_tree(stage_from(args), policy, package_from(args), jobs=args.jobs,
                        tools=Tools.from_environ(), source_root=args.source_root, processes=True)
    for w in report.warnings:
        print(f"splitdebug: warning: {printable(w)}", file=sys.stderr)
    for e in report.errors:
        print(f"splitdebug: error: {printable(e)}", file=sys.stderr)
    if not args.quiet:
        for image, debug in report.split:
            print(printable(f"split {image} -> {debug}"))
        for image in report.archives:
            print(printable(f"stripped archive {image}"))
        for image in report.stripped_only:
            print(printable(f"stripped {image} (no build-id: no debug file)"))
        if args.verbose:
            for image, reason in report.skipped:
                print(printable(f"left alone {image}: {reason}"))
        for image in report.dwz_multifiles:
            print(printable(f"dwz multifile {image}"))
        for image in report.sources:
            print(printable(f"source {image}"))
        print(f"splitdebug: {len(report.split)} binaries split, {len(report.archives)} archives stripped, "
              f"{report.shipped_bytes} bytes shipped, {report.debug_bytes} bytes of debug info")
    return 1 if report.errors else 0
