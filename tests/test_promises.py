"""README promises that had no test of their own, each judged by an independent source (the file's bytes
before and after, zlib, the kernel's limits, a child without root's rights), so breaking one fails here."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from conftest import LIBRARY, PROGRAM, REPO, SITE_SCONS, compile_c, env_with_package, make_tree, run_cli
from splitdebug.elf import read as elfread


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(top: Path) -> dict[str, str]:
    """Every file and link under `top`, by content or target."""
    out = {}
    for p in sorted(top.rglob("*")):
        rel = p.relative_to(top).as_posix()
        out[rel] = ("-> " + os.readlink(p)) if p.is_symlink() else digest(p) if p.is_file() else "dir"
    return out


# --------------------------------------------------------------------------- symlinked directories


@pytest.mark.parametrize("kind", ["relative", "absolute", "chain", "into-debug-root"])
def test_symlinked_directory_out_of_the_root_is_never_followed(tmp_path: Path, kind: str) -> None:
    """An unstripped ELF outside ROOT, reachable through a symlinked directory inside it, stays as it is,
    and nothing is written outside (README: "symlinks are never followed out of ROOT")."""
    outside = tmp_path / "outside"
    compile_c(outside / "bin/victim", PROGRAM)
    root = make_tree(tmp_path / "root").root
    before = snapshot(outside)
    if kind == "relative":
        os.symlink("../../../outside/bin", root / "usr/lib/escape")
    elif kind == "absolute":
        os.symlink(str(outside / "bin"), root / "usr/lib/escape")
    elif kind == "chain":
        os.symlink("hop", root / "usr/lib/escape")
        os.symlink("../../../outside/bin", root / "usr/lib/hop")
    else:  # the debug root itself leads out: debug files must not land there
        (root / "usr/lib/debug").mkdir(parents=True, exist_ok=True)
        os.symlink(str(outside / "bin"), root / "usr/lib/debug/.build-id")
    proc = run_cli("split", "--policy", "debian", root)
    assert "Traceback" not in proc.stderr
    assert snapshot(outside) == before, proc.stdout + proc.stderr
    if kind != "into-debug-root":
        assert proc.returncode == 0, proc.stderr
        assert elfread.read_elf(root / "usr/bin/prog").is_stripped  # the tree itself was split
    else:
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) >= 1


# --------------------------------------------------------------------------- symlinked_binaries: debug_link


def test_symlinked_binaries_debug_link(tmp_path: Path) -> None:
    """A policy asking for `<link>.debug -> <target>.debug` gets them (find-debuginfo's links for symlinked
    binaries), check wants them, and gdb finds the debug file through the link's name."""
    policy = tmp_path / "links.yaml"
    policy.write_text((REPO / "configs/yocto.yaml").read_text()
                      .replace("name: yocto", "name: links")
                      .replace('debug_file: "{dir}/.debug/{name}"', 'debug_file: "{debug_root}{path}.debug"')
                      .replace("symlinked_binaries: ignore", "symlinked_binaries: debug_link"))
    assert "symlinked_binaries: debug_link" in policy.read_text()
    root = tmp_path / "root"
    compile_c(root / "usr/lib/libx.so.1.0", LIBRARY, shared=True)
    os.symlink("libx.so.1.0", root / "usr/lib/libx.so.1")
    assert run_cli("split", "--policy", policy, root).returncode == 0
    debug_files = [p for p in root.rglob("*.debug") if not p.is_symlink()]
    links = [p for p in root.rglob("*.debug") if p.is_symlink()]
    assert len(debug_files) == 1 and len(links) == 1, sorted(map(str, root.rglob("*")))
    assert links[0].name == "libx.so.1.debug" and links[0].resolve() == debug_files[0].resolve()
    assert run_cli("check", "--policy", policy, root).returncode == 0
    links[0].unlink()
    proc = run_cli("check", "--policy", policy, "--format", "json", root)
    assert proc.returncode == 1
    assert {f["rule"] for f in json.loads(proc.stdout)["findings"]} == {"SD501"}


# --------------------------------------------------------------------------- exit 3 and the traceback switch


INTERNAL = ("import sys; from splitdebug import cli; import splitdebug.cli.split as s; "
            "s.execute = lambda args: 1 // 0; sys.exit(cli.main(['split', '--policy', 'debian', '/nonexistent']))")


def test_internal_error_is_exit_3_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", INTERNAL], capture_output=True, text=True, env=env_with_package())
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == ["splitdebug: internal error: ZeroDivisionError: integer division or modulo "
                                        "by zero (set SPLITDEBUG_TRACEBACK=1 for details)"]
    env = dict(env_with_package(), SPLITDEBUG_TRACEBACK="1")
    proc = subprocess.run([sys.executable, "-c", INTERNAL], capture_output=True, text=True, env=env)
    assert proc.returncode == 1 and "Traceback (most recent call last)" in proc.stderr


# --------------------------------------------------------------------------- SD902 without root's rights


def test_unreadable_directory_is_sd902_for_a_user(tmp_path: Path) -> None:
    """What a CI job without root sees: a directory or a file it cannot read is an error, not a silent skip."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.fail("setpriv and root are needed to run the check as another user")
    base = Path(tempfile.mkdtemp(prefix="splitdebug-sd902-"))
    try:
        base.chmod(0o755)
        shutil.copytree(SITE_SCONS, base / "site_scons", symlinks=True)
        shutil.copytree(REPO / "configs", base / "configs")
        root = make_tree(base / "root").root
        assert run_cli("split", "--policy", "debian", root).returncode == 0
        secret = root / "usr/share/secret"
        secret.mkdir()
        (secret / "file").write_text("x\n")
        secret.chmod(0o700)
        private = root / "usr/share/demo/private.txt"  # a file it cannot read, in a directory it can
        private.write_text("x\n")
        private.chmod(0o600)
        for p in [base, *base.rglob("*")]:
            if p != secret and p != private and not p.is_relative_to(secret) and not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o555 if p.is_dir() else p.stat().st_mode | 0o444)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                               "-m", "splitdebug", "check", "--policy", "debian", "--format", "json", str(root)],
                              capture_output=True, text=True, cwd=base,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(base / "site_scons")})
        assert proc.returncode == 1, proc.stderr
        findings = json.loads(proc.stdout)["findings"]
        assert sorted((f["rule"], f["path"], f["severity"]) for f in findings) == [
            ("SD902", "/usr/share/demo/private.txt", "error"), ("SD902", "/usr/share/secret", "error")]
    finally:
        shutil.rmtree(base)


# --------------------------------------------------------------------------- export lists by soname


def test_check_exports_by_soname_and_required(tmp_path: Path) -> None:
    root = tmp_path / "root"
    compile_c(root / "usr/lib/libx.so.1.0", LIBRARY, shared=True, flags=("-Wl,-soname,libx.so.1",))
    assert run_cli("split", "--policy", "debian", root).returncode == 0
    lists = tmp_path / "exports"
    lists.mkdir()
    exported = subprocess.run(["nm", "-D", "--defined-only", str(root / "usr/lib/libx.so.1.0")], capture_output=True,
                              text=True, check=True).stdout.split()[2::3]
    (lists / "libx.so.1.exports").write_text("".join(f"{n}\n" for n in exported))  # by soname only
    proc = run_cli("check", "--policy", "debian", "--exports", lists, "--format", "json", root)
    assert proc.returncode == 0 and json.loads(proc.stdout)["findings"] == [], proc.stdout
    (lists / "libx.so.1.exports").write_text("".join(f"{n}\n" for n in exported[1:]))
    proc = run_cli("check", "--policy", "debian", "--exports", lists, "--format", "json", root)
    assert proc.returncode == 1 and {f["rule"] for f in json.loads(proc.stdout)["findings"]} == {"SD701"}
    # No list at all: a warning, an error when the policy requires lists.
    (lists / "libx.so.1.exports").unlink()
    proc = run_cli("check", "--policy", "debian", "--exports", lists, "--format", "json", root)
    assert proc.returncode == 0
    assert [(f["rule"], f["severity"]) for f in json.loads(proc.stdout)["findings"]] == [("SD702", "warning")]
    strict = tmp_path / "strict.yaml"
    strict.write_text((REPO / "configs/debian.yaml").read_text().replace("require_export_list: false",
                                                                         "require_export_list: true"))
    proc = run_cli("check", "--policy", strict, "--exports", lists, "--format", "json", root)
    assert proc.returncode == 1
    assert [(f["rule"], f["severity"]) for f in json.loads(proc.stdout)["findings"]] == [("SD702", "error")]


# --------------------------------------------------------------------------- atomic writes, directly


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("engine", ["builtin", "tools"])
def test_a_write_that_fails_half_way_leaves_the_binary_as_it_was(tmp_path: Path, engine: str) -> None:
    """RLIMIT_FSIZE in the child: every output larger than 4 KiB fails part-way. The binary must be
    byte-identical to before (temp file + rename), and no temporary file is left."""
    root = tmp_path / "root"
    prog = compile_c(root / "usr/bin/prog", PROGRAM + "int big[1] = {1};\n" + "char pad[20000] = {1};\n")
    before = digest(prog)
    env = dict(env_with_package(), SPLITDEBUG_ENGINE=engine)
    proc = subprocess.run([sys.executable, "-m", "splitdebug", "split", "--policy", "debian", "--jobs", "1", str(root)],
                          capture_output=True, text=True, env=env, preexec_fn=lambda: _limit_file_size(4096))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert digest(prog) == before
    assert [p for p in root.rglob("*") if p.name.startswith(".splitdebug-")] == []
    # And the next run, without the limit, completes the tree.
    assert run_cli("split", "--policy", "debian", root).returncode == 0
    assert elfread.read_elf(prog).is_stripped


@pytest.mark.parametrize("engine", ["builtin", "tools"])
def test_the_last_step_is_a_rename(tmp_path: Path, engine: str) -> None:
    """Every rename the split makes fails (strace injects EIO): the binary is still byte-identical, so
    nothing replaced it by another way (unlink + copy would leave a new or half-written file)."""
    root = tmp_path / "root"
    prog = compile_c(root / "usr/bin/prog", PROGRAM)
    lib = compile_c(root / "usr/lib/libx.so.1", LIBRARY, shared=True)
    before = {p: digest(p) for p in (prog, lib)}
    env = dict(env_with_package(), SPLITDEBUG_ENGINE=engine)
    calls = "rename,renameat,renameat2"
    proc = subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "-e", f"trace={calls}",
                           "-e", f"inject={calls}:error=EIO", sys.executable, "-m", "splitdebug", "split",
                           "--policy", "debian", "--jobs", "1", str(root)], capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert {p: digest(p) for p in (prog, lib)} == before
    assert "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- the CRC, against zlib


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, (1 << 20) + 3, (4 << 20) + 17])
def test_crc32_file_is_zlibs(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert elfread.crc32_file(path) == zlib.crc32(data)
