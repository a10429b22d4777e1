"""Reproducible output: the same sources built in two directories give the same bytes."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

from conftest import MAIN_JOB_FILES, REPO, make_tree, run_cli, run_scons


def snapshot(base: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
    return out


def test_examples_built_in_two_directories_are_identical(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    trees = []
    for name in ("first", "second-dir"):
        work = tmp_path / name
        work.mkdir()
        for f in MAIN_JOB_FILES:
            src = REPO / f
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / f)
        run_scons(work, "-j2")
        trees.append(work / "build")
    for sub in ("stage", "packages"):
        a, b = snapshot(trees[0] / sub), snapshot(trees[1] / sub)
        assert a.keys() == b.keys()
        differing = [k for k in a if a[k] != b[k]]
        assert differing == [], differing
    assert any(k.endswith(".deb") for k in snapshot(trees[0] / "packages"))
    assert any(k.endswith(".rpm") for k in snapshot(trees[0] / "packages"))


def test_split_of_the_same_tree_twice_is_identical(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "a")
    shutil.copytree(tree.root, tmp_path / "b", symlinks=True)
    for policy in (("--policy", "debian"), ("--policy", "redhat", "--package", "demo", "--version", "1", "--release", "1")):
        for root in (tmp_path / "a", tmp_path / "b"):
            work = tmp_path / f"{root.name}-{policy[1]}"
            shutil.copytree(root, work, symlinks=True)
            assert run_cli("split", *policy, work).returncode == 0
        cmp = filecmp.dircmp(tmp_path / f"a-{policy[1]}", tmp_path / f"b-{policy[1]}")
        assert snapshot(tmp_path / f"a-{policy[1]}") == snapshot(tmp_path / f"b-{policy[1]}"), cmp.diff_files
