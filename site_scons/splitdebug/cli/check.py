"""Check a staged tree against its policy: what a CI job runs after `split` or an SCons stage.

Every shipped ELF is stripped as the policy says, carries a build-id of its own, and leads (by
.gnu_debuglink, with a matching CRC32, and by the policy's build-id links) to a debug file that has
its build-id, DWARF and no code; nothing but debug files lies under the debug root; no link leaves
ROOT. Exit 0 when the tree satisfies the policy, 1 when a rule finds an error (warnings do not
fail), 2 for usage, policy or I/O errors. Formats: text (one line per finding, then a summary), json
(`"version": 1`, schema in check/schema.json), junit (one test case per checked file, one failure
per finding).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..check import FORMATS, CheckReport, check_tree
from ..errors import SplitDebugError
from .split import add_policy_args, package_from, stage_from
from ..policy import load_policy



def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--format", choices=("text", "json", "junit", "sarif", "github"), default="text",
                        help="report format (default: text; sarif: SARIF 2.1.0; github: Actions annotations)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the report to FILE instead of standard output")
    parser.add_argument("--exports", type=Path, metavar="DIR",
                        help="check each shared library exports exactly DIR/<soname or file name>.exports")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="worker processes reading files (default: the CPU count)")
    parser.add_argument("root", type=Path, metavar="ROOT", help="the staged tree (DESTDIR)")


def execute(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise SplitDebugError(f"--jobs {args.jobs}: give at least 1")
    policy = load_policy(args.policy)
    report = check_tree(stage_from(args), policy, package_from(args), jobs=args.jobs,
                        exports_dir=args.exports)
    render: Callable[[CheckReport], str] = FORMATS[args.format]
    write_report(render(report), args.output)
    return 1 if report.failed else 0


def write_report(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:  # whole or not at all: a CI step must never read half a report
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        os.replace(tmp, output)
    except OSError as err:
        raise SplitDebugError(f"{output}: cannot write the report: {err.strerror}") from None


