"""The check report as text (one line per finding, then a summary), JSON (`"version": 1`, validated
against `schema.json` beside this module), JUnit XML (one test case per checked file, failed by its
errors), SARIF 2.1.0 (code scanning) and GitHub Actions workflow commands."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .. import __version__
from ..errors import printable
from .findings import ERROR, RULES, WARNING, Finding
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


def _by_name(report: CheckReport) -> dict[str, list[Finding]]:
    """Findings per checked file; a binary's other names (hard links, copies) carry its findings too."""
    by_path: dict[str, list[Finding]] = {p: [] for p in report.checked}
    for f in report.findings:
        for name in (f.path, *report.aliases.get(f.path, ())):
            by_path.setdefault(name, []).append(f)
    return by_path


def render_junit(report: CheckReport) -> str:
    """One test case per checked file. It fails when an error names the file (one <failure> per error);
    warnings are the case's <system-out>, so a run that exits 0 has no failed test case."""
    by_path = _by_name(report)
    failed = sum(1 for fs in by_path.values() if any(f.severity == ERROR for f in fs))
    suite_name = f"splitdebug check --policy {report.policy.name}"
    seconds = f"{report.seconds:.3f}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(_epoch()))
    suites = ET.Element("testsuites", name="splitdebug check", tests=str(len(by_path)),
                        failures=str(failed), errors="0", time=seconds)
    suite = ET.SubElement(suites, "testsuite", name=_xml(suite_name), tests=str(len(by_path)),
                          failures=str(failed), errors="0", skipped="0", time=seconds, timestamp=stamp,
                          hostname=_xml(socket.gethostname()))
    props = ET.SubElement(suite, "properties")
    for name, value in (("policy", report.policy.name), ("root", report.root), ("debug_root", report.debug_dir)):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    classname = f"splitdebug.check.{report.policy.name}"
    for path in sorted(by_path):
        case = ET.SubElement(suite, "testcase", classname=_xml(classname), name=_xml(path), time="0")
        errors = [f for f in by_path[path] if f.severity == ERROR]
        warnings = [f for f in by_path[path] if f.severity != ERROR]
        for f in errors:
            fail = ET.SubElement(case, "failure", type=f"{f.rule} {f.name}", message=_xml(f.reason))
            fail.text = _xml(f"{f.severity} {f.rule} {f.name} {f.path}: {f.reason}")
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = _xml("\n".join(f"{f.severity} {f.rule} {f.name} {f.path}: {f.reason}" for f in warnings))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _epoch() -> float:
    """Now, or SOURCE_DATE_EPOCH (reproducible reports)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return float(value) if value.isdigit() else time.time()


SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def as_sarif(report: CheckReport) -> dict[str, Any]:
    """SARIF 2.1.0 (GitHub code scanning): one run, the rule table as the driver's rules, one result per
    finding, located relative to the checked root (`originalUriBaseIds.ROOT`)."""
    index = {r.id: i for i, r in enumerate(RULES)}
    level = {ERROR: "error", WARNING: "warning"}
    results = []
    for f in report.findings:
        locations = [{"physicalLocation": {"artifactLocation": {"uri": _uri(p), "uriBaseId": "ROOT"}}}
                     for p in (f.path, *report.aliases.get(f.path, ()))]
        results.append({"ruleId": f.rule, "ruleIndex": index[f.rule], "level": level.get(f.severity, "note"),
                        "message": {"text": printable(f.reason)}, "locations": locations})
    rules = [{"id": r.id, "name": r.name, "shortDescription": {"text": r.name.replace("-", " ")},
              "fullDescription": {"text": r.checks},
              "defaultConfiguration": {"level": level.get(r.severity, "note")}} for r in RULES]
    root = Path(report.root).absolute().as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA, "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": "splitdebug", "version": __version__, "rules": rules}},
            "originalUriBaseIds": {"ROOT": {"uri": root}},
            "properties": {"policy": report.policy.name, "checked": len(report.checked)},
            "results": results,
        }],
    }


def _uri(image: str) -> str:
    """An image path as a URI reference relative to ROOT (percent-encoded, so any byte is allowed)."""
    return urllib.parse.quote(image.lstrip("/").encode("utf-8", "surrogateescape"), safe="/")


def render_sarif(report: CheckReport) -> str:
    return json.dumps(as_sarif(report), indent=2) + "\n"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: CheckReport) -> str:
    """GitHub Actions workflow commands: `::error file=…,title=…::reason` per finding (file: the path
    on disk, as the job sees it), then the summary as a plain line."""
    kind = {ERROR: "error", WARNING: "warning"}
    lines = []
    for f in report.findings:
        fs_path = os.path.relpath(os.path.join(report.root, f.path.lstrip("/")))
        lines.append(f"::{kind.get(f.severity, 'notice')} file={_gh_property(printable(fs_path))},"
                     f"title={_gh_property(f'{f.rule} {f.name}')}::{_gh_data(printable(f'{f.path}: {f.reason}'))}")
    return "\n".join([*lines, printable(_summary(report))]) + "\n"


FORMATS: Mapping[str, Callable[[CheckReport], str]] = MappingProxyType({
    "text": render_text, "json": render_json, "junit": render_junit, "sarif": render_sarif,
    "github": render_github,
})
