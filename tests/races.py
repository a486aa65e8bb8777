"""Races between OS processes: several spawned processes start one piece of work at the same moment, each on its
own connections to the test's database (tests/test_concurrency.py buys, tests/ledger/ charges and records,
tests/risk/ checks out and pays)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

import risk_clock

__all__ = ["race_processes"]


class _Crashed:
    """Put on the results queue by a process whose target raised: its traceback, for the failing test."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Start:
    """What a racing process waits on, as on an Event (`go.wait()`): its first `wait` tells the harness this process
    is ready (everything before it, imports, the app, warm connections, is done), then waits until every process is."""

    def __init__(self, ready: Any, go: Any) -> None:
        self._ready, self._go, self._told = ready, go, False

    def wait(self, timeout: float | None = None) -> bool:
        if not self._told:
            self._told = True
            self._ready.release()
        return bool(self._go.wait(timeout))

    def is_set(self) -> bool:
        return bool(self._go.is_set())


def _run(target: Callable[..., None], clock_delta: dt.timedelta, *args: Any) -> None:
    try:
        risk_clock.pin_in_this_process(clock_delta)  # the test process's risk clock, to the microsecond
        target(*args)
    except BaseException:
        args[-1].put(_Crashed(traceback.format_exc()))
        raise


def race_processes(target: Callable[..., None], args: list[tuple[Any, ...]], *, doing: str,
                   timeout: float = 120, risk_clock_now: Callable[[], dt.datetime] | None = None) -> list[Any]:
    """Starts one spawned OS process per entry of `args`, each running `target(*entry, go, results)` (a module
    function: tests/buyer_process.py, tests/ledger/processes.py) that puts a list of its outcomes on `results`;
    releases `go` once every process waits on it (`go.wait()` says the process is ready), so they race from one
    moment, and returns every process's outcomes together. Every risk runtime a process builds reads the test
    process's risk clock (`risk_clock_now`, else the clock the tests pinned last: risk_clock.py), so a window
    counts the same in every process. Fails the test as soon as a process raises (with its traceback) or exits
    before putting its outcomes (with its exit code), when a process is not ready or has not put its outcomes within
    `timeout` seconds, or did not then exit cleanly (code 0)."""
    from quanyi.db import utcnow

    spawn = multiprocessing.get_context("spawn")
    ready, go, results = spawn.Semaphore(0), spawn.Event(), spawn.Queue()
    start = _Start(ready, go)
    delta = risk_clock_now() - utcnow() if risk_clock_now is not None else risk_clock.pinned_delta()
    workers = [spawn.Process(target=_run, args=(target, delta, *entry, start, results)) for entry in args]
    outcomes: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        for worker in workers:
            worker.start()
        waiting = len(workers)
        while waiting:
            if ready.acquire(timeout=0.2):
                waiting -= 1
            elif any(w.exitcode is not None for w in workers):
                break  # one ended before it was ready: the results below say how
            elif time.monotonic() > deadline:
                pytest.fail(f"a {doing} process was not ready within {timeout:g} s")
        go.set()
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
            if worker.pid is None:
                continue
            if not go.is_set():  # failed before the race: none of them is doing anything worth waiting for
                worker.kill()
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    exit_codes = [worker.exitcode for worker in workers]
    assert exit_codes == [0] * len(workers), f"{doing} processes exited with {exit_codes}"
    return outcomes
