"""`dh_splitdebug`: dh_dwz and dh_strip for every binary package of a source package, in one process.

Run from the source package's top directory, as dh runs its commands (`dh $@ --with splitdebug`), or
from `override_dh_strip:` with an empty `override_dh_dwz:`. Options as dh_strip's: -p/-N/-a/-i, -X,
--dbgsym-migration, --no-automatic-dbgsym, --keep-debug, --dbg-package; DH_OPTIONS, DH_VERBOSE and
DEB_BUILD_OPTIONS (nostrip, noautodbgsym, parallel=N) are read. Errors are one line; exit 0 done,
1 a file could not be split, 2 bad input (nothing in debian/ changed), 3 internal error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .main import guarded


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        return 0
    return guarded("dh_splitdebug", lambda: _run(argv))


def _run(argv: list[str]) -> int:
    from ..debhelper.options import build_options

    if "nostrip" in os.environ.get("DEB_BUILD_OPTIONS", "").split():
        build_options(argv, os.environ, None)  # bad options are still errors; nothing is touched
        return 0
    from ..debhelper.control import host_arch, read_control
    from ..debhelper.run import check_dirs, run

    debian = Path("debian")
    arch = host_arch(os.environ)
    control = read_control(debian / "control", arch, os.environ.get("DEB_BUILD_PROFILES", "").split())
    opts = build_options(argv, os.environ, control)
    check_dirs(debian, opts)
    if opts.no_act:
        return 0
    outcome = run(debian, control, opts, arch)
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main())
