"""Check, report and compare what shared libraries export (export lists, see README.md).

  splitdebug exports check --list FILE [--archive LIB.a]… LIB.so
      exit 0: LIB exports exactly the list; 1: it does not (one line per problem); 2: usage or input error
  splitdebug exports report [--json] LIB.so
      exported symbols, PLT relocations, .gnu.hash size and chain utilisation; exit 0, or 2
  splitdebug exports compare --baseline OLD.list|SYMBOLS-FILE [--fail-on lost|new|any|none] LIB.so
      exit 0: no difference of the kind --fail-on names (others are still printed);
      1: there is one; 2: usage or input error
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import exports

ACTIONS = ("check", "report", "compare")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--cxxfilt", metavar="PROGRAM",
                        help="the C++ demangler (default: $CXXFILT or c++filt)")
    sub = parser.add_subparsers(dest="exports_action", required=True, metavar="ACTION")

    check = sub.add_parser("check", help="does LIB export exactly what the list declares? (exit 0/1/2)")
    check.add_argument("--list", "-l", dest="export_list", required=True, type=Path, metavar="FILE",
                       help="the export list")
    check.add_argument("--archive", "-a", dest="archives", action="append", default=[], type=Path, metavar="LIB.a",
                       help="a static archive linked into LIB: its symbols may be exported only when listed "
                            "by name (repeatable)")
    check.add_argument("--quiet", "-q", action="store_true", help="print nothing when all is well")
    check.add_argument("library", type=Path, metavar="LIB.so")

    report = sub.add_parser("report", help="exported symbols, PLT relocations and .gnu.hash quality")
    report.add_argument("--json", action="store_true", help="machine-readable output (\"version\": 1)")
    report.add_argument("library", type=Path, metavar="LIB.so")

    compare = sub.add_parser("compare", help="symbols lost or new against an ABI baseline (exit 0/1/2)")
    compare.add_argument("--baseline", required=True, type=Path, metavar="FILE",
                         help="an export list or a dpkg symbols file")
    compare.add_argument("--format", dest="baseline_format", choices=("auto", "list", "dpkg"), default="auto",
                         help="the baseline's format (default: recognised from its contents)")
    compare.add_argument("--fail-on", choices=("lost", "new", "any", "none"), default="lost",
                         help="which differences make the exit status 1 (default: lost)")
    compare.add_argument("library", type=Path, metavar="LIB.so")


def execute(args: argparse.Namespace) -> int:
    if args.exports_action == "check":
        return _check(args)
    if args.exports_action == "report":
        return _report(args)
    return _compare(args)


def _check(args: argparse.Namespace) -> int:
    export_list = exports.load_export_list(args.export_list)
    symbols = exports.read_library(args.library, cxxfilt=args.cxxfilt)
    result = exports.check(export_list, symbols, exports.archive_symbols(args.archives))
    for warning in result.warnings:
        print(f"splitdebug: warning: {warning}", file=sys.stderr)
    for error in result.errors:
        print(error)
    if result.errors:
        return 1
    if not args.quiet:
        print(f"{args.library}: exports exactly {args.export_list}")
    return 0


def _report(args: argparse.Namespace) -> int:
    report = exports.report_library(args.library, cxxfilt=args.cxxfilt)
    if args.json:
        print(json.dumps(report.as_json(), indent=1))
        return 0
    h = report.gnu_hash
    print(f"{report.path}: {len(report.exported)} exported symbols, {report.plt_relocations} PLT relocations, "
          f"{report.dynamic_relocations} other dynamic relocations")
    if h is None:
        print(".gnu.hash: none")
    else:
        print(f".gnu.hash: {h.size} bytes, {h.buckets} buckets, {h.bloom_words} bloom words, {h.names} names, "
              f"longest chain {h.longest_chain}, {h.empty_buckets} empty buckets")
        print(f"lookup steps: {h.total_steps} (ideal {h.ideal_steps}), utilisation {h.utilisation:.3f}")
    if report.version_nodes:
        print(f"version nodes: {', '.join(sorted(report.version_nodes))}")
    for sym in report.exported:
        version = f"@@{sym.version}" if sym.version else ""
        print(f"  {sym.type:<7} {sym.display()}{version}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    baseline = exports.load_baseline(args.baseline, args.baseline_format)
    result = exports.compare(baseline, exports.read_library(args.library, cxxfilt=args.cxxfilt))
    for name in result.lost:
        print(f"lost: {name}")
    for name in result.new:
        print(f"new: {name}")
    failing = {"lost": bool(result.lost), "new": bool(result.new),
               "any": bool(result.lost or result.new), "none": False}[args.fail_on]
    print(f"{args.library}: {len(result.lost)} lost, {len(result.new)} new against {args.baseline}",
          file=sys.stderr)
    return 1 if failing else 0
