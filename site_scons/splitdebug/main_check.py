"""Check a staged tree against its policy: what a CI job runs after `split` or an SCons stage.

Every shipped ELF is stripped as the policy says, carries a build-id of its own, and leads (by
.gnu_debuglink, with a matching CRC32, and by the policy's build-id links) to a debug file that has
its build-id, DWARF and no code; nothing but debug files lies under the debug root; no link leaves
ROOT. Exit 0 when the tree satisfies the policy, 1 when a rule finds an error (warnings do not
fail), 2 for usage, policy or I/O errors. Formats: text (one line per finding, then a summary), json
(`"version": 1`, schema in check_schema.json), junit (one test case per checked file, one failure
per finding).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from . import __version__
from .check import ERROR, RULES, WARNING, CheckReport, check_tree
from .errors import SplitDebugError, printable
from .main_split import add_policy_args, package_from, stage_from
from .policy import load_policy

JSON_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("check_schema.json")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_policy_args(parser)
    parser.add_argument("--format", choices=("text", "json", "junit"), default="text",
                        help="report format (default: text)")
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


def _summary(report: CheckReport) -> str:
    errors, warnings = report.count(ERROR), report.count(WARNING)
    verdict = "FAILED" if report.failed else "OK"
    return (f"splitdebug check: policy {report.policy.name}, {len(report.checked)} files checked, "
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}: {verdict}")


def render_text(report: CheckReport) -> str:
    lines = [printable(f"{f.severity} {f.rule} {f.name} {f.path}: {f.reason}") for f in report.findings]
    return "\n".join([*lines, printable(_summary(report))]) + "\n"


def as_json(report: CheckReport) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "tool": {"name": "splitdebug", "version": __version__},
        "policy": {"name": report.policy.name, "source": report.policy.source},
        "root": report.root,
        "debug_root": report.debug_dir,
        "result": "fail" if report.failed else "pass",
        "summary": {"checked": len(report.checked), "errors": report.count(ERROR),
                    "warnings": report.count(WARNING)},
        # File names that are not UTF-8 (or hold control characters) as \xNN: always valid JSON.
        "checked": [printable(p) for p in report.checked],
        "findings": [{"rule": f.rule, "name": f.name, "severity": f.severity, "path": printable(f.path),
                      "reason": printable(f.reason)} for f in report.findings],
        "rules": [{"id": r.id, "name": r.name, "severity": r.severity, "checks": r.checks} for r in RULES],
    }


def render_json(report: CheckReport) -> str:
    return json.dumps(as_json(report), indent=2) + "\n"


def _xml(text: str) -> str:
    """Text XML can carry: printable, undecodable bytes as \\xNN."""
    return printable(text)


def render_junit(report: CheckReport) -> str:
    by_path: dict[str, list[Any]] = {p: [] for p in report.checked}
    for f in report.findings:
        by_path.setdefault(f.path, []).append(f)
    suite_name = f"splitdebug check --policy {report.policy.name}"
    failures = len(report.findings)
    suites = ET.Element("testsuites", name="splitdebug check", tests=str(len(by_path)),
                        failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=_xml(suite_name), tests=str(len(by_path)),
                          failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(suite, "properties")
    for name, value in (("policy", report.policy.name), ("root", report.root), ("debug_root", report.debug_dir)):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    classname = f"splitdebug.check.{report.policy.name}"
    for path in sorted(by_path):
        case = ET.SubElement(suite, "testcase", classname=_xml(classname), name=_xml(path))
        for f in by_path[path]:
            fail = ET.SubElement(case, "failure", type=f"{f.rule} {f.name}",
                                 message=_xml(f"{f.severity}: {f.reason}"))
            fail.text = _xml(f"{f.severity} {f.rule} {f.name} {f.path}: {f.reason}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


FORMATS: Mapping[str, Callable[[CheckReport], str]] = MappingProxyType({
    "text": render_text, "json": render_json, "junit": render_junit,
})
