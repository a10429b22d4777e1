"""Filling the indexes of a run's modules on every core before answering (a log read ahead): the
cold cost is decoding each module's units in Python, and the modules are independent.

This process and forked children take the modules in turn from a shared counter (the largest first);
a child's indexes reach this process through the on-disk cache (cache.py), as a warm run reads them.
A child stores a module only when it met no warning, so that this process, reading that module again,
gives every warning itself; a child that fails leaves its modules to be read here, serially, as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def share(tasks: Sequence[T], here: Callable[[T], None], child: Callable[[], Callable[[T], None]],
          jobs: int) -> None:
    """Run every task once: `here` in this process, and in each of jobs - 1 forked children the
    function `child()` makes there. Tasks are taken in order, so put the costly ones first."""
    jobs = min(jobs, len(tasks))
    if jobs < 2:
        for task in tasks:
            here(task)
        return
    try:
        import multiprocessing  # only a run that shares work pays for the import

        ctx = multiprocessing.get_context("fork")
        counter = ctx.Value("l", 0)
    except (ImportError, ValueError, OSError):  # no fork, or no /dev/shm for the lock: serially
        for task in tasks:
            here(task)
        return

    def take() -> int:
        with counter.get_lock():
            i = int(counter.value)
            counter.value = i + 1
        return i

    def run_child() -> None:
        try:
            work = child()
            while (i := take()) < len(tasks):
                work(tasks[i])
        except BaseException:  # noqa: BLE001 - what a child could not do, this process does again
            os._exit(1)
        os._exit(0)

    sys.stdout.flush()  # a child must not write this process's buffered output a second time
    sys.stderr.flush()
    children = []
    for _ in range(jobs - 1):
        proc = ctx.Process(target=run_child, daemon=True)
        try:
            proc.start()
        except OSError:
            break
        children.append(proc)
    while (i := take()) < len(tasks):
        here(tasks[i])
    for proc in children:
        proc.join()
