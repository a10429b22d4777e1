"""tree/dwz's small parts against what the environment and the file system say. Written for the
survivors of tests/MUTATION.md (dwz.py:50, :338)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from conftest import env_with_package, make_tree, run_cli
from splitdebug.layout import PackageInfo, StageRoot
from splitdebug.policy import load_policy
from splitdebug.tree.dwz import find_dwz, shipped_pairs


def test_dwz_is_overridable_from_the_environment() -> None:
    """$DWZ names the tool (Meson's and rpm's convention); a name not on PATH is no dwz at all."""
    assert find_dwz({}) == "dwz" and shutil.which("dwz")
    assert find_dwz({"DWZ": "no-such-dwz-anywhere"}) is None
    assert find_dwz({"DWZ": "/usr/bin/dwz"}) == "/usr/bin/dwz"


def test_shipped_pairs_of_a_split_tree_are_its_regular_elf_files(tmp_path: Path) -> None:
    """The SCons package step's view of a split tree: each shipped ELF name that is a file (the hard link
    too, symlinks and the script not), with the debug file dh_strip's layout names by its build-id."""
    tree = make_tree(tmp_path / "root")
    assert run_cli("split", "--policy", "debian", "--package", "demo", "--jobs", "1", tree.root).returncode == 0

    def debug_of(binary: Path) -> Path:
        out = subprocess.run(["readelf", "-n", str(binary)], check=True, capture_output=True, text=True).stdout
        bid = re.search(r"Build ID: ([0-9a-f]+)", out).group(1)  # type: ignore[union-attr]
        return tree.root / f"usr/lib/debug/.build-id/{bid[:2]}/{bid[2:]}.debug"

    got = shipped_pairs(StageRoot(tree.root), load_policy("debian"), PackageInfo("demo"))
    names = [tree.root / "usr/bin/prog", tree.root / "usr/bin/prog-alias", tree.root / "usr/lib/libdemo.so.1.0"]
    assert sorted(got) == sorted((b, debug_of(b)) for b in names)


def test_a_failing_dwz_is_a_warning_with_its_message(tmp_path: Path) -> None:
    """dwz exiting 1 with a message (a real dwz's when it runs out of memory or meets DWARF it cannot
    read): the split stands, its files valid, and the warning quotes dwz's last line."""
    tree = make_tree(tmp_path / "root")
    fake = tmp_path / "dwz"
    fake.write_text('#!/bin/sh\necho "dwz: DWARF compression not beneficial - old size 1 new size 1" >&2\n'
                    'echo "dwz: out of memory" >&2\nexit 1\n')
    fake.chmod(0o755)
    env = env_with_package()
    env["DWZ"] = str(fake)
    proc = run_cli("split", "--policy", "debian", "--package", "demo", "--jobs", "1", tree.root, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "splitdebug: warning: dwz exited 1: dwz: out of memory\n"
