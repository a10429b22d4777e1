"""A variety corpus (issue 13): small programs built on the fly in many shapes, each split and judged by
the real tools: it runs with the same output, gdb reads the stripped binary, eu-unstrip recombines it with
its debug file, a second split changes no byte, and `check` passes the tree.

CI runs each kind once, policies and engines taken in turn (well under a minute); SPLITDEBUG_FULL=1 runs
every kind under every policy with both engines.
"""

from __future__ import annotations

import json
import os
import subprocess
from itertools import cycle
from pathlib import Path

import pytest

from test_toolchains import ENGINES, POLICIES, build, debug_file_of, in_tree, split_tree, tree_digest
from conftest import run_cli

SOURCE = """
#include <stdio.h>
#include <string.h>
static char big[BSS_SIZE];
static __thread int tls_counter = 3;
int variety_entry(const char *s) { tls_counter += (int)strlen(s); big[tls_counter] = 1; return tls_counter; }
int main(int argc, char **argv) { printf("variety %d %d\\n", variety_entry(argv[argc - 1]), big[4]); return 0; }
"""

# name: (compiler flags, .bss size, whether to add a .gnu_debuglink of its own first)
KINDS: dict[str, tuple[tuple[str, ...], int, bool]] = {
    "pie": ((), 16, False),
    "static": (("-static",), 16, False),
    "static-pie": (("-static-pie",), 16, False),
    "m32": (("-m32",), 16, False),
    "split-dwarf": (("-gsplit-dwarf",), 16, False),
    "gz-zlib": (("-gz=zlib",), 16, False),
    "separate-code": (("-Wl,-z,separate-code",), 16, False),
    "noseparate-code": (("-Wl,-z,noseparate-code",), 16, False),
    "debuglink": ((), 16, True),
    "huge-bss": ((), 256 << 20, False),
    "build-id-md5": (("-Wl,--build-id=md5",), 16, False),
    "build-id-8": (("-Wl,--build-id=0x0102030405060708",), 16, False),
}
# md5 (16 bytes) and an 8-byte id (lld's default length) are what gdb and elfutils read: every policy
# accepts 8, 16 and 20 bytes (build_id_bytes), so these split and pass check like any other.


# Known failures, each a bug to fix: strict xfail, so that a fix shows up as XPASS.
KNOWN = {
    ("static", "redhat", "tools"): "eu-strip keeps the .symtab a static executable's .rela.plt links (SD102), "
                                   "and the minidebuginfo made from its debug file, which then has no "
                                   ".symtab, is an empty xz stream (SD105)",
}


def param(kind: str, policy: str, engine: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[kind, policy, engine])] \
        if (kind, policy, engine) in KNOWN else []
    return pytest.param(kind, policy, engine, id=f"{kind}-{policy}-{engine}", marks=marks)


def cases() -> list:
    if os.environ.get("SPLITDEBUG_FULL"):
        return [param(k, p, e) for k in KINDS for p in POLICIES for e in ENGINES]
    turns = cycle([(p, e) for e in ENGINES for p in POLICIES])
    return [param(k, *turn) for k, turn in zip(KINDS, turns, strict=False)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("variety")
    out = {}
    for name, (flags, bss, own_link) in KINDS.items():
        # -gsplit-dwarf writes the .dwo beside the output: each kind in a directory of its own.
        exe = build(d / name / "prog", SOURCE.replace("BSS_SIZE", str(bss)), *flags)
        if own_link:
            (d / name / "old.debug").write_bytes(b"an older debug file\n")
            subprocess.run(["objcopy", f"--add-gnu-debuglink={d / name / 'old.debug'}", str(exe)], check=True)
        out[name] = exe
    return out


def run(binary: Path) -> str:
    return subprocess.run([str(binary), "abc"], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("kind, policy, engine", cases())
def test_variety(corpus: dict[str, Path], kind: str, policy: str, engine: str, tmp_path: Path) -> None:
    original = corpus[kind]
    root = tmp_path / "root"
    binary = in_tree(original, root, "usr/bin/prog")
    first = split_tree(root, policy, engine)
    assert first.returncode == 0 and "1 binaries split" in first.stdout, first.stdout + first.stderr
    assert run(binary) == run(original)
    debug_dir = root / "usr/lib/debug" if policy != "yocto" else tmp_path / "none"  # yocto: beside it
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-ex", f"set debug-file-directory {debug_dir}",
                          "-ex", f"file {binary}", "-ex", "info line variety_entry"], capture_output=True, text=True)
    assert "Line " in gdb.stdout and "not in executable format" not in gdb.stderr, gdb.stdout + gdb.stderr
    debug = debug_file_of(root, binary)
    unstrip = subprocess.run(["eu-unstrip", "-o", str(tmp_path / "combined"), str(binary), str(debug)],
                             capture_output=True, text=True)
    # elfutils 0.188's eu-unstrip fails the same way on objcopy's and eu-strip's own split of a
    # static-pie ("cannot get symbol table entry: invalid section index"): a limit of the oracle.
    assert unstrip.returncode == 0 or kind == "static-pie", unstrip.stderr
    before = tree_digest(root)
    again = split_tree(root, policy, engine)
    assert again.returncode == 0 and "0 binaries split" in again.stdout, again.stdout + again.stderr
    assert tree_digest(root) == before
    check = run_cli("check", "--policy", policy, "--package", "p", "--version", "1", "--release", "1",
                    "--arch", "x86_64", "--format", "json", root)
    rules = {f["rule"] for f in json.loads(check.stdout)["findings"] if f["severity"] == "error"}
    assert rules == set(), check.stdout
