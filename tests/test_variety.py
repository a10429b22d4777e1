"""A variety corpus (issue 13): small programs built on the fly by every toolchain the bootstrap installs
(tests/variety_corpus.py), each split and judged by the real tools: it runs with the same output (a foreign
one under qemu-user), gdb (gdb-multiarch) reads the stripped binary and finds a line through the debug
file, eu-elflint says nothing of the stripped binary and the debug file that it does not say of the input
or of eu-strip's own split, eu-unstrip recombines them, a second split changes no byte, and `check` passes.

CI runs each kind not marked full once, policies and engines taken in turn; SPLITDEBUG_FULL=1 runs every
kind under every policy with both engines.
"""

from __future__ import annotations

import json
import os
import subprocess
from itertools import cycle
from pathlib import Path

import pytest

from conftest import resolves, run_cli
from test_toolchains import ENGINES, POLICIES, debug_file_of, elflint_messages, in_tree, split_tree, tree_digest
from variety_corpus import KINDS, Kind, make, missing_tools, run

# Known failures, each a bug to fix: strict xfail, so that a fix shows up as XPASS.
KNOWN: dict[tuple[str, str, str], str] = {}


def param(kind: str, policy: str, engine: str) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[kind, policy, engine])] \
        if (kind, policy, engine) in KNOWN else []
    return pytest.param(kind, policy, engine, id=f"{kind}-{policy}-{engine}", marks=marks)


def cases() -> list:
    if os.environ.get("SPLITDEBUG_FULL"):
        return [param(k, p, e) for k in KINDS for p in POLICIES for e in ENGINES]
    turns = cycle([(p, e) for e in ENGINES for p in POLICIES])
    quick = [k for k, kind in KINDS.items() if not kind.full]
    return [param(k, *(KINDS[k].quick or turn)) for k, turn in zip(quick, turns, strict=False)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kind built once, on first use (a kind whose toolchain is missing is skipped, not built)."""
    d = tmp_path_factory.mktemp("variety")
    built: dict[str, Path] = {}

    class Lazy(dict[str, Path]):
        def __missing__(self, name: str) -> Path:
            built[name] = make(KINDS[name], d / name / "prog")
            return built[name]
    return Lazy()


def reference(kind: Kind, original: Path, tmp: Path) -> tuple[set[str], set[str], bool]:
    """What eu-elflint says of the input and of the tools' own splits of it (eu-strip's, its debug
    file compressed by objcopy as find-debuginfo's is, and objcopy's): (of binaries, of debug files,
    whether eu-unstrip recombines eu-strip's split)."""
    binaries, debug_files = elflint_messages(original), elflint_messages(original, "-d")
    ref, ref_debug = tmp / "ref", tmp / "ref.debug"
    subprocess.run(["eu-strip", "-f", str(ref_debug), "-o", str(ref), str(original)], check=True)
    binaries |= elflint_messages(ref)
    debug_files |= elflint_messages(ref_debug, "-d")
    unstrips = subprocess.run(["eu-unstrip", "-o", str(tmp / "ref.combined"), str(ref), str(ref_debug)],
                              capture_output=True).returncode == 0
    if kind.objcopy:
        subprocess.run([kind.objcopy, "--compress-debug-sections=zlib", str(ref_debug)], check=True)
        debug_files |= elflint_messages(ref_debug, "-d")
        subprocess.run([kind.objcopy, "--only-keep-debug", str(original), str(ref_debug)], check=True)
        subprocess.run([kind.objcopy, "--strip-all", str(original), str(ref)], check=True)
        binaries |= elflint_messages(ref)
        debug_files |= elflint_messages(ref_debug, "-d")
    return binaries, debug_files, unstrips


def linked_names(path: Path) -> dict[str, str]:
    """{section: name of the section its sh_link names}, as readelf -S shows them, for the sections
    whose name is unique in `path`."""
    rows = []
    for line in subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        if line.lstrip().startswith("[") and "]" in line and "Name" not in line:
            fields = line.split("]", 1)[1].split()  # name, type, ... and the last three: Lk, Inf, Al
            rows.append((fields[0], int(fields[-3])))
    names = [n for n, _ in rows]
    return {n: names[lk] if 0 < lk < len(names) else "" for n, lk in rows if n and names.count(n) == 1}


def links_kept(ours: Path, original: Path) -> list[str]:
    """Each section of `ours` whose sh_link names another section than its namesake's in `original`
    (objcopy --only-keep-debug reorders Go PIE's and patchelf'd files' headers but keeps the numbers).
    A link the input lacks (objcopy gives Go's .gnu.version one) or ours lacks (to a removed .symtab)
    is no such change; sh_info is left out: objcopy points .rela.plt at .got.plt where Go's is .plt."""
    before, after = linked_names(original), linked_names(ours)
    return [f"{n} links {after[n]} (was {before[n]})" for n in after
            if before.get(n) and after[n] and after[n] != before[n]]


def gdb_line(kind: Kind, debug_dir: Path, binary: Path) -> str:
    gdb = "gdb-multiarch" if kind.foreign else "gdb"
    proc = subprocess.run([gdb, "-nx", "-batch", "-ex", f"set debug-file-directory {debug_dir}",
                           "-ex", f"file {binary}", "-ex", f"info line {kind.function}"],
                          capture_output=True, text=True, timeout=120)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("name, policy, engine", cases())
def test_variety(corpus: dict[str, Path], name: str, policy: str, engine: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    if missing := missing_tools(kind):
        pytest.skip(f"{', '.join(missing)} not installed (./bootstrap installs them)")
    original = corpus[name]
    root = tmp_path / "root"
    binary = in_tree(original, root, "usr/bin/prog")
    # The tools engine needs binutils that read the file: a foreign one takes the cross objcopy.
    cross = {"OBJCOPY": kind.objcopy, "STRIP": kind.objcopy.replace("objcopy", "strip")} \
        if kind.foreign and kind.objcopy else {}
    first = split_tree(root, policy, engine, cross)
    if engine == "tools" and kind.foreign and not kind.objcopy:  # no cross binutils: left alone, said so
        assert first.returncode == 0 and "0 binaries split" in first.stdout and "left alone" in first.stderr
        return
    assert first.returncode == 0 and "1 binaries split" in first.stdout, first.stdout + first.stderr
    assert run(kind, binary) == run(kind, original)
    debug_dir = root / "usr/lib/debug" if policy != "yocto" else tmp_path / "none"  # yocto: beside it
    gdb = gdb_line(kind, debug_dir, binary)
    assert resolves(gdb, "main" if kind.lang == "go" else "prog"), gdb
    debug = debug_file_of(root, binary)
    of_binaries, of_debug_files, unstrips = reference(kind, original, tmp_path)
    assert elflint_messages(binary) <= of_binaries
    assert elflint_messages(debug, "-d") <= of_debug_files
    assert links_kept(binary, original) == [] and links_kept(debug, original) == []
    unstrip = subprocess.run(["eu-unstrip", "-o", str(tmp_path / "combined"), str(binary), str(debug)],
                             capture_output=True, text=True)
    # elfutils 0.188's eu-unstrip fails on eu-strip's own split of a static-pie or a Go PIE ("cannot get
    # symbol table entry: invalid section index"): a limit of the oracle, not of the split.
    assert unstrip.returncode == 0 or not unstrips, unstrip.stderr
    before = tree_digest(root)
    again = split_tree(root, policy, engine, cross)
    assert again.returncode == 0 and "0 binaries split" in again.stdout, again.stdout + again.stderr
    assert tree_digest(root) == before
    check = run_cli("check", "--policy", policy, "--package", "p", "--version", "1", "--release", "1",
                    "--arch", "x86_64", "--format", "json", root)
    rules = {f["rule"] for f in json.loads(check.stdout)["findings"] if f["severity"] == "error"}
    assert rules == set(), check.stdout
