"""SCons glue for distribution parity: source paths at compile time, sources in the stage, packages.

- `$_SPLITDEBUG_SOURCEFLAGS` in `$CCFLAGS`: `-ffile-prefix-map=<$SPLITDEBUG_SOURCE_ROOT>=<source_dir>`
  for policies with a `source_dir` (Red Hat's /usr/src/debug/<n>-<v>-<r>.<a>, Debian's `.` as
  dpkg-buildflags does). It is computed when a command line is built, so the policy and the
  PACKAGE_* values count whenever they are set, and a change of either recompiles.
- staging a binary (`InstallStripped`) copies the sources its DWARF names into
  `$DESTDIR/<source_dir>` when the policy ships them (`stage_sources`, called by the stage step).
- `$SPLITDEBUG_PACKAGENOTEFLAGS` in `$LINKFLAGS`: `-Xlinker --package-metadata=<JSON>` for policies with a
  `package_note` (the ELF package metadata note, from the PACKAGE_* values and /etc/os-release), where
  the linker has the option (binutils >= 2.39); computed like the source flags, so a new version relinks.
  An older ld (or `SPLITDEBUG_PACKAGENOTE_METHOD="script"`) gets `-Wl,-dT,<script>` instead: the note as a
  linker script, `#.splitdebug/package-note-<digest>.ld`, a real target every link depends on
  (`note_script_emitter`), named by its content so a new note is a new file and relinks.
- `env.SplitDebugPackage(dir, staged)` builds the policy's packages of `$DESTDIR` into `dir`, running
  the tree-level dwz pass on its private copy; its target is `dir/packages.json`, which lists them.
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
import SCons.Subst
import SCons.Util

from .. import ldflags
from ..tree import sources
from .env import env_package, env_policy, env_tools, user_error
from ..errors import SplitDebugError
from .. import layout
from ..layout import PackageInfo, StageRoot
from ..package.build import build_packages
from ..package.common import PackageMeta
from ..policy import Policy

PACKAGE_META_VARS = ["PACKAGE_SUMMARY", "PACKAGE_DESCRIPTION", "PACKAGE_MAINTAINER", "PACKAGE_LICENSE",
                     "SOURCE_DATE_EPOCH"]


def generate(env: Any) -> None:
    env.SetDefault(
        SPLITDEBUG_SOURCE_ROOT="#",
        # SCons' naming ($XXXCOM, $XXXCOMSTR); SPLITDEBUG_PACKAGECOMSTR, the old name, still works.
        SPLITDEBUG_PACKAGECOMSTR="Packaging ($_SPLITDEBUG_POLICYNAME) $_SPLITDEBUG_STAGEDIR -> ${TARGET.dir}",
        SPLITDEBUGPACKAGECOMSTR="$SPLITDEBUG_PACKAGECOMSTR",
        SPLITDEBUGPACKAGECOM=SCons.Action.Action(
            package_action, "$SPLITDEBUGPACKAGECOMSTR",
            varlist=["SPLITDEBUG_POLICY", "SPLITDEBUG_STAGEROOT", "SPLITDEBUG_PACKAGE_DWZ", "PACKAGE_NAME",
                     "PACKAGE_VERSION", "PACKAGE_RELEASE", "PACKAGE_ARCH", *PACKAGE_META_VARS]),
        _SPLITDEBUG_STAGEDIR=_stage_dir_shown,
        PACKAGE_SUMMARY="", PACKAGE_DESCRIPTION="", PACKAGE_MAINTAINER="", PACKAGE_LICENSE="",
        SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", ""),
    )
    env["_splitdebug_source_flags"] = source_flags
    env["_SPLITDEBUG_SOURCEFLAGS"] = "${_splitdebug_source_flags(__env__)}"
    env.AppendUnique(CCFLAGS=["$_SPLITDEBUG_SOURCEFLAGS"])
    env["_splitdebug_package_note_flags"] = package_note_flags
    env.SetDefault(SPLITDEBUG_PACKAGENOTEFLAGS="${_splitdebug_package_note_flags(__env__)}",
                   SPLITDEBUG_OS_RELEASE="/etc/os-release", SPLITDEBUG_PACKAGENOTE_METHOD="auto")
    env.AppendUnique(LINKFLAGS=["$SPLITDEBUG_PACKAGENOTEFLAGS"])
    for var in ("PROGEMITTER", "SHLIBEMITTER", "LDMODULEEMITTER"):  # as tool.generate adds its own
        current = env.get(var)
        emitters = list(current) if SCons.Util.is_List(current) else ([current] if current else [])
        if note_script_emitter not in emitters:
            env[var] = emitters + [note_script_emitter]
    env["BUILDERS"]["SplitDebugPackageBuilder"] = SCons.Builder.Builder(
        action=SCons.Action.Action("$SPLITDEBUGPACKAGECOM", "$SPLITDEBUGPACKAGECOMSTR"))
    env.AddMethod(split_debug_package, "SplitDebugPackage")


def source_flags(env: Any) -> list[str]:
    """The -ffile-prefix-map flag the policy asks for ([] when it leaves DWARF paths alone)."""
    policy = env_policy(env)
    if policy.source_dir is None:
        return []
    try:
        smap = sources.source_map(policy, env_package(env), env.Dir("$SPLITDEBUG_SOURCE_ROOT").abspath)
    except SplitDebugError as err:
        raise user_error(str(err)) from None
    return [smap.prefix_map_flag()] if smap is not None else []


def _note(env: Any) -> str | None:
    """The policy's package metadata note for this environment's package, or None."""
    policy = env_policy(env)
    if not policy.package_note:
        return None
    try:
        release = Path(env.subst("$SPLITDEBUG_OS_RELEASE")).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        release = ""  # no os-release: its fields are empty strings
    return layout.package_note(policy, env_package(env), layout.parse_os_release(release))


def _note_by_script(env: Any) -> bool:
    method = env.subst("$SPLITDEBUG_PACKAGENOTE_METHOD")
    if method not in ("auto", "option", "script"):
        raise user_error(f"SPLITDEBUG_PACKAGENOTE_METHOD={method!r}: give auto, option or script")
    return method == "script" or (method == "auto" and not ldflags.has_package_metadata(env.subst("$LINK")))


def _script_node(env: Any, note: str) -> Any:
    """The linker script holding `note`: one target per distinct note, built once."""
    digest = hashlib.sha256(note.encode()).hexdigest()[:16]
    node = env.File(f"#.splitdebug/package-note-{digest}.ld")
    if not node.has_builder():
        readonly = ldflags.has_readonly(env.subst("$LINK"))
        text = ldflags.linker_script(note, readonly)

        def write(target: Any, source: Any, env: Any) -> None:
            ldflags.write_script(str(target[0]), text)
        env.Command(node, [], SCons.Action.Action(write, "Package note script $TARGET"))
    return node


def note_script_emitter(target: list[Any], source: list[Any], env: Any) -> tuple[list[Any], list[Any]]:
    """Where the note goes in by linker script, every link depends on the script (a real target)."""
    note = _note(env)
    if note is not None and _note_by_script(env):
        env.Depends(target[0], _script_node(env, note))
    return target, source


def package_note_flags(env: Any) -> list[Any]:
    """The linker flags that stamp the policy's package metadata note ([] for none)."""
    note = _note(env)
    if note is None:
        return []
    if _note_by_script(env):
        return ldflags.script_flags(_script_node(env, note).abspath)
    # -Xlinker, not -Wl: the JSON has commas. Literal: SCons quotes it for the shell, untouched.
    flag, option = ldflags.option_flags(note)
    return [flag, SCons.Subst.Literal(option)]


def _stage_dir_shown(target: Any, source: Any, env: Any, for_signature: bool) -> str:
    """$SPLITDEBUG_STAGEROOT as the build log shows paths: from the top directory when under it."""
    root = str(env.subst("$SPLITDEBUG_STAGEROOT"))
    top = str(env.Dir("#").abspath)
    return os.path.relpath(root, top) if root and Path(root).is_relative_to(top) else root


def stage_sources(env: Any, root: StageRoot, policy: Policy, pkg: PackageInfo, linked: Path) -> list[str]:
    """Copy the sources `linked`'s DWARF names (already mapped at compile time) into the stage."""
    dest = sources.source_dir(policy, pkg)
    if dest is None or not policy.ships_sources:
        return []
    tool = sources.require_debugedit()
    names = sources.list_sources(linked, dest, tool)
    written, _missing = sources.copy_sources(names, Path(env.Dir("$SPLITDEBUG_SOURCE_ROOT").abspath), root,
                                             policy, dest)
    return written


def sources_dir(env: Any, root: Path, policy: Policy) -> Path | None:
    """The stage's sources directory (for `scons -c`), or None."""
    if not policy.ships_sources:
        return None
    try:
        dest = sources.source_dir(policy, env_package(env))
    except SplitDebugError:
        return None
    return StageRoot(root).fs_path(policy, dest) if dest else None


def split_debug_package(env: Any, outdir: Any, staged: Any) -> list[Any]:
    """Build the policy's packages of $DESTDIR into `outdir` once `staged` (InstallStripped's nodes)
    are there. Returns the node of `outdir/packages.json`."""
    policy = env_policy(env)
    if policy.package_format == "none":
        raise user_error(f"SplitDebugPackage: policy {policy.name!r} has no package format")
    destdir = env.subst("$DESTDIR") if "DESTDIR" in env else ""
    if not destdir:
        raise user_error("SplitDebugPackage: set DESTDIR (the staging root to package)")
    out = env.Dir(outdir)
    staged = env.Flatten([staged])
    passes = [n for n in staged if getattr(getattr(n, "attributes", None), "splitdebug_is_tree_pass", False)]
    if passes:
        # The stage has had its dwz pass (its record digests the debug files after it): depend on that,
        # not on the staged files the pass rewrote, and do not run dwz again.
        staged = passes + [n for n in staged if not getattr(getattr(n, "attributes", None), "splitdebug_staged", False)
                           and n not in passes]
    nodes = env.SplitDebugPackageBuilder(out.File("packages.json"), staged,
                                         SPLITDEBUG_STAGEROOT=env.Dir(destdir).abspath,
                                         SPLITDEBUG_PACKAGE_DWZ=not passes)
    env.Depends(nodes, env.File(policy.source))
    env.NoCache(nodes)  # the packages are not targets of their own: never restore the list alone
    env.Precious(nodes)  # its old list says which packages a rebuild replaces
    env.Clean(nodes, out)
    return list(nodes)


def package_action(target: list[Any], source: list[Any], env: Any) -> int:
    manifest = Path(target[0].abspath)
    policy = env_policy(env)
    pkg = env_package(env)
    epoch = env.subst("$SOURCE_DATE_EPOCH")
    meta = PackageMeta(
        name=pkg.package, version=pkg.version, release=pkg.release, arch=pkg.arch,
        summary=env.subst("$PACKAGE_SUMMARY"), description=env.subst("$PACKAGE_DESCRIPTION"),
        maintainer=env.subst("$PACKAGE_MAINTAINER") or PackageMeta.maintainer,
        license=env.subst("$PACKAGE_LICENSE") or PackageMeta.license,
        source_date_epoch=int(epoch) if epoch.isdigit() else None)
    try:
        for old in _listed(manifest):
            old.unlink(missing_ok=True)  # a new version must not leave the old packages beside it
        built = build_packages(Path(env.subst("$SPLITDEBUG_STAGEROOT")), policy, meta, manifest.parent,
                               run_dwz=bool(env.get("SPLITDEBUG_PACKAGE_DWZ", True)), tools=env_tools(env))
    except SplitDebugError as err:
        raise SCons.Errors.BuildError(node=target[0], errstr=str(err), exitstatus=2) from None
    listing = {"version": 1, "policy": policy.name, "packages": [
        {"path": os.path.relpath(b.path, manifest.parent), "role": b.role,
         "sha256": hashlib.sha256(b.path.read_bytes()).hexdigest()} for b in built]}
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(json.dumps(listing, indent=1) + "\n")
    os.replace(tmp, manifest)
    return 0


def _listed(manifest: Path) -> list[Path]:
    try:
        return [manifest.parent / p["path"] for p in json.loads(manifest.read_text())["packages"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
