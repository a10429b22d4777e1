"""Command line: `splitdebug SUBCOMMAND …`. Each subcommand module has configure_parser and execute.

Exit codes: 0 success, 1 the work found problems (a file not split, a check failed),
2 usage, policy or input errors. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__, main_split
from . import main_exports
from . import main_check
from . import main_package
from .errors import SplitDebugError, printable

SUBCOMMANDS = {"split": main_split}
SUBCOMMANDS["exports"] = main_exports  # issue 3: splitdebug exports check|report|compare
SUBCOMMANDS["check"] = main_check  # issue 4: splitdebug check
SUBCOMMANDS["package"] = main_package  # issue 5: splitdebug package (rpm, deb)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splitdebug", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--version", action="version", version=f"splitdebug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        module.configure_parser(sub.add_parser(name, help=(module.__doc__ or name).splitlines()[0],
                                               description=module.__doc__))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = SUBCOMMANDS[args.command].execute(args)
        return code
    except SplitDebugError as err:
        print(f"splitdebug: error: {printable(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("splitdebug: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `splitdebug … | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:
        if os.environ.get("SPLITDEBUG_TRACEBACK"):
            raise
        print(f"splitdebug: internal error: {type(err).__name__}: {printable(str(err))} "
              "(set SPLITDEBUG_TRACEBACK=1 for details)", file=sys.stderr)
        return 3
