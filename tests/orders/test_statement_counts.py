"""The plain purchase stays lean: a guest checkout and its payment notification send an exact, known number of
SQL statements, and none of them reads a marketing table (coupons, members, promoters) the order does not use.

The counts are the hot path's budget (docs/PERFORMANCE.md, bench/hot_path.py): a feature that adds a statement
to every purchase changes them here, on purpose and in review."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from coupons.support import make_coupon
from helpers import make_settings
from quanyi.config import Settings
from quanyi.coupons import paid_statement
from quanyi.inventory.models import KeyReveal
from quanyi.ledger.deferred import post_all_deferred
from quanyi.ledger.models import LedgerPosting as Posting
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.pricing.arithmetic import percent_of
from quanyi.risk import counters, ruleset

# Per dialect: (checkout, start payment, notification, reveal). A plain checkout is one transaction (orders.placing):
# the advisory locks of the flood and held-stock counters (PostgreSQL), both counts and the SKU in one statement, then
# the order (PostgreSQL: keys, order, event, reservation and risk rows in one statement, orders.one_statement;
# SQLite writes them one by one, and its BEGIN IMMEDIATE is a statement of its own). The risk rules come from the
# process's copy (risk.ruleset). The notification takes the express lane (payments/express.py): one statement
# locks, one writes (PostgreSQL's data-modifying CTEs; SQLite sends the writes one by one); the reveal reads and
# audits in one (SQLite: two). The notification writes no `paid` counter events: the signals row it marks paid keeps
# the payment's risk-clock moment (docs/PERFORMANCE.md, section 28; SQLite: one INSERT fewer in the trip).
BUDGET = {"sqlite": (8, 3, 8, 3), "postgresql": (3, 1, 1, 1)}
MARKETING_TABLES = ("coupons_", "members_", "promoters_")


SHIPPED = ("checkout_limit_per_ip", "checkout_limit_per_device", "held_units_limit_per_ip",
           "held_units_limit_per_device", "held_units_limit_per_contact", "held_units_limit_per_payer")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The shipped flood and held-stock limits (the other tests turn them off): their counting is on the path. The
    process's copy of the risk rules outlives the test (a loaded machine may take seconds between two checkouts)."""
    return make_settings(database_url, risk_rules_cache_seconds=300,
                         **{name: Settings.model_fields[name].default for name in SHIPPED})


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
        start = statements.take()
        response = await shop.notify(shop.notification(payment))
        notification = statements.take()
        keys = await shop.reveal(order)
        reveal = statements.take()
    finally:
        statements.close()
        worker.running = False
    assert response.status_code == 200 and response.text == "success"
    assert await shop.count(Order, Order.status == OrderStatus.DELIVERED) == 2
    assert len(keys) == 1 and await shop.count(KeyReveal) == 1  # the reveal is audited
    await post_all_deferred(shop.ctx.db)
    assert await shop.count(Posting, Posting.payment_no == payment["payment_no"]) == 1

    dialect = shop.ctx.db.write_engine.dialect.name
    listing = "\n".join(checkout + ["--- start payment ---"] + start + ["--- notification ---"] + notification
                         + ["--- reveal ---"] + reveal)
    assert (len(checkout), len(start), len(notification), len(reveal)) == BUDGET[dialect], listing
    marketing = [s for s in checkout + start + _without_coupon_parts(notification) + reveal
                 if any(t in s for t in MARKETING_TABLES)]
    assert not marketing, marketing


def _without_coupon_parts(statements: list[str]) -> list[str]:
    """The statements with the coupon parts of the notification's one statement (PostgreSQL) left out: they name coupon
    tables but run only for an order with coupons (tests/payments/test_marketing_notification.py runs the statement
    under EXPLAIN ANALYZE: no scan of a coupon table for a plain order)."""
    def placeholders(sql: str) -> str:
        return re.sub(r"\$\d+|:\w+", "?", " ".join(sql.split()))

    parts = [placeholders(part) for part in paid_statement.PARTS]
    stripped = []
    for statement in statements:
        statement = placeholders(statement)
        for part in parts:
            statement = statement.replace(part, "")
        stripped.append(statement)
    return stripped


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
    # Quoted and then taken in one transaction: the coupon row is loaded once (id-only probes do not count), in the
    # statement that finds the member (orders.member_checkout).
    reads = [s for s in checkout if s.startswith("SELECT") and "coupons_coupon.merchant_id" in s]
    assert len(reads) == 1 and "members_session" in reads[0], "\n".join(checkout)
    # ... which reads the SKU too, in the checkout gate's count: as many statements as a guest's checkout.
    sku_reads = [s for s in checkout if s.startswith("SELECT") and "catalog_sku.price_cents" in s]
    assert sku_reads == reads, "\n".join(checkout)


# Per dialect: a member's checkout with issue 12's marketing (level price, coupon code, points), the process warm.
MARKETING_BUDGET = {"sqlite": 16, "postgresql": 3}
# Its payment notification: the express lane (payments/express.py), the coupon's redemption marked used. PostgreSQL:
# the plain order's one statement, its coupon parts run (coupons.paid_statement: whether a coupon is for new members
# only, the redemption used; the general way sent 13). SQLite: the plain 8, that question and two coupon UPDATEs in
# the delivery's trip.
MARKETING_NOTIFY_BUDGET = {"sqlite": 11, "postgresql": 1}


async def _marketing_member(shop, n: int) -> str:
    """A member at the 5 %-off level holding 1,000 points (an operator's gift): their session token."""
    async with shop.ctx.db.transaction() as session:
        member = Member(email=f"marketing{n}@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        await loyalty_points.adjust(session=session, member_id=member.id, points=1000, reason="gift", actor="test")
        await loyalty_levels.reevaluate(session=session)
    return token


async def test_a_checkout_with_level_price_coupon_and_points_sends_its_budget_of_statements(shop, sku, monkeypatch):
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)
    await shop.stock(sku, 2)
    await make_coupon(shop, code="MKT3", per_member_limit=1)
    async with shop.ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="SILVER", name="Silver", min_paid_cents=0,
                                       discount_bps=500)
    tokens = [await _marketing_member(shop, n) for n in range(2)]
    body = {"sku_id": sku.id, "quantity": 1, "coupon_codes": ["MKT3"], "points": 100}
    # The first warms the process's caches; the second is measured.
    first = await shop.client.post("/api/orders", headers={"X-Member-Token": tokens[0]},
                                   json={**body, "contact": "m0@example.com"})
    assert first.status_code == 201, first.text
    await shop.pay(first.json())  # warms the notification's caches too (the gateway's configuration)
    statements = Statements(shop)
    try:
        response = await shop.client.post("/api/orders", headers={"X-Member-Token": tokens[1]},
                                          json={**body, "contact": "m1@example.com"})
        checkout = statements.take()
    finally:
        statements.close()
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["member_discount_cents"], order["coupon_discount_cents"], order["points_used"],
            order["points_discount_cents"]) == (percent_of(sku.price_cents, 500), 300, 100, 100)
    assert order["total_cents"] == sku.price_cents - percent_of(sku.price_cents, 500) - 400
    async with shop.ctx.db.read_session() as session:
        assert await loyalty_points.liability_drift(session=session) == 0  # the points spent are posted
    dialect = shop.ctx.db.write_engine.dialect.name
    assert len(checkout) == MARKETING_BUDGET[dialect], "\n".join(checkout)
    # The member, their loyalty facts, the coupon and the programme with their binding: one read before pricing.
    reads = [s for s in checkout if s.startswith("SELECT") and any(
        t in s for t in ("members_session", "loyalty_member", "coupons_coupon.merchant_id", "promoters_program"))]
    assert len(reads) == 1, "\n".join(reads)

    payment = await shop.start_payment(order)
    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: the notification leaves its postings to the worker
    statements = Statements(shop)
    try:
        paid = await shop.notify(shop.notification(payment))
        notification = statements.take()
    finally:
        statements.close()
        worker.running = False
    assert paid.status_code == 200 and paid.text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"
    assert len(notification) == MARKETING_NOTIFY_BUDGET[dialect], "\n".join(notification)


async def _worker_batch_statements(shop, sku, purchases: int) -> int:
    """Statements of the ledger worker's batch that posts `purchases` paid and delivered orders."""
    worker = shop.ctx.ledger_worker
    worker.running = True  # the notifications leave their postings to the batch below
    try:
        for n in range(purchases):
            await shop.pay(await shop.create_order(sku.id, contact=f"batch{purchases}-{n}@example.com"))
    finally:
        worker.running = False
    statements = Statements(shop)
    try:
        await post_all_deferred(shop.ctx.db)
        return len(statements.take())
    finally:
        statements.close()


async def test_the_ledger_workers_batch_does_not_grow_with_the_purchases_in_it(shop, sku):
    # ledger.postings.post_many: all postings of a batch in one INSERT, all their entries in another (an ordered
    # RETURNING once made that one INSERT per posting).
    await shop.stock(sku, 8)
    for _ in range(2):  # the first creates the ledger accounts, the second caches their ids (ledger.postings)
        await _worker_batch_statements(shop, sku, 1)
    one, five = await _worker_batch_statements(shop, sku, 1), await _worker_batch_statements(shop, sku, 5)
    assert one == five
    assert await shop.count(Posting) == 2 * 8  # payment received and delivered, once per order


class Sent:
    """What the shop sends on PostgreSQL, in order: "statement" for each SQL statement, and the transaction control
    asyncpg sends besides (start, commit, rollback)."""

    def __init__(self, shop, monkeypatch) -> None:
        import asyncpg.transaction

        self.control: list[str] = []
        for name in ("start", "commit", "rollback"):
            method = getattr(asyncpg.transaction.Transaction, name)

            def sent(method=method, name=name):
                async def wrapper(*args, **kwargs):
                    self.control.append(name)
                    return await method(*args, **kwargs)
                return wrapper

            monkeypatch.setattr(asyncpg.transaction.Transaction, name, sent())
        self._engine = shop.ctx.db.write_engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._statement)

    def _statement(self, *_args: object) -> None:
        self.control.append("statement")

    def take(self) -> list[str]:
        """What was sent since the last take, a pooled connection's ping left out (a connection idle for a while is
        pinged first: BEGIN; ";"; ROLLBACK, db._ping_when_idle)."""
        control, self.control = self.control, []
        return " ".join(control).replace("start rollback", "").split()

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._statement)


async def test_a_reveal_on_postgresql_sends_its_one_statement_without_begin_or_commit(shop, sku, monkeypatch):
    """The reveal's statement reads the keys and inserts their audit rows at once: on PostgreSQL it runs in
    autocommit, one round trip, its audit rows committed before the keys are answered (SQLite: a transaction)."""
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    await shop.pay(order)
    statements = Statements(shop)
    sent = Sent(shop, monkeypatch)
    try:
        keys = await shop.reveal(order)
        reveal = statements.take()
    finally:
        statements.close()
        sent.close()
    assert len(keys) == 1 and await shop.count(KeyReveal) == 1
    if shop.ctx.db.write_engine.dialect.name == "postgresql":
        assert (len(reveal), sent.take()) == (1, ["statement"]), (reveal, sent.control)

async def _order_stage_rules_only(shop) -> None:
    """The shipped risk rules with those of the payment and delivery stages turned off (a shop that checks buyers at
    checkout only): the notification has no rule to evaluate."""
    async with shop.ctx.db.transaction() as session:
        assert await ruleset.install_default_rules(session=session) > 0
        for rule in await ruleset.list_rules(session=session):
            rule.enabled = rule.stages == ["order"]


@pytest.mark.parametrize("default_rules", [False, True], ids=["no-rules", "order-stage-rules"])
async def test_start_payment_and_its_notification_on_postgresql_send_one_statement_each_without_begin_or_commit(
        shop, sku, monkeypatch, default_rules):
    """Start payment (locked, checked, the payment inserted) and the usual notification (locked, checked, delivered)
    are one statement each: on PostgreSQL each runs in autocommit on the driver, one round trip, no SQLAlchemy
    Connection (SQLite: transactions). What follows the notification's commit still happens: the ledger worker is
    woken for the deferred row. Risk rules of the order stage only keep the notification on its one statement."""
    if default_rules:
        await _order_stage_rules_only(shop)
    await shop.stock(sku, 2)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # warms the process's caches
    order = await shop.create_order(sku.id, contact="second@example.com")
    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: the notification leaves its postings to the worker
    worker._wake.clear()
    sent = Sent(shop, monkeypatch)
    try:
        payment = await shop.start_payment(order)
        start = sent.take()
        connections: list[object] = []  # SQLAlchemy Connections built: none on the driver (quanyi.db_driven)
        engine = shop.ctx.db.write_engine.sync_engine
        built = connections.append  # one bound method: `event.remove` needs the same object
        event.listen(engine, "engine_connect", built)
        try:
            response = await shop.notify(shop.notification(payment))
        finally:
            event.remove(engine, "engine_connect", built)
        notification = sent.take()
    finally:
        sent.close()
        worker.running = False
    assert response.status_code == 200 and response.text == "success"
    assert (await shop.get_order(order))["status"] == "delivered"
    assert worker._wake.is_set()  # the notification's after-commit action ran
    await post_all_deferred(shop.ctx.db)
    assert await shop.count(Posting, Posting.payment_no == payment["payment_no"]) == 1
    if shop.ctx.db.write_engine.dialect.name == "postgresql":
        assert (start, notification) == (["statement"], ["statement"])
        assert connections == []  # the notification's statement went straight to asyncpg


async def test_a_plain_checkout_with_pay_on_postgresql_sends_begin_with_its_first_statement(shop, sku, monkeypatch):
    """The checkout's transaction runs on the driver (quanyi.db_driven): BEGIN goes in the same round trip as the
    gate's advisory locks, then the count and the order, then COMMIT; its payment starts in one statement, in
    autocommit. Five round trips for the whole request (it was six: BEGIN alone)."""
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)  # no pruning of old counter events in this one
    await shop.stock(sku, 2)
    await shop.create_order(sku.id, contact="first@example.com")  # warms the process's caches
    statements = Statements(shop)
    sent = Sent(shop, monkeypatch)
    try:
        order = await shop.create_order(sku.id, contact="second@example.com", pay={"gateway": "sandbox"})
        checkout = statements.take()
    finally:
        statements.close()
        sent.close()
    assert order["payment"]["payment_no"], order
    if shop.ctx.db.write_engine.dialect.name == "postgresql":
        assert checkout[0].startswith("BEGIN") and "pg_advisory_xact_lock" in checkout[0], checkout
        assert sent.take() == ["statement", "statement", "statement", "commit", "statement"], sent.control
