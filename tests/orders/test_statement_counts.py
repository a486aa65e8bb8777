"""The plain purchase stays lean: a guest checkout and its payment notification send an exact, known number of
SQL statements, and none of them reads a marketing table (coupons, members, promoters) the order does not use.

The counts are the hot path's budget (docs/PERFORMANCE.md, bench/hot_path.py): a feature that adds a statement
to every purchase changes them here, on purpose and in review."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from coupons.support import make_coupon
from helpers import make_settings
from quanyi.config import Settings
from quanyi.ledger.deferred import post_all_deferred
from quanyi.ledger.models import LedgerPosting as Posting
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.risk import counters

# Per dialect: (checkout, notification). PostgreSQL's checkout takes two advisory locks (flood counters, held-stock
# count) and adds its counter events in one statement; SQLite's BEGIN IMMEDIATE is a statement of its own (one per
# transaction: the checkout screens in one and places the order in another).
BUDGET = {"sqlite": (13, 13), "postgresql": (12, 11)}
MARKETING_TABLES = ("coupons_", "members_", "promoters_")


SHIPPED = ("checkout_limit_per_ip", "checkout_limit_per_device", "held_units_limit_per_ip",
           "held_units_limit_per_device", "held_units_limit_per_contact", "held_units_limit_per_payer")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The shipped flood and held-stock limits (the other tests turn them off): their counting is on the path."""
    return make_settings(database_url, **{name: Settings.model_fields[name].default for name in SHIPPED})


class Statements:
    """Every SQL statement the shop sends, on both engines, as text."""

    def __init__(self, shop) -> None:
        self.seen: list[str] = []
        self._engines = {shop.ctx.db.write_engine.sync_engine, shop.ctx.db.read_engine.sync_engine}
        for engine in self._engines:
            event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: object, _cursor: object, statement: str, *_args: object) -> None:
        self.seen.append(" ".join(statement.split()))

    def take(self) -> list[str]:
        seen, self.seen = self.seen, []
        return seen

    def close(self) -> None:
        for engine in self._engines:
            event.remove(engine, "before_cursor_execute", self._seen)


async def test_a_plain_guest_purchase_sends_its_budget_of_statements_and_no_marketing_reads(shop, sku, monkeypatch):
    # The risk counters prune old events on 2 % of their writes (one DELETE more); not in the measured purchase.
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)
    await shop.stock(sku, 3)
    # The first purchase warms the process's caches (risk rules, gateway configuration); the second is measured.
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))
    # As in `quanyi serve`, the notification leaves its ledger postings to the worker (ledger.deferred).
    worker = shop.ctx.ledger_worker
    worker.running = True
    statements = Statements(shop)
    try:
        order = await shop.create_order(sku.id, contact="second@example.com")
        checkout = statements.take()
        payment = await shop.start_payment(order)
        statements.take()
        response = await shop.notify(shop.notification(payment))
        notification = statements.take()
    finally:
        statements.close()
        worker.running = False
    assert response.status_code == 200 and response.text == "success"
    assert await shop.count(Order, Order.status == OrderStatus.DELIVERED) == 2
    await post_all_deferred(shop.ctx.db)
    assert await shop.count(Posting, Posting.payment_no == payment["payment_no"]) == 1

    dialect = shop.ctx.db.write_engine.dialect.name
    listing = "\n".join(checkout + ["--- notification ---"] + notification)
    assert (len(checkout), len(notification)) == BUDGET[dialect], listing
    marketing = [s for s in checkout + notification if any(t in s for t in MARKETING_TABLES)]
    assert not marketing, marketing


async def test_a_member_checkout_with_a_coupon_reads_the_coupon_once(shop, sku):
    await shop.stock(sku, 2)
    await make_coupon(shop, code="ONCE")
    async with shop.ctx.db.transaction() as session:
        member = Member(email="couponer@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
    statements = Statements(shop)
    try:
        response = await shop.client.post("/api/orders", headers={"X-Member-Token": token},
                                          json={"sku_id": sku.id, "quantity": 1, "contact": "couponer@example.com",
                                                "coupon_codes": ["ONCE"]})
        checkout = statements.take()
    finally:
        statements.close()
    assert response.status_code == 201, response.text
    assert response.json()["coupon_discount_cents"] == 300
    # Quoted and then taken in one transaction: the coupon row is loaded once (id-only probes do not count).
    assert sum(s.startswith("SELECT coupons_coupon.id, coupons_coupon.merchant_id") for s in checkout) == 1, \
        "\n".join(checkout)
