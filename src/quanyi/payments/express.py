"""The express lane of a payment notification (快速通道): the usual paid card-key order in two statements.

A flash sale's notifications are nearly all alike: a payment we opened and have not applied yet, for an unpaid
card-key order whose keys are reserved (with or without coupons, none of them for new members only), in a shop whose
risk control holds nothing at payment or delivery (no enabled rule of those stages hits: judged in the statement by
risk.payment_sql on PostgreSQL, by risk.payment_stage.quiet_at_payment before the writes on SQLite).
`confirm_payment` reads and locks what it needs in one statement (`lock_payment`: the order and the payment,
row-locked in that order like every writer of orders; a payment already carrying the gateway's transaction; the
order's risk signals; whether any risk rule is enabled). For those orders `deliver` then writes what delivery needs
in one more (PostgreSQL: data-modifying CTEs, most often in `lock_payment`'s own statement, see
`_PG_LOCK_AND_DELIVER`; SQLite has none and sends them one by one under its writer lock), each step only if the
reserved keys were all there:

- the order's reserved keys sold, locked in id order (inventory's rule: all of them, or nothing changes),
- the order paid and then delivered, with both status events (orders.state's transitions and their reasons),
- the payment succeeded with the gateway's transaction,
- the order's reserved coupons used (pricing.confirm_order_pricing: their redemptions, and a member's own coupon),
- the payment's deferred row (ledger.deferred): the ledger worker posts the books, enqueues the buyer's message
  and the merchant's alert and counts loyalty from it, in batches; committed with the payment, so nothing paid is
  lost if the process dies right after,
- risk control's record of the payment (the order's signals marked paid, with the payment's risk-clock moment when
  its `paid` is counted from them; the counter events of the others and the payer's), as
  `risk.payment_stage.hold_at_payment` writes it.

Everything else takes the general way, `orders.service.apply_payment`, which stays the reference:
`tests/payments/test_express_lane.py` checks both ways leave the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, bindparam, exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from quanyi import db_direct, db_driven, sqlite_trip
from quanyi.catalog.models import DeliveryType
from quanyi.coupons import paid_statement as coupons_paid
from quanyi.coupons.models import Coupon, CouponGrant, CouponRedemption, GrantStatus, RedemptionStatus
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import DeferredPosting
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.state import OrderStatus, check_transition
from quanyi.payments.models import Payment, PaymentStatus
from quanyi.risk import engine as risk_engine
from quanyi.risk import payment_sql as risk_sql
from quanyi.risk import payment_stage as risk_payment
from quanyi.risk import rules as risk_rules
from quanyi.risk import ruleset
from quanyi.risk.counters import DatabaseCounters
from quanyi.risk.models import CounterEvent, OrderRiskSignals, RiskRule

__all__ = ["Attempt", "lock_payment", "takes_express_lane", "deliver", "likely_done_while_locking"]

_orders, _payments, _keys = Order.__table__, Payment.__table__, CardKey.__table__
_signals, _other = OrderRiskSignals.__table__, Payment.__table__.alias("other_payment")
_redemptions, _coupons, _grants = CouponRedemption.__table__, Coupon.__table__, CouponGrant.__table__

# The payment, its order and what the notification's checks and the express lane read, locked: order first, then
# payment (FOR UPDATE OF locks in the order named), as every writer of orders does.
_LOCK = (
    select(
        _orders.c.id, _orders.c.id.label("order_id"), _orders.c.status.label("order_status"), _orders.c.order_no,
        _orders.c.sku_id, _orders.c.quantity, _orders.c.delivery_type, _orders.c.picked_card_key_id,
        _orders.c.coupon_discount_cents, _orders.c.total_cents, _orders.c.contact, _orders.c.contact_kind,
        _orders.c.created_ip, _orders.c.merchant_id,
        _payments.c.id.label("payment_id"), _payments.c.payment_no, _payments.c.status.label("payment_status"),
        _payments.c.amount_cents, _payments.c.currency, _payments.c.gateway_trade_no,
        _other.c.payment_no.label("other_payment_no"), _other.c.order_id.label("other_order_id"),
        _other.c.amount_cents.label("other_amount_cents"),
        _signals.c.order_id.label("signals_order_id"), _signals.c.ip.label("signals_ip"),
        _signals.c.device.label("signals_device"), _signals.c.review_reason, _signals.c.at.label("signals_at"),
        select(func.count()).select_from(RiskRule.__table__).where(RiskRule.__table__.c.enabled.is_(True))
        .scalar_subquery().label("rules_enabled"),
    )
    .select_from(
        _payments.join(_orders, _orders.c.id == _payments.c.order_id)
        .outerjoin(_other, and_(_other.c.gateway == bindparam("gateway"),
                                _other.c.gateway_trade_no == bindparam("trade_no")))
        .outerjoin(_signals, _signals.c.order_id == _orders.c.id))
    .where(_payments.c.payment_no == bindparam("payment_no"), _payments.c.gateway == bindparam("gateway"))
    .with_for_update(of=[_orders, _payments])
)


# Whether one of the order's coupons is for new members only (asked of an order with coupons only: the plain
# notification reads no coupon table).
_NEW_MEMBER_COUPON = select(exists(
    select(_redemptions.c.id).join(_coupons, _coupons.c.id == _redemptions.c.coupon_id)
    .where(_redemptions.c.order_id == bindparam("oid"), _coupons.c.new_members_only.is_(True))))


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the notification says, for `lock_payment` to deliver in the same statement when it can."""

    amount_cents: int
    currency: str
    paid_at: dt.datetime
    payer_account: str | None  # per gateway ("alipay:..."), as `deliver` takes it
    now: dt.datetime


# PostgreSQL: the statement that locks (False: it only locks, and `deliver` writes in a second one; the tests that
# compare both ways turn it off).
DELIVER_WHILE_LOCKING = True


def likely_done_while_locking(session_info: dict[str, Any]) -> bool:
    """Whether a notification is likely to be applied by `lock_payment`'s statement alone (PostgreSQL), judged from
    the database's `session_info` before any statement: the test flag is on and this process's fresh copy of the
    risk rules has no enabled rule of the payment or delivery stage that the statement cannot judge (risk.payment_sql;
    with one, the statement declines every order: the general way evaluates them). A guess, for the caller to choose
    a unit of work; what the statement did is in its row."""
    rules = ruleset.fresh_copy(session_info)
    if not (rules and risk_payment.decides_at_payment(rules)):
        return DELIVER_WHILE_LOCKING
    runtime = risk_engine.runtime_in(session_info)
    return DELIVER_WHILE_LOCKING and (runtime is None or risk_sql.judge(rules, runtime) is not None)


async def lock_payment(*, session: AsyncSession, gateway_name: str, payment_no: str, trade_no: str,
                       attempt: Attempt | None = None) -> Row[Any] | None:
    """The payment `payment_no` at `gateway_name` with its order, both row-locked, and what a notification for it
    needs to know (see `_LOCK`); None if there is no such payment. `trade_no`: the gateway's transaction, to
    find a payment already carrying it ((gateway, gateway_trade_no) is unique: at most one).

    With `attempt`, on PostgreSQL, the same statement also delivers the order as `deliver` would when the row it
    locked plainly takes the express lane (`_PG_LOCK_AND_DELIVER`); `deliver` then only finishes the job."""
    params = {"gateway": gateway_name, "trade_no": trade_no, "payment_no": payment_no}
    if attempt is None or not DELIVER_WHILE_LOCKING or session.bind.dialect.name != "postgresql":
        return (await (await session.connection()).execute(_LOCK, params)).first()
    runtime = risk_engine.runtime_of(session)
    payer_hash, at, rules = None, 0.0, risk_sql.statement_params(risk_sql.NO_RULES, None, 0.0)
    if runtime is not None:
        payer_hash = risk_rules.payer_hash(runtime.secret, attempt.payer_account) if attempt.payer_account else None
        at = runtime.now().timestamp()
        judged = risk_sql.judge(await ruleset.enabled_rules(session=session), runtime)
        rules = risk_sql.statement_params(judged, runtime, at)
    statement = _PG_LOCK_AND_DELIVER_NO_RULES_DIRECT if rules["rules_judged"] == 0 else _PG_LOCK_AND_DELIVER_DIRECT
    found = await db_direct.fetch_one(session, statement, {
        **params, **_PG_STATES, **rules, "amount": attempt.amount_cents, "currency": attempt.currency,
        "ts": attempt.now, "paid_ts": attempt.paid_at, "risk": runtime is not None, "payer_hash": payer_hash,
        "db_events": runtime is not None and isinstance(runtime.counters, DatabaseCounters), "at": at,
        "paid_floor": at - risk_engine.PAID_COUNTED_WITHIN,
        "new_member_limit": runtime is not None and runtime.coupon_new_members_per_payer > 0,
    })
    return None if found is None else _Found._make(found)  # type: ignore[return-value]


async def takes_express_lane(*, session: AsyncSession, found: Row[Any], payer_account: str | None = None) -> bool:
    """Whether this payment (found by `lock_payment`, to be applied now; `payer_account` as `deliver` takes it) may
    be delivered by `deliver`: what the general way would do with it is exactly what `deliver` writes."""
    if getattr(found, "attempted", False):
        return True  # `lock_payment`'s statement asked the same of the locked row (`_PG_LOCK_AND_DELIVER`'s `go`)
    if not (found.payment_status == PaymentStatus.CREATED
            and found.order_status == OrderStatus.PENDING_PAYMENT.value  # a late payment: pricing is taken again
            and found.delivery_type == DeliveryType.CARD_KEY.value and found.picked_card_key_id is None):
        return False
    runtime = risk_engine.runtime_of(session)
    if runtime is None:
        return True
    if found.coupon_discount_cents and runtime.coupon_new_members_per_payer and await session.scalar(
            _NEW_MEMBER_COUPON, {"oid": found.order_id}):
        return False  # a new-member coupon is counted against the payer at payment (coupons.abuse): the general way
    if found.review_reason:  # flagged at checkout: held for review at payment
        return False
    if not found.rules_enabled:
        return True
    rules = await ruleset.enabled_rules(session=session)  # as the general way's `hold_at_payment` reads them
    if not risk_payment.decides_at_payment(rules):
        return True
    # Rules of the payment or delivery stage count this payment and may hold the order: the express lane only when
    # they are of the kinds the PostgreSQL statement judges too and none of them would hold it.
    return risk_sql.judge(rules, runtime) is not None and await risk_payment.quiet_at_payment(
        session=session, runtime=runtime, order=found, ip=found.signals_ip if found.signals_order_id else None,
        device=found.signals_device, payer_account=payer_account, rules=rules)


_PG_DELIVER = text("""
WITH locked AS (
    SELECT id FROM inventory_card_key
    WHERE order_id = CAST(:oid AS integer) AND status = :reserved
    ORDER BY id LIMIT CAST(:qty AS integer) FOR UPDATE),
sold AS (
    UPDATE inventory_card_key SET status = :sold, sold_at = CAST(:ts AS timestamptz)
    WHERE id IN (SELECT id FROM locked) AND (SELECT count(*) FROM locked) = CAST(:qty AS integer)
    RETURNING id),
delivered AS (
    UPDATE orders_order SET status = :delivered, updated_at = CAST(:ts AS timestamptz),
        paid_at = CAST(:ts AS timestamptz), delivered_at = CAST(:ts AS timestamptz)
    WHERE id = CAST(:oid AS integer) AND (SELECT count(*) FROM sold) = CAST(:qty AS integer)
    RETURNING id),
history AS (
    INSERT INTO orders_order_event (order_id, from_status, to_status, reason, created_at)
    SELECT delivered.id, e.from_status, e.to_status, e.reason, CAST(:ts AS timestamptz)
    FROM delivered, (VALUES (1, CAST(:pending AS varchar), CAST(:paid AS varchar), CAST(:paid_reason AS varchar)),
                            (2, CAST(:paid AS varchar), CAST(:delivered AS varchar),
                             CAST(:delivered_reason AS varchar))) AS e (n, from_status, to_status, reason)
    ORDER BY e.n),
payment AS (
    UPDATE payments_payment SET status = :succeeded, gateway_trade_no = :trade,
        paid_at = CAST(:paid_ts AS timestamptz), updated_at = CAST(:ts AS timestamptz)
    WHERE id = CAST(:pid AS integer) AND EXISTS (SELECT 1 FROM delivered)),
deferred AS (
    INSERT INTO ledger_deferred_posting (order_id, payment_id, order_status, created_at)
    SELECT delivered.id, CAST(:pid AS integer), CAST(:delivered AS varchar), CAST(:ts AS timestamptz)
    FROM delivered),
signals AS (
    UPDATE risk_order_signals SET paid = true, payer = COALESCE(CAST(:payer_hash AS varchar), payer),
        paid_risk_at = CAST(:paid_risk_at AS double precision)
    WHERE order_id = CAST(:oid AS integer) AND CAST(:mark_signals AS boolean)
        AND EXISTS (SELECT 1 FROM delivered)),
counted AS (
    INSERT INTO risk_counter_event (key, member, at)
    SELECT e.key, e.member, CAST(:at AS double precision)
    FROM unnest(CAST(:keys AS text[]), CAST(:members AS text[])) AS e (key, member)  -- text[]: no type look-up
    WHERE EXISTS (SELECT 1 FROM delivered))
SELECT count(*) FROM delivered
""")
# An order with coupons: the same, and its reserved coupons used (coupons.redemption.confirm_coupons: its
# redemptions, and the member's own coupons they took), only if it was delivered.
_PG_DELIVER_COUPONS = text(_PG_DELIVER.text.replace("""
SELECT count(*) FROM delivered""", coupons_paid.used_ctes("true") + """
SELECT count(*) FROM delivered"""))

# `_LOCK` and `_PG_DELIVER` (`_PG_DELIVER_COUPONS` for an order with coupons: coupons.paid_statement's parts, run
# only for such an order) in one statement: the same row locked (same columns, joins and lock order), then, only
# when it plainly takes the express lane (`go`: what `confirm_payment`'s checks and `takes_express_lane` ask of it),
# the same writes. Risk control's payment and delivery stages are the risk module's SQL (risk.payment_sql): its paid
# counter events (`paid_events`) and the enabled rules of those stages that hit (`rule_hits`, none for the statement
# to deliver); `rules_enabled` counts those rules in the database, to be as many as it judged (`:rules_judged`, -1
# when it cannot judge one: then it delivers nothing).
# Every write depends on `go`, so nothing is locked or written before the order and the payment are locked.
# `go`'s question to the rules (a line of the statement below; `_PG_LOCK_AND_DELIVER_NO_RULES` leaves it out).
_ASK_RULE_HITS = "                                             AND NOT EXISTS (SELECT 1 FROM rule_hits)"
_PG_LOCK_AND_DELIVER = text("""
WITH found AS (
    SELECT orders_order.id, orders_order.id AS order_id, orders_order.status AS order_status, orders_order.order_no,
        orders_order.sku_id, orders_order.quantity, orders_order.delivery_type, orders_order.picked_card_key_id,
        orders_order.coupon_discount_cents, orders_order.total_cents, orders_order.contact,
        orders_order.contact_kind, orders_order.created_ip, orders_order.merchant_id,
        payments_payment.id AS payment_id, payments_payment.payment_no, payments_payment.status AS payment_status,
        payments_payment.amount_cents, payments_payment.currency, payments_payment.gateway_trade_no,
        other_payment.payment_no AS other_payment_no, other_payment.order_id AS other_order_id,
        other_payment.amount_cents AS other_amount_cents,
        risk_order_signals.order_id AS signals_order_id, risk_order_signals.ip AS signals_ip,
        risk_order_signals.device AS signals_device, risk_order_signals.review_reason,
        risk_order_signals.at AS signals_at,
        (SELECT count(*) FROM risk_rule WHERE risk_rule.enabled IS true
            AND (CAST(risk_rule.stages AS jsonb) @> '["payment"]' OR CAST(risk_rule.stages AS jsonb) @> '["delivery"]'))
            AS rules_enabled
    FROM payments_payment JOIN orders_order ON orders_order.id = payments_payment.order_id
        LEFT OUTER JOIN payments_payment AS other_payment ON other_payment.gateway = CAST(:gateway AS varchar)
            AND other_payment.gateway_trade_no = CAST(:trade_no AS varchar)
        LEFT OUTER JOIN risk_order_signals ON risk_order_signals.order_id = orders_order.id
    WHERE payments_payment.payment_no = CAST(:payment_no AS varchar)
        AND payments_payment.gateway = CAST(:gateway AS varchar)
    FOR UPDATE OF orders_order, payments_payment),
-- risk.payment_sql.CTES
go AS (
    SELECT order_id, payment_id, quantity, COALESCE(coupon_discount_cents, 0) > 0 AS coupons FROM found
    WHERE payment_status = :created AND gateway_trade_no IS NULL AND other_payment_no IS NULL
        AND amount_cents = CAST(:amount AS bigint) AND currency = CAST(:currency AS varchar)
        AND order_status = :pending AND delivery_type = :card_key AND picked_card_key_id IS NULL
        AND -- coupons.paid_statement.NO_NEW_MEMBER_COUPON_TO_COUNT
        AND (NOT CAST(:risk AS boolean) OR (COALESCE(review_reason, '') = ''
                                             AND rules_enabled = CAST(:rules_judged AS integer)
                                             AND NOT EXISTS (SELECT 1 FROM rule_hits)))),
locked AS (
    SELECT id FROM inventory_card_key
    WHERE order_id = (SELECT order_id FROM go) AND status = :reserved
    ORDER BY id LIMIT (SELECT quantity FROM go) FOR UPDATE),
sold AS (
    UPDATE inventory_card_key SET status = :sold, sold_at = CAST(:ts AS timestamptz)
    WHERE id IN (SELECT id FROM locked) AND (SELECT count(*) FROM locked) = (SELECT quantity FROM go)
    RETURNING id),
delivered AS (
    UPDATE orders_order SET status = :delivered, updated_at = CAST(:ts AS timestamptz),
        paid_at = CAST(:ts AS timestamptz), delivered_at = CAST(:ts AS timestamptz)
    WHERE id = (SELECT order_id FROM go) AND (SELECT count(*) FROM sold) = (SELECT quantity FROM go)
    RETURNING id),
history AS (
    INSERT INTO orders_order_event (order_id, from_status, to_status, reason, created_at)
    SELECT delivered.id, e.from_status, e.to_status, e.reason, CAST(:ts AS timestamptz)
    FROM delivered, (VALUES (1, CAST(:pending AS varchar), CAST(:paid AS varchar), CAST(:paid_reason AS varchar)),
                            (2, CAST(:paid AS varchar), CAST(:delivered AS varchar),
                             CAST(:delivered_reason AS varchar))) AS e (n, from_status, to_status, reason)
    ORDER BY e.n),
payment AS (
    UPDATE payments_payment SET status = :succeeded, gateway_trade_no = CAST(:trade_no AS varchar),
        paid_at = CAST(:paid_ts AS timestamptz), updated_at = CAST(:ts AS timestamptz)
    WHERE id = (SELECT payment_id FROM go) AND EXISTS (SELECT 1 FROM delivered)),
deferred AS (
    INSERT INTO ledger_deferred_posting (order_id, payment_id, order_status, created_at)
    SELECT delivered.id, (SELECT payment_id FROM go), CAST(:delivered AS varchar), CAST(:ts AS timestamptz)
    FROM delivered),
paid_here AS (  -- risk.payment_stage.counts_paid_here: `paid` per ip / device / contact counted from the row
    SELECT CAST(:db_events AS boolean) AND signals_at <= CAST(:at AS double precision)
               AND signals_at > CAST(:paid_floor AS double precision) AS here
    FROM found WHERE signals_order_id IS NOT NULL),
signals AS (
    UPDATE risk_order_signals SET paid = true, payer = COALESCE(CAST(:payer_hash AS varchar), payer),
        paid_risk_at = CASE WHEN (SELECT here FROM paid_here) THEN CAST(:at AS double precision) END
    WHERE order_id = (SELECT id FROM delivered) AND CAST(:risk AS boolean)),
counted AS (
    INSERT INTO risk_counter_event (key, member, at)
    SELECT key, member, CAST(:at AS double precision) FROM paid_events
    WHERE CAST(:db_events AS boolean) AND EXISTS (SELECT 1 FROM delivered)
        AND (n > 3 OR NOT COALESCE((SELECT here FROM paid_here), false))
    ORDER BY n)
-- coupons.paid_statement.USED_WHEN_DELIVERED
SELECT found.*, EXISTS (SELECT 1 FROM go) AS attempted, (SELECT count(*) FROM delivered) = 1 AS delivered
FROM found
""".replace("-- risk.payment_sql.CTES\n", risk_sql.CTES)
    .replace("-- coupons.paid_statement.NO_NEW_MEMBER_COUPON_TO_COUNT", coupons_paid.NO_NEW_MEMBER_COUPON_TO_COUNT)
    .replace("\n-- coupons.paid_statement.USED_WHEN_DELIVERED", coupons_paid.USED_WHEN_DELIVERED))

_PG_LOCK_AND_DELIVER_DIRECT = db_direct.Direct(_PG_LOCK_AND_DELIVER)  # on the driver (quanyi.db_direct)
# The same for a shop whose risk control judges no payment- or delivery-stage rule (`:rules_judged` 0; `rules_enabled`
# still checks that the database has none either): no `rule_hits` to ask, so neither it nor the CTEs it reads
# (`payment_locks`, `counted_keys`, `seen_events`, `day_orders`) are in the statement. A third of the plan's nodes
# fewer for PostgreSQL to plan on each connection and to set up at every execution (docs/PERFORMANCE.md, section 29).
_PG_LOCK_AND_DELIVER_NO_RULES = text(_PG_LOCK_AND_DELIVER.text
                                     .replace(risk_sql.CTES, risk_sql.PAID_EVENTS.lstrip() + ",\n")
                                     .replace("\n" + _ASK_RULE_HITS, ""))
if "rule_hits" in _PG_LOCK_AND_DELIVER_NO_RULES.text or risk_sql.CTES not in _PG_LOCK_AND_DELIVER.text:
    raise RuntimeError("express: the statement's rule parts are no longer where _PG_LOCK_AND_DELIVER_NO_RULES cuts")
_PG_LOCK_AND_DELIVER_NO_RULES_DIRECT = db_direct.Direct(_PG_LOCK_AND_DELIVER_NO_RULES)
# Its row: `_LOCK`'s columns, then whether it tried to deliver and whether it did.
_Found = namedtuple("_Found", [*_LOCK.selected_columns.keys(), "attempted", "delivered"])  # type: ignore[misc]

_reserved = (select(_keys.c.id).where(_keys.c.order_id == bindparam("oid"),
                                      _keys.c.status == CardKeyStatus.RESERVED.value)
             .order_by(_keys.c.id).limit(bindparam("qty")))
_SQLITE_SELL = (
    update(_keys)
    .where(_keys.c.id.in_(_reserved.scalar_subquery()),
           select(func.count()).select_from(_reserved.subquery()).scalar_subquery() == bindparam("qty"))
    .values(status=CardKeyStatus.SOLD.value, sold_at=bindparam("ts"))
)
_SQLITE_ORDER = (update(_orders).where(_orders.c.id == bindparam("oid"))
                 .values(status=OrderStatus.DELIVERED.value, updated_at=bindparam("ts"), paid_at=bindparam("ts"),
                         delivered_at=bindparam("ts")))
_SQLITE_PAYMENT = (update(_payments).where(_payments.c.id == bindparam("pid"))
                   .values(status=PaymentStatus.SUCCEEDED.value, gateway_trade_no=bindparam("trade"),
                           paid_at=bindparam("paid_ts"), updated_at=bindparam("ts")))
_SQLITE_SIGNALS = (update(_signals).where(_signals.c.order_id == bindparam("oid"))
                   .values(paid=True, payer=func.coalesce(bindparam("payer_hash"), _signals.c.payer),
                           paid_risk_at=bindparam("paid_risk_at")))
# The order's reserved coupons used, as coupons.redemption.confirm_coupons does: its redemptions, then the member's
# own coupons they took.
_SQLITE_USED = (update(_redemptions).where(_redemptions.c.order_id == bindparam("oid"),
                                           _redemptions.c.status == RedemptionStatus.RESERVED.value)
                .values(status=RedemptionStatus.USED.value, updated_at=bindparam("ts")))
_SQLITE_GRANTS = (update(_grants).where(_grants.c.id.in_(
    select(_redemptions.c.grant_id).where(_redemptions.c.order_id == bindparam("oid"),
                                          _redemptions.c.status == RedemptionStatus.USED.value)))
    .values(status=GrantStatus.USED.value, updated_at=bindparam("ts")))
# Built once (a statement built per call costs its construction and cache key on every notification).
_SQLITE_EVENTS, _SQLITE_DEFERRED = insert(OrderEvent.__table__), insert(DeferredPosting.__table__)
_SQLITE_COUNTED = insert(CounterEvent.__table__)


async def deliver(*, session: AsyncSession, found: Row[Any], trade_no: str, paid_at: dt.datetime,
                  payer_account: str | None, now: dt.datetime) -> bool:
    """Apply the payment found by `lock_payment` (`takes_express_lane` said yes) and deliver its order, in the
    caller's transaction. False, having changed nothing, when the order's reserved keys are not all there any
    more: the general way then tops them up from stock or refunds."""
    runtime = risk_engine.runtime_of(session)
    in_database = isinstance(runtime.counters, DatabaseCounters) if runtime is not None else False
    attempted = getattr(found, "attempted", False)  # by `lock_payment`'s statement (PostgreSQL)
    if attempted and not found.delivered:
        return False  # the reserved keys were not all there: nothing changed
    events: list[tuple[str, str]] = []
    signals, paid_risk_at = None, None
    if runtime is not None and not (attempted and in_database):  # else the statement counted them
        signals = risk_payment.payment_signals(runtime, found, ip=found.signals_ip if found.signals_order_id else None,
                                              device=found.signals_device, payer_account=payer_account)
        here = risk_payment.counts_paid_here(runtime, found.signals_at if found.signals_order_id else None,
                                             signals.at)
        events = risk_payment.paid_events(signals, counted_here=here)
        paid_risk_at = signals.at if here else None
    params: dict[str, Any] = {
        "oid": found.order_id, "pid": found.payment_id, "qty": found.quantity, "ts": now, "trade": trade_no,
        "paid_ts": paid_at, "payer_hash": (signals.payer or None) if signals is not None else None,
        "paid_risk_at": paid_risk_at,
    }
    coupons = bool(found.coupon_discount_cents)
    if attempted:
        pass  # delivered by `lock_payment`'s statement (no Connection needed: a driven session has none)
    elif session.bind.dialect.name == "postgresql":
        delivered = (await (await session.connection()).execute(_PG_DELIVER_COUPONS if coupons else _PG_DELIVER, {
            **params, **_PG_STATES, "mark_signals": signals is not None and found.signals_order_id is not None,
            "at": signals.at if signals is not None else 0.0,
            "keys": [key[:200] for key, _ in events] if in_database else [],
            "members": [member[:200] for _, member in events] if in_database else [],
        })).scalar_one() == 1
        if not delivered:
            return False
    else:
        # One trip to aiosqlite's thread for all the writes (quanyi.sqlite_trip), under the writer lock taken by
        # BEGIN IMMEDIATE; the sale first: the rest only if it sold every reserved key.
        steps = [
            sqlite_trip.Step(_SQLITE_SELL, params, expect=sqlite_trip.rowcount_is(found.quantity)),
            sqlite_trip.Step(_SQLITE_ORDER, params),
            sqlite_trip.Step(_SQLITE_EVENTS, [
                {"order_id": found.order_id, "from_status": OrderStatus.PENDING_PAYMENT.value,
                 "to_status": OrderStatus.PAID.value, "reason": _PAID_REASON, "created_at": now},
                {"order_id": found.order_id, "from_status": OrderStatus.PAID.value,
                 "to_status": OrderStatus.DELIVERED.value, "reason": _DELIVERED_REASON, "created_at": now}]),
            sqlite_trip.Step(_SQLITE_PAYMENT, params),
            sqlite_trip.Step(_SQLITE_DEFERRED, {
                "order_id": found.order_id, "payment_id": found.payment_id,
                "order_status": OrderStatus.DELIVERED.value, "created_at": now}),
        ]
        if coupons:  # the order's reserved coupons used
            coupon_params = {"oid": found.order_id, "ts": now}
            steps += [sqlite_trip.Step(_SQLITE_USED, coupon_params), sqlite_trip.Step(_SQLITE_GRANTS, coupon_params)]
        if signals is not None and found.signals_order_id is not None:
            steps.append(sqlite_trip.Step(_SQLITE_SIGNALS, params))
        if in_database and events:
            steps.append(sqlite_trip.Step(_SQLITE_COUNTED, [
                {"key": key[:200], "member": member[:200], "at": signals.at}  # type: ignore[union-attr]
                for key, member in events]))
        if len(await sqlite_trip.run(await session.connection(), steps)) < len(steps):
            return False  # the condition sold nothing
    if runtime is not None and events and not in_database:
        await runtime.counters.record(events, at=signals.at, session=session)  # type: ignore[union-attr]
    ledger_service.deferred_row_written(session)
    _forget(session, found)
    return True


_PAID_REASON = check_transition(OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)
_DELIVERED_REASON = check_transition(OrderStatus.PAID, OrderStatus.DELIVERED)
_PG_STATES = {  # the statuses and reasons the PostgreSQL statements write
    "reserved": CardKeyStatus.RESERVED.value, "sold": CardKeyStatus.SOLD.value, "created": PaymentStatus.CREATED.value,
    "pending": OrderStatus.PENDING_PAYMENT.value, "paid": OrderStatus.PAID.value,
    "delivered": OrderStatus.DELIVERED.value, "succeeded": PaymentStatus.SUCCEEDED.value,
    "card_key": DeliveryType.CARD_KEY.value, "paid_reason": _PAID_REASON, "delivered_reason": _DELIVERED_REASON,
    "redemption_reserved": RedemptionStatus.RESERVED.value, "redemption_used": RedemptionStatus.USED.value,
    "grant_used": GrantStatus.USED.value,
}


def _forget(session: AsyncSession, found: Row[Any]) -> None:
    """The rows changed behind the ORM's back: objects of them this session holds load again when next used."""
    if db_driven.holds_nothing(session):  # a driven unit whose session was never made (the one statement's)
        return
    for model, key in ((Order, found.order_id), (Payment, found.payment_id), (OrderRiskSignals, found.order_id)):
        held = session.identity_map.get(identity_key(model, key))
        if held is not None:
            session.expire(held)
