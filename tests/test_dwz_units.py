"""tree/dwz's small parts against what the environment and the file system say. Written for the
survivors of tests/MUTATION.md (dwz.py:50)."""

from __future__ import annotations

import shutil

from splitdebug.tree.dwz import find_dwz


def test_dwz_is_overridable_from_the_environment() -> None:
    """$DWZ names the tool (Meson's and rpm's convention); a name not on PATH is no dwz at all."""
    assert find_dwz({}) == "dwz" and shutil.which("dwz")
    assert find_dwz({"DWZ": "no-such-dwz-anywhere"}) is None
    assert find_dwz({"DWZ": "/usr/bin/dwz"}) == "/usr/bin/dwz"
