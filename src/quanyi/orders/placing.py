"""Placing a buyer's order (下单) from the API or the storefront form: risk screening, the order, its attribution.

Without order-stage risk rules (or with only rules of the kinds risk.order_stage judges, none of which hits) and
without a verification answer (a plain checkout, the flash-sale path, and a member's checkout with coupons, points
and member price) everything happens in ONE transaction: the SKU, the risk gate
(flood and held-stock limits, risk.gate), the stock, the order, its risk signals and counter events, its coupons and
points. A refusal keeps the same answers in the same order as before: too many checkouts (429) first, then sold out
(409), then the coupons' refusals, then (with coupons) the new-member coupon check (403), then too much stock held
(429); a refused checkout still counts against the flood limits (its hits commit with nothing else when the refusal
comes before any write, and in a transaction of their own when the order's transaction rolled back). With rules or
an answer to a challenge, screening runs first in units of work of its own (risk.checkout.screen_order), as it
always did; with judged rules the one transaction also writes the attempt's counter events as the screening does.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SKU_ROW_SUBQUERY, SkuRow, sku_row_of
from quanyi.context import ShopContext
from quanyi.coupons import abuse as coupon_abuse
from quanyi.db import utcnow
from quanyi.inventory.service import OutOfStock
from quanyi.money import line_total
from quanyi.orders.checkout import create_order
from quanyi.orders.contact import normalize_contact
from quanyi.orders.lookup import hash_query_password
from quanyi.orders.member_checkout import may_be_member, member_checkout_read, remember_member_checkout
from quanyi.orders.models import Order
from quanyi.orders.one_statement import Rider
from quanyi.promoters.referral import attribute_checkout
from quanyi.risk import engine as risk_engine
from quanyi.risk import holdings as risk_holdings
from quanyi.risk import order_stage, ruleset
from quanyi.risk.challenges import Verification
from quanyi.risk.checkout import screen_order
from quanyi.risk.device import CheckoutDevice
from quanyi.risk.gate import Beside, Client, Gate, count_checkout
from quanyi.risk.rules import Signals, Stage

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from quanyi.members.dependencies import MemberToken

__all__ = ["CheckoutInput", "place_order"]


@dataclass(frozen=True)
class CheckoutInput:
    """One buyer's checkout as the API or the form received it (validated shapes, not yet checked rules)."""

    sku_id: int
    quantity: int
    contact: str
    locale: str
    ip: str
    device: CheckoutDevice
    verification: Verification | None = None
    query_password: str | None = None
    recharge_account: str | None = None
    card_key_id: int | None = None
    member_id: int | None = None  # the signed-in buyer (会员) as the caller found them, or
    member_token: MemberToken | None = None  # ... their session token, looked up in the checkout's transaction
    points: int = 0
    coupon_codes: Sequence[str] = ()
    member_coupon_ids: Sequence[int] = ()
    distributor_code: str | None = None
    referral_cookie: str | None = None


Inside = Callable[[AsyncSession, Order], Awaitable[None]]


async def place_order(ctx: ShopContext, data: CheckoutInput, *, inside: Inside | None = None) -> Order:
    """Screen and place the order; raises the refusal (risk, stock, input) having placed nothing. `inside` runs
    in the order's transaction once it is placed (describing it for the answer, say)."""
    # Hash before the transaction: on SQLite it holds the writer lock, and argon2 is slow by design.
    password_hash = await hash_query_password(data.query_password) if data.query_password else None
    if data.verification is None:
        rules = await _order_rules(ctx)
        # Order-stage rules judged without the engine (risk.order_stage): the one transaction as long as none hits.
        if not rules or (order_stage.judged_without_counts(ctx.risk, rules)
                         and order_stage.may_be_quiet(ctx.risk, rules)):
            placed = await _place_in_one_transaction(ctx, data, password_hash, inside, rules)
            if placed is not None:
                return placed
    signals, screening = await screen_order(  # risk control: may raise 429 / refuse / ask for a code
        ctx, ip=data.ip, device=data.device, sku_id=data.sku_id, quantity=data.quantity, contact=data.contact,
        locale=data.locale, verification=data.verification)
    async with ctx.db.transaction() as session:
        if signals is not None:
            # The client's held-stock locks before any row lock, as the one-transaction checkout takes them (risk.gate):
            # remember_order counts the held stock only after _create locked rows both ways may need (a shared code).
            await risk_holdings.lock_client(session=session, limits=ctx.risk.held, ip=signals.ip,
                                            device=signals.device, contact=signals.contact)
        member_id = await _member_id(session, data)
        order = await _create(ctx, session, data, member_id, password_hash, screening.sku)
        await coupon_abuse.check_use(ctx, session=session, order=order, ip=data.ip,
                                     device=data.device.id)  # 薅羊毛: new-member coupons per device / network
        await _attribute(ctx, session, order, data, member_id)
        if signals is not None:
            await risk_engine.remember_order(session=session, order=order, signals=signals, screening=screening)
        if inside is not None:
            await inside(session, order)
    return order


async def _order_rules(ctx: ShopContext) -> list[ruleset.CachedRule]:
    """The enabled order-stage rules (from the process's copy of the rules; a read when it is old)."""
    rules = ruleset.fresh_copy(ctx.db.session_info)
    if rules is None:
        async with ctx.db.read_session() as session:
            rules = await ruleset.enabled_rules(session=session)
    return [rule for rule in rules if Stage.ORDER.value in rule.stages]


class _RuleHits(Exception):
    """An order-stage rule hits this checkout: nothing was written; the general way judges it."""


async def _place_in_one_transaction(ctx: ShopContext, data: CheckoutInput, password_hash: str | None,
                                    inside: Inside | None, rules: list[ruleset.CachedRule]) -> Order | None:
    """The order in one transaction; None (having written nothing) when one of `rules` (order stage, judged by
    risk.order_stage) hits: the caller then takes the general way."""
    gate: Gate | None = None
    signals: Signals | None = None
    refusal: Exception | None = None
    now = utcnow()  # one moment for the member's read, the price and the attribution (orders.member_checkout)
    try:
        # On the driver (quanyi.db_driven): the plain checkout's statements all go through quanyi.db_direct.
        # keep: when the checkout starts its payment, its committed connection does that too (checkout_lane).
        async with ctx.db.driver_transaction(keep=True) as session:
            sku, signals, gate, member, asked = await _sku_signals_and_gate(ctx, session, data, now, rules)
            if rules and gate is not None and signals is not None and gate.flood is None:
                # The general way counts the attempt once past the flood limits, then judges (risk.engine).
                if not (await order_stage.quiet_at_checkout(ctx.risk, rules, signals, *asked) if asked is not None
                        else await order_stage.quiet_without_reads(ctx.risk, rules, signals)):
                    raise _RuleHits  # before any write: the rollback leaves nothing, the gate's hits not counted
                gate.events += order_stage.attempt_rows(rules, signals)
            member_id = await _member_id(session, data) if member is _UNREAD else member
            if gate is not None:
                refusal = gate.flood
            riders = gate.riders(signals) if gate is not None and signals is not None else None
            # With coupons, the new-member coupon check answers before the held-stock limit (as it always did):
            # both then run once the order is in (a refusal rolls it back).
            coupons = bool(data.coupon_codes or data.member_coupon_ids)
            if refusal is None:
                try:
                    order = await _create(ctx, session, data, member_id, password_hash, sku, riders=riders or (),
                                          before_insert=gate.check_held if gate and gate.held and not coupons
                                          else None, now=now)
                except OutOfStock as exc:  # raised holding nothing and having written nothing (orders.checkout)
                    refusal = exc
            if refusal is not None:
                if gate is not None and signals is not None:
                    await gate.write_events(session, signals.at)  # refused, and counted: commits with nothing else
            else:
                await coupon_abuse.check_use(ctx, session=session, order=order, ip=data.ip, device=data.device.id)
                if coupons and gate is not None:
                    gate.check_held()
                await _attribute(ctx, session, order, data, member_id, now)
                if riders is not None and gate is not None and signals is not None:
                    signals.order_id = order.id
                    await gate.riders_written(session, signals.at)
                elif signals is not None and gate is not None:
                    await risk_engine.remember_order(session=session, order=order, signals=signals,
                                                     screening=risk_engine.Screening(), held_checked=True,
                                                     with_events=gate.events)
                if inside is not None:
                    await inside(session, order)
    except _RuleHits:
        return None
    except Exception:  # rolled back, the gate's hits with it (written or not): they count all the same
        if gate is not None and signals is not None:
            try:
                await gate.write_events_alone(ctx.db, signals.at)
            except Exception:  # the database is away, say: the refusal or error at hand is the answer
                logger.warning("could not count a refused checkout against the flood limits", exc_info=True)
        raise
    if refusal is not None:
        raise refusal
    return order


_UNREAD = object()  # the member is not read yet


_Judged = tuple[order_stage.Asked, tuple[Any, ...]]


async def _sku_signals_and_gate(
        ctx: ShopContext, session: AsyncSession, data: CheckoutInput, now: dt.datetime,
        rules: Sequence[ruleset.CachedRule] = (),
) -> tuple[SkuRow | None, Signals | None, Gate | None, int | None | object, _Judged | None]:
    """The SKU as a plain row (None if unknown: checkout then refuses it with its usual error), the checkout's risk
    signals and its gate (None when the request is invalid anyway: unknown SKU, bad contact), and the signed-in
    buyer's id when it was read here (None: a guest; `_UNREAD`: `_member_id`'s to find). The SKU is read in the
    gate's count statement (risk.gate.Beside): the gate counts by who checks out, which is known before the SKU; a
    member's checkout reads the member with it (orders.member_checkout, at `now`, one moment for the whole
    checkout). A guest's and a member's checkout alike: the snapshot, the member's read, the member price, the
    coupons' scope and the points read the row's columns (catalog.sku_row), no ORM object is built. With order-stage
    `rules` (judged by risk.order_stage) what they ask is read in the same statement: the last item, with the row
    read (None: they read nothing)."""
    try:
        contact_kind, contact_value = normalize_contact(data.contact)
    except ValueError:
        return None, None, None, _UNREAD, None
    token = data.member_token.token if data.member_token is not None else ""
    member_read = (member_checkout_read(token=token, sku_id=data.sku_id, coupon_codes=data.coupon_codes,
                                        member_coupon_ids=data.member_coupon_ids, now=now)
                   if token and may_be_member(token) else None)
    risk_now = ctx.risk.now()
    client = Client(ip=data.ip, device=data.device.id[:128], contact=contact_value, quantity=data.quantity,
                    at=risk_now.timestamp())  # as the signals below have them
    asked = order_stage.ask(ctx.risk, rules, ip=data.ip, device=data.device.id, device_verified=data.device.verified,
                            contact_kind=contact_kind, contact=contact_value, sku_id=data.sku_id,
                            quantity=data.quantity, now=risk_now) if rules else None
    opening = await count_checkout(session=session, runtime=ctx.risk, client=client,
                                   beside=member_read or Beside(SKU_ROW_SUBQUERY, {"b_sku_id": data.sku_id}),
                                   also=asked.read if asked is not None else None)
    if opening.beside is None:
        return None, None, None, _UNREAD, None  # an unknown SKU: not counted (its flood hits are not written either)
    member: int | None | object = _UNREAD
    if member_read is not None:
        sku, login = await remember_member_checkout(session=session, read=member_read, row=opening.beside, now=now)
        member = login.member_id if login is not None else None
    else:
        sku = sku_row_of(opening.beside)
    signals = risk_engine.checkout_signals(
        ctx.risk, ip=data.ip, device=data.device.id, device_verified=data.device.verified, contact_kind=contact_kind,
        contact=contact_value, sku_id=sku.id, quantity=data.quantity,
        amount_cents=line_total(sku.price_cents, data.quantity), merchant_id=sku.merchant_id, now=risk_now)
    return sku, signals, await opening.open(), member, (asked, opening.also) if asked is not None else None


async def _member_id(session: AsyncSession, data: CheckoutInput) -> int | None:
    """The signed-in buyer (会员), else None (a guest order)."""
    if data.member_token is None:
        return data.member_id
    login = await data.member_token.login(session)
    return login.member_id if login else None


async def _create(ctx: ShopContext, session: AsyncSession, data: CheckoutInput, member_id: int | None,
                  password_hash: str | None,
                  sku: Sku | SkuRow | None, *, before_insert: Callable[[], None] | None = None,
                  riders: Sequence[Rider] = (), now: dt.datetime | None = None) -> Order:
    return await create_order(
        session=session, sku_id=data.sku_id, quantity=data.quantity, contact=data.contact,
        query_password_hash=password_hash, locale=data.locale, ip=data.ip,
        reservation_ttl=dt.timedelta(seconds=ctx.settings.reservation_ttl_seconds),
        recharge_account=data.recharge_account, sku=sku, picked_card_key_id=data.card_key_id,
        member_id=member_id, points=data.points if member_id else 0,
        coupon_codes=data.coupon_codes, member_coupon_ids=data.member_coupon_ids,
        before_insert=before_insert, riders=riders, now=now,
    )


async def _attribute(ctx: ShopContext, session: AsyncSession, order: Order, data: CheckoutInput,
                     member_id: int | None, now: dt.datetime | None = None) -> None:
    # Distribution (分销): the promoter named here, else the one whose link the browser came through.
    await attribute_checkout(session=session, order=order, secret=ctx.settings.app_secret.get_secret_value(),
                             named_code=data.distributor_code, cookie=data.referral_cookie, member_id=member_id,
                             now=now)
