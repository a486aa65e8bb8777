"""The risk engine's payment and delivery stages: once the money is in, the buyer can no longer be asked or
refused, so a rule's challenge or deny becomes review (the order is held for a human), and a payer account's
stock under review is bounded (risk.holdings). Evaluation and order creation: risk.engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.orders.models import Order
from quanyi.risk import ruleset
from quanyi.risk.counters import DatabaseCounters
from quanyi.risk.engine import (
    Evaluation,
    RiskRuntime,
    evaluate,
    local_clock,
    log_decision,
    paid_counted_here,
    probe_of,
    runtime_of,
)
from quanyi.risk.holdings import payer_held_units
from quanyi.risk.locks import PAYMENT_LOCKS, payment_lock_key
from quanyi.risk.models import CounterEvent, OrderRiskSignals
from quanyi.risk.rules import Decision, Probe, Signals, Stage, payer_events, payer_hash, placed_events
from quanyi.risk.ruleset import CachedRule

__all__ = ["OrderFacts", "payment_signals", "paid_events", "counts_paid_here", "decides_at_payment", "CountedLocks",
           "counted_locks", "lock_counted", "quiet_at_payment", "hold_at_payment", "payer_stock_exceeded"]


def _reasons(marked: str) -> list[str]:
    """The reason codes of an `Evaluation.reason` stored with an order, main one first."""
    return [code for code in (part.strip() for part in marked.split(",")) if code] or ["score"]


class OrderFacts(Protocol):
    """What the payment stage reads of an order (an `Order`, or a row with these columns)."""
    id: int
    created_ip: str
    contact: str
    contact_kind: str
    sku_id: int
    quantity: int
    total_cents: int
    merchant_id: int
    coupon_discount_cents: int | None


def payment_signals(runtime: RiskRuntime, order: OrderFacts, *, ip: str | None, device: str | None,
                    payer_account: str | None) -> Signals:
    """The payment stage's signals of a paid order. `ip` / `device`: its stored checkout signals (None: none
    stored); `payer_account`: the paying account as the gateway named it (hashed here), if it did."""
    risk_now = runtime.now()
    local_time, _ = local_clock(runtime, risk_now)
    device = device or ""
    # Whether the checkout's device was verified is not stored with the order: here any stored device counts
    # as one (so a payment-stage rule on a *_without_device dimension judges only orders placed with none).
    return Signals(stage=Stage.PAYMENT, ip=order.created_ip if ip is None else ip, device=device,
                   device_verified=bool(device), contact=order.contact, contact_kind=order.contact_kind,
                   sku_id=order.sku_id, quantity=order.quantity, amount_cents=order.total_cents,
                   at=risk_now.timestamp(), local_time=local_time, order_id=order.id,
                   payer=payer_hash(runtime.secret, payer_account) if payer_account else "",
                   merchant_id=order.merchant_id)


def paid_events(signals: Signals, *, counted_here: bool = False) -> list[tuple[str, str]]:
    """What a confirmed payment leaves in the counters (unpaid = placed - paid; per payer account). `counted_here`:
    its `paid` per ip / device / contact is counted from its signals row (`counts_paid_here`), not written."""
    return ([] if counted_here else placed_events(signals, "paid")) + payer_events(signals)


def counts_paid_here(runtime: RiskRuntime, signals_at: float | None, at: float) -> bool:
    """Whether a payment at `at` (risk clock) of an order whose signals row has the checkout moment `signals_at`
    (None: no row) is counted from that row (`paid_risk_at = at`) instead of `paid` events: database counters, and
    `engine.paid_counted_here` (paid within `engine.PAID_COUNTED_WITHIN` of its checkout)."""
    return isinstance(runtime.counters, DatabaseCounters) and paid_counted_here(signals_at, at)


def decides_at_payment(rules: list[CachedRule]) -> bool:
    """Whether any of these (enabled) rules is evaluated when a payment is confirmed or before delivery."""
    return any(Stage.PAYMENT.value in rule.stages or Stage.DELIVERY.value in rule.stages for rule in rules)


@dataclass(frozen=True, slots=True)
class CountedLocks:
    """What a payment's rules count that other payments change as they commit, so that two payments counting at once
    must count one after the other: its payer's paid orders and contacts (velocity / distinct contacts per payer), its
    buyer's day (buyer_day amount limits: orders paid late, expired or cancelled, count only once paid), its SKU's day
    (sku_day). The other counts are of checkouts (serialized by the checkout gate) or of the order itself."""

    payer: bool = False
    contact: bool = False
    sku: bool = False


def counted_locks(rules: Sequence[CachedRule]) -> CountedLocks:
    """The locks the enabled `rules` of the payment and delivery stages need (`CountedLocks`)."""
    payer = contact = sku = False
    for rule in rules:
        if Stage.PAYMENT.value not in rule.stages and Stage.DELIVERY.value not in rule.stages:
            continue
        if rule.kind in ("velocity", "distinct_contacts"):
            payer = payer or rule.params.get("dimension") == "payer"
        elif rule.kind == "amount_limit":
            contact = contact or rule.params.get("scope") == "buyer_day"
            sku = sku or rule.params.get("scope") == "sku_day"
    return CountedLocks(payer, contact, sku)


async def lock_counted(*, session: AsyncSession, order: OrderFacts, payer_account: str | None,
                       rules: Sequence[CachedRule] | None = None) -> None:
    """PostgreSQL, in the payment's transaction under the order's lock, before any rule counts (and before
    coupons.abuse counts the payer's new members): the advisory locks of what `counted_locks` names, in one
    statement, one fixed order (`risk_take_locks`, the same the notification's one statement takes): two payments of
    one payer (contact, SKU) count one after the other, each seeing what the other committed. SQLite: nothing, its
    one writer counts one payment at a time. `rules`: the enabled rules, if the caller has them."""
    runtime = runtime_of(session)
    if runtime is None or session.bind.dialect.name != "postgresql":
        return
    needs = counted_locks(await ruleset.enabled_rules(session=session) if rules is None else rules)
    payer = payer_hash(runtime.secret, payer_account) if payer_account else ""
    keys = []
    if payer and (needs.payer or (runtime.coupon_new_members_per_payer and order.coupon_discount_cents)):
        keys.append(payment_lock_key("payer", payer))
    if needs.contact and order.contact:
        keys.append(payment_lock_key("contact", order.contact))
    if needs.sku:
        keys.append(payment_lock_key("sku", order.sku_id))
    if keys:
        await session.execute(PAYMENT_LOCKS, {"keys": keys})


class _CountingPaidEvents:
    """The rules' probe as `hold_at_payment` leaves it once it has recorded the payment's paid events, without
    recording them (database counters: the events are rows; a member already in a window counts once), and with
    its `paid` per ip / device / contact (`own_paid`: (dimension, value)) counted once, wherever it is recorded (the
    database's probe leaves the order's own signals row out)."""

    def __init__(self, probe: Probe, session: AsyncSession, events: list[tuple[str, str]], at: float,
                 own_paid: frozenset[tuple[str, str]] = frozenset()) -> None:
        self._probe, self._session, self._at, self._own_paid = probe, session, at, own_paid
        self._pending: dict[str, set[str]] = {}
        for key, member in events:
            self._pending.setdefault(key[:200], set()).add(member[:200])

    async def count(self, key: str, window_seconds: float, until: float | None = None) -> int:
        n = await self._probe.count(key, window_seconds, until)
        high = self._at if until is None else until
        members = self._pending.get(key[:200])
        if not members or not self._at - window_seconds < self._at <= high:
            return n
        seen = set((await self._session.scalars(select(CounterEvent.member).where(
            CounterEvent.key == key[:200], CounterEvent.member.in_(members),
            CounterEvent.at > self._at - window_seconds, CounterEvent.at <= high))).all())
        return n + len(members - seen)

    async def placed_orders(self, dimension: str, value: str, window_seconds: float, until: float) -> int:
        return await self._probe.placed_orders(dimension, value, window_seconds, until)

    async def paid_orders(self, dimension: str, value: str, window_seconds: float) -> int:
        n = await self._probe.paid_orders(dimension, value, window_seconds)
        own = (dimension, value) in self._own_paid and self._at - window_seconds < self._at
        return n + 1 if own else n  # the order is paid once: its own payment is in no row or event yet

    async def day_totals(self, contact: str | None, sku_id: int | None, since: float) -> tuple[int, int]:
        return await self._probe.day_totals(contact, sku_id, since)

    async def has_paid_before(self, contact: str) -> bool:
        return await self._probe.has_paid_before(contact)

    async def known_from(self, contact: str, device: str, ip: str) -> tuple[bool, bool]:
        return await self._probe.known_from(contact, device, ip)


def _paid_dimensions(signals: Signals) -> frozenset[tuple[str, str]]:
    """The (dimension, value) pairs of the `paid` per ip / device / contact of this payment."""
    return frozenset((dim, signals.value(dim)) for dim in ("ip", "device", "contact") if signals.value(dim))


async def quiet_at_payment(*, session: AsyncSession, runtime: RiskRuntime, order: OrderFacts, ip: str | None,
                           device: str | None, payer_account: str | None, rules: list[CachedRule]) -> bool:
    """Whether `hold_at_payment` would let this order (not flagged at checkout) through with `rules` (the enabled
    rules) and record nothing but its paid events and signals: every stage decides allow. Records nothing itself;
    database counters only (the caller asks `payment_sql.judge` first). Asked before delivering in the caller's
    transaction under the order's lock, after `lock_counted` (PostgreSQL; SQLite: the writer lock), so nothing the
    rules count changes in between."""
    await lock_counted(session=session, order=order, payer_account=payer_account, rules=rules)
    signals = payment_signals(runtime, order, ip=ip, device=device, payer_account=payer_account)
    probe = _CountingPaidEvents(probe_of(runtime, session, signals), session, payer_events(signals), signals.at,
                                _paid_dimensions(signals))
    for stage in (Stage.PAYMENT, Stage.DELIVERY):
        signals.stage = stage
        evaluation = await evaluate(session=session, runtime=runtime, signals=signals, probe=probe,
                                    rules=[r for r in rules if stage.value in r.stages])
        if evaluation.decision is not Decision.ALLOW:
            return False
    return True


async def hold_at_payment(*, session: AsyncSession, order: Order, now: dt.datetime | None = None,
                          payer_account: str | None = None) -> str | None:
    """Payment is confirmed (caller holds the order lock): evaluate the payment and delivery stages.
    `payer_account`: the paying account as the gateway named it, if it did (per-payer rules; hashed here).
    Returns why the order must be held for review, or None to deliver now."""
    runtime = runtime_of(session)
    if runtime is None:
        return None
    row = await session.get(OrderRiskSignals, order.id)
    signals = payment_signals(runtime, order, ip=row.ip if row else None, device=row.device if row else None,
                              payer_account=payer_account)
    here = counts_paid_here(runtime, row.at if row is not None else None, signals.at)
    # Counted by the rules below: the events as rows (Redis: pending in the session), the row's `paid_risk_at` by
    # the probe that adds this payment (the row's change is not flushed yet, and the database's probe leaves it out).
    await runtime.counters.record(paid_events(signals, counted_here=here), at=signals.at, session=session)
    probe = _CountingPaidEvents(probe_of(runtime, session, signals), session, [], signals.at,
                                _paid_dimensions(signals)) if here else None
    if row is not None:
        row.paid = True
        row.payer = signals.payer or row.payer  # the payer's stock under review is bounded (payer_stock_exceeded)
        if here:
            row.paid_risk_at = signals.at
    held: str | None = row.review_reason if row is not None else None
    if held:
        reasons = _reasons(held)  # one stable reason code per entry; all of them under "reasons"
        flagged = {"reason_code": reasons[0], "reasons": reasons, "detail": "flagged at checkout"}
        log_decision(session, signals, Evaluation(Decision.REVIEW, 0, [flagged]), "held", now or utcnow())
    enabled = await ruleset.enabled_rules(session=session)  # once for both stages
    for stage in (Stage.PAYMENT, Stage.DELIVERY):
        signals.stage = stage
        evaluation = await evaluate(session=session, runtime=runtime, signals=signals, probe=probe,
                                    rules=[r for r in enabled if stage.value in r.stages])
        if evaluation.decision is not Decision.ALLOW:
            evaluation.decision = Decision.REVIEW  # the money is in: a human decides
            log_decision(session, signals, evaluation, "held", now or utcnow())
            held = held or evaluation.reason[:300]
        if held:
            break
    return held


async def payer_stock_exceeded(*, session: AsyncSession, order: Order, now: dt.datetime | None = None) -> str | None:
    """An order `hold_at_payment` wants held: why it must not be (its payer account already has
    `held_units_limit_per_payer` units under review, so holding it would lock yet more stock), or None to hold it.
    The decision is logged; the caller then sends the order to its refund instead of holding it."""
    runtime = runtime_of(session)
    row = await session.get(OrderRiskSignals, order.id)
    if runtime is None or row is None or not row.payer or not runtime.held.per_payer:
        return None
    held = await payer_held_units(session=session, payer=row.payer, order_id=order.id)
    if not held or held + order.quantity <= runtime.held.per_payer:
        return None
    hit = {"reason_code": "payer_stock_held", "detail": f"payer has {held} units under review "
                                                        f"(limit {runtime.held.per_payer})"}
    signals = Signals(stage=Stage.PAYMENT, ip=row.ip, device=row.device, device_verified=bool(row.device),
                      contact=order.contact, contact_kind=order.contact_kind, sku_id=order.sku_id,
                      quantity=order.quantity, amount_cents=order.total_cents, at=runtime.now().timestamp(),
                      local_time=local_clock(runtime, runtime.now())[0], order_id=order.id, payer=row.payer,
                      merchant_id=order.merchant_id)
    log_decision(session, signals, Evaluation(Decision.DENY, 0, [hit]), "refused_payer_stock_held", now or utcnow())
    return "the paying account already has too many items waiting for risk review"
