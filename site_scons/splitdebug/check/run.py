"""`check_tree`: gather the tree once, pair binaries with their debug files, run every rule."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .. import layout
from ..errors import SplitDebugError
from ..layout import PackageInfo, StageRoot
from ..policy import Policy
from .context import Context, pair, shipped
from .findings import ERROR, Finding
from .rules.build_ids import rule_build_ids, rule_package_note
from .rules.debug_files import rule_debug_files
from .rules.debuglinks import rule_debuglink
from .rules.exports import exports_module, rule_exports
from .rules.links import rule_policy_links, rule_symlinks
from .rules.strays import rule_stray
from .rules.stripping import rule_section_links, rule_stripped
from .survey import Workers, gather


RULE_FUNCTIONS: tuple[Callable[[Context], Iterator[Finding]], ...] = (
    rule_stripped, rule_section_links, rule_build_ids, rule_package_note, rule_debuglink, rule_debug_files,
    rule_policy_links, rule_symlinks, rule_stray,
)

@dataclass(frozen=True)
class CheckReport:
    policy: Policy
    root: str
    debug_dir: str  # file system path of the debug root
    checked: tuple[str, ...]  # image paths examined
    findings: tuple[Finding, ...]
    # A binary's other names (hard links, identical copies): its findings are under the first one.
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    seconds: float = 0.0  # how long the check took

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def failed(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)


def check_tree(stage_root: StageRoot, policy: Policy, pkg: PackageInfo, *, jobs: int = 1,
               exports_dir: Path | None = None) -> CheckReport:
    """Check a staged tree against a policy. SplitDebugError only for bad input (package fields)."""
    started = time.monotonic()
    layout.check_package_fields(policy, pkg)
    if exports_dir is not None:
        exports_module()
        if not exports_dir.is_dir():
            raise SplitDebugError(f"--exports {exports_dir}: not a directory")
    with Workers(jobs) as workers:
        survey = gather(stage_root, policy, workers)
        ctx = Context(policy, pkg, survey)
        ctx.binaries = shipped(ctx)
        pair(ctx)
        found: list[Finding] = []
        for rule in RULE_FUNCTIONS:
            found.extend(rule(ctx))
        if exports_dir is not None:
            found.extend(rule_exports(ctx, exports_dir, workers))
    checked: set[str] = set()
    for key, facts in survey.facts.items():
        names = survey.names[key]
        if facts.magic in ("elf", "ar", "unreadable") or any(survey.model.in_debug_root(n) for n in names):
            checked.update(names)
    for image, entry in survey.model.entries.items():
        if entry.kind == "link" and (survey.model.in_debug_root(image) or image in ctx.policy_links):
            checked.add(image)
    unique = sorted(set(found), key=lambda f: (f.path, f.rule, f.reason))
    debug_dir = stage_root.fs_path(policy, policy.debug_root)
    aliases = {b.image: tuple(n for n in b.names if n != b.image) for b in ctx.binaries if len(b.names) > 1}
    return CheckReport(policy, str(stage_root.root), str(debug_dir), tuple(sorted(checked)), tuple(unique),
                       MappingProxyType(aliases), time.monotonic() - started)
