"""Order-stage rules judged without the general engine's units of work (risk.engine.screen_checkout), for the
one-transaction checkout (orders.placing). A shop whose enabled order-stage rules are all of the kinds judged here
checks out on the fast path whenever the general way would decide "allow", and leaves exactly what the general way
leaves then: the checkout's attempt counter events (`attempt_events`, plus each rule's `extra_events`), and no
decision log (an allow needs none).

Kinds judged here: per-order amount limits, time windows, block and allow lists (the request and the clock), and the
counted ones of the shipped default set: velocity, distinct contacts, card testing, unpaid orders (the counters, the
orders placed and paid: signals rows) and first purchase / known buyer on a new device / a time window for new accounts
only (the paid order history). What those rules ask (`rules.rule_hits` through a probe) is worked out before the SKU is
read (`ask`: the same for any price) and read in the gate's count statement (risk.gate, `also`), with the score
thresholds: no statement of its own. The answers count this checkout's own attempt events as the general way does (it
records them before it counts). The rules are then judged by `engine.evaluate` itself on those answers (scores and the
policy's thresholds): when its decision is not "allow" the caller rolls the untouched transaction back and the general
way decides and records, as before. With no enabled rule that reads anything nothing is asked and nothing read
(`quiet_without_reads`): any hit goes to the general way. Day totals (amount limits per buyer or SKU day) are not judged
here: with one of them enabled every checkout takes the general way, as with the counters in Redis.

Concurrency: the statement counts what is committed when it runs; a checkout still in flight (its attempt not
committed yet) is not seen. So when the rules ask (risk.gate `also`), one client's checkouts are serialized: the
gate takes the advisory locks of its ip, device and contact (the held-stock limits' locks, taken even when those
limits are off), and the general way takes the same locks around its attempt and its count (engine.screen_checkout),
so the two ways count one client's checkouts one after the other too; SQLite's writer lock serializes all. A count
"up to now" has no upper time bound (the clock is read before the locks are waited for). The difference left is
checkouts in flight at once of one shop or SKU from different clients (the shop-wide and cookieless-surge counts):
each is missed only while its transaction is open (locking per shop or SKU would serialize a flash sale).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select

from quanyi.risk.counters import DatabaseCounters, Event
from quanyi.risk.engine import (
    PAID_COUNTED_WITHIN,
    RiskRuntime,
    checkout_signals,
    evaluate,
    local_clock,
    paid_orders_count,
    placed_orders_count,
)
from quanyi.risk.gate import Beside
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskPolicy
from quanyi.risk.rules import Decision, Signals, attempt_events, extra_events, rule_hits
from quanyi.risk.ruleset import CachedRule

__all__ = ["Asked", "ask", "quiet_without_reads", "judged_without_counts", "may_be_quiet", "quiet_at_checkout",
           "attempt_rows"]

_COUNTED = frozenset({"velocity", "distinct_contacts", "card_testing", "failed_payments", "new_account",
                      "new_device"})
_JUDGED = _COUNTED | {"time_window", "block_list", "allow_list"}


def _reads(rule: CachedRule) -> bool:
    """The rule reads the counters or the order history (else it is a pure function of the request and the clock)."""
    if rule.kind == "time_window":
        return bool(rule.params.get("new_accounts_only"))
    return rule.kind in _COUNTED


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

    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int:
        self.questions[("placed", dimension, value, window_seconds, until)] = None
        return 0

    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int:
        self.questions[("paid_orders", dimension, value, window_seconds)] = None
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

    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int:
        return int(self._answers[("placed", dimension, value, window_seconds, until)])

    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int:
        return int(self._answers[("paid_orders", dimension, value, window_seconds)])

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        raise _DayTotals

    async def has_paid_before(self, contact: str) -> bool:
        return bool(self._answers[("paid", contact)])

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        known = self._answers[("known", contact, device, ip)]
        return bool(known[0]), bool(known[1])


@dataclass(frozen=True)
class Asked:
    """What the rules will ask of one checkout, as a read of one row for the gate's count statement (`read`,
    risk.gate: `count_checkout(also=...)`), asked before the SKU is read: the same for any amount and merchant."""

    questions: list[Question]
    shape: tuple[tuple[Any, ...], ...]
    read: Beside


def ask(runtime: RiskRuntime, rules: Sequence[CachedRule], *, ip: str, device: str, device_verified: bool,
        contact_kind: str, contact: str, sku_id: int, quantity: int, now: dt.datetime) -> Asked | None:
    """What `rules` (as `judged_without_counts` accepts them) ask of this client, whatever the SKU's price (asked with
    no amount and with more than any limit); None when no rule reads anything (`quiet_without_reads` judges them). A
    question the checkout's own signals ask beyond these (a `shop` dimension of another merchant) makes
    `quiet_at_checkout` leave it to the general way."""
    if not any(_reads(rule) for rule in rules):
        return None
    asked = _Asked()
    own: dict[str, set[str]] = {}
    for amount in (0, 10**13):
        signals = checkout_signals(runtime, ip=ip, device=device, device_verified=device_verified,
                                   contact_kind=contact_kind, contact=contact, sku_id=sku_id, quantity=quantity,
                                   amount_cents=amount, now=now)
        _, day_start = local_clock(runtime, now)
        try:
            for rule in rules:
                _coro_done(rule_hits(rule.kind, rule.checked(), signals, asked, day_start=day_start))
        except _DayTotals:
            raise AssertionError("day totals are not judged here") from None
        for key, member in attempt_rows(rules, signals):
            own.setdefault(key[:200], set()).add(member[:200])
    at = now.timestamp()
    questions = list(asked.questions)
    shape: list[tuple[Any, ...]] = []
    params: dict[str, Any] = {}
    for n, question in enumerate(questions):
        if question[0] == "count":
            _, key, window, until = question
            low, high = at - window, at if until is None else until
            # The checkout's own members (not in the table yet) are left out of the table's count and added back
            # (`_answers`): a fresh member is never in the table, so leaving out more of them changes nothing.
            members = sorted(own.get(key, ())) if low < at <= high else []
            # No upper bound when the rule asks up to now: `now` was read before the gate waited for the client's
            # locks, and a checkout of this client that read the clock later but took the locks first (committed,
            # so counted before this one) recorded its attempt at a later moment (as risk.payment_sql counts).
            params.update({f"r{n}_key": key, f"r{n}_low": low, f"r{n}_high": math.inf if until is None else high})
            params.update({f"r{n}_m{j}": member for j, member in enumerate(members)})
            shape.append(("count", len(members)))
        elif question[0] == "placed":  # orders placed: signals rows, never this checkout's own (not placed yet)
            _, dimension, value, window, until = question
            params.update({f"r{n}_value": value, f"r{n}_low": at - window, f"r{n}_high": until})
            shape.append(("placed", dimension))
        elif question[0] == "paid_orders":  # orders paid: signals rows and `paid` events (none of this checkout's)
            _, dimension, value, window = question
            params.update({f"r{n}_value": value, f"r{n}_key": f"paid:{dimension}:{value}"[:200],
                           f"r{n}_low": at - window, f"r{n}_high": at,
                           f"r{n}_floor": (at - window) - PAID_COUNTED_WITHIN})
            shape.append(("paid_orders", dimension))
        elif question[0] == "paid":
            params[f"r{n}_contact"] = question[1]
            shape.append(("paid",))
        else:
            _, contact_, device_, ip_ = question
            params.update({f"r{n}_contact": contact_, f"r{n}_device": device_, f"r{n}_ip": ip_})
            shape.append(("known",))
    return Asked(questions, tuple(shape), Beside(_read(tuple(shape)), params))


def _coro_done(coroutine: Any) -> Any:
    """Run a coroutine that never awaits anything pending (the rules with `_Asked`, which answers at once)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("a rule awaited something real")


class _NoReads:
    """The probe of rules that read nothing: reaching it is a bug in `_reads`."""

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        raise AssertionError(key)

    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int:
        raise AssertionError(dimension)

    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int:
        raise AssertionError(dimension)

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        raise AssertionError(contact)

    async def has_paid_before(self, contact: str) -> bool:
        raise AssertionError(contact)

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        raise AssertionError(contact)


async def quiet_without_reads(runtime: RiskRuntime, rules: Sequence[CachedRule], signals: Signals) -> bool:
    """No rule hits these signals (rules that read nothing: `ask` gave None): the general way would allow the checkout
    and log nothing. With a hit (an allow list's too, or an allow rule's score) the general way judges."""
    _, day_start = local_clock(runtime, dt.datetime.fromtimestamp(signals.at, dt.UTC))
    probe = _NoReads()
    for rule in rules:
        if await rule_hits(rule.kind, rule.checked(), signals, probe, day_start=day_start) is not None:
            return False
    return True


async def quiet_at_checkout(runtime: RiskRuntime, rules: Sequence[CachedRule], signals: Signals, asked: Asked,
                            row: Sequence[Any]) -> bool:
    """The general way would decide "allow" on these signals (rules as `judged_without_counts` accepts them), and so
    log nothing, judged on `row`: what the gate's statement read for `asked` (`ask`). Otherwise the general way
    judges: it is the one that asks for a code, holds or refuses."""
    answers, policy = _answers(asked, row, attempt_rows(rules, signals), signals.at)
    try:
        evaluation = await evaluate(session=None, runtime=runtime, signals=signals,  # type: ignore[arg-type]
                                    rules=list(rules), probe=_Answered(answers), policy=policy)
    except (KeyError, _DayTotals):  # a question `ask` did not foresee: let the general way judge
        return False
    return evaluation.decision is Decision.ALLOW


def _answers(asked: Asked, row: Sequence[Any], own: Sequence[Event],
             at: float) -> tuple[dict[Question, Any], RiskPolicy]:
    """The answers to the questions and the score thresholds from the row read. A count includes this checkout's own
    events (`own`, at `at`: the general way records them before counting): the distinct members in the table other
    than its own, plus its own in the window."""
    mine: dict[str, set[str]] = {}
    for key, member in own:
        mine.setdefault(key[:200], set()).add(member[:200])
    answers: dict[Question, Any] = {}
    column = 0
    for question, part in zip(asked.questions, asked.shape, strict=True):
        if part[0] == "known":
            answers[question] = (row[column], row[column + 1])
            column += 2
            continue
        if part[0] == "count":
            _, key, window, until = question
            low, high = at - window, at if until is None else until
            answers[question] = int(row[column] or 0) + (len(mine.get(key, ())) if low < at <= high else 0)
        else:
            answers[question] = row[column]
        column += 1
    challenge_at, review_at, deny_at = row[column:column + 3]
    return answers, RiskPolicy(id=1, challenge_at=challenge_at, review_at=review_at, deny_at=deny_at)


_BUILT: dict[tuple[tuple[Any, ...], ...], Any] = {}


def _read(shape: tuple[tuple[Any, ...], ...]) -> Any:
    """The one-row read of the answers for this shape of questions, built once per process with bind parameters
    (r<n>_...): the counters' and `signal_counts.CountingProbe`'s reads as scalar subqueries, then the policy's
    thresholds."""
    read = _BUILT.get(shape)
    if read is not None:
        return read
    events, signals, policy = CounterEvent.__table__, OrderRiskSignals.__table__, RiskPolicy.__table__
    columns: list[Any] = []
    for n, part in enumerate(shape):
        if part[0] == "count":
            columns.append(select(func.count(func.distinct(events.c.member))).where(
                events.c.key == bindparam(f"r{n}_key", type_=events.c.key.type),
                events.c.at > bindparam(f"r{n}_low", type_=events.c.at.type),
                events.c.at <= bindparam(f"r{n}_high", type_=events.c.at.type),
                *[events.c.member != bindparam(f"r{n}_m{j}", type_=events.c.member.type) for j in range(part[1])],
            ).scalar_subquery().label(f"r{n}"))
            continue
        if part[0] == "placed":
            at_type = signals.c.at.type
            columns.append(placed_orders_count(
                part[1], bindparam(f"r{n}_value", type_=signals.c[part[1]].type),
                low=bindparam(f"r{n}_low", type_=at_type), high=bindparam(f"r{n}_high", type_=at_type),
            ).scalar_subquery().label(f"r{n}"))
            continue
        if part[0] == "paid_orders":
            at_type = signals.c.at.type
            columns.append(paid_orders_count(
                part[1], bindparam(f"r{n}_value", type_=signals.c[part[1]].type),
                key=bindparam(f"r{n}_key", type_=events.c.key.type), low=bindparam(f"r{n}_low", type_=at_type),
                high=bindparam(f"r{n}_high", type_=at_type), floor=bindparam(f"r{n}_floor", type_=at_type),
            ).scalar_subquery().label(f"r{n}"))
            continue
        paid = select(signals.c.order_id).where(
            signals.c.contact == bindparam(f"r{n}_contact", type_=signals.c.contact.type), signals.c.paid.is_(True))
        if part[0] == "paid":
            columns.append(paid.exists().label(f"r{n}"))
        else:
            columns.append(paid.where(signals.c.device == bindparam(f"r{n}_device", type_=signals.c.device.type))
                           .exists().label(f"r{n}_device"))
            columns.append(paid.where(signals.c.ip == bindparam(f"r{n}_ip", type_=signals.c.ip.type))
                           .exists().label(f"r{n}_ip"))
    columns += [select(policy.c[name]).where(policy.c.id == 1).scalar_subquery().label(f"r_{name}")
                for name in ("challenge_at", "review_at", "deny_at")]
    read = _BUILT[shape] = select(*columns).subquery("rules_read")
    return read


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
    return attempt_events(signals) + [e for r in rules for e in extra_events(r.kind, r.checked(), signals)]
