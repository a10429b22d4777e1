"""tree/stage's writers one by one, judged by what the kernel says of the result (stat, readlink): the
mode a copy keeps, hard links replacing what was there, symlink targets that leave the root refused.
Written for the survivors of tests/MUTATION.md (stage.py:33, :43, :54)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from splitdebug.errors import SplitDebugError
from splitdebug.layout import Link, StageRoot
from splitdebug.policy import load_policy
from splitdebug.tree import stage


@pytest.mark.parametrize("mode", [0o755, 0o644, 0o4755, 0o2711])
def test_install_file_keeps_the_source_mode_when_given_none(tmp_path: Path, mode: int) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"\x7fELF-ish")
    src.chmod(mode)
    dest = tmp_path / "stage/usr/bin/prog"
    stage.install_file(src, dest)
    assert dest.read_bytes() == b"\x7fELF-ish" and dest.stat().st_mode & 0o7777 == mode
    stage.install_file(src, dest, 0o444)
    assert dest.stat().st_mode & 0o7777 == 0o444
    assert sorted(p.name for p in dest.parent.iterdir()) == ["prog"]  # no temporary left


def test_install_hardlink_replaces_and_repeats(tmp_path: Path) -> None:
    existing = tmp_path / "usr/lib/debug/a.debug"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"debug")
    dest = tmp_path / "usr/lib/debug/b.debug"
    dest.write_bytes(b"old")
    for _ in range(2):  # into a directory that exists, over a file that exists
        stage.install_hardlink(existing, dest)
        assert os.stat(dest).st_ino == os.stat(existing).st_ino and dest.read_bytes() == b"debug"
    fresh = tmp_path / "usr/lib/debug/new/dir/c.debug"
    stage.install_hardlink(existing, fresh)
    assert os.stat(fresh).st_ino == os.stat(existing).st_ino
    assert sorted(p.name for p in dest.parent.iterdir()) == ["a.debug", "b.debug", "new"]


@pytest.mark.parametrize("target", ["/etc/passwd", "/usr/lib/debug/x.debug", "../../../../../etc/passwd",
                                    "../../../../..", "../../../../../tmp/../usr/x"])
def test_install_symlink_refuses_a_target_out_of_the_root(tmp_path: Path, target: str) -> None:
    """An absolute target (it would name the host's file once installed elsewhere) or one climbing
    above the root: an error, and nothing written."""
    root = StageRoot(tmp_path / "root")
    (tmp_path / "root").mkdir()
    with pytest.raises(SplitDebugError, match="leaves the staging root"):
        stage.install_symlink(root, load_policy("debian"), Link("/usr/lib/debug/a/b.debug", target))
    assert list((tmp_path / "root").rglob("*")) == []


@pytest.mark.parametrize("target", ["../c/d.debug", "../../../../usr/bin/prog"])
def test_install_symlink_inside_the_root(tmp_path: Path, target: str) -> None:
    """Up to the root itself (four levels from usr/lib/debug/a) is inside."""
    root = StageRoot(tmp_path / "root")
    (tmp_path / "root").mkdir()
    fs = stage.install_symlink(root, load_policy("debian"), Link("/usr/lib/debug/a/b.debug", target))
    assert fs == tmp_path / "root/usr/lib/debug/a/b.debug" and os.readlink(fs) == target


def test_make_dir_inside_picks_the_root_that_holds_the_directory(tmp_path: Path) -> None:
    """With a separate debug directory, a directory under the root is made under the root (and one under
    neither is a one-line error, not an exception of pathlib's)."""
    root, debug = tmp_path / "root", tmp_path / "debug"
    for where in (StageRoot(root), StageRoot(root, debug_dir=debug)):
        stage.make_dir_inside(where, root / "usr/lib/x")
        assert (root / "usr/lib/x").is_dir()
        stage.make_dir_inside(where, root)
        with pytest.raises(SplitDebugError, match="not under the staging root"):
            stage.make_dir_inside(where, tmp_path / "elsewhere/x")
        assert not (tmp_path / "elsewhere").exists()
    stage.make_dir_inside(StageRoot(root, debug_dir=debug), debug / ".build-id/ab")
    assert (debug / ".build-id/ab").is_dir()


@pytest.mark.parametrize("rel", ["a/../../escape", "..", "a/b/../../../escape"])
def test_open_dir_nofollow_refuses_dot_dot(tmp_path: Path, rel: str) -> None:
    """'..' would climb out of the tree through the directory fds: refused before any directory is opened
    above the base, and nothing made outside it."""
    base = tmp_path / "tree"
    base.mkdir()
    with pytest.raises(SplitDebugError, match="'..' in a path we write"):
        os.close(stage.open_dir_nofollow(base, rel))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree"]


def test_directories_are_0755_whatever_the_umask(tmp_path: Path) -> None:
    """Under umask 000 too, the directories we make are not world-writable (stat says 0755)."""
    old = os.umask(0)
    try:
        stage.make_dir_inside(StageRoot(tmp_path / "root"), tmp_path / "root/usr/lib/debug/.build-id/ab")
        os.close(stage.open_dir_nofollow(tmp_path / "root", "usr/src/debug/pkg"))
    finally:
        os.umask(old)
    for d in ("usr", "usr/lib/debug/.build-id/ab", "usr/src/debug/pkg"):
        assert (tmp_path / "root" / d).stat().st_mode & 0o7777 == 0o755, d


def test_write_new_file_refuses_a_symlink_to_a_regular_file(tmp_path: Path) -> None:
    """A symlink planted where a new file goes, even to a regular file, is never written through nor
    taken for the file."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"theirs")
    base = tmp_path / "tree"
    base.mkdir()
    (base / "name").symlink_to(outside)
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(SplitDebugError, match="not a regular file"):
            stage.write_new_file(fd, "name", b"ours", 0o644, base)
        assert stage.write_new_file(fd, "fresh", b"ours", 0o600, base) is True
        assert stage.write_new_file(fd, "fresh", b"again", 0o600, base) is False
    finally:
        os.close(fd)
    assert outside.read_bytes() == b"theirs" and (base / "fresh").read_bytes() == b"ours"
    assert (base / "fresh").stat().st_mode & 0o7777 == 0o600


@pytest.mark.parametrize("link,target,lands", [
    ("usr/lib/debug", "../share/dbg", "usr/share/dbg/x"),  # relative, inside: resolved by us, followed
    ("usr/lib/debug", "{root}/opt/dbg", "opt/dbg/x"),  # absolute, naming a path under the root
    ("usr/lib/debug", "../../../outside", None),  # climbs out of the root
    ("usr/lib/debug", "{outside}", None),  # absolute, elsewhere
    ("usr/lib/debug", "debug", None),  # a loop: refused, not followed 40 times into an error
])
def test_open_dir_inside_resolves_symlinks_within_the_root(tmp_path: Path, link: str, target: str,
                                                          lands: str | None) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (root / link).parent.mkdir(parents=True)
    (root / link).symlink_to(target.format(root=root, outside=outside))
    if lands is None:
        with pytest.raises(SplitDebugError, match="leads out of the staging root"):
            stage.make_dir_inside(StageRoot(root), root / link / "x")
        assert not list(outside.iterdir())
        return
    fd = stage.open_dir_inside(StageRoot(root), root / link / "x")
    try:
        assert os.path.samestat(os.fstat(fd), os.stat(root / lands))
    finally:
        os.close(fd)


def test_replace_at_never_writes_through_a_symlink_at_its_temporary_or_leaves_one(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    fd = os.open(tmp_path / "d", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert stage.replace_at(fd, "out", lambda f: f.write(b"abc"), 0o640) == 3
        assert stage.replace_at(fd, None, lambda f: f.write(b"measured"), 0o600) == 8
    finally:
        os.close(fd)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["out"]
    assert (tmp_path / "d/out").read_bytes() == b"abc" and (tmp_path / "d/out").stat().st_mode & 0o777 == 0o640
