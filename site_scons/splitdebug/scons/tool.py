"""SCons glue: build-id and -g flags, the split as part of each link, and staged installs.

The emitter makes the stripped binary and the .debug file extra targets of the link step (as
mslink does for .pdb), and $LINKCOM/$SHLINKCOM/$LDMODULECOM run $SPLITDEBUGCOM after the link. So
the linked binary is never rewritten, and -j, Clean, CacheDir and up-to-date checks see real files.

The staged debug file's name depends on the build-id, unknown until link time; the stage step
therefore keeps a record of what it placed (to remove what a relink made stale and to clean).
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
import SCons.Util

from ..elf import read as elfread
from .. import layout
from ..tree import rewrite
from ..tree import stage
from . import exports as scons_exports
from . import distro as scons_distro
from .env import PACKAGE_VARS, env_package, env_policy, env_tools
from ..errors import SplitDebugError
from ..layout import Link, PackageInfo, StageRoot
from ..policy import Policy

LINK_VARS = ("LINKCOM", "SHLINKCOM", "LDMODULECOM")
EMITTERS = ("PROGEMITTER", "SHLIBEMITTER", "LDMODULEEMITTER")
SPLIT_VARS = ["SPLITDEBUG_POLICY", "SPLITDEBUG_ENGINE", "OBJCOPY", "STRIP", "EU_STRIP"] + PACKAGE_VARS


def exists(env: Any) -> Any:
    return env.Detect("objcopy") and (env.Detect("strip") or env.Detect("eu-strip"))


def generate(env: Any) -> None:
    for var, default in (("OBJCOPY", "objcopy"), ("STRIP", "strip"), ("EU_STRIP", "eu-strip")):
        if var not in env:
            env[var] = env.Detect(default) or default
    env.SetDefault(
        SPLITDEBUG_POLICY="debian",
        # builtin: split in-process (objcopy/eu-strip only for what it declines); tools: always them.
        SPLITDEBUG_ENGINE=os.environ.get("SPLITDEBUG_ENGINE", "builtin"),
        SPLITDEBUG_DEBUGFLAGS=["-g"],
        SPLITDEBUG_BUILDIDFLAGS=["-Wl,--build-id=sha1"],
        SPLITDEBUG_STRIPPEDDIR="stripped",
        SPLITDEBUG_DEBUGSUFFIX=".debug",
        # Stage records live beside each linked binary (the build tree), in this subdirectory.
        SPLITDEBUG_RECORDDIR=".staged",
        SPLITDEBUGCOM=SCons.Action.Action(split_action, "$SPLITDEBUGCOMSTR", varlist=SPLIT_VARS),
        SPLITDEBUGCOMSTR="Splitting debug info ($SPLITDEBUG_POLICY) of $TARGET",
        SPLITDEBUG_STAGECOMSTR="Staging ($SPLITDEBUG_POLICY) ${SOURCES[0]} -> ${TARGETS[0]}",
        PACKAGE_NAME="", PACKAGE_VERSION="", PACKAGE_RELEASE="", PACKAGE_ARCH="",
    )
    env.AppendUnique(CCFLAGS=["$SPLITDEBUG_DEBUGFLAGS"], LINKFLAGS=["$SPLITDEBUG_BUILDIDFLAGS"])
    # Run once per environment: wrap each link command with the split that follows it.
    for var in LINK_VARS:
        saved = f"SPLITDEBUG_ORIG_{var}"
        if saved in env or var not in env:
            continue
        env[saved] = env[var]
        env[var] = [SCons.Action.Action(f"${saved}", f"${var}STR"),
                    SCons.Action.Action("$SPLITDEBUGCOM", "$SPLITDEBUGCOMSTR")]
    for var in EMITTERS:
        current = env.get(var)
        emitters = list(current) if SCons.Util.is_List(current) else ([current] if current else [])
        if split_emitter not in emitters:
            env[var] = emitters + [split_emitter]
    # SCons's versioned-library name helpers read `target.name` and assume the link has one target;
    # with ours added they must keep looking at the linked file only.
    for key in list(env.Dictionary()):
        if key.startswith(("_get_shlib", "_get_ldmodule", "_SHLIBSO", "_LDMODULESO")) and callable(env[key]) \
                and not getattr(env[key], "splitdebug_first_target", False):
            env[key] = _first_target_only(env[key])
    env["BUILDERS"]["SplitDebugStage"] = SCons.Builder.Builder(
        action=SCons.Action.Action(stage_action, "$SPLITDEBUG_STAGECOMSTR",
                                   varlist=["SPLITDEBUG_POLICY", "DESTDIR"] + PACKAGE_VARS))
    env.AddMethod(install_stripped, "InstallStripped")
    scons_exports.generate(env)  # export lists (issue 3): visibility, version script, post-link check
    scons_distro.generate(env)  # issue 5: -ffile-prefix-map per policy, SplitDebugPackage


def _first_target_only(func: Any) -> Any:
    def wrapped(target: Any, source: Any, env: Any, for_signature: bool) -> Any:
        if SCons.Util.is_List(target) and len(target) > 1:
            target = target[0]
        return func(target, source, env, for_signature)
    wrapped.splitdebug_first_target = True  # type: ignore[attr-defined]
    return wrapped


def split_emitter(target: list[Any], source: list[Any], env: Any) -> tuple[list[Any], list[Any]]:
    """Add the stripped binary and the .debug file as targets of the link."""
    linked = target[0]
    stripped = linked.dir.Dir(env.subst("$SPLITDEBUG_STRIPPEDDIR")).File(linked.name)
    debug = linked.dir.File(linked.name + env.subst("$SPLITDEBUG_DEBUGSUFFIX"))
    linked.attributes.splitdebug = (stripped, debug)
    policy = env_policy(env)
    env.Depends([stripped, debug], env.File(policy.source))
    return target + [stripped, debug], source


def _fail(node: Any, message: str) -> SCons.Errors.BuildError:
    return SCons.Errors.BuildError(node=node, errstr=message, exitstatus=2)


def split_action(target: list[Any], source: list[Any], env: Any) -> int:
    linked, stripped, debug = (Path(str(t.abspath)) for t in target[:3])
    policy = env_policy(env)
    pkg = env_package(env)
    tools = env_tools(env)
    try:
        layout.check_package_fields(policy, pkg)
        info = elfread.read_elf(linked)
        kind = info.kind
        if kind is None:
            raise SplitDebugError(f"{linked}: {info.elf_type} is not an executable or shared library")
        if info.build_id is None:
            raise SplitDebugError(f"{linked}: linked without a build-id; keep -Wl,--build-id in "
                                  "$SPLITDEBUG_BUILDIDFLAGS (the linker must support it)")
        link_name = layout.debuglink_name(policy, linked.name, info.build_id, pkg)
        rewrite.split_binary(linked, stripped, debug, policy=policy, kind=kind,
                             debuglink=link_name, tools=tools)
    except SplitDebugError as err:
        raise _fail(target[0], str(err)) from None
    return 0


def _record_path(env: Any, dest: Any, node: Any) -> Any:
    name = node.name
    key = hashlib.sha1(f"{env.subst('$SPLITDEBUG_POLICY')}\0{dest.abspath}/{name}".encode()).hexdigest()[:12]
    return node.dir.Dir(env.subst("$SPLITDEBUG_RECORDDIR")).File(f"{name}.{key}.json")


def _stage_root(env: Any) -> Path:
    destdir = env.subst("$DESTDIR") if "DESTDIR" in env else ""
    return Path(env.Dir(destdir).abspath) if destdir else Path("/")


def install_stripped(env: Any, dir: Any, targets: Any) -> list[Any]:
    """Install stripped binaries into `dir` (under $DESTDIR) and their debug files where the policy says.

    Accepts what Program/SharedLibrary/LoadableModule return. Returns the nodes installed.
    """
    dest = env.Dir(dir)
    root = _stage_root(env)
    if not Path(dest.abspath).is_relative_to(root):
        raise SCons.Errors.UserError(f"InstallStripped: {dest.abspath} is not under DESTDIR={root}")
    policy = env_policy(env)
    out: list[Any] = []
    for node in env.Flatten([targets]):
        node = env.File(node) if isinstance(node, str) else node
        outputs = getattr(node.attributes, "splitdebug", None) if hasattr(node, "attributes") else None
        if outputs is None:
            if any(node in getattr(t.attributes, "splitdebug", ()) for t in env.Flatten([targets])
                   if hasattr(t, "attributes")):
                continue  # the stripped or debug node itself: staged with its binary
            raise SCons.Errors.UserError(
                f"InstallStripped: {node} was not linked with the splitdebug tool loaded")
        stripped, debug = outputs
        record = _record_path(env, dest, node)
        tgts = [dest.File(node.name), record]
        if not policy.uses_build_id_path:
            image = StageRoot(root).image_path(Path(dest.File(node.name).abspath))
            dbg_image = layout.place(policy, image, None, env_package(env)).debug_file
            tgts.append(env.File(str(StageRoot(root).fs_path(policy, dbg_image))))
        nodes = env.SplitDebugStage(tgts, [stripped, debug], SPLITDEBUG_STAGEROOT=str(root))
        nodes[0].attributes.splitdebug_libnode = node
        env.Depends(nodes, env.File(policy.source))
        # Staging also writes build-id-named files that are not SCons targets: a cache hit would
        # restore the binary without them. It is a copy; the expensive split above is cached.
        env.NoCache(nodes)
        # SCons deletes a target before rebuilding it; the old record says what to remove.
        env.Precious(record)
        if SCons.Script.GetOption("clean"):
            env.Clean(nodes[0], [str(p) for p in _recorded(Path(record.abspath))])
            sources_dir = scons_distro.sources_dir(env, root, policy)
            if sources_dir is not None:
                env.Clean(nodes[0], str(sources_dir))
        out.extend(n for n in nodes if n is not record)
    return out


def _recorded(record: Path) -> list[Path]:
    try:
        return [Path(p) for p in json.loads(record.read_text())["entries"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def stage_action(target: list[Any], source: list[Any], env: Any) -> int:
    binary_fs, record = Path(target[0].abspath), Path(target[1].abspath)
    stripped, debug = Path(source[0].abspath), Path(source[1].abspath)
    root = StageRoot(Path(env.subst("$SPLITDEBUG_STAGEROOT")))
    policy = env_policy(env)
    pkg = env_package(env)
    try:
        info = elfread.read_elf(stripped)
        image = root.image_path(binary_fs)
        dup = _dup_index(root, policy, image, info.build_id, pkg)
        place = layout.place(policy, image, info.build_id, pkg, dup)
        carried = elfread.read_debuglink(stripped, info)
        if carried is None or carried[0] != place.debuglink:
            raise SplitDebugError(f"{image}: the binary's debuglink {carried and carried[0]!r} does not "
                                  f"match the policy's {place.debuglink!r} (installed under another name?)")
        entries: list[Path] = []
        stage.make_dir_inside(root, binary_fs.parent)
        stage.install_file(stripped, binary_fs)
        entries.append(binary_fs)
        debug_fs = root.fs_path(policy, place.debug_file)
        stage.make_dir_inside(root, debug_fs.parent)
        stage.install_file(debug, debug_fs, policy.debug_file_mode)
        entries.append(debug_fs)
        links = list(place.links)
        libnode = target[0].attributes.splitdebug_libnode
        for link_node, _ in getattr(libnode.attributes, "shliblinks", None) or []:
            link_image = str(Path(image).parent / link_node.name)
            links.append(Link(link_image, binary_fs.name))
            dl = layout.symlink_debug_link(policy, link_image, image, pkg)
            if dl is not None:
                links.append(dl)
        for link in links:
            entries.append(stage.install_symlink(root, policy, link))
        # Sources are shared by binaries, so they are not in this binary's record (scons -c removes the dir).
        scons_distro.stage_sources(env, root, policy, pkg, Path(libnode.abspath))
        for stale in set(_recorded(record)) - set(entries):
            if stale.is_symlink() or stale.is_file():
                stale.unlink()
        tmp = record.with_suffix(".tmp")
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"build_id": info.build_id, "entries": [str(e) for e in entries]}, indent=1))
        os.replace(tmp, record)
    except (SplitDebugError, OSError) as err:
        raise _fail(target[0], str(err)) from None
    return 0


def _dup_index(root: StageRoot, policy: Policy, image: str, build_id: str | None, pkg: PackageInfo) -> int:
    """rpm numbers a second binary with the same build-id: find the first free (or our own) suffix."""
    if policy.duplicate_build_id != "suffix" or not build_id or not policy.build_id_links:
        return 0
    for dup in range(100):
        place = layout.place(policy, image, build_id, pkg, dup)
        first = place.links[0]
        fs = root.fs_path(policy, first.path)
        if not fs.is_symlink() or os.readlink(fs) == first.target:
            return dup
    return 0
