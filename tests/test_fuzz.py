"""Fuzz: mutated real ELF files next to a good one. No uncaught exception; the good file is split."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import LIBRARY, PROGRAM, compile_c
from splitdebug import check
from splitdebug.elf import read as elfread
from splitdebug.tree import split as tree
from splitdebug.layout import PackageInfo, StageRoot
from splitdebug.policy import load_policy
from splitdebug.tree.rewrite import Tools

# CI runs a few seconds' worth, the same examples every time (a red CI must be reproducible);
# SPLITDEBUG_FULL=1 (or an explicit count) runs the long, random version. What it finds gets a
# test of its own (test_bad_input's odd-section-name came from here).
EXAMPLES = int(os.environ.get("SPLITDEBUG_FUZZ_EXAMPLES", "2000" if os.environ.get("SPLITDEBUG_FULL") else "25"))
RANDOM = bool(os.environ.get("SPLITDEBUG_FULL") or os.environ.get("SPLITDEBUG_FUZZ_EXAMPLES"))


class Seeds(dict):  # type: ignore[type-arg]
    def __repr__(self) -> str:  # hypothesis prints arguments; 100 kB of ELF helps nobody
        return f"Seeds({sorted(self)})"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    d = tmp_path_factory.mktemp("seeds")
    return Seeds(prog=compile_c(d / "prog", PROGRAM).read_bytes(),
                 lib=compile_c(d / "lib.so", LIBRARY, shared=True).read_bytes())


mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16)),
    st.tuples(st.just("header"), st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), min_size=1, max_size=4)),
)


def mutate(data: bytes, m: tuple) -> bytes:
    kind, arg = m
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[: arg % len(buf)])
    for off, val in arg:
        buf[off % len(buf)] = val
    return bytes(buf)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["prog", "lib"]), m=mutation, policy=st.sampled_from(["debian", "redhat"]))
def test_mutated_elf_never_crashes_split(tmp_path_factory: pytest.TempPathFactory, seeds: dict[str, bytes],
                                         which: str, m: tuple, policy: str) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "usr/bin").mkdir(parents=True)
    bad = root / "usr/bin/mutant"
    bad.write_bytes(mutate(seeds[which], m))
    bad.chmod(0o755)
    good = root / "usr/bin/good"
    good.write_bytes(seeds["prog"])
    good.chmod(0o755)
    pkg = PackageInfo("p", "1", "1", "x86_64")
    report = tree.split_tree(StageRoot(root), load_policy(policy), pkg, jobs=2, tools=Tools())
    assert all("\n" not in e and "unexpected" not in e for e in report.errors), report.errors
    if any("has no build-id" in e for e in report.errors):
        # The contract: an ELF without a build-id stops the run before anything is written.
        assert good.read_bytes() == seeds["prog"] and not (root / "usr/lib").exists()
    else:
        assert "/usr/bin/good" in [i for i, _ in report.split]
        info = elfread.read_elf(good)
        assert not info.has_debug and info.section(".gnu_debuglink") is not None
    # The checker reads the same tree: the mutant may be a finding, never a crash; the good file passes.
    findings = check.check_tree(StageRoot(root), load_policy(policy), pkg, jobs=1).findings
    assert all("\n" not in f.reason for f in findings)
    if not any("has no build-id" in e for e in report.errors):
        # Only findings the mutant causes (it is a copy of `good` with a changed byte: same build-id).
        assert not [f for f in findings if f.path == "/usr/bin/good" and f.severity == "error"
                    and "/usr/bin/mutant" not in f.reason], findings
    shutil.rmtree(root)
