"""`splitdebug package`: the packages a distribution builds from a split tree (rpm or deb).

- `rpm`: `<name>`, `<name>-debuginfo` (the debug root) and `<name>-debugsource` (the sources
  directory) with rpmbuild, from a generated spec that turns off rpm's own debuginfo machinery
  (no find-debuginfo, no brp-strip, `%_build_id_links none`: the tree is already split and linked);
- `deb`: `<name>_<version>_<arch>.deb` and `<name>-dbgsym_<version>_<arch>.deb` with dpkg-deb
  and the control fields dh_gencontrol writes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import fs
from ..errors import SplitDebugError
from ..policy import Policy
from ..tree import rewrite
from . import deb, rpm
from .common import Built, PackageMeta, check_meta, prepare


def build_packages(root: Path, policy: Policy, meta: PackageMeta, output: Path, *,
                   run_dwz: bool = False, tools: rewrite.Tools | None = None) -> list[Built]:
    """Build the policy's packages of the split tree `root` into `output`; returns what was written."""
    check_meta(policy, meta)
    if not root.is_dir():
        raise SplitDebugError(f"{root}: not a directory")
    tools = tools or rewrite.Tools.from_environ()
    output.mkdir(parents=True, exist_ok=True)
    work_dir = tempfile.mkdtemp(prefix="splitdebug-package-")
    try:
        prepared = prepare(root, policy, meta, Path(work_dir), run_dwz=run_dwz, tools=tools)
        if policy.package_format == "rpm":
            return rpm.build(prepared, output)
        return deb.build(prepared, output)
    finally:
        fs.remove_tree(work_dir)  # the copy may be as deep as the tree: no recursion
