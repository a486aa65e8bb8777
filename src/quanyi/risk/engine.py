"""The risk engine (风控引擎): evaluate the rule set at order creation, payment and delivery.

Payment and delivery stages: risk.payment_stage.

Each shop process installs one `RiskRuntime` on its database (`install_runtime`), so services that only
hold a session (`orders.service.apply_payment`) reach the counters. Rules come from the process's copy of the
enabled rules (`ruleset.enabled_rules`): an edit applies to this process's next request and to every other
process's within QUANYI_RISK_RULES_CACHE_SECONDS.

Decision: the strictest action among the rules that hit, raised by the score thresholds (total score of
the hits). An allow-list hit skips every other rule. At checkout a decision means what `rules.checkout_outcome`
says, on the ladder allow < challenge < review (a challenge and a hold) < deny, so a higher score is never a
milder outcome. After payment the buyer can no longer be asked or refused (the money is in), so challenge and
deny there become review: the order is held for a human. Stock held by one client's unpaid and under-review
orders is bounded (risk.holdings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.db import Database, utcnow
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.risk import ruleset
from quanyi.risk.challenges import (
    CaptchaVerifier,
    Verification,
    VerificationUnavailable,
    issue_challenge,
    load_captcha_verifier,
    verify_challenge,
)
from quanyi.risk.counters import DatabaseCounters, Event, RedisCounters, build_counters
from quanyi.risk.device import device_cookie_key
from quanyi.risk.holdings import HeldLimits, check_held_stock, client_lock_ids
from quanyi.risk.locks import PG_LOCKS, lock_params
from quanyi.risk.models import OrderRiskSignals, RiskDecisionLog, RiskPolicy
from quanyi.risk.rules import (
    STRICTNESS,
    Decision,
    Probe,
    Signals,
    Stage,
    attempt_events,
    checkout_outcome,
    extra_events,
    placed_events,
    rule_hits,
)
from quanyi.risk.ruleset import CachedRule
from quanyi.risk.signal_counts import (  # re-exported: risk.order_stage, payment_stage, express read them here
    PAID_COUNTED_WITHIN,
    CountingProbe,
    paid_counted_here,
    paid_orders_count,
    placed_orders_count,
)
from quanyi.scope import PLATFORM_MERCHANT_ID
from quanyi.shoptime import shop_midnight, shop_time, shop_zone

__all__ = ["RiskRuntime", "install_runtime", "runtime_of", "runtime_in", "RiskDenied", "VerificationRequired",
           "CheckoutRateLimited", "Evaluation", "Screening", "FloodHits", "flood_limited", "flood_keys",
           "hit_flood_limits",
           "checkout_signals", "order_rules", "screen_checkout",
           "remember_order", "probe_of", "placed_orders_count", "paid_orders_count", "paid_counted_here",
           "PAID_COUNTED_WITHIN", "evaluate", "local_clock", "log_decision"]

_RUNTIME_KEY = "quanyi.risk.runtime"
BUYER_MESSAGE = "We could not accept this order right now. Please try again later or contact support."


class RiskDenied(DomainError):
    """Refused by risk control. The buyer sees a neutral message; the reason is in the decision log."""
    code = "order_refused"


class VerificationRequired(DomainError):
    code = "verification_required"


class CheckoutRateLimited(DomainError):
    code = "too_many_checkouts"


@dataclass
class RiskRuntime:
    counters: DatabaseCounters | RedisCounters
    timezone: ZoneInfo
    secret: bytes
    device_key: bytes  # signs the shop-issued device cookie (risk.device)
    challenge_ttl_seconds: int
    challenge_max_attempts: int
    checkout_window_seconds: int
    checkout_limit_per_ip: int
    checkout_limit_per_device: int
    held: HeldLimits = field(default_factory=lambda: HeldLimits(0, 0, 0, 0, 900))  # risk.holdings; off unless set
    captcha: CaptchaVerifier | None = None
    # The risk clock: the wall clock in production; the replay harness runs simulated days on it.
    clock: Callable[[], dt.datetime] = field(default=utcnow)
    coupon_new_members_per_payer: int = 0  # coupons.abuse: members per payer account using new-member coupons

    def now(self) -> dt.datetime:
        return self.clock()


def install_runtime(db: Database, settings: Settings) -> RiskRuntime:
    """Build this process's risk runtime and attach it to every session of `db`."""
    secret = settings.app_secret.get_secret_value().encode()
    runtime = RiskRuntime(
        counters=build_counters(db, settings.redis_url, retention_seconds=settings.risk_counter_retention_seconds,
                                 redis_prefix=settings.redis_prefix("risk")),
        timezone=shop_zone(settings.shop_timezone), secret=secret, device_key=device_cookie_key(secret),
        challenge_ttl_seconds=settings.risk_challenge_ttl_seconds,
        challenge_max_attempts=settings.risk_challenge_max_attempts,
        checkout_window_seconds=settings.checkout_limit_window_seconds,
        checkout_limit_per_ip=settings.checkout_limit_per_ip,
        checkout_limit_per_device=settings.checkout_limit_per_device,
        coupon_new_members_per_payer=settings.coupon_new_members_per_payer,
        held=HeldLimits.from_settings(settings),
        captcha=load_captcha_verifier(settings.risk_captcha_verifier) if settings.risk_captcha_verifier else None,
    )
    db.session_info[_RUNTIME_KEY] = runtime
    ruleset.install_cache(db.session_info, settings.risk_rules_cache_seconds)
    return runtime


def runtime_of(session: AsyncSession) -> RiskRuntime | None:
    return runtime_in(session.info)


def runtime_in(session_info: dict[str, Any]) -> RiskRuntime | None:
    """The risk runtime of a database's `session_info` (`Database.session_info`), before any session."""
    runtime = session_info.get(_RUNTIME_KEY)
    return runtime if isinstance(runtime, RiskRuntime) else None


# ---------------------------------------------------------------- evaluation

@dataclass
class Evaluation:
    decision: Decision
    score: int
    hits: list[dict[str, Any]]
    allow_listed: bool = False

    @property
    def main_reason(self) -> str:
        """The reason code of the hit that weighs most: strictest action, then highest score, then rule order."""
        if not self.hits:
            return "score"
        return str(max(self.hits, key=lambda h: (STRICTNESS[Decision(h["action"])], h["score"]))["reason_code"])

    @property
    def reason(self) -> str:
        """Every distinct reason code, the main one first (what an order held for review is marked with)."""
        return ", ".join(dict.fromkeys([self.main_reason, *(h["reason_code"] for h in self.hits)]))


def local_clock(runtime: RiskRuntime, now: dt.datetime) -> tuple[dt.time, float]:
    """The shop's local time of day at `now`, and the timestamp of that day's local midnight."""
    local = shop_time(now, runtime.timezone)
    return local.time(), shop_midnight(local.date(), runtime.timezone).timestamp()


async def _rules_for(session: AsyncSession, stage: Stage) -> list[CachedRule]:
    return [r for r in await ruleset.enabled_rules(session=session) if stage.value in r.stages]


def probe_of(runtime: RiskRuntime, session: AsyncSession, signals: Signals) -> Probe:
    """The counters and order history as the rules judging `signals` see them."""
    return CountingProbe(runtime, session, signals.at, signals.order_id)


async def evaluate(*, session: AsyncSession, runtime: RiskRuntime, signals: Signals,
                   rules: list[CachedRule] | None = None, probe: Probe | None = None,
                   policy: RiskPolicy | None = None) -> Evaluation:
    """Run the enabled rules of the signals' stage and combine them into one decision. `probe`: what the rules count
    with, if not `probe_of` (risk.payment_stage.quiet_at_payment); `policy`: the score thresholds when the caller
    read them already (risk.order_stage)."""
    rules = rules if rules is not None else await _rules_for(session, signals.stage)
    probe = probe or probe_of(runtime, session, signals)
    _, day_start = local_clock(runtime, dt.datetime.fromtimestamp(signals.at, dt.UTC))
    hits: list[dict[str, Any]] = []
    for rule in sorted(rules, key=lambda r: r.kind != "allow_list"):  # allow lists first: they end it
        hit = await rule_hits(rule.kind, rule.checked(), signals, probe, day_start=day_start)
        if hit is None:
            continue
        entry = {"rule_id": rule.id, "name": rule.name, "kind": rule.kind, "reason_code": rule.reason_code,
                 "action": rule.action, "score": rule.score, "detail": hit.detail}
        if rule.kind == "allow_list":
            return Evaluation(Decision.ALLOW, 0, [entry], allow_listed=True)
        hits.append(entry)
    score = sum(h["score"] for h in hits)
    decision = max((Decision(h["action"]) for h in hits), key=STRICTNESS.__getitem__, default=Decision.ALLOW)
    if not hits:
        return Evaluation(decision, score, hits)  # thresholds are >= 1: a score of 0 never reaches one
    policy = policy or await ruleset.get_policy(session=session)
    for threshold, by_score in ((policy.challenge_at, Decision.CHALLENGE), (policy.review_at, Decision.REVIEW),
                                (policy.deny_at, Decision.DENY)):
        if threshold is not None and score >= threshold and STRICTNESS[by_score] > STRICTNESS[decision]:
            decision = by_score
    return Evaluation(decision, score, hits)


def log_decision(session: AsyncSession, signals: Signals, evaluation: Evaluation, outcome: str,
                 now: dt.datetime) -> None:
    """Keep a decision (and what came of it) in the risk decision log."""
    session.add(RiskDecisionLog(stage=signals.stage.value, order_id=signals.order_id,
                                decision=evaluation.decision.value, score=evaluation.score,
                                rules_hit=evaluation.hits, signals=signals.public(), outcome=outcome,
                                created_at=now))


# ---------------------------------------------------------------- order creation

def checkout_signals(runtime: RiskRuntime, *, ip: str, device: str, contact_kind: str, contact: str,
                     sku_id: int, quantity: int, amount_cents: int, device_verified: bool = False,
                     merchant_id: int = PLATFORM_MERCHANT_ID, now: dt.datetime | None = None) -> Signals:
    """`device_verified`: the device is a shop-issued cookie (risk.device), not a client's claim. `now`: the risk
    clock's time of the checkout when the caller read it already (risk.gate counts with it)."""
    now = now or runtime.now()
    local_time, _ = local_clock(runtime, now)
    return Signals(stage=Stage.ORDER, ip=ip, device=device[:128], device_verified=device_verified and bool(device),
                   contact=contact, contact_kind=contact_kind, sku_id=sku_id, quantity=quantity,
                   amount_cents=amount_cents, at=now.timestamp(), local_time=local_time, merchant_id=merchant_id)


@dataclass
class Screening:
    review_reason: str | None = None
    sku: Any = None  # the SKU as screening read it, for checkout to use rather than read again


def flood_limited(runtime: RiskRuntime) -> bool:
    """Whether checkouts are counted against a flood limit at all."""
    return bool(runtime.checkout_limit_per_ip or runtime.checkout_limit_per_device)


@dataclass(frozen=True)
class FloodHits:
    """A checkout's hits on the flood limits: `check` raises once the hits are committed."""

    over: bool = False
    window: int = 0

    def check(self) -> None:
        if self.over:
            raise CheckoutRateLimited("too many checkouts in a short time; please wait and try again",
                                      retry_after=self.window)


def flood_keys(runtime: RiskRuntime, signals: Signals) -> dict[str, int]:
    """The flood-limit counters a checkout counts against, with their limits."""
    return {f"flood:{dim}:{signals.value(dim)}": limit
            for dim, limit in (("ip", runtime.checkout_limit_per_ip), ("device", runtime.checkout_limit_per_device))
            if limit and signals.value(dim)}


async def hit_flood_limits(runtime: RiskRuntime, signals: Signals, *,
                           session: AsyncSession | None = None) -> FloodHits:
    """Count this checkout against the per-IP and per-device limits. With `session` (a write transaction) the
    database counters write in it: the caller commits before calling `check`, so refusals count too."""
    window = runtime.checkout_window_seconds
    limits = flood_keys(runtime, signals)
    if not limits:
        return FloodHits()
    counts = await runtime.counters.hit_many(list(limits), window_seconds=window, at=signals.at, session=session)
    return FloodHits(any(n > limit for n, limit in zip(counts, limits.values(), strict=True)), window)


async def _check_flood(runtime: RiskRuntime, signals: Signals) -> None:
    (await hit_flood_limits(runtime, signals)).check()


async def order_rules(session: AsyncSession) -> list[CachedRule]:
    """The enabled rules of the order stage (checkout), for `screen_checkout`."""
    return await _rules_for(session, Stage.ORDER)


async def screen_checkout(*, db: Database, runtime: RiskRuntime, signals: Signals, locale: str, currency: str,
                          verification: Verification | None, rules: list[CachedRule] | None = None,
                          flood_checked: bool = False) -> Screening:
    """Decide on a checkout before the order exists. Raises CheckoutRateLimited, RiskDenied,
    VerificationRequired (after sending a one-time code, or for a captcha when no code can be sent) or
    VerificationUnavailable (no way to verify this contact); returns whether the paid order must be held.
    Runs outside the order's transaction: its counters and log entries stay even when checkout is refused.
    `rules`: the order-stage rules if the caller read them already (`order_rules`); `flood_checked`: the caller
    counted the checkout against the flood limits already (`hit_flood_limits`)."""
    if not flood_checked:
        await _check_flood(runtime, signals)
    if rules is None:
        async with db.read_session() as session:
            rules = await order_rules(session)
    if not rules:
        return Screening()  # risk control unused: no counter writes on the checkout path
    events = attempt_events(signals) + [e for r in rules for e in extra_events(r.kind, r.checked(), signals)]
    verified = False
    if verification is not None:
        # The answer to a challenge repeats the checkout that was challenged (and counted): a good answer is
        # not counted again; a wrong one is (and raises), so a made-up challenge id never dodges the counters.
        try:
            await verify_challenge(db=db, runtime=runtime, verification=verification, contact=signals.contact,
                                   ip=signals.ip, now=utcnow())
            verified = True
        except DomainError:
            await runtime.counters.record(events, at=signals.at)
            raise
    evaluation = await _counted(db, runtime, signals, rules, [] if verified else events)
    outcome = checkout_outcome(evaluation.decision)  # the ladder: every step demands what the one below does
    if not outcome.verify:
        return Screening()
    now = runtime.now()
    if outcome.refuse:
        async with db.transaction() as session:
            log_decision(session, signals, evaluation, "refused", now)
        raise RiskDenied(BUYER_MESSAGE)
    if verified:
        async with db.transaction() as session:
            log_decision(session, signals, evaluation, "flagged_for_review" if outcome.hold else "verified", now)
        return Screening(review_reason=evaluation.reason[:300] if outcome.hold else None)
    # Not verified yet: a one-time code (or a captcha) first, for review as for challenge.
    try:
        async with db.transaction() as session:
            challenge = await issue_challenge(session=session, runtime=runtime, contact=signals.contact,
                                              contact_kind=signals.contact_kind, locale=locale,
                                              amount_cents=signals.amount_cents, currency=currency, now=utcnow())
            log_decision(session, signals, evaluation, "challenged", now)
    except VerificationUnavailable as exc:
        # No code can reach this contact: never ask for one. A captcha still can verify the buyer;
        # without one the checkout is refused with what to do instead, and staff see why.
        async with db.transaction() as session:
            log_decision(session, signals, evaluation,
                         "captcha_only" if runtime.captcha else "verification_unavailable", now)
        if runtime.captcha is None:
            raise
        raise VerificationRequired("please confirm this order by solving the captcha", challenge_id=None,
                                   channel=None, expires_in_seconds=None, captcha_accepted=True,
                                   use_contact_kind=exc.context.get("use_contact_kind")) from None
    raise VerificationRequired(
        "please confirm this order with the one-time code we just sent to your contact",
        challenge_id=challenge.public_id, channel=challenge.channel,
        expires_in_seconds=runtime.challenge_ttl_seconds, captcha_accepted=runtime.captcha is not None)


async def _counted(db: Database, runtime: RiskRuntime, signals: Signals, rules: list[CachedRule],
                   events: list[Event]) -> Evaluation:
    """Record a checkout's attempt (`events`) and judge it. Database counters: in one transaction, on PostgreSQL
    under the client's advisory locks (risk.holdings.client_lock_ids: those the one-transaction checkout takes when
    the rules count, risk.gate; one statement, one sorted order), so one client's checkouts, whichever way each
    takes, count one after the other: each sees every earlier one and its own attempt, and the fast way, whose
    attempt commits with its order, is never missed by a general checkout nor misses one. The events of keys no
    client lock covers (the shop's, the cookieless surge's) commit first, in a transaction of their own, as all of
    them did before: of two general checkouts the later still counts both (the fast way's are late by the checkouts
    in flight, docs/PERFORMANCE.md section 22). SQLite: the one writer serializes the whole. Redis counters: recorded
    at once, then counted (the later of two counts both)."""
    if not isinstance(runtime.counters, DatabaseCounters):
        await runtime.counters.record(events, at=signals.at)
        async with db.read_session() as session:
            return await evaluate(session=session, runtime=runtime, signals=signals, rules=rules)
    clients = [event for event in events if event[0].split(":", 2)[1] in _CLIENT_DIMENSIONS]
    await runtime.counters.record([event for event in events if event[0].split(":", 2)[1] not in _CLIENT_DIMENSIONS],
                                  at=signals.at)
    locks = client_lock_ids(ip=signals.ip, device=signals.device, contact=signals.contact)
    async with db.transaction() as session:
        if locks and db.dialect == "postgresql":
            await session.execute(PG_LOCKS, lock_params(locks))
        await runtime.counters.record(clients, at=signals.at, session=session)
        # No upper time bound on a count up to now: the clock was read before the locks were waited for, and a
        # checkout of this client that read it later but took the locks first (so is counted before this one)
        # recorded its attempt at a later moment. As the one-transaction way counts (risk.order_stage.ask).
        probe = CountingProbe(runtime, session, signals.at, signals.order_id, open_ended=True)
        return await evaluate(session=session, runtime=runtime, signals=signals, rules=rules, probe=probe)


_CLIENT_DIMENSIONS = frozenset({"ip", "device", "contact"})  # keys `<what>:<dimension>:<value>` client locks cover


async def remember_order(*, session: AsyncSession, order: Order, signals: Signals, screening: Screening,
                         held_checked: bool = False, with_events: Sequence[tuple[str, str]] = ()) -> None:
    """Inside the order's transaction: keep its signals for the later stages and count it as placed. Raises
    TooMuchStockHeld when the order's client would hold more stock than allowed (risk.holdings), unless the caller
    counted it before placing the order (`held_checked`: risk.gate). `with_events`: counter events written with
    the placed ones (the gate's flood-limit hits)."""
    runtime = runtime_of(session)
    if runtime is None:
        return
    signals.order_id = order.id
    if not held_checked:
        # Orders placed only to lock stock: one client's unpaid / under-review units are bounded (raises, rolling
        # back).
        await check_held_stock(session=session, limits=runtime.held, order_id=order.id, quantity=signals.quantity,
                               ip=signals.ip, device=signals.device, contact=signals.contact, at=signals.at,
                               now=utcnow())
    session.add(OrderRiskSignals(order_id=order.id, ip=signals.ip, device=signals.device, contact=signals.contact,
                                 sku_id=signals.sku_id, quantity=signals.quantity, amount_cents=signals.amount_cents,
                                 at=signals.at, paid=False, review_reason=screening.review_reason))
    # In the order's transaction (Redis: written once it commits): a rolled-back order is never counted. The database
    # counts placed orders from the signals row just added (`placed_orders_count`); Redis keeps `placed` events.
    placed = [] if isinstance(runtime.counters, DatabaseCounters) else placed_events(signals, "placed")
    await runtime.counters.record([*with_events, *placed], at=signals.at, session=session)
