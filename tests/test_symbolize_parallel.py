"""The cold path's shortcuts answer as the long way does: a log read ahead has its modules' indexes
filled on every core (symbolize/parallel.py), and a unit's functions are decoded one by one when an
address falls in them, also from a cached index (units.CuFiller)."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from splitdebug.elf.read import read_elf
from splitdebug.symbolize import Options, symbolize_lines
from splitdebug.symbolize import cache
from splitdebug.symbolize.parallel import share
from symbolize_helpers import code_addresses, eu_addr2line, ours
from test_symbolize import (Compared, Crash, cache_env, compared, crash, crash_tree, tree_with_corrupt_library,  # noqa: F401 (fixtures)
                            function_vaddr, run_crash, symbolize_cli)


def test_share_runs_each_task_once_here_and_in_a_child(tmp_path: Path) -> None:
    here: list[int] = []

    def in_child() -> object:
        def work(task: int) -> None:
            time.sleep(0.01)
            (tmp_path / str(task)).write_text(str(os.getpid()))
        return work

    def in_this(task: int) -> None:
        time.sleep(0.01)
        here.append(task)

    share(list(range(40)), in_this, in_child, 2)  # type: ignore[arg-type]
    by_child = sorted(int(p.name) for p in tmp_path.iterdir())
    assert sorted(here + by_child) == list(range(40))  # each once
    assert here and by_child  # both took some
    assert {p.read_text() for p in tmp_path.iterdir()} != {str(os.getpid())}


def test_a_log_read_ahead_answers_as_line_by_line(compared: Compared, tmp_path: Path) -> None:  # noqa: F811
    """The C program and the two C++ libraries of a dwz multifile, 3 x 300 random addresses
    interleaved: read ahead (cold cache, two processes) and line by line (no cache) print the same."""
    log = []
    for path in compared.unstripped.values():
        bid = read_elf(path).build_id
        log += [f"BUILDID:{bid} {a:#x}" for a in code_addresses(path, 300, 18)]
    rng = random.Random(18)
    rng.shuffle(log)
    serial_warnings: list[str] = []
    ahead_warnings: list[str] = []
    serial = list(symbolize_lines(log, Options(roots=(compared.root,), cache_dir=None), fmt="json",
                                  warn=serial_warnings.append))
    options = Options(roots=(compared.root,), cache_dir=tmp_path / "cache")
    ahead = list(symbolize_lines(log, options, fmt="json", warn=ahead_warnings.append, read_ahead=True))
    assert len(serial) >= len(log) and sum('"dwarf"' in line for line in serial) >= len(log) * 0.9
    assert ahead == serial
    assert ahead_warnings == serial_warnings
    assert len(list((tmp_path / "cache").rglob("*.dwarf.pickle"))) == 3


def test_a_corrupt_debug_file_read_ahead_is_still_one_warning(crash: Crash, tmp_path: Path) -> None:  # noqa: F811
    """A log file (read ahead): the child that meets the corrupt file keeps its warning to itself and
    this process, reading the module again, gives it once."""
    root = tree_with_corrupt_library(crash, tmp_path)
    log = tmp_path / "crash.log"
    log.write_text(run_crash(root))
    piped = symbolize_cli(log.read_text(), "--root", root, env=cache_env(tmp_path / "piped"))
    from_file = symbolize_cli("", "--root", root, log, env=cache_env(tmp_path / "file"))
    assert from_file.returncode == 0, from_file.stderr
    assert len(from_file.stderr.splitlines()) == 1, from_file.stderr
    assert (from_file.stdout, from_file.stderr) == (piped.stdout, piped.stderr)


def test_functions_are_decoded_when_asked_and_later_from_the_cache(compared: Compared,  # noqa: F811
                                                                    tmp_path: Path) -> None:
    """One address in `fold` leaves the unit's other functions undecoded in the cached index; a later
    run asking about `main` decodes it through the cached index and answers as eu-addr2line."""
    binary = compared.unstripped["inline_c"]
    bid = read_elf(binary).build_id
    assert bid
    options = Options(roots=(compared.root,), cache_dir=tmp_path / "cache")
    fold, main = function_vaddr(binary, "fold"), function_vaddr(binary, "main")
    list(symbolize_lines([f"BUILDID:{bid} {fold:#x}"], options))  # stores the index

    def pending() -> set[int]:
        index = cache.load(tmp_path / "cache", bid, "dwarf")
        assert index is not None
        return {off for cu in index.scope_pending for _, _, off in cu}

    before = pending()
    assert before  # main and the other functions: not decoded
    assert ours(bid, [main], options)[0] == eu_addr2line(binary, [main])  # through the cached index
    list(symbolize_lines([f"BUILDID:{bid} {main:#x}"], options))
    assert pending() < before
