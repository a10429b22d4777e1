"""Check a staged tree against its policy: what a CI job runs after `split` or an SCons stage.

Every shipped ELF is stripped as the policy says, carries a build-id of its own, and leads (by
.gnu_debuglink, with a matching CRC32, and by the policy's build-id links) to a debug file that has
its build-id, DWARF and no code; nothing but debug files lies under the debug root; no link leaves
ROOT. Exit 0 when the tree satisfies the policy, 1 when a rule finds an error (warnings do not
fail), 2 for usage, policy or I/O errors. Formats: text (one line per finding, then a summary), json
(`"version": 1`, schema in check/schema.json), junit (one test case per checked file, one failure
per finding).

In an rpm scriptlet the RPM_* variables stand for the options not given (see `split`). With neither,
a policy that names debug files by version-release.arch (redhat) reads them back from the tree's own
debug file names, and says so on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..check import FORMATS, CheckReport, check_tree
from ..errors import SplitDebugError, printable
from ..layout import PackageInfo, StageRoot, infer_package
from ..policy import Policy, load_policy
from .split import add_policy_args, jobs_from, package_from, stage_from


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--format", choices=("text", "json", "junit", "sarif", "github"), default="text",
                        help="report format (default: text; sarif: SARIF 2.1.0; github: Actions annotations)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE",
                        help="write the report to FILE instead of standard output")
    parser.add_argument("--exports", type=Path, metavar="DIR",
                        help="check each shared library exports exactly DIR/<soname or file name>.exports")
    parser.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="worker processes reading files (default: $RPM_BUILD_NCPUS, else the CPU count)")
    parser.add_argument("root", type=Path, metavar="ROOT", nargs="?",
                        help="the staged tree (DESTDIR; default: $RPM_BUILD_ROOT)")


def execute(args: argparse.Namespace) -> int:
    jobs = jobs_from(args)
    policy = load_policy(args.policy)
    stage_root = stage_from(args)
    pkg = _package(args, policy, stage_root)
    report = check_tree(stage_root, policy, pkg, jobs=jobs, exports_dir=args.exports)
    render: Callable[[CheckReport], str] = FORMATS[args.format]
    write_report(render(report), args.output)
    return 1 if report.failed else 0


def _package(args: argparse.Namespace, policy: Policy, stage_root: StageRoot) -> PackageInfo:
    """The flags' and RPM_*'s fields; those the policy needs and neither gave, read from the tree."""
    pkg = package_from(args)
    wanted = {k for k in policy.needs() if not getattr(pkg, k)}
    if not wanted - {"arch"}:
        return pkg
    found = infer_package(stage_root, policy)
    if found is None:
        return pkg  # check_tree says which flags to give
    inferred, where = found
    pkg = PackageInfo(*(getattr(pkg, k) or getattr(inferred, k) for k in ("package", "version", "release", "arch")))
    used = " ".join(f"{k}={getattr(pkg, k)}" for k in ("package", "version", "release", "arch") if k in wanted)
    print(printable(f"splitdebug: check: {used}, read from the debug file {where}"), file=sys.stderr)
    return pkg


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


