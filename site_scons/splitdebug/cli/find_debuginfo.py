"""A drop-in for rpm's find-debuginfo: `%global __find_debuginfo splitdebug find-debuginfo`.

Takes find-debuginfo's options (debugedit 5.0) and rpmbuild's environment, splits the build root with
the redhat policy as those options say, and writes debugfiles.list, debugsourcefiles.list (-S),
debuglinks.list, elfbins.list and the -o sub-package lists into the build directory, so rpm's stock
%debug_package packages the result. Build-ids are recomputed by debugedit, as find-debuginfo does.
An option splitdebug cannot honour exactly is refused with one line, never ignored.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from ..errors import printable
from ..rpm import find_debuginfo
from ..rpm.options import USAGE, parse

# find-debuginfo's grammar (-j4, -o whose meaning depends on the -l/-p before it, the build directory
# ending the options) is not argparse's: main() hands this subcommand its words unparsed.
RAW_ARGV = True


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*", metavar="OPTION|BUILDDIR", help="find-debuginfo's options")


def execute_argv(argv: list[str]) -> int:
    opts = parse(argv)
    if opts.help:
        sys.stdout.write(USAGE)
        return 0
    if opts.version:
        print(f"splitdebug {__version__} (find-debuginfo 5.0 compatible)")
        return 0
    build = find_debuginfo.RpmBuild.from_environ(os.environ)
    report = find_debuginfo.run(opts, build, lambda line: print(printable(line), flush=True))
    for w in report.warnings:
        print(f"splitdebug: warning: {printable(w)}", file=sys.stderr)
    for e in report.errors:
        print(f"splitdebug: error: {printable(e)}", file=sys.stderr)
    print(f"splitdebug find-debuginfo: {len(report.split)} binaries split, {report.shipped_bytes} bytes shipped, "
          f"{report.debug_bytes} bytes of debug info")
    return 1 if report.errors else 0


def execute(args: argparse.Namespace) -> int:
    return execute_argv(list(args.words))
