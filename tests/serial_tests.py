"""Tests that must run alone when the suite runs on several workers (`make test` uses pytest-xdist).

A test marked `serial` (and every `slow` one: they start several shop processes and race them) runs while
no other worker runs a test: the other workers wait before their next test until it has finished. Without
xdist nothing changes.

A readers-writer lock over two files (fcntl.flock) in the run's basetemp, shared by its workers: every test holds the
main lock shared, a serial test holds it exclusively. A waiting serial test holds the turnstile, so no new
test starts meanwhile and it cannot be starved.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

__all__ = ["runs_alone"]


def runs_alone(item: pytest.Item) -> bool:
    return item.get_closest_marker("serial") is not None or item.get_closest_marker("slow") is not None


class _SerialLock:
    def __init__(self, folder: Path) -> None:
        self._turnstile: IO[bytes] = open(folder / "turnstile", "ab")  # noqa: SIM115 - held for the session
        self._main: IO[bytes] = open(folder / "main", "ab")  # noqa: SIM115

    def hold(self, alone: bool) -> None:
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._main, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)

    def release(self) -> None:
        fcntl.flock(self._main, fcntl.LOCK_UN)


_lock: _SerialLock | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _lock
    if hasattr(config, "workerinput"):  # an xdist worker: its basetemp is <the run's basetemp>/<worker id>
        _lock = _SerialLock(Path(config.option.basetemp).parent)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if _lock is None:
        return (yield)
    _lock.hold(alone=runs_alone(item))
    try:
        return (yield)
    finally:
        _lock.release()
