"""The check report as text (one line per finding, then a summary), JSON (`"version": 1`, validated
against `schema.json` beside this module) and JUnit XML (one test case per checked file, one failure
per finding)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import __version__
from ..errors import printable
from .findings import ERROR, RULES, WARNING
from .run import CheckReport

JSON_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("schema.json")


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
