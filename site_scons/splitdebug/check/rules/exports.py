"""SD7xx: each shared library exports exactly its list (`check --exports DIR`)."""

from __future__ import annotations

import importlib
import posixpath
from pathlib import Path
from types import ModuleType

from ...errors import SplitDebugError
from ..context import Binary, Context
from ..findings import ERROR, Finding, WARNING, finding
from ..survey import Workers


def exports_module() -> ModuleType:
    """splitdebug.exports, written separately; imported only when --exports is given."""
    try:
        return importlib.import_module("...exports", __package__)
    except ImportError:
        raise SplitDebugError("--exports needs the splitdebug.exports module, which this installation "
                              "lacks") from None


def _exports_one(item: tuple[str, str]) -> list[str]:
    library, export_list = item
    try:
        return [str(p) for p in exports_module().check_library(Path(library), Path(export_list))]
    except SplitDebugError as err:
        return [str(err)]


def rule_exports(ctx: Context, exports_dir: Path, workers: Workers) -> list[Finding]:
    """SD701-SD702: each shared library exports exactly DIR/<soname or file name>.exports."""
    out: list[Finding] = []
    todo: list[tuple[Binary, Path]] = []
    for b in ctx.binaries:
        if b.info.kind != "shared_library":
            continue
        candidates = [b.info.soname] if b.info.soname else []
        candidates += [posixpath.basename(n) for n in b.names]
        found = next((exports_dir / f"{c}.exports" for c in candidates if (exports_dir / f"{c}.exports").is_file()),
                     None)
        if found is None:
            sev = ERROR if ctx.policy.require_export_list else WARNING
            out.append(finding("SD702", b.image, f"no {candidates[0]}.exports in {exports_dir}", sev))
        else:
            todo.append((b, found))
    results = workers.map(_exports_one, [(ctx.survey.model.entries[b.image].fs_path, str(lst)) for b, lst in todo])
    for (b, lst), problems in zip(todo, results, strict=True):
        out += [finding("SD701", b.image, f"{problem} (list {lst.name})") for problem in problems]
    return out
