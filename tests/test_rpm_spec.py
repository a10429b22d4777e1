"""splitdebug as an rpm (splitdebug.spec): rpmbuild -bb builds it from a source tarball of this repository;
it ships the package with its configs, the command and macros.splitdebug, which sets %__find_debuginfo;
what it installs runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO, make_tree
from distro_helpers import extract_rpm

pytestmark = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild needed")
VERSION = "0.1.0"
SHIPPED = ("pyproject.toml", "README.md", "configs", "site_scons", "macros.splitdebug")


def source_tarball(dest: Path) -> Path:
    tarball = dest / f"splitdebug-{VERSION}.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name in SHIPPED:
            tar.add(REPO / name, f"splitdebug-{VERSION}/{name}",
                    filter=lambda info: None if "__pycache__" in info.name else info)
    return tarball


def test_splitdebug_rpm_builds_installs_and_sets_find_debuginfo(tmp_path: Path) -> None:
    top = tmp_path / "top"
    (top / "SOURCES").mkdir(parents=True)
    source_tarball(top / "SOURCES")
    proc = subprocess.run(["rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {top}", str(REPO / "splitdebug.spec")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (rpm,) = (top / "RPMS/noarch").glob(f"splitdebug-{VERSION}-1.noarch.rpm")
    files = subprocess.run(["rpm", "-qlp", str(rpm)], capture_output=True, text=True, check=True).stdout.split()
    site = next(f for f in files if f.endswith("-packages/splitdebug"))
    for wanted in ("/usr/bin/splitdebug", "/usr/lib/rpm/macros.d/macros.splitdebug", f"{site}/configs/redhat.yaml",
                   f"{site}/rpm/find_debuginfo.py", f"{site}/check/schema.json"):
        assert wanted in files, wanted
    root = extract_rpm(rpm, tmp_path / "installed")
    macro = subprocess.run(["rpm", "--load", str(root / "usr/lib/rpm/macros.d/macros.splitdebug"), "--eval",
                            "%__find_debuginfo"], capture_output=True, text=True, check=True).stdout.strip()
    assert macro == "/usr/bin/splitdebug find-debuginfo"
    # The installed package alone (not this repository) splits a tree with its own configs.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPM_")}
    env["PYTHONPATH"] = str(root / site.lstrip("/")).removesuffix("/splitdebug")
    tree = make_tree(tmp_path / "tree").root
    run = subprocess.run([sys.executable, str(root / "usr/bin/splitdebug"), "split", "--policy", "redhat", "-q",
                          "--version", "1", "--release", "1", str(tree)], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tree / "usr/lib/debug/usr/bin/prog-1-1.x86_64.debug").is_file()
    help_text = subprocess.run([sys.executable, "-m", "splitdebug", "find-debuginfo", "--help"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, check=True).stdout
    assert "--unique-debug-src-base" in help_text
