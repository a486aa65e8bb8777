"""Console order pages over the real services: search, the timeline, 补单 of a lost payment notification,
resending the delivery notice, manual delivery, refunds (policy and idempotency), and the audit log of each."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from console.support import logged_in, post_form
from quanyi.catalog.models import Sku
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order
from quanyi.payments.models import Payment
from quanyi.refunds.models import Refund
from quanyi.staff.models import StaffAuditEntry
from refund_helpers import SecondSandbox, cashier_pay, lose_notifications, open_cashier, press_pay


async def _audit(shop) -> list[tuple[str, str, str]]:
    async with shop.ctx.db.read_session() as session:
        rows = (await session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id))).all()
    return [(r.actor, r.action, r.object_id) for r in rows if r.action not in ("login", "logout")]


async def test_a_lost_payment_notification_is_recovered_by_补单_through_the_gateway(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id, contact="Buyer@Example.com")
    unpaid = await shop.create_order(stocked_sku.id, contact="13800138000")
    await open_cashier(shop, unpaid)  # a payment started but never paid
    lose_notifications(shop)
    await cashier_pay(shop, order)
    assert (await shop.get_order(order))["status"] == "pending_payment"  # the gateway has the money, we don't

    client = await logged_in(shop, "sam", roles=("support",))
    found = await client.get("/console/orders", params={"contact": "buyer@example.com"})
    assert found.status_code == 200 and order["order_no"] in found.text and unpaid["order_no"] not in found.text
    page = await client.get(f"/console/orders/{order['order_no']}")
    assert 'data-testid="recheck"' in page.text and "buyer@example.com" in page.text  # support sees contacts

    done = await post_form(client, f"/console/orders/{order['order_no']}/recheck-payment",
                           page_url=f"/console/orders/{order['order_no']}")
    assert done.status_code == 303 and "m=recheck_confirmed" in done.headers["location"]
    assert (await shop.get_order(order))["status"] == "delivered"
    detail = await client.get(done.headers["location"])
    assert "补单成功" in detail.text and 'data-testid="recheck"' not in detail.text
    for kind in ("payment", "status", "delivery"):
        assert f'data-kind="{kind}"' in detail.text

    not_paid = await post_form(client, f"/console/orders/{unpaid['order_no']}/recheck-payment",
                               page_url=f"/console/orders/{unpaid['order_no']}")
    assert "m=recheck_not_paid" in not_paid.headers["location"]
    assert (await shop.get_order(unpaid))["status"] == "pending_payment"
    assert await _audit(shop) == [("sam", "payment_rechecked", order["order_no"]),
                                  ("sam", "payment_rechecked", unpaid["order_no"])]


async def test_refund_from_the_console_follows_the_refund_policy_once_per_form(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    await cashier_pay(shop, order)
    client = await logged_in(shop, "fay", roles=("finance",))
    url = f"/console/orders/{order['order_no']}"
    page = await client.get(url)
    assert "b***@example.com" in page.text and "buyer@example.com" not in page.text  # finance sees masked contacts
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)

    too_many = await post_form(client, f"{url}/refund", {"quantity": "3", "reason": "asked", "request_key": key},
                               page_url=url)
    assert too_many.status_code == 409
    assert "买家手里只有这笔订单的 2 个卡密，不是 3 个" in too_many.text
    assert "card keys of this order" not in too_many.text  # the service's English stays out of the page
    missing_reason = await post_form(client, f"{url}/refund", {"quantity": "1", "reason": " "}, page_url=url)
    assert missing_reason.status_code == 422

    for _ in range(2):  # the same form sent twice (a double click): one refund
        done = await post_form(client, f"{url}/refund", {"quantity": "1", "reason": "buyer asked",
                                                          "request_key": key}, page_url=url)
        assert done.status_code == 303 and "m=refunded" in done.headers["location"], done.text
    listed = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert [(r["quantity"], r["status"], r["requested_by"]) for r in listed] == [(1, "succeeded", "fay")]
    assert (await shop.get_order(order))["refunded_cents"] == stocked_sku.price_cents
    assert [a for a in await _audit(shop) if a[1] == "refund_requested"] == [
        ("fay", "refund_requested", order["order_no"])]


async def test_resend_of_the_delivery_notice_queues_one_message_per_form(shop, app, paid_order):
    shop.ctx.settings.smtp_host, shop.ctx.settings.smtp_from = "smtp.shop.test", "shop@shop.test"
    notifications_service.install_policy(shop.ctx.db, shop.ctx.settings)
    client = await logged_in(shop, "sue", roles=("support",))
    url = f"/console/orders/{paid_order['order_no']}"
    key = re.search(r'name="request_key" value="([^"]+)"', (await client.get(url)).text).group(1)
    for _ in range(2):
        sent = await post_form(client, f"{url}/resend-notice", {"request_key": key}, page_url=url)
        assert sent.status_code == 303 and "m=resent" in sent.headers["location"]
    async with shop.ctx.db.read_session() as session:
        keys = (await session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.kind == "order_delivered")
                                      .order_by(OutboxMessage.id))).all()
    assert len(keys) == 1 and keys[0].endswith(f":resend:{key}")


async def test_manual_delivery_hands_over_exactly_the_typed_codes(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id, quantity=2)
    # A 手动发货 SKU (the catalog's product type arrives with the console2 stream): this order becomes one.
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Sku).where(Sku.id == stocked_sku.id).values(delivery_type="manual"))
        await session.execute(update(Order).where(Order.order_no == order["order_no"])
                              .values(delivery_type="manual"))
    await shop.pay(order)
    assert (await shop.get_order(order))["status"] == "paid"  # waits for a person
    available_before = await shop.available(stocked_sku.id)

    client = await logged_in(shop, "otto", roles=("operator",))
    url = f"/console/orders/{order['order_no']}"
    assert 'data-testid="manual-form"' in (await client.get(url)).text
    too_many = await post_form(client, f"{url}/deliver", {"codes": "A-1\nA-2\nA-3"}, page_url=url)
    assert too_many.status_code == 422 and (await shop.get_order(order))["status"] == "paid"
    assert "这笔订单只有 2 件：最多填写 2 个卡密" in too_many.text and "give at most" not in too_many.text
    done = await post_form(client, f"{url}/deliver", {"codes": "ACCT-7781 pass-1\nACCT-7782 pass-2",
                                                       "note": "sent by WeChat too"}, page_url=url)
    assert done.status_code == 303 and "m=delivered" in done.headers["location"]
    view = await shop.get_order(order)
    assert view["status"] == "delivered" and view["delivered_keys"] == 2
    assert sorted((k["card_no"], k["code"]) for k in await shop.reveal(order)) == [
        ("ACCT-7781", "pass-1"), ("ACCT-7782", "pass-2")]
    assert await shop.available(stocked_sku.id) == available_before + 2  # the keys it held went back on sale
    again = await post_form(client, f"{url}/deliver", {"codes": "X"}, page_url=url)
    assert again.status_code == 422  # delivered once
    assert f"订单 {order['order_no']} 当前为「已发货」：只有已支付的人工发货订单可以人工发货" in again.text


async def test_a_duplicate_payment_is_refunded_on_its_own_from_the_console(shop, app, stocked_sku):
    shop.ctx.gateways.register(SecondSandbox(secret=shop.sandbox_secret, http=shop.ctx.http,
                                             api_base_url="http://127.0.0.1:8000"))
    order = await shop.create_order(stocked_sku.id)
    _, first = await open_cashier(shop, order, "sandbox")
    _, second = await open_cashier(shop, order, "sandbox2")
    await press_pay(shop, first)
    await press_pay(shop, second)  # the buyer paid twice
    duplicate = await shop.scalar(select(Payment).where(Payment.status == "duplicate"))
    client = await logged_in(shop, "fin", roles=("finance",))
    url = f"/console/orders/{order['order_no']}"
    assert 'data-testid="refund-payment"' in (await client.get(url)).text
    done = await post_form(client, f"{url}/refund", {"payment_no": duplicate.payment_no, "reason": "paid twice"},
                           page_url=url)
    assert done.status_code == 303 and "status=succeeded" in done.headers["location"]
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 0, 1)
    refunds = await shop.scalar(select(Refund.payment_id))
    assert refunds == duplicate.id


async def test_the_order_file_says_why_the_order_moved_in_the_pages_language(shop, app, paid_order):
    client = await logged_in(shop, "tia", roles=("support",))
    page = await client.get(f"/console/orders/{paid_order['order_no']}")
    assert page.status_code == 200
    assert "已交付" in page.text and "支付已确认" in page.text  # the status reason and the timeline
    assert "goods handed over" not in page.text and "payment confirmed" not in page.text
    english = await client.get(f"/console/orders/{paid_order['order_no']}?lang=en")
    assert "goods handed over" in english.text
