"""The process-race harness fails a test as soon as one of its processes dies, saying how, not at its timeout."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from races import race_processes


def _outcome(go: Any, results: Any) -> None:
    go.wait()
    results.put(["ok"])


def _raise(go: Any, results: Any) -> None:
    go.wait()
    raise RuntimeError("boom in the child")


def _die(go: Any, results: Any) -> None:
    go.wait()
    os._exit(7)


@pytest.mark.parametrize(("target", "said"), [(_raise, r"raised:\n(.|\n)*RuntimeError: boom in the child"),
                                               (_die, r"without its outcomes: exit codes \[(0|None), 7\]")])
def test_a_crashing_process_fails_the_race_at_once_saying_how(target, said):
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=said):
        race_processes(_dispatch, [("ok",), (target.__name__,)], doing="self-test", timeout=60)
    assert time.monotonic() - started < 30


def test_the_race_returns_every_outcome():
    assert race_processes(_dispatch, [("ok",), ("ok",)], doing="self-test", timeout=60) == ["ok", "ok"]


def _dispatch(name: str, go: Any, results: Any) -> None:
    {"ok": _outcome, "_raise": _raise, "_die": _die}[name](go, results)


def _late_starter(delay: float, go: Any, results: Any) -> None:
    time.sleep(delay)  # a process slow to start (imports, its app, warm connections)
    ready = time.time()
    go.wait()
    results.put([(ready, time.time())])


def test_no_process_starts_before_every_process_is_ready():
    """One process takes 3 s to get ready: the others wait for it (the old harness let them go at once)."""
    moments = race_processes(_late_starter, [(0.0,), (0.0,), (3.0,)], doing="self-test", timeout=60)
    last_ready = max(ready for ready, _ in moments)
    assert all(started >= last_ready for _, started in moments)


def _risk_clock(go: Any, results: Any) -> None:
    import types

    from helpers import make_settings
    from quanyi.db import utcnow
    from quanyi.risk import engine as risk_engine

    runtime = risk_engine.install_runtime(types.SimpleNamespace(session_info={}),
                                          make_settings("sqlite+aiosqlite:///unused.db"))
    go.wait()
    results.put([(runtime.now() - utcnow()).total_seconds()])


def test_every_process_reads_the_test_process_risk_clock(shop):
    """The processes' risk runtimes read the clock of the test's shop (pinned at noon, tests/risk_clock.py) to the
    millisecond, whenever each of them started."""
    from quanyi.db import utcnow

    ahead = (shop.ctx.risk.now() - utcnow()).total_seconds()
    seen = race_processes(_risk_clock, [(), ()], doing="self-test", timeout=60)
    assert all(abs(delta - ahead) < 0.001 for delta in seen), (ahead, seen)
