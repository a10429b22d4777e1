"""Faults: a failing tool, a run killed part-way, a full disk. Nothing half-written, nothing lost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from conftest import PROGRAM, compile_c, env_with_package, make_tree, run_cli
from splitdebug.elf import read as elfread
from test_split import assert_split_tree

REDHAT = ("--policy", "redhat", "--version", "1", "--release", "1")


def wrapper(tmp: Path, tool: str, fail_on: str) -> Path:
    real = shutil.which(tool)
    w = tmp / f"failing-{tool}"
    w.write_text(f'#!/bin/sh\ncase "$*" in *{fail_on}*) echo "{tool}: simulated failure on {fail_on}" >&2; exit 1;; esac\n'
                 f'exec {real} "$@"\n')
    w.chmod(0o755)
    return w


@pytest.mark.parametrize("policy, tool, var", [("debian", "objcopy", "OBJCOPY"), ("redhat", "eu-strip", "EU_STRIP")])
def test_failing_tool_fails_one_file_only(tmp_path: Path, policy: str, tool: str, var: str) -> None:
    tree = make_tree(tmp_path / "root")
    victim = compile_c(tree.root / "usr/bin/victim", PROGRAM)
    before = victim.read_bytes()
    env = env_with_package()
    env[var] = str(wrapper(tmp_path, tool, "victim"))
    env["SPLITDEBUG_ENGINE"] = "tools"  # the in-process split runs no tool to fail
    args = REDHAT if policy == "redhat" else ("--policy", "debian")
    proc = run_cli("split", *args, tree.root, env=env)
    assert proc.returncode == 1
    assert "usr/bin/victim" in proc.stderr and "simulated failure on victim" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert victim.read_bytes() == before  # unmodified
    victim.unlink()
    assert_split_tree(tree.root, expected=3)  # the others are done
    assert not [p for p in tree.root.rglob(".splitdebug-*")]


@pytest.mark.parametrize("var, value, said", [("OBJCOPY", "", 'OBJCOPY=""'), ("EU_STRIP", "", 'EU_STRIP=""'),
                                              ("EU_ELFCOMPRESS", "no-such-elfcompress", "no-such-elfcompress")])
def test_missing_tool_is_named(tmp_path: Path, var: str, value: str, said: str) -> None:
    """A tool set to nothing or to a program not found stops the run, named as it was given."""
    tree = make_tree(tmp_path / "root")
    env = {**env_with_package(), var: value}
    proc = run_cli("split", *REDHAT, tree.root, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr  # 2: nothing was tried
    assert proc.stderr.strip().endswith(f"needed tools not found: {said}"), proc.stderr


def _tree_of_many(root: Path, count: int) -> None:
    """`count` distinct programs, each installed again under 9 more names with a build-id of its
    own (the note's bytes changed): enough files that an in-process split is still running when
    the kill comes, without compiling them all."""
    compile_c(root / "usr/bin/prog0", PROGRAM)
    for i in range(count):
        # Distinct build-ids without recompiling: the linker hashes the whole output.
        compile_c(root / f"usr/bin/prog{i + 1}", PROGRAM + f"const char *which = \"{i}\";\n")
    for prog in sorted((root / "usr/bin").iterdir()):
        data = prog.read_bytes()
        build_id = bytes.fromhex(elfread.read_elf(prog).build_id or "")
        assert build_id and data.count(build_id) == 1
        for copy in range(1, 10):
            (root / f"usr/bin/{prog.name}-{copy}").write_bytes(data.replace(build_id, bytes([build_id[0] ^ copy]) + build_id[1:]))
            (root / f"usr/bin/{prog.name}-{copy}").chmod(0o755)


def _group_alive(pgid: int) -> bool:
    """A process of the group still runs. Zombies do not count: dwz -j's forked children, killed
    with it, are reparented to PID 1, which on some machines (a firecracker init) never reaps them."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # state, ppid, pgrp
            return True
    return False


KILL_FILES = 400 if os.environ.get("SPLITDEBUG_FULL") else 40  # SPLITDEBUG_FULL=1: the long version


@pytest.mark.parametrize("dwz", ["none", "multifile"])
def test_sigkill_part_way_then_rerun_completes(tmp_path: Path, dwz: str) -> None:
    """Killed while binaries are being written: each is untouched or stripped with its debug file in
    place. Without dwz that debug file is final (its CRC matches); with dwz, binaries are written
    while dwz runs and their CRCs are fixed at the end, so only the rerun makes them match."""
    policy = tmp_path / "redhat.yaml"
    policy.write_text((Path(__file__).parent.parent / "configs/redhat.yaml").read_text()
                      .replace("\ndwz: multifile", f"\ndwz: {dwz}"))
    args = ("--policy", str(policy), *REDHAT[2:])
    root = tmp_path / "root"
    _tree_of_many(root, KILL_FILES)
    originals = {p: p.read_bytes() for p in (root / "usr/bin").iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "splitdebug", "split", *args, "--jobs", "2", str(root)],
                            env=env_with_package(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    debug_dir = root / "usr/lib/debug/usr/bin"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and \
            sum(1 for p, data in originals.items() if p.stat().st_size < len(data)) < 5:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # the run only: its forked workers must follow it (PR_SET_PDEATHSIG)
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(proc.pid):
        time.sleep(0.01)
    assert not _group_alive(proc.pid), "a worker outlived the killed run and may still be writing"
    done = 0
    for path, data in originals.items():
        now = path.read_bytes()
        if now == data:
            continue
        info = elfread.read_elf(path)
        name, crc = elfread.read_debuglink(path, info)
        debug = debug_dir / name
        assert debug.is_file(), path
        if dwz == "none":
            assert zlib.crc32(debug.read_bytes()) & 0xFFFFFFFF == crc, path
        done += 1
    assert 0 < done < len(originals), "the kill should land part-way"
    proc2 = run_cli("split", *args, root)
    assert proc2.returncode == 0, proc2.stderr
    assert_split_tree(root, expected=len(originals))
    assert not list(root.rglob(".splitdebug-*"))


def test_ctrl_c_stops_the_forked_workers_cleanly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group (the run and its forked workers): one line, exit 130,
    no worker left behind, and a rerun completes the tree."""
    root = tmp_path / "root"
    _tree_of_many(root, KILL_FILES)
    originals = {p: p.stat().st_size for p in (root / "usr/bin").iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "splitdebug", "split", "--policy", "debian", "--jobs", "2",
                             str(root)], env=env_with_package(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None and \
            sum(1 for p, size in originals.items() if p.stat().st_size < size) < 5:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "splitdebug: interrupted" in err and "Traceback" not in err, err
    time.sleep(0.2)
    assert not _group_alive(proc.pid)  # nothing of the group is left
    proc2 = run_cli("split", "--policy", "debian", root)
    assert proc2.returncode == 0, proc2.stderr
    assert_split_tree(root, expected=len(originals))
    assert not list(root.rglob(".splitdebug-*"))


def test_no_process_pool_falls_back_to_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build chroot without /dev/shm has no multiprocessing semaphores: the split runs in threads."""
    from splitdebug.tree import split as tree
    from splitdebug.layout import PackageInfo, StageRoot
    from splitdebug.policy import load_policy
    from splitdebug.tree.rewrite import Tools

    def no_semaphores(*_: object, **__: object) -> None:
        raise OSError(38, "Function not implemented")  # what sem_open says there

    import concurrent.futures  # split imports the pool class only when it makes one (start-up)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_semaphores)
    root = tmp_path / "root"
    for i in range(5):
        compile_c(root / f"usr/bin/prog{i}", PROGRAM + f"const char *which = \"{i}\";\n")
    report = tree.split_tree(StageRoot(root), load_policy("debian"), PackageInfo("p", "", "", ""), jobs=2,
                             tools=Tools(), processes=True)
    assert not report.errors and len(report.split) == 5
    assert_split_tree(root, expected=5)


def test_disk_full_is_a_clear_error_and_corrupts_nothing(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); see README for the manual procedure")
    try:
        root = mnt / "root"
        compile_c(root / "usr/bin/prog", PROGRAM)
        filler = 0
        big = compile_c(tmp_path / "big", PROGRAM + "".join(f"int f{i}(int x){{return x+{i};}}\n" for i in range(800)))
        for i in range(20):
            try:
                shutil.copy2(big, root / f"usr/bin/big{i}")
                filler += 1
            except OSError:
                (root / f"usr/bin/big{i}").unlink(missing_ok=True)
                break
        snapshot = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
        proc = run_cli("split", "--policy", "debian", "--jobs", "1", root)
        assert proc.returncode == 1
        assert "No space left on device" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        for p, data in snapshot.items():
            now = p.read_bytes()
            if now != data:  # split completely, never half-written
                info = elfread.read_elf(p)
                assert not info.has_debug and info.section(".gnu_debuglink") is not None
        assert not list(root.rglob(".splitdebug-*"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_errors_cross_the_process_boundary_whole() -> None:
    """Forked workers send failures back pickled: each error must come back with its fields."""
    import pickle

    from splitdebug.errors import ElfError, PolicyError, ToolError
    for err in (ToolError("usr/bin/x", ["objcopy", "-g"], "objcopy: x: bad\n"), ElfError("usr/bin/y", "damaged"),
                PolicyError("p.yaml", 3, "tool", "not one of binutils, elfutils")):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and vars(back) == vars(err)
