"""The payment notification of an order with marketing (a coupon, points, a member's level price) is applied like a
plain one: on PostgreSQL by the one statement, in autocommit (payments/express.py, coupons/paid_statement.py), and
it leaves in every table exactly the rows the general way (`orders.service.apply_payment`) leaves."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import event, select, text

from coupons.support import make_coupon
from helpers import make_settings
from quanyi.config import Settings
from quanyi.coupons.models import CouponGrant, CouponRedemption
from quanyi.db import Base
from quanyi.inventory.models import CardKey
from quanyi.ledger.deferred import post_all_deferred
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders.models import Order
from quanyi.payments import express
from quanyi.payments.models import Payment
from quanyi.risk import counters


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The process's copy of the risk rules outlives the test (a loaded machine may take seconds between two
    notifications; a stale copy is read again, one statement more)."""
    return make_settings(database_url, risk_rules_cache_seconds=300)


@pytest.fixture(autouse=True)
def _no_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    # The risk counters prune old events on 2 % of their writes: not in the rows compared.
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)


class Sent:
    """What the shop sends on PostgreSQL: "statement" for each SQL statement, and asyncpg's transaction control
    (start, commit, rollback)."""

    def __init__(self, shop: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        import asyncpg.transaction

        self.control: list[str] = []
        for name in ("start", "commit", "rollback"):
            method = getattr(asyncpg.transaction.Transaction, name)

            def sent(method: Any = method, name: str = name) -> Any:
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    self.control.append(name)
                    return await method(*args, **kwargs)
                return wrapper

            monkeypatch.setattr(asyncpg.transaction.Transaction, name, sent())
        self._engine = shop.ctx.db.write_engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._statement)

    def _statement(self, *_args: object) -> None:
        self.control.append("statement")

    def take(self) -> list[str]:
        """Sent since the last take, a pooled connection's idle ping left out (BEGIN; ";"; ROLLBACK)."""
        control, self.control = self.control, []
        return " ".join(control).replace("start statement rollback", "").split()

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._statement)


async def _members(shop: Any, count: int, *, points: int) -> list[dict[str, Any]]:
    """`count` members with an open session each, holding `points` points (an operator's gift), at the level their
    paid amount reaches: id and token."""
    members = []
    async with shop.ctx.db.transaction() as session:
        for _ in range(count):
            n = len(members) + await shop.count(Member)
            member = Member(email=f"mkt{n}@example.com")
            session.add(member)
            await session.flush()
            token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                              ip="127.0.0.1", user_agent="test")
            await loyalty_points.adjust(session=session, member_id=member.id, points=points, reason="gift",
                                        actor="test")
            members.append({"id": member.id, "token": token})
        await loyalty_levels.reevaluate(session=session)
    return members


async def _claimed(shop: Any, coupon: dict[str, Any], member: dict[str, Any]) -> int:
    """The member claims the coupon: the id of their own coupon (grant)."""
    headers = {"X-Member-Token": member["token"]}
    response = await shop.client.post(f"/api/coupons/{coupon['id']}/claim", headers=headers)
    assert response.status_code == 201, response.text
    mine = (await shop.client.get("/api/coupons/mine", headers=headers)).json()
    return int(max(grant["id"] for grant in mine))


# The marketing on an order: (member, level price, coupon: None | "code" | "grant", points spent).
SCENARIOS = {
    "guest-coupon": (False, False, "code", 0),
    "member-coupon": (True, False, "code", 0),
    "member-own-coupon": (True, False, "grant", 0),
    "points": (True, False, None, 100),
    "level-price": (True, True, None, 0),
    "level-coupon-points": (True, True, "code", 100),
    "level-own-coupon-points": (True, True, "grant", 100),
}


async def _marketing_orders(shop: Any, sku: Any, scenario: str, count: int) -> list[dict[str, Any]]:
    """`count` orders of the scenario, each by a member of its own (or a guest)."""
    member, level, coupon, points = SCENARIOS[scenario]
    if level:
        async with shop.ctx.db.transaction() as session:
            await loyalty_levels.set_level(session=session, code="SILVER", name="Silver", min_paid_cents=0,
                                           discount_bps=500)
    if points:
        response = await shop.client.put("/api/admin/loyalty/program", headers=shop.admin,
                                         json={"points_per_yuan": 10})
        assert response.status_code == 200, response.text
    made = None
    if coupon == "code":
        made = await make_coupon(shop, code="MKT3", per_member_limit=count if member else None)
    elif coupon == "grant":
        made = await make_coupon(shop, name="claimed", distribution="claim", code=None, per_member_limit=1,
                                 amount_off_cents=200)
    members = await _members(shop, count, points=1000) if member else [None] * count
    orders = []
    for who in members:
        body: dict[str, Any] = {"sku_id": sku.id, "quantity": 2, "contact": "fan@example.com"}
        headers = {"X-Member-Token": who["token"]} if who else {}
        if coupon == "code":
            body["coupon_codes"] = ["MKT3"]
        elif coupon == "grant":
            body["member_coupon_ids"] = [await _claimed(shop, made, who)]  # type: ignore[arg-type]
        if points:
            body["points"] = points
        response = await shop.client.post("/api/orders", headers=headers, json=body)
        assert response.status_code == 201, response.text
        order = response.json()
        assert bool(order["coupon_discount_cents"]) == bool(coupon)
        assert order["points_used"] == points and bool(order["member_discount_cents"]) == level
        orders.append(order)
    return orders


async def _snapshot(shop: Any) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row of every table, by primary key."""
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    async with shop.ctx.db.read_session() as session:
        for table in Base.metadata.sorted_tables:
            key = [column.name for column in table.primary_key.columns]
            rows = (await session.execute(select(table))).mappings().all()
            tables[table.name] = {tuple(row[k] for k in key): dict(row) for row in rows}
    return tables


# Columns that name a row of another table without a foreign key.
_NAMES = {"order_id": "orders_order", "payment_id": "payments_payment", "member_id": "members_member",
          "grant_id": "coupons_grant", "picked_card_key_id": "inventory_card_key"}


async def _twin_ids(shop: Any, order: dict[str, Any]) -> tuple[dict[str, dict[Any, str]], dict[str, str]]:
    """The order's own rows (order, payment, member, keys, own coupon, redemptions) and numbers, as placeholders."""
    async with shop.ctx.db.read_session() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        payment = await session.scalar(select(Payment).where(Payment.order_id == row.id))
        keys = (await session.scalars(select(CardKey.id).where(CardKey.order_id == row.id).order_by(CardKey.id))).all()
        grants = (await session.scalars(select(CouponGrant.id).where(CouponGrant.order_id == row.id))).all()
        redemptions = (await session.scalars(select(CouponRedemption.id).where(CouponRedemption.order_id == row.id)
                                             .order_by(CouponRedemption.id))).all()
    ids = {"orders_order": {row.id: "ORDER"}, "payments_payment": {payment.id: "PAYMENT"},
           "inventory_card_key": {key: f"KEY{n}" for n, key in enumerate(keys)},
           "coupons_grant": {grant: f"GRANT{n}" for n, grant in enumerate(grants)},
           "coupons_redemption": {r: f"REDEMPTION{n}" for n, r in enumerate(redemptions)}}
    if row.member_id is not None:
        ids["members_member"] = {row.member_id: "MEMBER"}
    strings = {row.order_no: "ORDER_NO", payment.payment_no: "PAYMENT_NO", str(row.id): "ORDER"}
    if payment.gateway_trade_no:
        strings[payment.gateway_trade_no] = "TRADE_NO"
    return ids, strings


def _changes(before: dict[str, Any], after: dict[str, Any], ids: dict[str, dict[Any, str]],
             strings: dict[str, str]) -> dict[str, Any]:
    """What changed between two snapshots, comparable between twin orders: their own ids and numbers and the ids of
    rows inserted meanwhile as placeholders, times as "T", a changed integer as its difference."""
    ids = {name: dict(mapping) for name, mapping in ids.items()}
    for name, rows in after.items():
        for n, key in enumerate(sorted(k for k in rows if k not in before[name])):
            if len(key) == 1:
                ids.setdefault(name, {}).setdefault(key[0], f"{name}#{n}")
    tables = {table.name: table for table in Base.metadata.sorted_tables}

    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return "T"
        if isinstance(value, float):  # risk counter events' times
            return "F"
        if isinstance(value, str):
            if value in strings:
                return strings[value]
            for found, placeholder in strings.items():
                if len(found) > 8:
                    value = value.replace(found, placeholder)
            if value[:1] in "{[":
                try:
                    return plain(json.loads(value))
                except ValueError:
                    return value
            return value
        if isinstance(value, dict):
            return sorted((k, plain(v)) for k, v in value.items() if k not in ("order_id", "payment_id"))
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    def named(table: str, column: str, value: Any) -> Any:
        col = tables[table].c[column]
        target = next(iter(col.foreign_keys)).column.table.name if col.foreign_keys else _NAMES.get(
            column, table if col.primary_key else None)
        if target is not None and isinstance(value, int) and value in ids.get(target, {}):
            return ids[target][value]
        return plain(value)

    changed: dict[str, Any] = {}
    for name, rows in after.items():
        old = before[name]
        key_columns = [column.name for column in tables[name].primary_key.columns]
        inserted = sorted(repr(sorted((c, named(name, c, v)) for c, v in row.items()))
                          for key, row in rows.items() if key not in old)
        updated = {}
        for key, row in rows.items():
            if key not in old or old[key] == row:
                continue
            diff = []
            for column, value in row.items():
                was = old[key][column]
                if was == value:
                    continue
                if (isinstance(value, int) and isinstance(was, int) and not isinstance(value, bool)
                        and not tables[name].c[column].foreign_keys and column not in _NAMES):
                    diff.append((column, "+", value - was))
                else:
                    diff.append((column, named(name, column, was), named(name, column, value)))
            updated[repr(tuple(named(name, c, v) for c, v in zip(key_columns, key, strict=True)))] = sorted(diff)
        deleted = sum(1 for key in old if key not in rows)
        if inserted or updated or deleted:
            changed[name] = {"inserted": inserted, "updated": updated, "deleted": deleted}
    return changed


async def _pay_and_post(shop: Any, order: dict[str, Any], sent: Sent | None = None) -> tuple[dict[str, Any], list[str]]:
    """Pay the order (its notification, then the ledger worker's batch): what that changed in every table, and what
    the notification sent (with `sent`)."""
    payment = await shop.start_payment(order)
    before = await _snapshot(shop)
    if sent:
        sent.take()
    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: the notification leaves its postings to the worker's batch below
    try:
        response = await shop.notify(shop.notification(payment, buyer_id="payer-1"))
    finally:
        worker.running = False
    notification = sent.take() if sent else []
    assert response.status_code == 200 and response.text == "success", response.text
    await post_all_deferred(shop.ctx.db)
    after = await _snapshot(shop)
    return _changes(before, after, *await _twin_ids(shop, order)), notification


async def _general_way_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(**_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(express, "takes_express_lane", never)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)  # PostgreSQL: its lock statement only locks


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_marketing_notification_leaves_in_every_table_the_rows_of_the_general_way(shop, sku, lanes,
                                                                                        monkeypatch, scenario):
    """One statement (PostgreSQL; SQLite: the express lane's trip) against the general way, twin orders of the
    scenario paid by the same payer, the ledger worker run after each: every table changed alike (the order, its
    events, keys, payment, coupons' redemptions and grants, risk rows, the deferred row, postings, points, paid
    total, messages)."""
    await shop.stock(sku, 8)
    await shop.create_order(sku.id)  # the shop's device cookie: the orders below carry the same device
    warm, fast, general = await _marketing_orders(shop, sku, scenario, 3)
    await shop.pay(warm)  # first postings create the ledger's accounts
    await post_all_deferred(shop.ctx.db)
    assert lanes == [True]
    sent = Sent(shop, monkeypatch) if shop.ctx.db.write_engine.dialect.name == "postgresql" else None
    try:
        fast_changes, fast_sent = await _pay_and_post(shop, fast, sent)
    finally:
        if sent:
            sent.close()
    assert lanes == [True, True]
    await _general_way_only(monkeypatch)
    general_changes, _ = await _pay_and_post(shop, general)
    assert lanes == [True, True]  # the general way did not ask the express lane
    assert fast_changes == general_changes
    if sent:  # PostgreSQL: the notification was one statement without BEGIN and COMMIT
        assert fast_sent == ["statement"], fast_sent
    order = fast_changes["orders_order"]["updated"]["('ORDER',)"]
    assert ("status", "pending_payment", "delivered") in order
    if SCENARIOS[scenario][2]:
        redemptions = fast_changes["coupons_redemption"]["updated"]
        assert [c for c in redemptions["('REDEMPTION0',)"] if c[0] == "status"] == [("status", "reserved", "used")]
        grants = fast_changes.get("coupons_grant", {}).get("updated", {})
        assert list(grants) == (["('GRANT0',)"] if SCENARIOS[scenario][2] == "grant" else [])
    if SCENARIOS[scenario][0]:  # the ledger worker: the member's paid total, and points earned
        loyalty = {change[0]: change[2] for change in fast_changes["loyalty_member"]["updated"]["('MEMBER',)"]}
        assert loyalty["paid_total_cents"] > 0 and loyalty.get("points_balance", 0) >= 0
        if SCENARIOS[scenario][3]:
            assert loyalty["points_balance"] > 0


async def test_plain_and_marketing_notifications_in_turn_each_send_one_statement_without_begin_or_commit(
        shop, sku, lanes, monkeypatch, backend):
    """A sale's mixed stream (plain guest orders and a member's level price + coupon + points orders in turn): on
    PostgreSQL every notification is the one statement in autocommit, whichever came before it."""
    if backend != "postgresql":
        pytest.skip("SQLite applies every notification in a transaction")
    await shop.stock(sku, 12)
    await shop.create_order(sku.id)
    marketing = await _marketing_orders(shop, sku, "level-coupon-points", 3)
    plain = [await shop.create_order(sku.id, contact=f"plain{n}@example.com") for n in range(3)]
    await shop.pay(plain[0])  # warms the process's caches
    payments = [await shop.start_payment(order) for pair in zip(marketing, plain[1:] + [None], strict=True)
                for order in pair if order is not None]
    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: the notifications leave their postings to the worker
    sent = Sent(shop, monkeypatch)
    try:
        each = []
        for payment in payments:
            assert (await shop.notify(shop.notification(payment, buyer_id="payer-1"))).text == "success"
            each.append(sent.take())
    finally:
        sent.close()
        worker.running = False
    assert each == [["statement"]] * len(payments)
    assert lanes == [True] * (1 + len(payments))
    for order in marketing + plain:
        assert (await shop.get_order(order))["status"] == "delivered"
    assert await shop.count(CouponRedemption, CouponRedemption.status == "used") == 3


def _scans(plan: Any) -> list[tuple[str, int]]:
    """(relation, loops actually run) of every scan in an EXPLAIN (ANALYZE, FORMAT JSON) plan (an UPDATE's own node
    runs once, and writes nothing when the scan below it never runs)."""
    found = []
    if isinstance(plan, dict):
        if "Relation Name" in plan and "Scan" in plan.get("Node Type", ""):
            found.append((plan["Relation Name"], plan.get("Actual Loops", 0)))
        for value in plan.values():
            found += _scans(value)
    elif isinstance(plan, list):
        for value in plan:
            found += _scans(value)
    return found


async def test_the_one_statement_reads_a_coupon_table_only_for_an_order_with_coupons(shop, sku, monkeypatch,
                                                                                    backend):
    """The coupon parts of the notification's statement (the new-member question, the redemptions and grants used)
    are in the plain order's statement text, but PostgreSQL runs none of their scans for an order without coupons
    (EXPLAIN ANALYZE of the statement with the notification's own parameters, rolled back; then the real one)."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL's one statement")
    plans: list[Any] = []
    fetch_one = express.db_direct.fetch_one

    async def explained(session: Any, direct: Any, params: Any) -> Any:
        # The statement as this shop sends it: without the risk rules' parts (no payment-stage rule here).
        if direct in (express._PG_LOCK_AND_DELIVER_DIRECT, express._PG_LOCK_AND_DELIVER_NO_RULES_DIRECT):
            async with shop.ctx.db.write_engine.connect() as connection, connection.begin() as transaction:
                result = await connection.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + direct.statement.text),
                                                  dict(params))
                plans.append(result.scalar_one())
                await transaction.rollback()
        return await fetch_one(session, direct, params)

    monkeypatch.setattr(express.db_direct, "fetch_one", explained)
    await shop.stock(sku, 6)
    await shop.create_order(sku.id)
    plain = await shop.create_order(sku.id, contact="plain@example.com")
    marketing = (await _marketing_orders(shop, sku, "member-own-coupon", 1))[0]
    for order in (plain, marketing):
        await shop.pay(order)
    assert len(plans) == 2
    plain_scans, coupon_scans = (_scans(plan) for plan in plans)
    coupon_tables = ("coupons_redemption", "coupons_coupon", "coupons_grant")
    assert {name for name, _ in plain_scans} >= set(coupon_tables)  # in the plan ...
    assert [(name, loops) for name, loops in plain_scans if name in coupon_tables and loops] == []  # ... never run
    assert {name for name, loops in coupon_scans if loops} >= set(coupon_tables)  # the same nodes with coupons
    for order in (plain, marketing):
        assert (await shop.get_order(order))["status"] == "delivered"
