"""Command line: `splitdebug SUBCOMMAND …`; each subcommand is a module of this package with
`configure_parser(parser)` and `execute(args) -> exit code`, and no logic of its own.

Exit codes: 0 success, 1 the work found problems (a file not split, a check failed),
2 usage, policy or input errors. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType

from .. import __version__
from ..errors import SplitDebugError, printable

DESCRIPTION = """\
Split-debug packaging of ELF binaries, following a distribution policy (configs/*.yaml): strip what
ships, lay out the .debug files and build-id links, check the tree, build the packages.
"""
EPILOG = """\
exit codes: 0 done, 1 the work found problems (a file not split, a check failed),
2 usage, policy or input error, 3 internal error (SPLITDEBUG_TRACEBACK=1 shows it).
Run `splitdebug COMMAND --help` for a command's options."""

# name: (module, the first line of its docstring). Only the subcommand run is imported: a split
# does not pay for the checker's and the packagers' imports (tests/test_cli.py keeps these in step).
SUBCOMMANDS = {
    "split": ("split", "Split every unstripped ELF under a staging root, as dh_strip or find-debuginfo would."),
    "exports": ("exports",
                "Check, report and compare what shared libraries export (export lists, see README.md)."),
    "check": ("check",
              "Check a staged tree against its policy: what a CI job runs after `split` or an SCons stage."),
    "package": ("package",
                "Build the distribution's packages, with their debug packages, from a split tree (rpm or deb)."),
    "symbolize": ("symbolize",
                  "Turn a crash's addresses into functions and file:line, from the debug trees we lay out."),
    "find-debuginfo": ("find_debuginfo",
                       "A drop-in for rpm's find-debuginfo: `%global __find_debuginfo splitdebug find-debuginfo`."),
    "package-note": ("package_note",
                     "Print the linker flags that stamp the policy's package metadata note (.note.package)."),
    "policy": ("policy",
               "List, show and validate distribution policies (configs/*.yaml, or a YAML file of your own)."),
}


def subcommand(name: str) -> ModuleType:
    return importlib.import_module(f".{SUBCOMMANDS[name][0]}", __package__)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the subcommand it names is configured (and imported)."""
    parser = argparse.ArgumentParser(prog="splitdebug", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"splitdebug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    for name, (_, text) in SUBCOMMANDS.items():
        summary = text.replace("%", "%%")  # argparse %-formats help ("%global …")
        if argv is None or name == chosen:
            module = subcommand(name)
            module.configure_parser(sub.add_parser(name, help=summary, description=module.__doc__))
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return guarded("splitdebug", lambda: _dispatch(args))


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS and getattr(subcommand(argv[0]), "RAW_ARGV", False):
        raw: int = subcommand(argv[0]).execute_argv(argv[1:])  # its own grammar (find-debuginfo's)
        return raw
    args = build_parser(argv).parse_args(argv)
    code: int = subcommand(args.command).execute(args)
    return code


def guarded(prog: str, run: Callable[[], int]) -> int:
    """Run a command: its errors are one line on stderr and an exit code (2 bad input, 130 interrupted,
    3 internal error, with the traceback only under SPLITDEBUG_TRACEBACK), never a traceback."""
    try:
        return run()
    except SplitDebugError as err:
        print(f"{prog}: error: {printable(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `splitdebug … | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        if os.environ.get("SPLITDEBUG_TRACEBACK"):
            raise
        print(f"{prog}: internal error: {type(err).__name__}: {printable(str(err))} "
              "(set SPLITDEBUG_TRACEBACK=1 for details)", file=sys.stderr)
        return 3
