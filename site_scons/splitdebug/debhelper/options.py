"""debhelper's options, as Dh_Getopt reads them: DH_INTERNAL_OPTIONS (dh, through an override),
DH_OPTIONS, then the command line; -O options dh passes on are used when known, else ignored.
DEB_BUILD_OPTIONS' nostrip, noautodbgsym and parallel=N; DH_VERBOSE, DH_ALWAYS_EXCLUDE."""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..errors import SplitDebugError
from .control import Control


@dataclass(frozen=True)
class Options:
    packages: list[str]                 # the packages acted on, in debian/control order
    excludes: list[str] = field(default_factory=list)  # -X: a substring of debian/<pkg>/path
    keep_debug: bool = False            # -k: debug files inside the package itself
    dbg_package: str | None = None      # --dbg-package: a legacy -dbg package gets them all
    migration: str | None = None        # --dbgsym-migration: Replaces/Breaks of the old -dbg
    automatic_dbgsym: bool = True
    verbose: bool = False
    no_act: bool = False
    nostrip: bool = False               # DEB_BUILD_OPTIONS=nostrip: touch nothing
    noautodbgsym: bool = False          # DEB_BUILD_OPTIONS=noautodbgsym: strip, keep no dbgsym
    jobs: int = 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, never usage plus a message
        raise SplitDebugError(message)


class _Select(argparse.Action):
    """-a, -i and -p add packages in the order given (debhelper's AddPackage)."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        ns.select.append((self.const, values))


def _parser() -> _Parser:
    p = _Parser(prog="dh_splitdebug", add_help=False, allow_abbrev=False)
    p.add_argument("-a", "--arch", "-s", "--same-arch", nargs=0, action=_Select, const="arch")
    p.add_argument("-i", "--indep", nargs=0, action=_Select, const="indep")
    p.add_argument("-p", "--package", action=_Select, const="package")
    p.add_argument("-N", "--no-package", action="append", dest="no_package", default=[])
    p.add_argument("-X", "--exclude", action="append", dest="exclude", default=[])
    p.add_argument("-O", action="append", dest="passed_on", default=[])
    p.add_argument("-k", "--keep-debug", "--keep", action="store_true", dest="keep_debug")
    p.add_argument("--dbg-package", dest="dbg_package")
    p.add_argument("--dbgsym-migration", "--ddeb-migration", dest="migration")
    p.add_argument("--automatic-dbgsym", "--ddebs", action="store_true", dest="automatic", default=None)
    p.add_argument("--no-automatic-dbgsym", "--no-ddebs", action="store_false", dest="automatic")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--no-act", action="store_true", dest="no_act")
    return p


def _parse(parser: _Parser, args: list[str], ns: argparse.Namespace, *, lenient: bool = False) -> None:
    if lenient:
        _, unknown = parser.parse_known_args(args, ns)
    else:
        parser.parse_args(args, ns)
    passed_on, ns.passed_on = ns.passed_on, []
    if passed_on:  # -O--foo: dh passes every command its own options; the ones we do not know are not ours
        parser.parse_known_args(passed_on, ns)


def build_options(argv: list[str], environ: dict[str, str] | os._Environ[str], control: Control | None) -> Options:
    """The options, and the packages to act on; `control` is None when nostrip makes it moot."""
    build_options = environ.get("DEB_BUILD_OPTIONS", "").split()
    parser = _parser()
    ns = argparse.Namespace(select=[], no_package=[], exclude=[], passed_on=[], keep_debug=False,
                            dbg_package=None, migration=None, automatic=None, verbose=False, no_act=False)
    internal_excluded: set[str] = set()
    if environ.get("DH_INTERNAL_OPTIONS"):
        _parse(parser, environ["DH_INTERNAL_OPTIONS"].split("\x1e"), ns, lenient=True)
        if ns.select and control is not None:
            chosen = set(_selection(control, ns.select)[0])
            internal_excluded = {p.name for p in control.packages} - chosen
        ns.select = []
    if environ.get("DH_OPTIONS"):
        _parse(parser, shlex.split(environ["DH_OPTIONS"]), ns, lenient=True)
    _parse(parser, argv, ns)
    if ns.migration and ns.keep_debug:
        raise SplitDebugError("--keep-debug and --dbgsym-migration are mutually exclusive")
    if ns.migration and ns.dbg_package:
        raise SplitDebugError("--dbg-package and --dbgsym-migration are mutually exclusive")
    if ns.automatic and (ns.keep_debug or ns.dbg_package):
        raise SplitDebugError("--keep-debug/--dbg-package and explicit --automatic-dbgsym are mutually exclusive")
    if ns.migration and ns.automatic is False:
        raise SplitDebugError("--dbgsym-migration and --no-automatic-dbgsym are mutually exclusive")
    excludes = list(ns.exclude)
    if environ.get("DH_ALWAYS_EXCLUDE"):
        excludes += [x for x in environ["DH_ALWAYS_EXCLUDE"].split(":") if x]
    packages: list[str] = []
    if control is not None:
        for name in [*ns.no_package, *([ns.dbg_package] if ns.dbg_package else [])]:
            if control.get(name) is None:
                raise SplitDebugError(f"package {name} is not listed in {control.path}")
        packages, nothing_asked = _selection(control, ns.select)
        if nothing_asked:  # -a/-i/-p naming only packages this build does not make: nothing to do
            packages = control.selected("both")
        excluded = set(ns.no_package) | internal_excluded
        packages = [p for p in dict.fromkeys(packages) if p not in excluded]
    parallel = [o.split("=", 1)[1] for o in build_options if o.startswith("parallel=")]
    jobs = int(parallel[-1]) if parallel and parallel[-1].isdigit() and int(parallel[-1]) > 0 \
        else os.cpu_count() or 1
    return Options(packages, excludes, ns.keep_debug, ns.dbg_package, ns.migration,
                   ns.automatic is not False and not ns.keep_debug and not ns.dbg_package,
                   ns.verbose or bool(environ.get("DH_VERBOSE")), ns.no_act or bool(environ.get("DH_NO_ACT")),
                   "nostrip" in build_options,
                   "noautodbgsym" in build_options or "noddebs" in build_options, jobs)


def _selection(control: Control, select: list[tuple[str, str | list[str]]]) -> tuple[list[str], bool]:
    """(packages the -a/-i/-p options name, whether none was given at all)."""
    out: list[str] = []
    for kind, value in select:
        if kind == "package":
            assert isinstance(value, str)
            pkg = control.get(value)
            if pkg is None:
                raise SplitDebugError(f"package {value} is not listed in {control.path}")
            if pkg.built:  # one a profile or the architecture leaves out is silently skipped
                out.append(value)
        else:
            out += control.selected(kind)
    return out, not select
