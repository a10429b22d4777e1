"""What the SCons glue modules share: the environment's policy, package fields and tools."""

from __future__ import annotations

from typing import Any

import SCons.Errors

from ..errors import SplitDebugError
from ..layout import PackageInfo
from ..policy import Policy, load_policy
from ..tree.rewrite import ENGINES, Tools

PACKAGE_VARS = ["PACKAGE_NAME", "PACKAGE_VERSION", "PACKAGE_RELEASE", "PACKAGE_ARCH"]


def env_policy(env: Any) -> Policy:
    """$SPLITDEBUG_POLICY loaded; a bad policy is a UserError with the file, line and key."""
    try:
        return load_policy(env.subst("$SPLITDEBUG_POLICY"))
    except SplitDebugError as err:
        raise SCons.Errors.UserError(str(err)) from None


def env_package(env: Any) -> PackageInfo:
    return PackageInfo(*(env.subst(f"${v}") for v in PACKAGE_VARS))


def env_tools(env: Any) -> Tools:
    """$OBJCOPY, $STRIP, $EU_STRIP and $SPLITDEBUG_ENGINE (builtin: in-process where it can)."""
    engine = env.subst("$SPLITDEBUG_ENGINE") or "builtin"
    if engine not in ENGINES:
        raise SCons.Errors.UserError(f"SPLITDEBUG_ENGINE={engine}: expected one of {', '.join(ENGINES)}")
    return Tools(env.subst("$OBJCOPY"), env.subst("$STRIP"), env.subst("$EU_STRIP"), engine)
