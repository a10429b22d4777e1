"""The stage's tree-level pass (dwz, .gdb_index), so that the stage holds what the packages ship.

Splits are per link; dwz works on a whole tree (a multifile shared by every debug file of the root). One
node per staging root, built after every staging into it: it puts back each binary's split outputs (a
restaged binary or a relink leaves the others already through dwz, and dwz must see them all alike),
then runs the policy's dwz pass over the root, as `splitdebug package` did on its own copy.

Its target is a small JSON record outside the stage: the multifiles written (to remove them when they
are no longer made) and a digest of every debug file after the pass, which is what the package step
depends on. The staged files are rewritten by this pass, so nothing downstream may depend on their
content signatures, which SCons took before it ran.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Script

from ..errors import SplitDebugError
from ..layout import StageRoot
from ..policy import Policy
from ..tree import dwz, stage
from .env import env_package, env_policy, env_tools


def generate(env: Any) -> None:
    env.SetDefault(SPLITDEBUGTREEPASSCOMSTR="Running dwz ($_SPLITDEBUG_POLICYNAME) over $SPLITDEBUG_STAGEROOT")
    env["BUILDERS"]["SplitDebugTreePass"] = SCons.Builder.Builder(
        action=SCons.Action.Action(tree_pass_action, "$SPLITDEBUGTREEPASSCOMSTR",
                                   varlist=["SPLITDEBUG_POLICY", "SPLITDEBUG_STAGEROOT"]))


def tree_pass_for(env: Any, root: Path, record: Any) -> Any | None:
    """The pass node of a staging root (made once), now also after `record`; None when the policy
    has no tree-level pass."""
    policy = env_policy(env)
    root_dir = env.Dir(str(root))
    node = getattr(root_dir.attributes, "splitdebug_tree_pass", None)
    if node is None:
        key = hashlib.sha1(str(root).encode()).hexdigest()[:12]
        target = env.Dir("#.splitdebug").File(f"treepass-{key}.json")
        has_pass = _has_pass(policy)
        if not has_pass and not os.path.exists(target.abspath):
            return None
        # Under a policy without a pass, the node of an earlier one removes the multifiles it made.
        comstr = {} if has_pass else {
            "SPLITDEBUGTREEPASSCOMSTR": "Removing earlier dwz multifiles from $SPLITDEBUG_STAGEROOT"}
        node = env.SplitDebugTreePass(target, [], SPLITDEBUG_STAGEROOT=str(root), **comstr)[0]
        node.attributes.splitdebug_is_tree_pass = True
        env.Depends(node, env.File(policy.source))
        env.NoCache(node)
        env.Precious(node)
        if SCons.Script.GetOption("clean"):
            env.Clean(node, [str(root / p.lstrip("/")) for p in _recorded_multifiles(Path(node.abspath))])
        root_dir.attributes.splitdebug_tree_pass = node
        # `scons stage` or Default("stage") asks for the root directory, and the pass is a node of its
        # own outside it: without this, such a build would stage files dwz never saw.
        env.Depends(root_dir, node)
    env.Depends(node, record)
    return node


def _has_pass(policy: Policy) -> bool:
    return policy.dwz != "none" or policy.gdb_index


def _recorded_multifiles(path: Path) -> list[str]:
    try:
        files = json.loads(path.read_text()).get("multifiles", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and ".." not in f.split("/")]


def tree_pass_action(target: list[Any], source: list[Any], env: Any) -> int:
    out = Path(target[0].abspath)
    root = StageRoot(Path(env.subst("$SPLITDEBUG_STAGEROOT")))
    policy, pkg, tools = env_policy(env), env_package(env), env_tools(env)
    top = Path(env.Dir("#").abspath)
    records = sorted(Path(d.abspath) for d in target[0].depends if str(d).endswith(".json"))
    try:
        for old in _recorded_multifiles(out):  # a multifile of an earlier pass: remade below, or stale
            path = root.fs_path(policy, old)
            if path.is_file() and not path.is_symlink():
                path.unlink()
                stage.remove_empty_dirs(path.parent, root.root)  # as a clean build under this policy
        has_pass = _has_pass(policy)  # else only the cleaning above, after a policy that had one
        for record in records if has_pass else []:
            _restore(record, root, top, policy.debug_file_mode)
        pairs = dwz.shipped_pairs(root, policy, pkg) if has_pass else []
        # The pass is the build's last step, alone: it takes scons -j's cores (dwz groups at once,
        # (de)compression in threads); the bytes do not depend on it.
        jobs = max(1, int(SCons.Script.GetOption("num_jobs") or 1))
        report = dwz.run_dwz(root, policy, pkg, pairs, tools, jobs=jobs, compressed_are_pending=True) \
            if pairs else None
    except (SplitDebugError, OSError) as err:
        raise SCons.Errors.BuildError(node=target[0], errstr=str(err), exitstatus=2) from None
    digests = {str(debug.relative_to(root.root)) if debug.is_relative_to(root.root) else str(debug):
               hashlib.sha256(debug.read_bytes()).hexdigest() for _, debug in sorted(pairs)}
    listing = {"version": 1, "multifiles": report.multifiles if report else [], "debug": digests}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return 0


def _restore(record: Path, root: StageRoot, top: Path, debug_mode: int) -> None:
    """Put a binary's split outputs back where its staging put them (before dwz changed them)."""
    try:
        data = json.loads(record.read_text())
        entries, split = data["entries"], data["split"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # a record of an older tool, or none: its staging reruns and writes one
    binary, debug = (root.root / entries[0], root.root / entries[1])
    stripped, debug_src = (top / split[0], top / split[1])
    stage.install_file(stripped, binary)
    stage.install_file(debug_src, debug, debug_mode)
