"""What the SCons glue modules share: the environment's policy, package fields and tools."""

from __future__ import annotations

import os
import traceback
from typing import Any

import SCons.Errors

from ..errors import SplitDebugError
from ..layout import PackageInfo
from ..policy import Policy, load_policy
from ..tree.rewrite import ENGINES, Tools

PACKAGE_VARS = ["PACKAGE_NAME", "PACKAGE_VERSION", "PACKAGE_RELEASE", "PACKAGE_ARCH"]


def _top_dir() -> str:
    """The project's top directory (`#`): SCons reads each SConscript from its own directory."""
    import SCons.Node.FS

    fs = SCons.Node.FS.get_default_fs()
    return str(fs.Top.get_abspath()) if fs is not None else os.getcwd()


def user_error(message: str) -> SCons.Errors.UserError:
    """A UserError that starts with the user's SConscript file and line. SCons itself names the deepest
    frame that is not SCons's own, which is this tool's code; the user needs the call that caused it."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for frame in reversed(traceback.extract_stack()[:-1]):
        path = os.path.abspath(frame.filename)
        if path.startswith(package + os.sep) or f"{os.sep}SCons{os.sep}" in path \
                or path.endswith(os.path.join("site_tools", "splitdebug.py")) or frame.filename.startswith("<"):
            continue
        where = os.path.relpath(path, _top_dir()) if path.startswith(_top_dir() + os.sep) else path
        return SCons.Errors.UserError(f"{where}:{frame.lineno}: {message}")
    return SCons.Errors.UserError(message)


def env_policy(env: Any) -> Policy:
    """$SPLITDEBUG_POLICY loaded; a bad policy is a UserError with the file, line and key."""
    try:
        return load_policy(env.subst("$SPLITDEBUG_POLICY"))
    except SplitDebugError as err:
        raise user_error(str(err)) from None


def env_package(env: Any) -> PackageInfo:
    return PackageInfo(*(env.subst(f"${v}") for v in PACKAGE_VARS))


def env_tools(env: Any) -> Tools:
    """$OBJCOPY, $STRIP, $EU_STRIP, $EU_ELFCOMPRESS and $SPLITDEBUG_ENGINE (builtin: in-process where it can)."""
    engine = env.subst("$SPLITDEBUG_ENGINE") or "builtin"
    if engine not in ENGINES:
        raise user_error(f"SPLITDEBUG_ENGINE={engine}: expected one of {', '.join(ENGINES)}")
    return Tools(objcopy=env.subst("$OBJCOPY"), strip=env.subst("$STRIP"), eu_strip=env.subst("$EU_STRIP"),
                 eu_elfcompress=env.subst("$EU_ELFCOMPRESS"), engine=engine)
