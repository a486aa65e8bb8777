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
Processes the tests start (`quanyi` commands, buyer and worker processes) keep the real clock; none of them
loads the default rules and then takes orders.
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

__all__ = ["SHOP_HOUR", "wall_clock", "shop_hour_clock", "pinned_risk_clocks"]

SHOP_HOUR = 12  # noon: far from the night window and from midnight (day-based rules count per shop day)

Clock = Callable[[], dt.datetime]


@functools.cache
def wall_clock() -> Clock:
    """Now, or (QUANYI_TEST_WALL_CLOCK) the given instant with time running from the first call in this process."""
    faked = os.environ.get("QUANYI_TEST_WALL_CLOCK")
    if not faked:
        return utcnow
    start = dt.datetime.fromisoformat(faked)
    if start.tzinfo is None:
        raise pytest.UsageError("QUANYI_TEST_WALL_CLOCK needs an offset, e.g. 2026-12-04T19:30:00+00:00")
    offset = start - utcnow()
    return lambda: utcnow() + offset


def shop_hour_clock(zone: dt.tzinfo, hour: int = SHOP_HOUR, base: Clock | None = None) -> Clock:
    """`base` moved to `hour`:00 of the shop's current day (time still runs)."""
    base = base or wall_clock()
    local = base().astimezone(zone)
    offset = local.replace(hour=hour, minute=0, second=0, microsecond=0) - local
    return lambda: base() + offset


@contextmanager
def pinned_risk_clocks() -> Iterator[None]:
    """While open, every risk runtime built in this process gets the tests' clock (see the module docstring)."""
    mode = os.environ.get("QUANYI_TEST_RISK_CLOCK", "noon")
    if mode not in ("noon", "wall"):
        raise pytest.UsageError("QUANYI_TEST_RISK_CLOCK is 'noon' (the default) or 'wall'")
    install = risk_engine.install_runtime

    def install_with_test_clock(db: Any, settings: Any) -> risk_engine.RiskRuntime:
        runtime = install(db, settings)
        runtime.clock = wall_clock() if mode == "wall" else shop_hour_clock(runtime.timezone)
        return runtime

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(risk_engine, "install_runtime", install_with_test_clock)
        yield
