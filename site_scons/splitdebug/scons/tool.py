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
import time
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
from . import treepass as scons_treepass
from . import symbolize as scons_symbolize
from .env import PACKAGE_VARS, env_package, env_policy, env_tools, user_error
from ..errors import SplitDebugError
from ..layout import Link, PackageInfo, StageRoot
from ..policy import Policy

LINK_VARS = ("LINKCOM", "SHLINKCOM", "LDMODULECOM")
EMITTERS = ("PROGEMITTER", "SHLIBEMITTER", "LDMODULEEMITTER")
SPLIT_VARS = ["SPLITDEBUG_POLICY", "SPLITDEBUG_ENGINE", "OBJCOPY", "STRIP", "EU_STRIP", "EU_ELFCOMPRESS"] + PACKAGE_VARS


def exists(env: Any) -> Any:
    return env.Detect("objcopy") and (env.Detect("strip") or env.Detect("eu-strip"))


def generate(env: Any) -> None:
    for var, default in (("OBJCOPY", "objcopy"), ("STRIP", "strip"), ("EU_STRIP", "eu-strip"),
                         ("EU_ELFCOMPRESS", "eu-elfcompress")):
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
        SPLITDEBUGCOMSTR="Splitting debug info ($_SPLITDEBUG_POLICYNAME) of $TARGET",
        # SCons' naming ($XXXCOM, $XXXCOMSTR); SPLITDEBUG_STAGECOMSTR, the old name, still works.
        SPLITDEBUG_STAGECOMSTR="Staging ($_SPLITDEBUG_POLICYNAME) ${SOURCES[0]} -> ${TARGETS[0]}",
        SPLITDEBUGSTAGECOMSTR="$SPLITDEBUG_STAGECOMSTR",
        SPLITDEBUGSTAGECOM=SCons.Action.Action(stage_action, "$SPLITDEBUGSTAGECOMSTR",
                                               varlist=["SPLITDEBUG_POLICY", "DESTDIR"] + PACKAGE_VARS),
        # The policy's name, not what $SPLITDEBUG_POLICY says (a path to a YAML file, often).
        _SPLITDEBUG_POLICYNAME=lambda target, source, env, for_signature: env_policy(env).name,
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
        action=SCons.Action.Action("$SPLITDEBUGSTAGECOM", "$SPLITDEBUGSTAGECOMSTR"))
    env.AddMethod(install_stripped, "InstallStripped")
    _wrap_installers(env)
    env_policy(env)  # a bad policy fails here, at the user's Environment() line, not at a later builder
    scons_exports.generate(env)  # export lists (issue 3): visibility, version script, post-link check
    scons_distro.generate(env)  # issue 5: -ffile-prefix-map per policy, SplitDebugPackage
    scons_treepass.generate(env)  # the stage's dwz pass, so the stage is what the packages ship
    scons_symbolize.generate(env)  # issue 18: `scons symbolize LOG=…` through the stage


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
    for extra in (stripped, debug):  # Install(…, prog) gets all three nodes: they lead back here
        extra.attributes.splitdebug_of = linked
    # LIBS=lib (the whole list a builder returned) must put only the linked library on the link line.
    libs = env.get("LIBS")
    if SCons.Util.is_List(libs) and any(_split_output(n) for n in env.Flatten(libs)):
        env["LIBS"] = [n for n in env.Flatten(libs) if not _split_output(n)]
    policy = env_policy(env)
    env.Depends([stripped, debug], env.File(policy.source))
    return target + [stripped, debug], source


def _split_output(node: Any) -> bool:
    """The stripped binary or the debug file the emitter added to a link."""
    return hasattr(node, "attributes") and getattr(node.attributes, "splitdebug_of", None) is not None


def _linked_of(node: Any) -> Any:
    """The linked binary a node stands for (itself, or the link whose split output it is), or None."""
    if not hasattr(node, "attributes"):
        return None
    if getattr(node.attributes, "splitdebug", None) is not None:
        return node
    return getattr(node.attributes, "splitdebug_of", None)


def _wrap_installers(env: Any) -> None:
    """Install, InstallAs and InstallVersionedLib of what the tool's link builders returned stage the
    stripped binary and its debug file and links, as InstallStripped does; other files install as usual.
    Without this, Install(dir, Program(...)) pairs three nodes with one directory (an SCons traceback)
    or copies the unstripped .debug file into a bin directory."""
    for name in ("Install", "InstallVersionedLib"):
        original = getattr(env, name, None)
        if original is None or getattr(original, "splitdebug_wrapped", False):
            continue

        def install(env: Any, target: Any = None, source: Any = None, *args: Any,
                    _original: Any = original, _name: str = name, **kw: Any) -> list[Any]:
            ours, others = _partition(env, source)
            out: list[Any] = []
            if others:
                out += _original(target, others, *args, **kw)
            if ours:
                if target is None:
                    raise user_error(f"{_name}: give the directory to install into")
                for dest in env.Flatten([target]):
                    out += install_stripped(env, dest, ours, what=_name)
            return out

        install.splitdebug_wrapped = True  # type: ignore[attr-defined]
        env.AddMethod(install, name)
    original_as = getattr(env, "InstallAs", None)
    if original_as is not None and not getattr(original_as, "splitdebug_wrapped", False):
        def install_as(env: Any, target: Any = None, source: Any = None, *args: Any,
                       _original: Any = original_as, **kw: Any) -> list[Any]:
            targets = env.Flatten([target])
            sources = env.Flatten([source])
            # The split outputs beside a linked binary in the same list are staged with it.
            linked = {id(_linked_of(s)) for s in sources if _linked_of(s) is s}
            sources = [s for s in sources if not (_split_output(s) and id(_linked_of(s)) in linked)]
            if len(targets) != len(sources):
                raise user_error(
                    f"InstallAs: {len(targets)} target(s) for {len(sources)} source(s)")
            out: list[Any] = []
            for dest, src in zip(targets, sources, strict=True):
                node = _linked_of(env.File(src) if isinstance(src, str) else src)
                if node is None:
                    out += _original(dest, src, *args, **kw)
                else:
                    dest_node = env.File(dest) if isinstance(dest, str) else dest
                    _same_debuglink(env, node.name, dest_node.name)
                    out += install_stripped(env, dest_node.dir, [node], what="InstallAs", name=dest_node.name)
            return out

        install_as.splitdebug_wrapped = True  # type: ignore[attr-defined]
        env.AddMethod(install_as, "InstallAs")


def _same_debuglink(env: Any, linked: str, installed: str) -> None:
    """The debuglink is written at link time from the linked file's name: a policy that names debug
    files after the binary cannot stage it under another name without splitting it again."""
    if linked == installed:
        return
    policy, pkg = env_policy(env), env_package(env)
    try:
        same = layout.debuglink_name(policy, linked, "0" * 40, pkg) == layout.debuglink_name(policy, installed,
                                                                                              "0" * 40, pkg)
    except SplitDebugError as err:
        raise user_error(f"InstallAs: {err}") from None
    if not same:
        raise user_error(
            f"InstallAs: policy {policy.name!r} names the debug file after the binary, so {linked} cannot be "
            f"installed as {installed}; link it under that name (Program('{installed}', …))")


def _partition(env: Any, source: Any) -> tuple[list[Any], list[Any]]:
    """(linked binaries of the tool's builders, everything else) in `source`, each binary once."""
    ours: list[Any] = []
    others: list[Any] = []
    for item in env.Flatten([source]):
        node = env.File(item) if isinstance(item, str) else item
        linked = _linked_of(node)
        if linked is None:
            others.append(item)
        elif all(linked is not n for n in ours):
            ours.append(linked)
    return ours, others


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


def _record_path(env: Any, dest: Any, node: Any, name: str) -> Any:
    # One record per installed path, whatever the policy: a policy change restages over the same
    # record, which says what the old configuration placed (removed when no longer wanted).
    rel = os.path.relpath(os.path.join(dest.abspath, name), env.Dir("#").abspath)
    key = hashlib.sha1(rel.encode()).hexdigest()[:12]
    return node.dir.Dir(env.subst("$SPLITDEBUG_RECORDDIR")).File(f"{node.name}.{key}.json")


def _stage_root(env: Any) -> Path:
    destdir = env.subst("$DESTDIR") if "DESTDIR" in env else ""
    return Path(env.Dir(destdir).abspath) if destdir else Path("/")


def install_stripped(env: Any, dir: Any, targets: Any, *, what: str = "InstallStripped",
                     name: str | None = None) -> list[Any]:
    """Install stripped binaries into `dir` (under $DESTDIR) and their debug files where the policy says.

    Accepts what Program/SharedLibrary/LoadableModule return. Returns the nodes installed. `name`
    installs the (single) binary under another file name (InstallAs).
    """
    dest = env.Dir(dir)
    root = _stage_root(env)
    if not Path(dest.abspath).is_relative_to(root):
        raise user_error(f"{what}: {dest.abspath} is not under DESTDIR={root}: binaries linked "
                                     "with the splitdebug tool are staged with their debug files under $DESTDIR")
    policy = env_policy(env)
    out: list[Any] = []
    for node in env.Flatten([targets]):
        node = env.File(node) if isinstance(node, str) else node
        outputs = getattr(node.attributes, "splitdebug", None) if hasattr(node, "attributes") else None
        if outputs is None:
            if any(node in getattr(t.attributes, "splitdebug", ()) for t in env.Flatten([targets])
                   if hasattr(t, "attributes")):
                continue  # the stripped or debug node itself: staged with its binary
            raise user_error(
                f"InstallStripped: {node} was not linked with the splitdebug tool loaded")
        stripped, debug = outputs
        installed = name or node.name
        record = _record_path(env, dest, node, installed)
        tgts = [dest.File(installed), record]
        if not policy.uses_build_id_path:
            image = StageRoot(root).image_path(Path(dest.File(installed).abspath))
            dbg_image = layout.place(policy, image, None, env_package(env)).debug_file
            tgts.append(env.File(str(StageRoot(root).fs_path(policy, dbg_image))))
        # Every path this binary is staged at, so that rpm's duplicate numbering follows path order
        # (as rpm's does) whatever order -j stages them in.
        installed_at = getattr(node.attributes, "splitdebug_installed", None) or set()
        installed_at.add(StageRoot(root).image_path(Path(dest.File(installed).abspath)))
        node.attributes.splitdebug_installed = installed_at
        nodes = env.SplitDebugStage(tgts, [stripped, debug], SPLITDEBUG_STAGEROOT=str(root))
        nodes[0].attributes.splitdebug_libnode = node
        for n in nodes:
            n.attributes.splitdebug_staged = True
        env.Depends(nodes, env.File(policy.source))
        # Staging also writes build-id-named files that are not SCons targets: a cache hit would
        # restore the binary without them. It is a copy; the expensive split above is cached.
        env.NoCache(nodes)
        # Stagings into one root share its build-id links (rpm numbers a second binary of one build-id
        # by the first free suffix): one at a time, so -j gives what a serial build gives.
        env.SideEffect(env.Dir(env.subst("$SPLITDEBUG_RECORDDIR")).File("stage.lock"), nodes)
        # SCons deletes a target before rebuilding it; the old record says what to remove.
        env.Precious(record)
        if SCons.Script.GetOption("clean"):
            env.Clean(nodes[0], [str(p) for p in _recorded(Path(record.abspath), root)])
            sources_dir = scons_distro.sources_dir(env, root, policy)
            if sources_dir is not None:
                env.Clean(nodes[0], str(sources_dir))
        out.extend(n for n in nodes if n is not record)
        tree_pass = scons_treepass.tree_pass_for(env, root, record)
        if tree_pass is not None and all(n is not tree_pass for n in out):
            out.append(tree_pass)
    return out


def _recorded_sources(record: Path, root: Path) -> Path | None:
    """The sources directory a record's configuration staged into, if any."""
    try:
        rel = json.loads(record.read_text()).get("sources")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(rel, str) or ".." in Path(rel).parts or Path(rel).is_absolute():
        return None
    return root / rel


def _recorded(record: Path, root: Path) -> list[Path]:
    """What a record says was staged, under `root` (records hold paths relative to the stage root,
    so a moved checkout still finds what it staged)."""
    try:
        entries = [root / p for p in json.loads(record.read_text())["entries"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [p for p in entries if p.is_relative_to(root) and ".." not in Path(os.path.relpath(p, root)).parts]


def stage_action(target: list[Any], source: list[Any], env: Any) -> int:
    binary_fs, record = Path(target[0].abspath), Path(target[1].abspath)
    stripped, debug = Path(source[0].abspath), Path(source[1].abspath)
    root = StageRoot(Path(env.subst("$SPLITDEBUG_STAGEROOT")))
    policy = env_policy(env)
    pkg = env_package(env)
    try:
        info = elfread.read_elf(stripped)
        image = root.image_path(binary_fs)
        libnode = target[0].attributes.splitdebug_libnode
        rank = sorted(getattr(libnode.attributes, "splitdebug_installed", None) or {image}).index(image)
        dup = _dup_index(root, policy, image, info.build_id, pkg, rank)
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
        for link_node, _ in getattr(libnode.attributes, "shliblinks", None) or []:
            link_image = str(Path(image).parent / link_node.name)
            links.append(Link(link_image, binary_fs.name))
            dl = layout.symlink_debug_link(policy, link_image, image, pkg)
            if dl is not None:
                links.append(dl)
        for link in links:
            entries.append(stage.install_symlink(root, policy, link))
        # Sources are shared by binaries, so they are not in this binary's record (scons -c removes the dir);
        # the record keeps the directory, and a configuration that moves it removes the old one.
        scons_distro.stage_sources(env, root, policy, pkg, Path(libnode.abspath))
        sources_dir = scons_distro.sources_dir(env, root.root, policy)
        old_sources = _recorded_sources(record, root.root)
        if old_sources is not None and old_sources != sources_dir:
            stage.remove_tree_inside(root, old_sources)
        for stale in set(_recorded(record, root.root)) - set(entries):
            if stale.is_symlink() or stale.is_file():
                stale.unlink()
                # .build-id/xx/ and the like: no empty directory is left for the packages to ship
                stage.remove_empty_dirs(stale.parent, root.root)
        tmp = record.with_suffix(".tmp")
        record.parent.mkdir(parents=True, exist_ok=True)
        top = env.Dir("#").abspath
        tmp.write_text(json.dumps({"build_id": info.build_id,
                                   "entries": [os.path.relpath(e, root.root) for e in entries],
                                   # What the stage's dwz pass puts back before it runs, and a stamp so that
                                   # every staging reruns it (it rewrote what this staging just replaced).
                                   "split": [os.path.relpath(stripped, top), os.path.relpath(debug, top)],
                                   "staged_at": time.time_ns(),
                                   "sources": sources_dir and os.path.relpath(sources_dir, root.root)}, indent=1))
        os.replace(tmp, record)
    except (SplitDebugError, OSError) as err:
        raise _fail(target[0], str(err)) from None
    return 0


def _dup_index(root: StageRoot, policy: Policy, image: str, build_id: str | None, pkg: PackageInfo,
               rank: int = 0) -> int:
    """rpm numbers a second binary with the same build-id: the first free (or our own) suffix from
    `rank`, this path's place among the paths the same binary is staged at."""
    if policy.duplicate_build_id != "suffix" or not build_id or not policy.build_id_links:
        return 0
    for dup in range(rank, rank + 100):
        place = layout.place(policy, image, build_id, pkg, dup)
        first = place.links[0]
        fs = root.fs_path(policy, first.path)
        if not fs.is_symlink() or os.readlink(fs) == first.target:
            return dup
    return 0
