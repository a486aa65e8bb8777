"""The payment stage's counted rules are exact under concurrency: notifications of one payer (or one buyer) that
arrive at once, each on its own process and connections, pass a limit exactly as often as one after the other would
let them (PostgreSQL: the advisory locks of the payer / contact taken before counting, risk.payment_sql and
risk.payment_stage.lock_counted; SQLite: its one writer). A payment the rule stops goes where it always went: held
for review, or, when its payer already has too many units under review, to its refund. With the counters in Redis
too: a payment's counter events are written to Redis before its transaction commits, under those locks
(risk.counters.RedisCounters.record), so the next payment of the payer counts them."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections import Counter
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from buyer_process import notify
from quanyi.config import Settings
from quanyi.inventory.models import CardKey
from quanyi.orders.models import Order
from quanyi.risk.models import RiskDecisionLog
from races import race_processes
from risk.support import add_rule

PROCESSES = 3
PER_PROCESS = 3
REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL")


@pytest.fixture(params=["database", "redis"])
def settings(request, settings: Settings) -> Settings:
    """The shop's risk counters in its database, or in Redis (a namespace of the test's own)."""
    if request.param == "database":
        return settings
    if not REDIS_URL:
        pytest.skip("QUANYI_TEST_REDIS_URL not set")
    return settings.model_copy(update={"redis_url": REDIS_URL,
                                       "redis_namespace": f"quanyi-test:{uuid.uuid4().hex}:"})


def _plain(settings: Settings) -> dict[str, Any]:
    values = settings.model_dump()
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    values["database_pool_size"] = 4  # 3 processes x 8 connections besides the test's own
    return values


async def _notify_at_once(shop, settings: Settings, payments: list[dict[str, Any]],
                          buyer_id: str | None = None) -> None:
    """Deliver the notifications of these payments (by `buyer_id`, if given) all at once from `PROCESSES`
    processes, each on its own app and connections; each is acknowledged."""
    extra = {"buyer_id": buyer_id} if buyer_id else {}
    notifications = [shop.notification(payment, **extra) for payment in payments]
    # Redis: each process's counter writes come 0.3 s late, so a payment that counted before another's events were in
    # Redis would show (the old code wrote them after the commit, once the locks were gone: it passed only by luck).
    late = 0.3 if settings.redis_url else 0.0
    answers = race_processes(notify, [(_plain(settings), notifications[n::PROCESSES], late) for n in range(PROCESSES)],
                             doing="notifying", risk_clock_now=shop.ctx.risk.now)  # one risk clock for every process
    assert answers == ["200 success"] * len(payments)


async def _outcomes(shop, orders: list[dict[str, Any]]) -> Counter:
    """Each order's status and the reason codes of its payment-stage decisions (in order), counted."""
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(
            select(Order.id, Order.status, RiskDecisionLog.rules_hit)
            .outerjoin(RiskDecisionLog, (RiskDecisionLog.order_id == Order.id) & (RiskDecisionLog.stage == "payment"))
            .where(Order.order_no.in_([o["order_no"] for o in orders])).order_by(Order.id, RiskDecisionLog.id))).all()
    outcomes: dict[int, tuple[str, ...]] = {}
    for order_id, status, hits in rows:
        outcomes[order_id] = outcomes.get(order_id, (str(status),)) + tuple(hit["reason_code"] for hit in hits or [])
    return Counter(outcomes.values())


async def _keys(shop) -> Counter:
    async with shop.ctx.db.read_session() as session:
        return Counter(str(status) for status in (await session.scalars(select(CardKey.status))).all())


async def test_one_payers_notifications_at_once_pass_the_burst_limit_exactly_as_often_as_allowed(shop, settings):
    """`payer burst` (more than 4 paid orders by one payer account in an hour: review), 9 notifications of one payer
    from 3 processes at once: exactly 4 delivered. The 5 stopped ones: the first 2 held for review, the other 3 sent
    to their refund (the payer already has `held_units_limit_per_payer` = 2 units under review), as one after the
    other would."""
    sku = await shop.make_sku(code="PAYER-RACE")
    await shop.stock(sku, PROCESSES * PER_PROCESS)
    orders = [await shop.create_order(sku.id, contact=f"racer{n}@example.com") for n in range(PROCESSES * PER_PROCESS)]
    await add_rule(shop, "velocity", {"dimension": "payer", "window_seconds": 3600, "max_count": 4},
                   action="review", stages=["payment"], name="payer burst")
    payments = [await shop.start_payment(order) for order in orders]
    await _notify_at_once(shop, settings.model_copy(update={"held_units_limit_per_payer": 2}), payments, "one-payer")
    assert await _outcomes(shop, orders) == {("delivered",): 4, ("under_review", "test_velocity"): 2,
                                             ("refund_pending", "test_velocity", "payer_stock_held"): 3}
    queue = (await shop.client.get("/api/admin/risk/reviews", headers=shop.admin)).json()
    assert len(queue) == 2 and {held["decisions"][-1]["rules_hit"][0]["name"] for held in queue} == {"payer burst"}
    assert await _keys(shop) == {"sold": 4, "reserved": 2, "available": 3}  # a refund's keys go back on sale


async def test_one_buyers_late_payments_at_once_pass_the_daily_amount_exactly_as_often_as_allowed(shop, settings):
    """`buyer daily amount` (a buyer's orders of the day over 3 x the price: review), 9 late payments of one buyer's
    orders (expired, not swept yet: an expired order does not count as still payable) from 3 processes at once:
    exactly 3 delivered, 6 held for review, as one after the other."""
    sku = await shop.make_sku(code="DAY-RACE", price_cents=10_000)
    await shop.stock(sku, PROCESSES * PER_PROCESS)
    orders = [await shop.create_order(sku.id, contact="one-buyer@example.com") for _ in range(PROCESSES * PER_PROCESS)]
    await add_rule(shop, "amount_limit", {"scope": "buyer_day", "max_amount_cents": 30_000}, action="review",
                   stages=["payment"], name="buyer daily amount")
    payments = [await shop.start_payment(order) for order in orders]
    async with shop.ctx.db.transaction() as session:  # their reservations ran out meanwhile
        await session.execute(update(Order).where(Order.order_no.in_([o["order_no"] for o in orders]))
                              .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    await _notify_at_once(shop, settings, payments)
    assert await _outcomes(shop, orders) == {("delivered",): 3, ("under_review", "test_amount_limit"): 6}
    assert await _keys(shop) == {"sold": 3, "reserved": 6}
