"""The express lane of a payment notification (payments/express.py) writes exactly what the general way
(`orders.service.apply_payment`) writes for the same order, and leaves every other case to the general way."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from coupons.support import make_coupon
from helpers import make_settings, signed_notification
from ledger.support import expected_order_sums, group_revenue, order_sums, unbalanced_postings
from members.support import sign_in
from promoters.support import make_promoter, set_program
from quanyi.config import Settings
from quanyi.coupons.models import CouponGrant, CouponRedemption
from quanyi.inventory.models import CardKey
from quanyi.ledger.deferred import post_all_deferred
from quanyi.ledger.models import DeferredPosting, LedgerPosting
from quanyi.ledger.reports import set_share_rule, trial_balance
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as points_service
from quanyi.loyalty.models import MemberLoyalty
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order, OrderEvent
from quanyi.payments import express
from quanyi.payments.models import Payment
from quanyi.risk import ruleset
from quanyi.risk.models import CounterEvent, OrderRiskSignals


@pytest.fixture
def settings(database_url: str) -> Settings:
    """A shop that e-mails its buyers and alerts its merchant's group: delivery enqueues both."""
    return make_settings(database_url, smtp_host="smtp.invalid", smtp_from="shop@example.com",
                         wecom_webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=test")


async def _rows(shop, order: dict[str, Any]) -> dict[str, Any]:
    """Everything a paid order left behind, with its own numbers taken out so two orders compare."""
    async with shop.ctx.db.read_session() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        oid, no = row.id, row.order_no
        payment = await session.scalar(select(Payment).where(Payment.order_id == oid))
        events = (await session.execute(select(OrderEvent.from_status, OrderEvent.to_status, OrderEvent.reason)
                                        .where(OrderEvent.order_id == oid).order_by(OrderEvent.id))).all()
        keys = (await session.execute(select(CardKey.status, CardKey.sold_at.is_not(None))
                                      .where(CardKey.order_id == oid))).all()
        signals = await session.get(OrderRiskSignals, oid)
        counted = (await session.scalars(select(CounterEvent.key).where(CounterEvent.member == str(oid)))).all()
        postings = (await session.scalars(select(LedgerPosting.kind).where(LedgerPosting.order_id == oid))).all()
        messages = (await session.execute(select(OutboxMessage.channel, OutboxMessage.kind, OutboxMessage.recipient,
                                                 OutboxMessage.dedupe_key, OutboxMessage.payload)
                                          .where(OutboxMessage.order_id == oid))).all()
        waiting = await session.scalar(select(DeferredPosting.id).where(DeferredPosting.order_id == oid))
    assert row.paid_at is not None and row.paid_at == row.delivered_at == row.updated_at
    assert payment.paid_at is not None and payment.gateway_trade_no
    return {
        "order": (row.status, row.status_reason, row.refunded_cents),
        "events": [tuple(e) for e in events],
        "keys": sorted(tuple(k) for k in keys),
        "payment": (payment.status, payment.duplicate_of),
        "signals": (signals.paid, signals.payer, signals.paid_risk_at is not None),
        "counted": sorted(counted),
        "postings": sorted(postings),
        "messages": sorted((m.channel, m.kind, m.recipient, m.dedupe_key.replace(no, "N"),
                            sorted((k, v) for k, v in m.payload.items() if k not in ("order_no", "order_id")))
                           for m in messages),
        "waiting": waiting,
    }


async def test_the_express_lane_leaves_the_rows_the_general_way_leaves(shop, sku, lanes, monkeypatch):
    await shop.stock(sku, 5)
    await shop.create_order(sku.id)  # the shop's device cookie: both orders below carry the same device
    express_order = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    general_order = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    response = await shop.notify(shop.notification(await shop.start_payment(express_order), buyer_id="payer-1"))
    assert response.text == "success" and lanes == [True]

    async def never(**_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(express, "takes_express_lane", never)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)  # PostgreSQL: its lock statement only locks
    response = await shop.notify(shop.notification(await shop.start_payment(general_order), buyer_id="payer-1"))
    assert response.text == "success" and lanes == [True]  # the general way did not ask the express lane

    fast, general = await _rows(shop, express_order), await _rows(shop, general_order)
    assert fast == general
    assert fast["order"][0] == "delivered" and fast["keys"] == [("sold", True)] * 2
    assert fast["events"][1:] == [("pending_payment", "paid", "payment confirmed"),
                                  ("paid", "delivered", "goods handed over")]
    assert fast["signals"][0] is True and fast["signals"][1]  # paid, by a known payer
    assert any(key.startswith("att:payer:") for key in fast["counted"])
    assert fast["postings"] == ["order_delivered", "payment_received"]  # posted after the commit (no worker here)
    assert [m[:2] for m in fast["messages"]] == [("email", "order_delivered"), ("wecom", "order_paid")]
    assert fast["waiting"] is None


async def test_a_repeated_notification_delivers_nothing_new(shop, sku, lanes):
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    params = shop.notification(await shop.start_payment(order))
    assert (await shop.notify(params)).text == "success"
    assert (await shop.notify(params)).text == "success"
    assert lanes == [True]
    assert await shop.count(CardKey, CardKey.status == "sold") == 1
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1
    assert await shop.count(OutboxMessage) == 2 and await shop.count(LedgerPosting) == 2


async def test_an_order_whose_reserved_key_went_back_is_topped_up_the_general_way(shop, sku, lanes):
    await shop.stock(sku, 3)
    order = await shop.create_order(sku.id, quantity=2)
    payment = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:  # one of its keys was released (as at expiry), still in stock
        key = await session.scalar(select(CardKey).where(CardKey.status == "reserved").limit(1))
        key.status, key.order_id, key.reserved_at = "available", None, None
    assert (await shop.notify(shop.notification(payment))).text == "success"
    assert lanes == [False]  # the express lane changed nothing and left it to the general way
    assert (await shop.get_order(order))["status"] == "delivered"
    assert await shop.count(CardKey, CardKey.status == "sold") == 2
    assert await shop.count(CardKey, CardKey.status == "available") == 1
    assert await shop.count(OrderEvent, OrderEvent.to_status == "delivered") == 1


async def test_an_order_short_of_keys_and_stock_waits_for_its_refund(shop, sku, lanes):
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id, quantity=2)
    payment = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:  # one reserved key voided by the operator
        key = await session.scalar(select(CardKey).where(CardKey.status == "reserved").limit(1))
        key.status, key.order_id = "voided", None
    assert (await shop.notify(shop.notification(payment))).text == "success"
    assert lanes == [False]
    assert (await shop.get_order(order))["status"] == "refund_pending"
    assert await shop.count(CardKey, CardKey.status == "sold") == 0
    assert await shop.count(CardKey, CardKey.status == "available") == 1  # its other key is back on sale
    assert await shop.scalar(select(Payment.status)) == "succeeded"


async def test_payment_stage_rules_take_the_general_way_and_order_stage_rules_do_not(shop, sku, lanes):
    """A payment-stage rule of a kind the statement that locks cannot judge (risk.payment_sql): the general way,
    on both engines (tests/payments/test_express_payment_rules.py: the kinds it judges)."""
    await shop.stock(sku, 2)
    async with shop.ctx.db.transaction() as session:
        rule = await ruleset.create_rule(session=session, name="blocked", kind="block_list",
                                         params={"phones": ["+8613800000000"]}, action="deny", reason_code="blocked",
                                         stages=["order"])
    first = await shop.create_order(sku.id)
    await shop.pay(first)
    assert lanes == [True]
    async with shop.ctx.db.transaction() as session:
        await ruleset.update_rule(session=session, rule_id=rule.id, changes={"stages": ["order", "payment"]})
    second = await shop.create_order(sku.id)
    await shop.pay(second)
    assert lanes == [True]  # not asked: the general way evaluated the payment stage
    assert (await shop.get_order(second))["status"] == "delivered"  # the rule did not hit


async def _counted(shop, since: int, order: dict[str, Any]) -> list[tuple[str, str]]:
    """The risk counter events written after id `since`, the order's own id and number taken out."""
    async with shop.ctx.db.read_session() as session:
        oid = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        rows = (await session.execute(select(CounterEvent.key, CounterEvent.member).where(CounterEvent.id > since)
                                      .order_by(CounterEvent.id))).all()
    return [(key, "N" if member == str(oid) else member) for key, member in rows]


async def _last_event(shop) -> int:
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(func.max(CounterEvent.id))) or 0)

async def _order_stage_rules_only(shop) -> None:
    """The shipped risk rules with those of the payment and delivery stages turned off (a shop that checks buyers at
    checkout only): the notification has no rule to evaluate."""
    async with shop.ctx.db.transaction() as session:
        assert await ruleset.install_default_rules(session=session) > 0
        for rule in await ruleset.list_rules(session=session):
            rule.enabled = rule.stages == ["order"]


@pytest.mark.parametrize(("payer", "default_rules"), [("payer-1", False), (None, False), ("payer-1", True)])
async def test_delivering_in_the_lock_statement_leaves_the_rows_of_two_statements(shop, sku, lanes, monkeypatch,
                                                                                  payer, default_rules):
    """PostgreSQL delivers the usual order in the statement that locks it; the same rows (and risk's paid counter
    events, in the same order) as locking and then delivering in a second statement (SQLite: both ways alike).
    Risk rules of the order stage only change neither."""
    if default_rules:
        await _order_stage_rules_only(shop)
    await shop.stock(sku, 5)
    await shop.create_order(sku.id)  # the shop's device cookie: both orders below carry the same device
    one = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    two = await shop.create_order(sku.id, quantity=2, contact="fan@example.com")
    extra = {"buyer_id": payer} if payer else {}
    since = await _last_event(shop)
    assert (await shop.notify(shop.notification(await shop.start_payment(one), **extra))).text == "success"
    counted_one = await _counted(shop, since, one)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)
    since = await _last_event(shop)
    assert (await shop.notify(shop.notification(await shop.start_payment(two), **extra))).text == "success"
    counted_two = await _counted(shop, since, two)
    assert lanes == [True, True]
    assert await _rows(shop, one) == await _rows(shop, two)
    # `paid` per ip / device / contact: counted from the signals row, which keeps the payment's risk-clock moment
    assert counted_one == counted_two and len(counted_one) == (2 if payer else 0)
    assert [key.split(":")[0] for key, _ in counted_one] == (["att", "contacts"] if payer else [])
    assert (await _rows(shop, one))["signals"][2] is True


async def test_a_notification_that_the_lock_statement_refuses_changes_nothing(shop, sku, lanes):
    """Another amount or currency: the statement that locks delivers nothing, the checks refuse."""
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    payment = await shop.start_payment(order)
    for amount, currency in ((payment["amount_cents"] + 1, "CNY"), (payment["amount_cents"], "USD")):
        response = await shop.notify(signed_notification(shop.sandbox_secret, payment_no=payment["payment_no"],
                                                         amount_cents=amount, currency=currency))
        assert response.status_code == 400 and lanes == []
    assert (await shop.get_order(order))["status"] == "pending_payment"
    assert await shop.count(CardKey, CardKey.status == "sold") == 0 and await shop.count(DeferredPosting) == 0
    assert (await shop.notify(shop.notification(payment))).text == "success" and lanes == [True]
    assert await shop.count(CardKey, CardKey.status == "sold") == 1


async def _coupons_used(shop, order: dict[str, Any]) -> dict[str, Any]:
    async with shop.ctx.db.read_session() as session:
        oid = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        redemptions = (await session.execute(select(CouponRedemption.status, CouponRedemption.grant_id.is_not(None),
                                                    CouponRedemption.discount_cents)
                                             .where(CouponRedemption.order_id == oid))).all()
        grants = (await session.scalars(select(CouponGrant.status).where(CouponGrant.order_id == oid))).all()
    return {"redemptions": sorted(tuple(r) for r in redemptions), "grants": sorted(grants)}


@pytest.mark.parametrize("while_locking", [True, False])
async def test_a_coupon_order_takes_the_express_lane_and_leaves_what_the_general_way_leaves(shop, sku, lanes,
                                                                                           monkeypatch, while_locking):
    """PostgreSQL: the statement that locks (`_PG_LOCK_AND_DELIVER`, on or off) leaves an order with coupons to the
    second one (`_PG_DELIVER_COUPONS`), which marks its coupons used."""
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", while_locking)
    await shop.stock(sku, 6)
    await make_coupon(shop, code="SAVE3")  # a public code
    claimable = await make_coupon(shop, name="claimed", distribution="claim", code=None, per_member_limit=2,
                                  amount_off_cents=100)
    member = await sign_in(shop, "coupons@example.com")
    headers = {"X-Member-Token": member["token"]}
    for _ in range(2):
        assert (await shop.client.post(f"/api/coupons/{claimable['id']}/claim", headers=headers)).status_code == 201
    grants = [g["id"] for g in (await shop.client.get("/api/coupons/mine", headers=headers)).json()]
    await shop.create_order(sku.id)  # the shop's device cookie: the orders below carry the same device
    by_code = [await shop.create_order(sku.id, contact="fan@example.com", coupon_codes=["SAVE3"]) for _ in range(2)]
    by_grant = []
    for grant in grants:
        response = await shop.client.post("/api/orders", headers=headers, json={
            "sku_id": sku.id, "quantity": 1, "contact": "fan@example.com", "member_coupon_ids": [grant]})
        assert response.status_code == 201, response.text
        by_grant.append(response.json())
    for order in (by_code[0], by_grant[0]):
        assert (await shop.notify(shop.notification(await shop.start_payment(order), buyer_id="payer-1"))).text \
            == "success"
    assert lanes == [True, True]

    async def never(**_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(express, "takes_express_lane", never)
    monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)  # PostgreSQL: its lock statement only locks
    for order in (by_code[1], by_grant[1]):
        assert (await shop.notify(shop.notification(await shop.start_payment(order), buyer_id="payer-1"))).text \
            == "success"
    assert lanes == [True, True]
    for fast, general in ((by_code[0], by_code[1]), (by_grant[0], by_grant[1])):
        assert await _rows(shop, fast) == await _rows(shop, general)
        assert await _coupons_used(shop, fast) == await _coupons_used(shop, general)
    assert await _coupons_used(shop, by_code[0]) == {"redemptions": [("used", False, 300)], "grants": []}
    assert await _coupons_used(shop, by_grant[0]) == {"redemptions": [("used", True, 100)], "grants": ["used"]}


async def test_an_order_with_a_new_member_coupon_takes_the_general_way(shop, sku, lanes):
    await shop.stock(sku, 1)
    await make_coupon(shop, code="WELCOME", new_members_only=True)
    member = await sign_in(shop, "new@example.com")
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]}, json={
        "sku_id": sku.id, "quantity": 1, "contact": "new@example.com", "coupon_codes": ["WELCOME"]})
    assert response.status_code == 201, response.text
    await shop.pay(response.json())
    assert lanes == []  # not asked: coupons.abuse counts the payer of a new-member coupon
    assert (await shop.get_order(response.json()))["status"] == "delivered"
    assert await _coupons_used(shop, response.json()) == {"redemptions": [("used", False, 300)], "grants": []}


async def test_a_marketing_purchase_by_the_express_lane_earns_what_the_general_way_earns(shop, sku, lanes,
                                                                                       monkeypatch):
    """Level price, coupon, points and a promoter's link: the express lane leaves the payment's deferred row, and
    once the ledger worker has posted it the books, the member's points, paid total and level, and both promoters'
    commission are what the general way leaves for the same purchase."""
    await shop.stock(sku, 4)
    await make_coupon(shop, code="MKT10", kind="percent_off", percent_off_bps=1000, amount_off_cents=None)
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="", merchant_bps=0, distributor_bps=800,
                             distributor_l2_bps=200, actor="test")
    await set_program(shop, levels=2, hold_days=0)
    await make_promoter(shop, "LEAD")
    await make_promoter(shop, "AGENT", parent="LEAD")
    await shop.client.put("/api/admin/loyalty/program", headers=shop.admin, json={"points_per_yuan": 10})
    await shop.client.put("/api/admin/loyalty/levels/SILVER", headers=shop.admin,
                          json={"name": "白银", "min_paid_cents": 0, "discount_bps": 500,
                                "points_multiplier_bps": 15_000})
    await shop.create_order(sku.id)  # the shop's device cookie: the orders below carry the same device
    members, orders = [], []
    for n in range(2):  # each signs in on the shop's client and orders at once (a sign-in ends the one before)
        member = await sign_in(shop, f"mkt{n}@example.com")
        async with shop.ctx.db.transaction() as session:
            await points_service.adjust(session=session, member_id=member["member"]["id"], points=1000,
                                        reason="gift", actor="test")
            await loyalty_levels.reevaluate(session=session)
        response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]}, json={
            "sku_id": sku.id, "quantity": 1, "contact": "member@example.com", "coupon_codes": ["MKT10"],
            "points": 100, "distributor_code": "AGENT"})
        assert response.status_code == 201, response.text
        members.append(member)
        orders.append(response.json())
    assert orders[0]["coupon_discount_cents"] > 0 and orders[0]["points_used"] == 100
    assert orders[0]["member_discount_cents"] > 0

    worker = shop.ctx.ledger_worker
    worker.running = True  # as in `quanyi serve`: both notifications leave their postings to the worker
    try:
        fast = await shop.notify(shop.notification(await shop.start_payment(orders[0]), buyer_id="payer-1"))
        assert fast.text == "success" and lanes == [True]

        async def never(**_kwargs: Any) -> bool:
            return False

        monkeypatch.setattr(express, "takes_express_lane", never)
        monkeypatch.setattr(express, "DELIVER_WHILE_LOCKING", False)
        general = await shop.notify(shop.notification(await shop.start_payment(orders[1]), buyer_id="payer-1"))
        assert general.text == "success" and lanes == [True]
    finally:
        worker.running = False
    await post_all_deferred(shop.ctx.db)

    assert await _rows(shop, orders[0]) == await _rows(shop, orders[1])
    assert await _coupons_used(shop, orders[0]) == await _coupons_used(shop, orders[1])
    sums = [await order_sums(shop.ctx, order["order_no"]) for order in orders]
    assert sums[0] == sums[1]
    assert sums[0].get("distributor_commission", 0) < 0 and sums[0].get("points_liability", 0) < 0
    for order in orders:
        money = {k: v for k, v in (await order_sums(shop.ctx, order["order_no"])).items()
                 if not k.startswith("points_")}
        assert group_revenue(money) == await expected_order_sums(shop.ctx, order["order_no"])
    assert await unbalanced_postings(shop.ctx) == []
    async with shop.ctx.db.read_session() as session:
        assert (await trial_balance(session=session)).balanced
        assert await points_service.liability_drift(session=session) == 0
        loyalty = [(await session.get(MemberLoyalty, member["member"]["id"])) for member in members]
        facts = [(row.points_balance, row.paid_total_cents, row.level_id) for row in loyalty]
    assert facts[0] == facts[1] and facts[0][0] > 1000 - 100 and facts[0][1] == orders[0]["total_cents"]
    for code in ("AGENT", "LEAD"):
        body = (await shop.client.get(f"/api/admin/promoters/{code}", headers=shop.admin)).json()
        assert sum(b["balance_cents"] for b in body["balances"]) > 0
