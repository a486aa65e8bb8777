"""Races between OS processes: several spawned processes start one piece of work at the same moment, each on its
own connections to the test's database (tests/test_concurrency.py buys, tests/ledger/ charges and records)."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["race_processes"]


def race_processes(target: Callable[..., None], args: list[tuple[Any, ...]], *, doing: str,
                   timeout: float = 120) -> list[Any]:
    """Starts one spawned OS process per entry of `args`, each running `target(*entry, go, results)` (a module
    function: tests/buyer_process.py, tests/ledger/processes.py) that puts a list of its outcomes on `results`;
    sets `go` once all are started so they race, and returns every process's outcomes together. Fails the test
    when a process has not put its outcomes within `timeout` seconds, or did not then exit cleanly (code 0)."""
    spawn = multiprocessing.get_context("spawn")
    go, results = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=target, args=(*entry, go, results)) for entry in args]
    for worker in workers:
        worker.start()
    go.set()
    outcomes: list[Any] = []
    try:
        for _ in workers:
            outcomes.extend(results.get(timeout=timeout))
    except queue.Empty:
        pytest.fail(f"a {doing} process did not finish within {timeout:g} s")
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    exit_codes = [worker.exitcode for worker in workers]
    assert exit_codes == [0] * len(workers), f"{doing} processes exited with {exit_codes}"
    return outcomes
