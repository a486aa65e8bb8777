"""Races between OS processes: several spawned processes start one piece of work at the same moment, each on its
own connections to the test's database (tests/test_concurrency.py buys, tests/ledger/ charges and records)."""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["race_processes"]


class _Crashed:
    """Put on the results queue by a process whose target raised: its traceback, for the failing test."""

    def __init__(self, text: str) -> None:
        self.text = text


def _run(target: Callable[..., None], *args: Any) -> None:
    try:
        target(*args)
    except BaseException:
        args[-1].put(_Crashed(traceback.format_exc()))
        raise


def race_processes(target: Callable[..., None], args: list[tuple[Any, ...]], *, doing: str,
                   timeout: float = 120) -> list[Any]:
    """Starts one spawned OS process per entry of `args`, each running `target(*entry, go, results)` (a module
    function: tests/buyer_process.py, tests/ledger/processes.py) that puts a list of its outcomes on `results`;
    sets `go` once all are started so they race, and returns every process's outcomes together. Fails the test
    as soon as a process raises (with its traceback) or exits before putting its outcomes (with its exit code),
    when a process has not put its outcomes within `timeout` seconds, or did not then exit cleanly (code 0)."""
    spawn = multiprocessing.get_context("spawn")
    go, results = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=_run, args=(target, *entry, go, results)) for entry in args]
    for worker in workers:
        worker.start()
    go.set()
    outcomes: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        finished = 0
        while finished < len(workers):
            try:
                got = results.get(timeout=0.2)
            except queue.Empty:
                # A process that died put nothing more: fail now rather than at the timeout. What it put before
                # exiting is already in the queue's pipe, so one more short look tells the two apart.
                if any(w.exitcode not in (None, 0) for w in workers) or all(w.exitcode is not None for w in workers):
                    try:
                        got = results.get(timeout=1)
                    except queue.Empty:
                        pytest.fail(f"a {doing} process exited without its outcomes: exit codes "
                                    f"{[w.exitcode for w in workers]} (None: still running)")
                elif time.monotonic() > deadline:
                    pytest.fail(f"a {doing} process did not finish within {timeout:g} s")
                else:
                    continue
            if isinstance(got, _Crashed):
                pytest.fail(f"a {doing} process raised:\n{got.text}")
            outcomes.extend(got)
            finished += 1
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    exit_codes = [worker.exitcode for worker in workers]
    assert exit_codes == [0] * len(workers), f"{doing} processes exited with {exit_codes}"
    return outcomes
