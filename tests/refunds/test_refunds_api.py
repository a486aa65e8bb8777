"""Refund flows through the real admin API and the sandbox gateway over HTTP: full and partial refunds,
a partially delivered order (k of n keys taken back), revealed keys, over-refunds, duplicates, audit."""

from __future__ import annotations

from sqlalchemy import func, select

from helpers import with_csrf
from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.access import COOKIE_NAME, cookie_with_token
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.models import SandboxRefund, SandboxTrade
from quanyi.refunds.models import Refund, RefundEvent, RefundKey
from refund_helpers import SecondSandbox, ask_refund, delivered_order, open_cashier, press_pay, refund_pending_order


async def _sandbox_refunded(shop) -> int:
    return int(await shop.scalar(select(func.coalesce(func.sum(SandboxRefund.amount_cents), 0))))


async def test_full_refund_of_a_refund_pending_order(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    response = await ask_refund(shop, order, reason="out of stock")
    assert response.status_code == 201, response.text
    refund = response.json()
    assert refund["status"] == "succeeded" and refund["amount_cents"] == 1980 and refund["quantity"] == 0
    assert refund["gateway_refund_no"].startswith("SR") and refund["attempts"] == 1
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in refund["events"]] == [
        (None, "requested", "admin"), ("requested", "succeeded", "system")]
    assert refund["events"][0]["reason"] == "out of stock"

    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["refunded_display"]) == ("refunded", 1980, "¥19.80")
    assert await _sandbox_refunded(shop) == 1980
    again = await ask_refund(shop, order)
    assert again.status_code == 409 and again.json()["code"] == "refund_exceeds_payment"
    assert await shop.count(Refund) == 1

    shop.client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    page = await shop.client.get(f"/orders/{order['order_no']}")
    assert 'data-status="refunded"' in page.text and "已退款" in page.text and "¥19.80" in page.text


async def test_partial_refunds_by_amount_of_an_undelivered_order(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    first = await ask_refund(shop, order, amount_cents=500)
    assert first.status_code == 201 and first.json()["status"] == "succeeded"
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"]) == ("refund_pending", 500)

    too_much = await ask_refund(shop, order, amount_cents=1481)
    assert too_much.status_code == 409 and too_much.json()["code"] == "refund_exceeds_payment"
    assert too_much.json()["refundable_cents"] == 1480
    by_keys = await ask_refund(shop, order, quantity=1)
    assert by_keys.status_code == 422 and by_keys.json()["code"] == "invalid_refund"

    shop.client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    page = await shop.client.get(f"/orders/{order['order_no']}?lang=en")
    assert 'data-testid="partially-refunded"' in page.text and "¥5.00" in page.text

    rest = await ask_refund(shop, order)
    assert rest.status_code == 201 and rest.json()["amount_cents"] == 1480
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await _sandbox_refunded(shop) == 1980
    listed = await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)
    assert [r["amount_cents"] for r in listed.json()] == [1480, 500]


async def test_partial_refund_of_a_delivered_order_takes_back_k_of_n_keys(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=3)
    response = await ask_refund(shop, order, quantity=2, reason="two keys not needed")
    assert response.status_code == 201, response.text
    assert (response.json()["status"], response.json()["amount_cents"], response.json()["quantity"]) == (
        "succeeded", 3960, 2)

    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 3960, 1)
    async with shop.ctx.db.read_session() as session:
        withdrawn = set((await session.scalars(select(RefundKey.card_key_id))).all())
        order_id = await session.scalar(select(Payment.order_id))
        rows = await session.execute(select(CardKey.id, CardKey.status).where(CardKey.order_id == order_id))
        statuses = {key_id: status for key_id, status in rows.all()}
    assert len(withdrawn) == 2 and {statuses[i] for i in withdrawn} == {CardKeyStatus.REFUNDED}
    assert sorted(statuses.values()) == ["refunded", "refunded", "sold"]
    keys = await shop.reveal(order)  # the buyer keeps (and sees) only the key not refunded
    assert len(keys) == 1
    shop.client.cookies.set(COOKIE_NAME, cookie_with_token(None, order["order_no"], order["access_token"]))
    page = await shop.client.post(f"/orders/{order['order_no']}/reveal", data=await with_csrf(shop.client))
    assert page.status_code == 200 and page.text.count('data-testid="card-key"') == 1
    assert keys[0]["code"] in page.text and "¥39.60" in page.text

    # The remaining key was revealed just now: not refundable by default.
    refused = await ask_refund(shop, order, quantity=1)
    assert refused.status_code == 409 and refused.json()["code"] == "refund_not_allowed"
    assert await shop.count(Refund) == 1 and await shop.count(CardKey, CardKey.status == "sold") == 1
    assert await _sandbox_refunded(shop) == 3960


async def test_the_last_keys_refunded_make_the_order_refunded_and_unrevealable(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    await ask_refund(shop, order, quantity=1)
    rest = await ask_refund(shop, order)  # no quantity: every key the buyer still holds
    assert rest.status_code == 201 and rest.json()["quantity"] == 1
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("refunded", 3960, 0)
    reveal = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert reveal.status_code == 409 and reveal.json()["code"] == "order_not_delivered"
    # Withdrawn keys never go back on sale.
    assert await shop.available(stocked_sku.id) == 8


async def test_revealed_keys_are_refunded_only_when_the_setting_allows(shop, app, stocked_sku):
    order = await delivered_order(shop, stocked_sku, quantity=2)
    await shop.reveal(order)
    refused = await ask_refund(shop, order, quantity=1)
    assert refused.status_code == 409 and refused.json()["code"] == "refund_not_allowed"
    assert "never revealed" in refused.json()["detail"]
    assert await shop.count(Refund) == 0 and await shop.count(CardKey, CardKey.status == "refunded") == 0

    shop.ctx.settings.refund_revealed_keys = True
    allowed = await ask_refund(shop, order, quantity=2)
    assert allowed.status_code == 201 and allowed.json()["status"] == "succeeded"
    assert (await shop.get_order(order))["status"] == "refunded"


async def test_a_repeated_idempotency_key_refunds_once(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    first = await ask_refund(shop, order, amount_cents=700, key="req-0001-abc")
    second = await ask_refund(shop, order, amount_cents=700, key="req-0001-abc")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["refund_no"] == second.json()["refund_no"]
    changed = await ask_refund(shop, order, amount_cents=800, key="req-0001-abc")
    assert changed.status_code == 409 and changed.json()["code"] == "refund_request_conflict"
    assert await shop.count(Refund) == 1 and await shop.count(SandboxRefund) == 1
    assert (await shop.get_order(order))["refunded_cents"] == 700


async def test_a_duplicate_payment_is_refunded_as_its_own_refund(shop, app, stocked_sku):
    shop.ctx.gateways.register(SecondSandbox(secret=shop.sandbox_secret, http=shop.ctx.http,
                                             api_base_url="http://127.0.0.1:8000"))
    order = await shop.create_order(stocked_sku.id)
    # Two cashiers opened while unpaid, both paid: the second money is a duplicate.
    _, first = await open_cashier(shop, order, "sandbox")
    _, second = await open_cashier(shop, order, "sandbox2")
    await press_pay(shop, first)
    await press_pay(shop, second)
    duplicate = await shop.scalar(select(Payment).where(Payment.status == "duplicate"))
    assert duplicate is not None and duplicate.gateway == "sandbox2"

    refund = await ask_refund(shop, order, payment_no=duplicate.payment_no, reason="paid twice")
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded"
    assert (refund.json()["gateway"], refund.json()["amount_cents"]) == ("sandbox2", 1980)
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 0, 1)
    trade = await shop.scalar(select(SandboxTrade).where(SandboxTrade.payment_no == duplicate.payment_no))
    assert await shop.scalar(select(SandboxRefund.amount_cents).where(SandboxRefund.trade_id == trade.id)) == 1980
    again = await ask_refund(shop, order, payment_no=duplicate.payment_no)
    assert again.status_code == 409


async def test_bad_refund_requests_get_clear_errors_and_change_nothing(shop, app, stocked_sku, order):
    cases = [
        ({"amount_cents": 100, "quantity": 1}, 422, "validation_failed"),
        ({"amount_cents": 0}, 422, "validation_failed"),
        ({"amount_cents": 1.5}, 422, "validation_failed"),
        ({"reason": ""}, 422, "validation_failed"),
        ({"amount_cents": 100, "extra": 1}, 422, "validation_failed"),
        ({"payment_no": "py-bad!"}, 422, "validation_failed"),
        ({"amount_cents": 100}, 409, "refund_not_allowed"),  # the order was never paid
    ]
    for body, status, code in cases:
        response = await ask_refund(shop, order, **body)
        assert (response.status_code, response.json()["code"]) == (status, code), (body, response.text)
    unauthorized = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds",
                                          json={"reason": "x", "amount_cents": 1})
    assert unauthorized.status_code == 401
    missing = await ask_refund(shop, {"order_no": "Q2611259999999999"}, amount_cents=1)
    assert missing.status_code == 404
    bad_status = await shop.client.get("/api/admin/refunds?status=nope", headers=shop.admin)
    assert bad_status.status_code == 422
    assert await shop.count(Refund) == 0 and await shop.count(RefundEvent) == 0


async def test_admin_lists_refunds_by_status(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    await ask_refund(shop, order, amount_cents=100)
    listed = await shop.client.get("/api/admin/refunds?status=succeeded", headers=shop.admin)
    assert listed.status_code == 200 and [r["order_no"] for r in listed.json()] == [order["order_no"]]
    none = await shop.client.get("/api/admin/refunds?status=failed", headers=shop.admin)
    assert none.json() == []
