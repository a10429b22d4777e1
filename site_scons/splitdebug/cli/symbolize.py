"""Turn a crash's addresses into functions and file:line, from the debug trees we lay out.

A log filter: every line of INPUT (standard input when none) is printed, and after each line that
holds addresses, one line per frame, innermost (inlined) first, naming which source answered:
dwarf, minidebuginfo, dynsym or none (with the reason). Recognised: BUILDID+0xOFFSET,
`BUILDID:<hex> 0xADDR`, `PATH 0xADDR`, glibc backtrace_symbols lines (`lib.so(+0x1234)[0x…]`,
`prog(main+0x1a)[0x…]`), sanitizer frames (`#3 0x… in f (/usr/bin/prog+0x1234) (BuildId: …)`),
systemd-coredump frames with their `Module … with build-id …` lines, Symbolizer Markup
({{{module}}}, {{{mmap}}}, {{{bt}}}). Debug files are found by build-id in each debug directory
(ROOT/usr/lib/debug for each --root), by the policy's path layout and .gnu_debuglink, then through
DEBUGINFOD_URLS; indexes are cached under $XDG_CACHE_HOME/splitdebug/.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from ..errors import SplitDebugError, printable
from ..layout import PackageInfo
from ..policy import load_policy
from ..symbolize import Options, symbolize_core, symbolize_lines


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", action="append", type=Path, default=[], metavar="TREE",
                        help="a staged tree holding the shipped binaries and their debug root (repeatable)")
    parser.add_argument("--debug-file-directory", action="append", type=Path, default=[], metavar="DIR",
                        help="a debug directory searched by build-id and path, as gdb's (repeatable)")
    parser.add_argument("--policy", metavar="NAME|FILE", help="the trees' policy (default: debug root /usr/lib/debug)")
    parser.add_argument("--package", default="", help="package name, for path layouts that use {package}")
    parser.add_argument("--version", "--pkg-version", dest="pkg_version", default="", metavar="VERSION",
                        help="package version, for {version}")
    parser.add_argument("--release", default="", help="package release, for {release}")
    parser.add_argument("--arch", default="", help="architecture, for {arch}")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (the log with frames after it) or json (one object per frame)")
    parser.add_argument("--core", action="append", type=Path, default=[], metavar="FILE",
                        help="a core file: each thread's PC, its modules found by the core's NT_FILE note and "
                             "build-ids (repeatable; read before any INPUT)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the index cache")
    parser.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="log files (default: standard input)")


def _read(inputs: list[Path]) -> Iterator[str]:
    if not inputs:
        yield from sys.stdin
        return
    for path in inputs:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                yield from f
        except OSError as err:
            raise SplitDebugError(f"{path}: cannot read: {err.strerror}") from None


def _regular_stdin() -> bool:
    """Standard input from a file is a whole log, read ahead; a pipe may be live and is answered
    line by line."""
    try:
        return stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def execute(args: argparse.Namespace) -> int:
    for root in args.root:
        if not root.is_dir():
            raise SplitDebugError(f"{root}: not a directory")
    options = Options(roots=tuple(r.absolute() for r in args.root),
                      debug_dirs=tuple(d.absolute() for d in args.debug_file_directory),
                      policy=load_policy(args.policy) if args.policy else None,
                      package=PackageInfo(args.package, args.pkg_version, args.release, args.arch),
                      **({"cache_dir": None} if args.no_cache else {}))
    sys.stdin.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    out = sys.stdout
    warn = lambda m: print(f"splitdebug: warning: {printable(m)}", file=sys.stderr)  # noqa: E731
    for core in args.core:
        for line in symbolize_core(core, options, args.format, warn=warn):
            out.write(line + "\n")
    if args.core and not args.inputs:
        return 0  # cores alone: standard input is not read
    for line in symbolize_lines(_read(args.inputs), options, args.format, warn=warn,
                                read_ahead=bool(args.inputs) or _regular_stdin()):
        out.write(line + "\n")
        if not args.inputs:
            out.flush()  # a filter on a live pipe: each line as soon as it is known
    return 0
