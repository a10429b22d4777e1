"""SCons glue for `splitdebug symbolize`: `env.SplitDebugSymbolize(log)` makes the `symbolize` alias,
always built, that reads a crash log (a CI job's test output, `scons symbolize LOG=…`) and prints it
with each address's function and file:line, looked up in the stage ($DESTDIR) as the env's policy
lays it out. With `output=`, the symbolized log is also written to that file.

    if "LOG" in ARGUMENTS:
        env.SplitDebugSymbolize(ARGUMENTS["LOG"])
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import SCons.Action

from ..errors import SplitDebugError
from ..symbolize import Options, symbolize_lines
from .env import env_package, env_policy, user_error


def generate(env: Any) -> None:
    env.SetDefault(SPLITDEBUGSYMBOLIZECOMSTR="Symbolizing $SPLITDEBUG_LOG through $SPLITDEBUG_SYMBOLIZEROOT")
    env.AddMethod(split_debug_symbolize, "SplitDebugSymbolize")


def split_debug_symbolize(env: Any, log: str, root: str | None = None, output: str | None = None,
                          alias: str = "symbolize") -> Any:
    """The alias node; `root` is the staged tree (default $DESTDIR)."""
    root = root or env.subst("$DESTDIR")
    if not root:
        raise user_error("SplitDebugSymbolize: no root given and $DESTDIR is not set")
    env_policy(env)  # a bad policy is a UserError now, not when the alias runs
    overrides = {"SPLITDEBUG_LOG": str(env.File(log)), "SPLITDEBUG_SYMBOLIZEROOT": str(env.Dir(root)),
                 "SPLITDEBUG_SYMBOLIZED": str(env.File(output)) if output else ""}
    action = SCons.Action.Action(_symbolize_action, "$SPLITDEBUGSYMBOLIZECOMSTR")
    node = env.Alias(alias, [], action, **overrides)
    env.AlwaysBuild(node)
    return node


def _symbolize_action(target: Any, source: Any, env: Any) -> int:
    log = Path(env.File("$SPLITDEBUG_LOG").abspath)
    options = Options(roots=(Path(env.Dir("$SPLITDEBUG_SYMBOLIZEROOT").abspath),), policy=env_policy(env),
                      package=env_package(env))
    warnings: list[str] = []
    try:
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            text = "".join(f"{line}\n" for line in symbolize_lines(f, options, warn=warnings.append))
    except OSError as err:
        print(f"splitdebug: error: {log}: cannot read: {err.strerror}", file=sys.stderr)
        return 1
    except SplitDebugError as err:
        print(f"splitdebug: error: {err}", file=sys.stderr)
        return 1
    for message in warnings:
        print(f"splitdebug: warning: {message}", file=sys.stderr)
    sys.stdout.write(text)
    out = env.subst("$SPLITDEBUG_SYMBOLIZED")
    if out:
        path = Path(env.File(out).abspath)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8", errors="surrogateescape")
        os.replace(tmp, path)  # whole or not at all
    return 0
