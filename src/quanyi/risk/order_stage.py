"""Order-stage rules judged without the general engine (risk.engine.screen_checkout), for the one-transaction checkout
(orders.placing): a shop whose enabled order-stage rules are all of kinds that are a pure function of the request and
the clock (*large order* and other per-order amount limits, time windows, block and allow lists) checks out on the
fast path whenever none of them hits, and leaves exactly what the general way leaves then: the checkout's attempt
counter events (`attempt_events`, plus each rule's `extra_events`), and no decision log (an allow needs none). When a
rule hits, the general way decides and records, as before.

Rules that count (velocity, distinct contacts, card testing, unpaid orders, day totals) or read the buyer's history
(new account / new device, a time window for new accounts only) are not judged here: with one of them enabled every
checkout takes the general way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from quanyi.risk.counters import DatabaseCounters, Event
from quanyi.risk.engine import RiskRuntime, local_clock
from quanyi.risk.rules import Signals, attempt_events, extra_events, rule_hits
from quanyi.risk.ruleset import CachedRule

__all__ = ["judged_without_counts", "may_be_quiet", "quiet_at_checkout", "attempt_rows"]


def _pure(rule: CachedRule) -> bool:
    if rule.kind == "amount_limit":
        return rule.params.get("scope") == "order"
    if rule.kind == "time_window":
        return not rule.params.get("new_accounts_only")
    return rule.kind in ("block_list", "allow_list")


def judged_without_counts(runtime: RiskRuntime, rules: Sequence[CachedRule]) -> bool:
    """Whether these order-stage rules can be judged here: every one a pure function of the request and the clock,
    and the counters in the database (the attempt events then ride with the order's rows)."""
    return isinstance(runtime.counters, DatabaseCounters) and all(_pure(rule) for rule in rules)


class _NoReads:
    """The probe of rules that read nothing: reaching it is a bug in `_pure`."""

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        raise AssertionError(key)

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        raise AssertionError(contact)

    async def has_paid_before(self, contact: str) -> bool:
        raise AssertionError(contact)

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        raise AssertionError(contact)


async def quiet_at_checkout(runtime: RiskRuntime, rules: Sequence[CachedRule], signals: Signals) -> bool:
    """No rule hits these signals (rules as `judged_without_counts` accepts them): the general way would allow the
    checkout and log nothing. With a hit (an allow list's too) the general way judges: it is the one that scores,
    asks for a code, holds or refuses."""
    _, day_start = local_clock(runtime, dt.datetime.fromtimestamp(signals.at, dt.UTC))
    probe = _NoReads()
    for rule in rules:
        if await rule_hits(rule.kind, rule.params, signals, probe, day_start=day_start) is not None:
            return False
    return True


def may_be_quiet(runtime: RiskRuntime, rules: Sequence[CachedRule]) -> bool:
    """Before the checkout's transaction: False when a time window rule covers the shop's time now (every checkout
    of the night hours, say, would only find it hits); the judge at the checkout's moment decides."""
    local, _ = local_clock(runtime, runtime.now())
    return not any(rule.kind == "time_window" and _covers(rule.params, local) for rule in rules)


def _covers(params: dict[str, Any], now: dt.time) -> bool:
    start, end = dt.time.fromisoformat(params["start"]), dt.time.fromisoformat(params["end"])
    return start <= now < end if start < end else (now >= start or now < end)


def attempt_rows(rules: Sequence[CachedRule], signals: Signals) -> list[Event]:
    """The counter events the general way records for a checkout that passed the flood limits (screen_checkout)."""
    return attempt_events(signals) + [e for r in rules for e in extra_events(r.kind, r.params, signals)]
