"""Order-stage rules judged without the general engine's units of work (risk.engine.screen_checkout), for the
one-transaction checkout (orders.placing). A shop whose enabled order-stage rules are all of the kinds judged here
checks out on the fast path whenever the general way would decide "allow", and leaves exactly what the general way
leaves then: the checkout's attempt counter events (`attempt_events`, plus each rule's `extra_events`), and no
decision log (an allow needs none).

Kinds judged here: per-order amount limits, time windows, block and allow lists (the request and the clock), and
the counted ones of the shipped default set: velocity, distinct contacts, card testing, unpaid orders (the counters)
and first purchase / known buyer on a new device / a time window for new accounts only (the paid order history).
What those rules ask (`rules.rule_hits` through a probe) is answered by ONE statement in the checkout's transaction
(`_answers`, with the score thresholds), counting this checkout's own attempt events as the general way does (it
records them before it counts). The rules are then judged by `engine.evaluate` itself on those answers (scores and
the policy's thresholds): when its decision is not "allow" the caller rolls the untouched transaction back and the
general way decides and records, as before. Day totals (amount limits per buyer or SKU day) are not judged here:
with one of them enabled every checkout takes the general way, as with the counters in Redis.

Concurrency: the statement counts what is committed when it runs. The general way commits the attempt before it
counts, so of two concurrent checkouts the later counter sees both; here a checkout still in flight (its attempt
not committed yet) is not seen. One IP's and one device's checkouts are serialized by the gate's advisory locks
when the flood limits are on (the shipped default), and SQLite's writer lock serializes all, so the difference is
left to checkouts in flight at once of one contact from different addresses and devices, or of one SKU without a
device cookie (the cookieless surge) from different addresses: each is missed only while its transaction is open.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct
from quanyi.risk.counters import DatabaseCounters, Event
from quanyi.risk.engine import RiskRuntime, evaluate, local_clock
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskPolicy
from quanyi.risk.rules import Decision, Signals, attempt_events, extra_events, rule_hits
from quanyi.risk.ruleset import CachedRule

__all__ = ["judged_without_counts", "may_be_quiet", "quiet_at_checkout", "attempt_rows"]

_JUDGED = frozenset({"time_window", "block_list", "allow_list", "velocity", "distinct_contacts", "card_testing",
                     "failed_payments", "new_account", "new_device"})


def _judged(rule: CachedRule) -> bool:
    if rule.kind == "amount_limit":
        return rule.params.get("scope") == "order"
    return rule.kind in _JUDGED


def judged_without_counts(runtime: RiskRuntime, rules: Sequence[CachedRule]) -> bool:
    """Whether these order-stage rules can be judged here: every one of a kind `quiet_at_checkout` judges, and the
    counters in the database (read in the checkout's transaction; the attempt events then ride with the order)."""
    return isinstance(runtime.counters, DatabaseCounters) and all(_judged(rule) for rule in rules)


class _DayTotals(Exception):
    """A rule asked for day totals: not judged here (`_judged` keeps such rules out)."""


Question = tuple[Any, ...]


class _Asked:
    """The probe of a first pass: notes what the rules ask. `has_paid_before` answers True so that `new_device` asks
    its `known_from` too; counts answer 0 (what is asked does not depend on them)."""

    def __init__(self) -> None:
        self.questions: dict[Question, None] = {}

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        self.questions[("count", key[:200], window_seconds, until)] = None
        return 0

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        raise _DayTotals

    async def has_paid_before(self, contact: str) -> bool:
        self.questions[("paid", contact)] = None
        return True

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        self.questions[("known", contact, device, ip)] = None
        return False, False


class _Answered:
    """The probe of the second pass: the answers the statement gave (a question not asked in the first pass is a
    bug: KeyError)."""

    def __init__(self, answers: dict[Question, Any]) -> None:
        self._answers = answers

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        return int(self._answers[("count", key[:200], window_seconds, until)])

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        raise _DayTotals

    async def has_paid_before(self, contact: str) -> bool:
        return bool(self._answers[("paid", contact)])

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        known = self._answers[("known", contact, device, ip)]
        return bool(known[0]), bool(known[1])


async def quiet_at_checkout(runtime: RiskRuntime, rules: Sequence[CachedRule], signals: Signals,
                            session: AsyncSession) -> bool:
    """The general way would decide "allow" on these signals (rules as `judged_without_counts` accepts them), and so
    log nothing. Reads what the rules ask in `session` (one statement; none when no rule asks and none hits).
    Otherwise the general way judges: it is the one that asks for a code, holds or refuses."""
    _, day_start = local_clock(runtime, dt.datetime.fromtimestamp(signals.at, dt.UTC))
    asked = _Asked()
    hits = False
    try:
        for rule in rules:
            hits = await rule_hits(rule.kind, rule.params, signals, asked, day_start=day_start) is not None or hits
    except _DayTotals:
        return False
    if not asked.questions and not hits:
        return True  # the rules read nothing and none hits: no statement
    answers, policy = await _answers(session, list(asked.questions), attempt_rows(rules, signals), signals.at)
    try:
        evaluation = await evaluate(session=session, runtime=runtime, signals=signals, rules=list(rules),
                                    probe=_Answered(answers), policy=policy)
    except (KeyError, _DayTotals):  # a question the first pass did not ask: let the general way judge
        return False
    return evaluation.decision is Decision.ALLOW


async def _answers(session: AsyncSession, questions: list[Question], own: Sequence[Event],
                   at: float) -> tuple[dict[Question, Any], RiskPolicy]:
    """The answers to `questions` and the score thresholds, in one statement. A count includes this checkout's own
    events (`own`, at `at`: the general way records them before counting): the distinct members in the table other
    than its own, plus its own in the window."""
    mine: dict[str, set[str]] = {}
    for key, member in own:
        mine.setdefault(key[:200], set()).add(member[:200])
    shape: list[tuple[Any, ...]] = []
    params: dict[str, Any] = {}
    added: list[int] = []
    for n, question in enumerate(questions):
        if question[0] == "count":
            _, key, window, until = question
            low, high = at - window, at if until is None else until
            members = sorted(mine.get(key, ())) if low < at <= high else []
            params.update({f"q{n}_key": key, f"q{n}_low": low, f"q{n}_high": high})
            params.update({f"q{n}_m{j}": member for j, member in enumerate(members)})
            shape.append(("count", len(members)))
            added.append(len(members))
        elif question[0] == "paid":
            params[f"q{n}_contact"] = question[1]
            shape.append(("paid",))
            added.append(0)
        else:
            _, contact, device, ip = question
            params.update({f"q{n}_contact": contact, f"q{n}_device": device, f"q{n}_ip": ip})
            shape.append(("known",))
            added.append(0)
    row = await db_direct.fetch_one(session, _statement(tuple(shape)), params)
    assert row is not None  # scalar subqueries only: always one row
    answers: dict[Question, Any] = {}
    column = 0
    for question, part, extra in zip(questions, shape, added, strict=True):
        if part[0] == "known":
            answers[question] = (row[column], row[column + 1])
            column += 2
        else:
            answers[question] = int(row[column] or 0) + extra if part[0] == "count" else row[column]
            column += 1
    challenge_at, review_at, deny_at = row[column:column + 3]
    return answers, RiskPolicy(id=1, challenge_at=challenge_at, review_at=review_at, deny_at=deny_at)


_BUILT: dict[tuple[tuple[Any, ...], ...], db_direct.Direct] = {}


def _statement(shape: tuple[tuple[Any, ...], ...]) -> db_direct.Direct:
    """The answers' statement for this shape of questions, built once per process with bind parameters (q<n>_...):
    the counters' and `engine._Probe`'s reads as scalar subqueries, then the policy's thresholds."""
    statement = _BUILT.get(shape)
    if statement is not None:
        return statement
    events, signals, policy = CounterEvent.__table__, OrderRiskSignals.__table__, RiskPolicy.__table__
    columns: list[Any] = []
    for n, part in enumerate(shape):
        if part[0] == "count":
            columns.append(select(func.count(func.distinct(events.c.member))).where(
                events.c.key == bindparam(f"q{n}_key", type_=events.c.key.type),
                events.c.at > bindparam(f"q{n}_low", type_=events.c.at.type),
                events.c.at <= bindparam(f"q{n}_high", type_=events.c.at.type),
                *[events.c.member != bindparam(f"q{n}_m{j}", type_=events.c.member.type) for j in range(part[1])],
            ).scalar_subquery())
            continue
        paid = select(signals.c.order_id).where(
            signals.c.contact == bindparam(f"q{n}_contact", type_=signals.c.contact.type), signals.c.paid.is_(True))
        if part[0] == "paid":
            columns.append(paid.exists())
        else:
            columns.append(paid.where(signals.c.device == bindparam(f"q{n}_device", type_=signals.c.device.type))
                           .exists())
            columns.append(paid.where(signals.c.ip == bindparam(f"q{n}_ip", type_=signals.c.ip.type)).exists())
    columns += [select(policy.c[name]).where(policy.c.id == 1).scalar_subquery()
                for name in ("challenge_at", "review_at", "deny_at")]
    statement = _BUILT[shape] = db_direct.Direct(select(*columns))
    return statement


def may_be_quiet(runtime: RiskRuntime, rules: Sequence[CachedRule]) -> bool:
    """Before the checkout's transaction: False when a time window rule stricter than "allow", for every buyer,
    covers the shop's time now (every checkout of the night hours, say, would only find the general way must judge
    it); the judge at the checkout's moment decides."""
    local, _ = local_clock(runtime, runtime.now())
    return not any(rule.kind == "time_window" and rule.action != Decision.ALLOW.value
                   and not rule.params.get("new_accounts_only") and _covers(rule.params, local) for rule in rules)


def _covers(params: dict[str, Any], now: dt.time) -> bool:
    start, end = dt.time.fromisoformat(params["start"]), dt.time.fromisoformat(params["end"])
    return start <= now < end if start < end else (now >= start or now < end)


def attempt_rows(rules: Sequence[CachedRule], signals: Signals) -> list[Event]:
    """The counter events the general way records for a checkout that passed the flood limits (screen_checkout)."""
    return attempt_events(signals) + [e for r in rules for e in extra_events(r.kind, r.params, signals)]
