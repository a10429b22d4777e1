"""SCons glue for export lists: hidden visibility, the version script, and the post-link check.

    env.SharedLibrary('greet', srcs, EXPORT_LIST='greet.exports')

- C and C++ compile with $SPLITDEBUG_VISIBILITYFLAGS (-fvisibility=hidden), C++ also with
  $SPLITDEBUG_CXXVISIBILITYFLAGS (-fvisibility-inlines-hidden).
- A library with $EXPORT_LIST gets `libNAME.map` beside it (libgreet.so.1.0.0 -> libgreet.map), a
  real target built from the list, and links with -Wl,--version-script=libNAME.map
  $SPLITDEBUG_EXPORTLINKFLAGS; the link depends on the map.
- $SHLINKCOM/$LDMODULECOM run $EXPORTCHECKCOM between the link and $SPLITDEBUGCOM: it compares
  .dynsym with the list and fails the build on a difference (warns about hidden typeinfo), and checks
  the other way too: every symbol the library's own objects declare with default visibility must be
  listed ($EXPORT_CHECK_DECLARED=False turns that off for one library).
- Without $EXPORT_LIST, $SPLITDEBUG_REQUIRE_EXPORT_LIST (or the policy's require_export_list when
  that is unset) makes the library a user error.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import SCons.Action
import SCons.Builder
import SCons.Errors
import SCons.Util

from .. import exports
from ..errors import SplitDebugError
from .env import user_error
from ..policy import load_policy

CHECKED_COMS = ("SHLINKCOM", "LDMODULECOM")
CHECK_VARS = ["EXPORT_LIST", "CXXFILT", "NM", "EXPORT_CHECK_DECLARED"]
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class ExportNodes:
    """What the emitter attaches to a linked library: its list and the version script made from it."""

    export_list: Any
    version_script: Any


def generate(env: Any) -> None:
    env.SetDefault(
        SPLITDEBUG_VISIBILITYFLAGS=["-fvisibility=hidden"],
        SPLITDEBUG_CXXVISIBILITYFLAGS=["-fvisibility-inlines-hidden"],
        SPLITDEBUG_EXPORTLINKFLAGS=["-Wl,--no-undefined-version", "-Wl,--exclude-libs,ALL"],
        SPLITDEBUG_VERSIONSCRIPTSUFFIX=".map",
        CXXFILT=env.Detect("c++filt") or "c++filt",
        NM=env.Detect("nm") or "nm",
        EXPORTMAPCOMSTR="Generating version script $TARGET from $SOURCE",
        EXPORTCHECKCOM=SCons.Action.Action(export_check_action, "$EXPORTCHECKCOMSTR", varlist=CHECK_VARS),
        EXPORTCHECKCOMSTR="$_SPLITDEBUG_EXPORTCHECKSTR",
        _SPLITDEBUG_EXPORTCHECKSTR=_check_message,
        _SPLITDEBUG_EXPORTFLAGS=_export_link_flags,
    )
    env.AppendUnique(CCFLAGS=["$SPLITDEBUG_VISIBILITYFLAGS"], CXXFLAGS=["$SPLITDEBUG_CXXVISIBILITYFLAGS"],
                     LINKFLAGS=["$_SPLITDEBUG_EXPORTFLAGS"])
    # scons_tool made each link command [link, $SPLITDEBUGCOM]: check between the two, once.
    for var in CHECKED_COMS:
        actions = env.get(var)
        if not SCons.Util.is_List(actions) or any(getattr(a, "var", None) == "EXPORTCHECKCOM" for a in actions):
            continue
        check = SCons.Action.Action("$EXPORTCHECKCOM", "$EXPORTCHECKCOMSTR")
        env[var] = list(actions[:1]) + [check] + list(actions[1:])
    for var, emitter in (("SHLIBEMITTER", shlib_exports_emitter), ("LDMODULEEMITTER", ldmodule_exports_emitter)):
        current = env.get(var)
        emitters = list(current) if SCons.Util.is_List(current) else ([current] if current else [])
        if emitter not in emitters:
            env[var] = emitters + [emitter]
    env["BUILDERS"]["SplitDebugVersionScript"] = SCons.Builder.Builder(
        action=SCons.Action.Action(version_script_action, "$EXPORTMAPCOMSTR"))


def shlib_exports_emitter(target: list[Any], source: list[Any], env: Any) -> tuple[list[Any], list[Any]]:
    return exports_emitter(target, source, env, "SHLINKFLAGS", "SHLIBSUFFIX")


def ldmodule_exports_emitter(target: list[Any], source: list[Any], env: Any) -> tuple[list[Any], list[Any]]:
    return exports_emitter(target, source, env, "LDMODULEFLAGS", "LDMODULESUFFIX")


def _script_name(library: str, suffix: str) -> str:
    """libgreet.so.1.0.0 -> libgreet: the script must not match `lib*.so*` globs of install steps."""
    at = library.find(suffix) if suffix else -1
    return library[:at] if at > 0 else library


def exports_emitter(target: list[Any], source: list[Any], env: Any, flags_var: str,
                    suffix_var: str) -> tuple[list[Any], list[Any]]:
    """Give a library with $EXPORT_LIST its version script (a target the link depends on)."""
    linked = target[0]
    listed = env.get("EXPORT_LIST")
    if not listed:
        reason = _required_by(env)
        if reason:
            raise user_error(
                f"{linked}: no EXPORT_LIST, but {reason} requires one for every shared library and "
                f"loadable module: pass EXPORT_LIST='{Path(linked.name).stem.split('.')[0]}.exports' "
                "to the builder (or set SPLITDEBUG_REQUIRE_EXPORT_LIST=False)")
        return target, source
    list_node = env.File(env.subst(listed) if SCons.Util.is_String(listed) else listed)
    _check_linker(env, target, source)
    script = linked.dir.File(_script_name(linked.name, env.subst(f"${suffix_var}")) +
                             env.subst("$SPLITDEBUG_VERSIONSCRIPTSUFFIX"))
    env.SplitDebugVersionScript(script, list_node)
    env.Depends(linked, script)
    linked.attributes.splitdebug_exports = ExportNodes(list_node, script)
    if "--version-script=" not in env.subst(f"${flags_var}", target=target, source=source):
        raise user_error(
            f"{linked}: {_flags_named(env, flags_var)} of this call no longer holds the tool's "
            "$_SPLITDEBUG_EXPORTFLAGS (the "
            "version script made from EXPORT_LIST); add to the flags instead of replacing them, e.g. "
            "LINKFLAGS=env['LINKFLAGS'] + [...]")
    return target, source


def _flags_named(env: Any, flags_var: str) -> str:
    """The variable the user replaced: $SHLINKFLAGS and $LDMODULEFLAGS hold $LINKFLAGS by default."""
    raw = env.get(flags_var)
    text = " ".join(map(str, raw)) if SCons.Util.is_List(raw) else str(raw or "")
    return "$LINKFLAGS" if "$LINKFLAGS" in text or "${LINKFLAGS}" in text else f"${flags_var}"


def _required_by(env: Any) -> str | None:
    """Who requires an export list: the construction variable, else the policy; None if nobody."""
    value = env.get("SPLITDEBUG_REQUIRE_EXPORT_LIST")
    if isinstance(value, str):
        text = env.subst(value).strip().lower()
        if text in _TRUE:
            value = True
        elif text in _FALSE:
            value = False
        elif text:
            raise user_error(
                f"SPLITDEBUG_REQUIRE_EXPORT_LIST={value!r}: use True or False (or leave it unset for the policy)")
        else:
            value = None
    if value is not None:
        return "SPLITDEBUG_REQUIRE_EXPORT_LIST" if value else None
    try:
        policy = load_policy(env.subst("$SPLITDEBUG_POLICY"))
    except SplitDebugError as err:
        raise user_error(str(err)) from None
    return f"policy {policy.name!r} (require_export_list)" if policy.require_export_list else None


def _export_link_flags(target: Any, source: Any, env: Any, for_signature: bool) -> list[str]:
    """$_SPLITDEBUG_EXPORTFLAGS: the version-script flags, for a library linked with a list only."""
    first = target[0] if SCons.Util.is_List(target) and target else target
    nodes = getattr(getattr(first, "attributes", None), "splitdebug_exports", None)
    if nodes is None:
        return []
    return [f"-Wl,--version-script={nodes.version_script}", "$SPLITDEBUG_EXPORTLINKFLAGS"]


def _check_message(target: Any, source: Any, env: Any, for_signature: bool) -> str:
    """$EXPORTCHECKCOMSTR's default: silent for libraries without a list."""
    first = target[0] if SCons.Util.is_List(target) and target else target
    nodes = getattr(getattr(first, "attributes", None), "splitdebug_exports", None)
    return "" if nodes is None else f"Checking exports of {first} against {nodes.export_list}"


def _check_linker(env: Any, target: Any, source: Any) -> None:
    """Refuse to go on when the linker does not take the flags (checked once per linker and flags)."""
    link = tuple(env.subst_list("$SHLINK", target=target, source=source)[0])
    flags = tuple(str(f) for f in env.subst_list("$SPLITDEBUG_EXPORTLINKFLAGS")[0])
    if not link:
        return
    path = env["ENV"].get("PATH", os.environ.get("PATH", ""))
    problem = _linker_rejects(tuple(str(a) for a in link), flags, str(path))
    if problem:
        raise user_error(
            f"the linker ({' '.join(map(str, link))}) rejects a version script with "
            f"{' '.join(flags)}: {problem}; use GNU ld, gold or lld, or set SPLITDEBUG_EXPORTLINKFLAGS "
            "to the flags it supports")


@functools.cache  # the probe's memo: one link per linker and flags per SCons run
def _linker_rejects(link: tuple[str, ...], flags: tuple[str, ...], path: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="splitdebug-ld-") as tmp:
        script = Path(tmp, "probe.map")
        script.write_text("PROBE_1 { global: probe; local: *; };\n")
        src = Path(tmp, "probe.c")
        src.write_text("__attribute__((visibility(\"default\"))) int probe(void) { return 0; }\n")
        argv = [*link, "-shared", "-nostdlib", "-fPIC", "-o", str(Path(tmp, "probe.so")), "-x", "c", str(src),
                "-x", "none", f"-Wl,--version-script={script}", *flags]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PATH": path})
        except OSError as err:
            return err.strerror or str(err)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {proc.returncode}"


def _fail(node: Any, message: str) -> SCons.Errors.BuildError:
    return SCons.Errors.BuildError(node=node, errstr=message, exitstatus=2)


def version_script_action(target: list[Any], source: list[Any], env: Any) -> int:
    out = Path(target[0].abspath)
    try:
        export_list = exports.load_export_list(source[0].rfile().abspath)
        # Named from the top directory: the script's bytes must not depend on where the tree is.
        text = exports.version_script(replace(export_list, source=str(source[0].srcnode())))
    except SplitDebugError as err:
        raise _fail(target[0], str(err)) from None
    # Rewrite only on change, so an unchanged script never looks new to anything downstream.
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    return 0


def export_check_action(target: list[Any], source: list[Any], env: Any) -> int:
    """After the link: the library must export exactly its list. ($EXPORTCHECKCOMSTR is empty for a
    library without a list; strfunction None keeps SCons from printing the call instead.)"""
    nodes = getattr(target[0].attributes, "splitdebug_exports", None)
    if nodes is None:
        return 0
    library = target[0].abspath
    try:
        export_list = exports.load_export_list(nodes.export_list.rfile().abspath)
        symbols = exports.read_library(library, cxxfilt=env.subst("$CXXFILT") or None)
        # Name both as the build log does (paths from the top directory).
        archives = {a.rfile().get_abspath(): str(a) for a in _linked_archives(target[0], env)}
        from_archives = {name: archives.get(path, path) for name, path in exports.archive_symbols(
            list(archives), nm=env.subst("$NM") or None).items()}
        named_list = replace(export_list, source=str(nodes.export_list.srcnode()))
        result = exports.check(named_list, replace(symbols, path=str(target[0])), from_archives)
        errors = list(result.errors)
        if export_list.entries and not symbols.exported:
            errors.insert(0, f"{target[0]} exports nothing: its sources mark no symbol visibility(\"default\") "
                             "and it is compiled with $SPLITDEBUG_VISIBILITYFLAGS (-fvisibility=hidden); annotate "
                             "the API, or pass SPLITDEBUG_VISIBILITYFLAGS=[] to this builder call")
        if _truthy(env, "EXPORT_CHECK_DECLARED", True):
            # The other direction: what the library's own objects declare as API must be listed.
            objects = [str(s.rfile().abspath) for s in target[0].sources if _is_object(env, s)]
            declared = exports.declared_symbols(objects, cxxfilt=env.subst("$CXXFILT") or None)
            top = env.Dir("#").abspath
            errors += exports.check_declared(named_list, [
                replace(d, object=os.path.relpath(d.object, top)) for d in declared])
    except SplitDebugError as err:
        raise _fail(target[0], str(err)) from None
    for warning in result.warnings:
        print(f"scons: warning: {warning}", file=sys.stderr)
    if errors:
        result = replace(result, errors=tuple(errors))
        count = len(result.errors)
        raise _fail(target[0], f"{count} export problem{'s' if count > 1 else ''}:\n  "
                               + "\n  ".join(result.errors))
    return 0


export_check_action.strfunction = None  # type: ignore[attr-defined]


def _is_object(env: Any, node: Any) -> bool:
    name = str(node)
    return any(name.endswith(s) for s in {env.subst("$SHOBJSUFFIX"), env.subst("$OBJSUFFIX")} if s)


def _truthy(env: Any, var: str, default: bool) -> bool:
    """A boolean construction variable (True/False or their usual spellings); unset: `default`."""
    value = env.get(var)
    if value is None:
        return default
    if isinstance(value, str):
        text = env.subst(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise user_error(f"{var}={value!r}: use True or False")
    return bool(value)


def _linked_archives(linked: Any, env: Any) -> list[Any]:
    """The static archives on the link line: sources and the libraries $LIBS found (scanned deps)."""
    suffix = env.subst("$LIBSUFFIX") or ".a"
    nodes = list(linked.sources) + list(linked.implicit or []) + list(linked.depends or [])
    seen: dict[str, Any] = {}
    for node in nodes:
        if str(node).endswith(suffix) and node.rexists():
            seen.setdefault(node.rfile().get_abspath(), node)
    return [seen[k] for k in seen]
