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
