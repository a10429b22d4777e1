"""Split every unstripped ELF under a staging root, as dh_strip or find-debuginfo would.

Executables and shared libraries are stripped in place per the policy and their debug files laid
out under ROOT/usr/lib/debug (or --debug-root). Non-ELF files, objects and stripped files are left
alone. An ELF without a build-id stops the run before anything is written (exit 1).

Inside an rpm scriptlet, rpmbuild's RPM_BUILD_ROOT (ROOT), RPM_PACKAGE_NAME, RPM_PACKAGE_VERSION,
RPM_PACKAGE_RELEASE, RPM_ARCH and RPM_BUILD_NCPUS (--jobs) stand for the options not given.
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
    parser.add_argument("--package", help="package name, for policies that use {package} "
                        "(default: $RPM_PACKAGE_NAME)")
    parser.add_argument("--version", "--pkg-version", dest="pkg_version",
                        metavar="VERSION", help="package version, for {version} (default: $RPM_PACKAGE_VERSION)")
    parser.add_argument("--release", help="package release, for {release} (default: $RPM_PACKAGE_RELEASE)")
    parser.add_argument("--arch", help="architecture, for {arch} (default: $RPM_ARCH, else this machine's)")


# rpmbuild exports these to every scriptlet; a flag given on the command line wins over them.
RPM_ENV = {"package": "RPM_PACKAGE_NAME", "pkg_version": "RPM_PACKAGE_VERSION",
           "release": "RPM_PACKAGE_RELEASE", "arch": "RPM_ARCH"}


def package_from(args: argparse.Namespace) -> PackageInfo:
    got = {k: getattr(args, k) if getattr(args, k) is not None else os.environ.get(var, "")
           for k, var in RPM_ENV.items()}
    return PackageInfo(got["package"], got["pkg_version"], got["release"], got["arch"])


def jobs_from(args: argparse.Namespace) -> int:
    """--jobs, else rpmbuild's RPM_BUILD_NCPUS, else the CPU count."""
    if args.jobs is not None:
        jobs, origin = int(args.jobs), "--jobs"
    elif os.environ.get("RPM_BUILD_NCPUS"):
        text, origin = os.environ["RPM_BUILD_NCPUS"], "RPM_BUILD_NCPUS"
        try:
            jobs = int(text)
        except ValueError:
            raise SplitDebugError(f"RPM_BUILD_NCPUS={text!r}: not a number") from None
    else:
        return os.cpu_count() or 1
    if jobs < 1:
        raise SplitDebugError(f"{origin} {jobs}: give at least 1")
    return jobs


def stage_from(args: argparse.Namespace) -> StageRoot:
    root: Path | None = args.root
    if root is None:
        if not os.environ.get("RPM_BUILD_ROOT"):
            raise SplitDebugError("no ROOT given, and RPM_BUILD_ROOT is not set")
        root = Path(os.environ["RPM_BUILD_ROOT"])
    if not root.is_dir():
        raise SplitDebugError(f"{root}: not a directory")
    debug = Path(os.path.abspath(args.debug_root)) if args.debug_root else None
    return StageRoot(Path(os.path.abspath(root)), debug)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="files split at once (default: $RPM_BUILD_NCPUS, else the CPU count)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only warnings and errors")
    parser.add_argument("--verbose", "-v", action="store_true", help="also list the files left alone, and why")
    parser.add_argument("--source-root", type=Path, metavar="DIR",
                        help="the directory the binaries were built in: debugedit rewrites DWARF paths under it "
                             "to the policy's source_dir, and the sources they name are copied into the tree")
    parser.add_argument("root", type=Path, metavar="ROOT", nargs="?",
                        help="the staging root (DESTDIR; default: $RPM_BUILD_ROOT)")


def execute(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    report = split_tree(stage_from(args), policy, package_from(args), jobs=jobs_from(args),
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
