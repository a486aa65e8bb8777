"""A coupon goes with its order: used when paid, back when the order expires unpaid or is refunded in full before
delivery, kept when refunded after delivery; the books value a discounted order at what was paid; single-use
codes are made in batches of 10,000 and exported as CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from coupons.support import coupon, make_coupon, try_order
from quanyi.coupons.models import CouponGrant, CouponRedemption
from quanyi.ledger import accounts
from quanyi.ledger import service as ledger_service
from quanyi.ledger.postings import order_account_sums
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.tasks import execute_refunds_once
from refund_helpers import ask_refund, cashier_pay, void_stock


async def _redemption_status(shop, order_no):
    return await shop.scalar(select(CouponRedemption.status).join(Order, Order.id == CouponRedemption.order_id)
                             .where(Order.order_no == order_no))


async def test_paid_order_uses_its_coupon_and_the_books_count_what_was_paid(shop, stocked_sku):
    made = await make_coupon(shop, code="PAID5", amount_off_cents=500, total_quantity=10)
    order = (await try_order(shop, stocked_sku.id, 2, coupon_codes=["PAID5"])).json()
    await cashier_pay(shop, order)
    view = await shop.get_order(order)
    assert (view["status"], view["total_cents"]) == ("delivered", 3460)
    assert await _redemption_status(shop, order["order_no"]) == "used"
    assert (await coupon(shop, made["id"]))["usage"] == {"used": 1}
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        sums = await order_account_sums(session, order_id)
        trial = await ledger_service.trial_balance(session=session)
    assert sums[accounts.PLATFORM_REVENUE] == -3460 and sums.get(accounts.CUSTOMER_LIABILITY, 0) == 0
    assert trial.balanced
    # Refunded after delivery (both keys taken back): all that was paid goes back, the coupon stays used.
    assert (await ask_refund(shop, order, quantity=1)).json()["amount_cents"] == 1730
    assert (await ask_refund(shop, order, quantity=1)).json()["amount_cents"] == 1730
    await execute_refunds_once(shop.ctx)
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await _redemption_status(shop, order["order_no"]) == "used"


async def test_an_expired_reservation_gives_the_coupon_back(shop, stocked_sku):
    made = await make_coupon(shop, code="EXP1", total_quantity=1)
    order = (await try_order(shop, stocked_sku.id, coupon_codes=["EXP1"])).json()
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["EXP1"])).json()["code"] == "coupon_sold_out"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    async with shop.ctx.db.transaction() as session:
        assert await orders_service.expire_due_orders(session=session, now=later) == 1
    assert await _redemption_status(shop, order["order_no"]) == "released"
    assert (await coupon(shop, made["id"]))["taken_count"] == 0
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["EXP1"])).status_code == 201


async def test_a_late_payment_takes_the_coupon_again_or_is_refunded_when_it_is_gone(shop, stocked_sku):
    await make_coupon(shop, code="LATE", total_quantity=1)
    first = (await try_order(shop, stocked_sku.id, coupon_codes=["LATE"])).json()
    payment = await shop.start_payment(first)  # the buyer is at the cashier when the order is cancelled
    async with shop.ctx.db.transaction() as session:
        await orders_service.cancel_order(session=session, order_id=await session.scalar(
            select(Order.id).where(Order.order_no == first["order_no"])), reason="test")
    second = (await try_order(shop, stocked_sku.id, coupon_codes=["LATE"])).json()  # took the freed use
    assert (await shop.notify(shop.notification(payment))).text == "success"  # the first buyer's money arrives
    assert (await shop.get_order(first))["status"] == "refund_pending"
    assert "coupon" in (await shop.get_order(first))["status_reason"]
    await cashier_pay(shop, second)
    assert (await shop.get_order(second))["status"] == "delivered"


async def test_a_full_refund_before_delivery_returns_the_coupon(shop, stocked_sku):
    made = await make_coupon(shop, code="BACK", total_quantity=1)
    order = (await try_order(shop, stocked_sku.id, coupon_codes=["BACK"])).json()
    await void_stock(shop, stocked_sku.id)
    await cashier_pay(shop, order)
    assert (await shop.get_order(order))["status"] == "refund_pending"
    assert await _redemption_status(shop, order["order_no"]) == "used"
    assert (await ask_refund(shop, order)).json()["amount_cents"] == 1680
    await execute_refunds_once(shop.ctx)
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await _redemption_status(shop, order["order_no"]) == "returned"
    assert (await coupon(shop, made["id"]))["taken_count"] == 0


async def test_a_batch_of_10000_single_use_codes_is_exported_and_each_code_works_once(shop, stocked_sku):
    made = await make_coupon(shop, distribution="codes", code=None, total_quantity=10_000, name="Partner")
    batch = await shop.client.post(f"/api/admin/coupons/{made['id']}/code-batches", json={"count": 10_000,
                                                                                         "note": "partner A"},
                                   headers=shop.admin)
    assert batch.status_code == 201, batch.text
    more = await shop.client.post(f"/api/admin/coupons/{made['id']}/code-batches", json={"count": 1},
                                  headers=shop.admin)
    assert more.status_code == 409 and more.json()["code"] == "coupon_sold_out"
    export = await shop.client.get(batch.json()["export_url"], headers=shop.admin)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0] == ["code", "coupon", "status"] and len(rows) == 10_001
    codes = [r[0] for r in rows[1:]]
    assert len(set(codes)) == 10_000 and all(len(c) == 12 for c in codes)
    used = await try_order(shop, stocked_sku.id, coupon_codes=[codes[0].lower()])
    assert used.status_code == 201 and used.json()["total_cents"] == 1680
    again = await try_order(shop, stocked_sku.id, coupon_codes=[codes[0]])
    assert again.status_code == 409 and again.json()["reason"] == "already_used"
    assert await shop.scalar(select(CouponGrant.status).where(CouponGrant.code == codes[0])) == "reserved"
    elsewhere = await shop.client.get(f"/api/admin/coupons/{made['id'] + 1}/code-batches/{batch.json()['id']}"
                                      "/codes.csv", headers=shop.admin)
    assert elsewhere.status_code == 404


async def test_a_coupon_that_would_take_nothing_off_is_refused_and_nothing_is_reserved(shop, stocked_sku):
    # The first coupon takes the line down to the one-cent floor; the second would take 0 off. Kept, it would be
    # reserved with no discount on the order, so paying would never mark it used and expiry never give it back.
    unit = (await try_order(shop, stocked_sku.id)).json()["total_cents"]
    first = await make_coupon(shop, code="NEARLYALL", amount_off_cents=unit - 1, stackable=True)
    second = await make_coupon(shop, code="NOTHINGLEFT", amount_off_cents=100, stackable=True)
    refused = await try_order(shop, stocked_sku.id, coupon_codes=["NEARLYALL", "NOTHINGLEFT"])
    assert refused.status_code == 409, refused.text
    assert (refused.json()["code"], refused.json()["reason"]) == ("coupon_not_applicable", "no_discount")
    for made in (first, second):
        assert (await coupon(shop, made["id"]))["taken_count"] == 0
    alone = await try_order(shop, stocked_sku.id, coupon_codes=["NEARLYALL"])
    assert alone.status_code == 201 and alone.json()["total_cents"] == 1
    # The stack order is the coupons' (kind, then id), not the request's: given the other way round, refused alike.
    again = await try_order(shop, stocked_sku.id, coupon_codes=["NOTHINGLEFT", "NEARLYALL"])
    assert again.json().get("reason") == "no_discount"
