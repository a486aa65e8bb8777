"""The risk clock of every shop the tests build, in one place.

The default risk rules (risk/ruleset.py, loaded by the demo and by "add the default rules") score orders placed
01:00-06:00 shop time as night (17:00-22:00 UTC in Asia/Shanghai): with them loaded, a buyer who orders again
is asked for a code at night and not by day. So that no test passes or fails by the hour the suite runs, every
risk runtime built in the test process (the `ctx` fixture, the browser tests' live servers, any build_context)
reads its clock at noon of the shop's day, time still running. Tests of time rules set their own instant
(risk.support.set_clock), which replaces this clock.

QUANYI_TEST_WALL_CLOCK=<ISO instant with offset> runs the suite's risk clocks as if the suite ran at that instant
(time still running), to prove the tests pass by night and by day; QUANYI_TEST_RISK_CLOCK=wall turns the noon pin
off (the risk clock then reads that wall clock, as in production), to see which tests would depend on the hour.
Processes a race starts (tests/races.py `race_processes`: buyers, payers, checkouts) read the test process's clock
to the microsecond (`pinned_delta`, `pin_in_this_process`): each of them pinning noon on its own would put their
clocks apart by the time between their starts, and a window would count differently in each. Other processes the
tests start (`quanyi` commands, workers) keep the real clock; none of them loads the default rules and then takes
orders.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from quanyi.db import utcnow
from quanyi.risk import engine as risk_engine

__all__ = ["SHOP_HOUR", "wall_clock", "shop_hour_clock", "pinned_risk_clocks", "pinned_delta", "pin_in_this_process"]

SHOP_HOUR = 12  # noon: far from the night window and from midnight (day-based rules count per shop day)

Clock = Callable[[], dt.datetime]


@functools.cache
def _wall_delta() -> dt.timedelta:
    faked = os.environ.get("QUANYI_TEST_WALL_CLOCK")
    if not faked:
        return dt.timedelta(0)
    start = dt.datetime.fromisoformat(faked)
    if start.tzinfo is None:
        raise pytest.UsageError("QUANYI_TEST_WALL_CLOCK needs an offset, e.g. 2026-12-04T19:30:00+00:00")
    return start - utcnow()


def _ahead(delta: dt.timedelta) -> Clock:
    return utcnow if not delta else lambda: utcnow() + delta


def wall_clock() -> Clock:
    """Now, or (QUANYI_TEST_WALL_CLOCK) the given instant with time running from the first call in this process."""
    return _ahead(_wall_delta())


def _hour_delta(zone: dt.tzinfo, hour: int, base: dt.timedelta) -> dt.timedelta:
    local = (utcnow() + base).astimezone(zone)
    return base + (local.replace(hour=hour, minute=0, second=0, microsecond=0) - local)


def shop_hour_clock(zone: dt.tzinfo, hour: int = SHOP_HOUR, base: Clock | None = None) -> Clock:
    """`base` (the wall clock) moved to `hour`:00 of the shop's current day (time still runs)."""
    if base is None:
        return _ahead(_hour_delta(zone, hour, _wall_delta()))
    local = base().astimezone(zone)
    offset = local.replace(hour=hour, minute=0, second=0, microsecond=0) - local
    return lambda: base() + offset


_last_pinned: list[dt.timedelta] = []  # how far ahead of utcnow() the last risk clock pinned here reads


def pinned_delta() -> dt.timedelta:
    """How far ahead of the real clock the risk clock of the runtime built last in this process reads (the test's
    shop), or the wall clock when none was built: what the processes of a race read too (tests/races.py)."""
    return _last_pinned[-1] if _last_pinned else _wall_delta()


def pin_in_this_process(delta: dt.timedelta) -> None:
    """In a process a race started: every risk runtime built here reads `delta` ahead of the real clock, as the test
    process's does (`pinned_delta`). For the process's life: nothing else runs in it."""
    install = risk_engine.install_runtime

    def install_with_the_tests_clock(db: Any, settings: Any) -> risk_engine.RiskRuntime:
        runtime = install(db, settings)
        runtime.clock = _ahead(delta)
        return runtime

    risk_engine.install_runtime = install_with_the_tests_clock  # type: ignore[assignment]


@contextmanager
def pinned_risk_clocks() -> Iterator[None]:
    """While open, every risk runtime built in this process gets the tests' clock (see the module docstring)."""
    mode = os.environ.get("QUANYI_TEST_RISK_CLOCK", "noon")
    if mode not in ("noon", "wall"):
        raise pytest.UsageError("QUANYI_TEST_RISK_CLOCK is 'noon' (the default) or 'wall'")
    install = risk_engine.install_runtime

    def install_with_test_clock(db: Any, settings: Any) -> risk_engine.RiskRuntime:
        runtime = install(db, settings)
        delta = _wall_delta() if mode == "wall" else _hour_delta(runtime.timezone, SHOP_HOUR, _wall_delta())
        runtime.clock = _ahead(delta)
        _last_pinned[:] = [delta]
        return runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(risk_engine, "install_runtime", install_with_test_clock)
        yield
