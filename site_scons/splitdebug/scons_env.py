"""What the SCons glue modules share: the environment's policy and package fields."""

from __future__ import annotations

from typing import Any

import SCons.Errors

from .errors import SplitDebugError
from .layout import PackageInfo
from .policy import Policy, load_policy

PACKAGE_VARS = ["PACKAGE_NAME", "PACKAGE_VERSION", "PACKAGE_RELEASE", "PACKAGE_ARCH"]


def env_policy(env: Any) -> Policy:
    """$SPLITDEBUG_POLICY loaded; a bad policy is a UserError with the file, line and key."""
    try:
        return load_policy(env.subst("$SPLITDEBUG_POLICY"))
    except SplitDebugError as err:
        raise SCons.Errors.UserError(str(err)) from None


def env_package(env: Any) -> PackageInfo:
    return PackageInfo(*(env.subst(f"${v}") for v in PACKAGE_VARS))
