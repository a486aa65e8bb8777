"""Starting a payment: the gateway's network call happens outside any transaction; QR checkouts get a scan
page that moves on once paid; an unreachable gateway is a clear 503 / notice and leaves a reusable payment."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from helpers import with_csrf
from quanyi.catalog.models import Product
from quanyi.payments.gateway import Checkout, CheckoutRequest, GatewayUnavailable
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.gateway import SandboxGateway

HTML = {"Accept": "text/html"}


class QrSandbox(SandboxGateway):
    """The sandbox protocol, but its checkout is a code to scan (like Alipay precreate or WeChat Native)."""

    name = "qrpay"
    title = "扫码付"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        hosted = await super().create_checkout(request)
        return Checkout(qr_code="https://qr.example/" + request.payment_no + "?" + hosted.cashier_url[-16:])


class SlowGateway(SandboxGateway):
    """A gateway whose checkout call takes as long as the test wants, or fails."""

    name = "slow"
    title = "Slow"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = False

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        self.entered.set()
        await self.release.wait()
        if self.fail:
            raise GatewayUnavailable("slow: connection reset")
        return await super().create_checkout(request)


async def _web_order(shop, client, sku) -> str:  # type: ignore[no-untyped-def]
    slug = await shop.scalar(select(Product.slug).where(Product.id == sku.product_id))
    response = await client.post(f"/p/{slug}/checkout", headers=HTML,
                                 data=await with_csrf(client, {"sku_id": str(sku.id), "quantity": "1",
                                                               "contact": "a@example.com"}))
    assert response.status_code == 303, response.text
    return response.headers["location"].removeprefix("/orders/")


async def test_qr_checkout_shows_a_code_to_scan_and_moves_on_once_paid(shop, client, stocked_sku):
    shop.ctx.gateways.register(QrSandbox(secret=shop.sandbox_secret))
    order_no = await _web_order(shop, client, stocked_sku)
    page = await client.get(f"/orders/{order_no}", headers=HTML)
    assert 'value="qrpay"' in page.text and "扫码付" in page.text

    pay = await client.post(f"/orders/{order_no}/pay", data=await with_csrf(client, {"gateway": "qrpay"}), headers=HTML)
    assert pay.status_code == 303 and pay.headers["location"] == f"/orders/{order_no}/scan?gateway=qrpay"
    scan = await client.get(pay.headers["location"], headers=HTML)
    assert scan.status_code == 200
    assert "<svg" in scan.text and 'data-testid="qr"' in scan.text and "¥19.80" in scan.text
    assert 'http-equiv="refresh"' in scan.text
    assert not re.search(r"<[^>]*\sstyle=", scan.text)  # the CSP forbids inline styles
    payment = await shop.scalar(select(Payment).where(Payment.gateway == "qrpay"))
    assert payment.checkout_qr_code.startswith("https://qr.example/" + payment.payment_no)

    # Paying a second time reuses the same payment (one out_trade_no per order and gateway).
    again = await client.post(f"/orders/{order_no}/pay", data=await with_csrf(client, {"gateway": "qrpay"}),
                              headers=HTML)
    assert again.status_code == 303
    assert await shop.count(Payment) == 1

    params = shop.notification({"payment_no": payment.payment_no, "amount_cents": 1980, "currency": "CNY"})
    acked = await client.post("/payments/qrpay/notify", data=params)
    assert acked.text == "success"
    after = await client.get(f"/orders/{order_no}/scan?gateway=qrpay", headers=HTML)
    assert after.status_code == 303 and after.headers["location"] == f"/orders/{order_no}"


async def test_the_api_returns_the_qr_code(shop, client, order):
    shop.ctx.gateways.register(QrSandbox(secret=shop.sandbox_secret))
    response = await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                                 json={"gateway": "qrpay", "mode": "qr"})
    assert response.status_code == 201
    body = response.json()
    assert body["cashier_url"] is None and body["qr_code"].startswith("https://qr.example/" + body["payment_no"])
    bad = await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                            json={"gateway": "qrpay", "mode": "carrier-pigeon"})
    assert bad.status_code == 422


async def test_the_gateway_call_holds_no_lock_and_a_failure_is_a_clear_503(shop, client, stocked_sku, order):
    slow = SlowGateway(secret=shop.sandbox_secret)
    shop.ctx.gateways.register(slow)
    pending = asyncio.create_task(client.post(f"/api/orders/{order['order_no']}/payments",
                                              headers=shop.auth(order), json={"gateway": "slow"}))
    await asyncio.wait_for(slow.entered.wait(), 60)
    # While the gateway is thinking, the shop keeps selling (no order lock, no SQLite writer lock held).
    other = await asyncio.wait_for(shop.create_order(stocked_sku.id), 60)
    assert other["status"] == "pending_payment"
    # ... and the same order can even be cancelled meanwhile; the late checkout then still answers.
    slow.fail = True
    slow.release.set()
    response = await pending
    assert response.status_code == 503
    assert response.json()["code"] == "gateway_unavailable" and "connection reset" in response.json()["detail"]
    payment = await shop.scalar(select(Payment).where(Payment.gateway == "slow"))
    assert payment.status == "created"  # kept, and reused by the next attempt

    slow.fail = False
    retry = await client.post(f"/api/orders/{order['order_no']}/payments", headers=shop.auth(order),
                              json={"gateway": "slow"})
    assert retry.status_code == 201 and retry.json()["payment_no"] == payment.payment_no


async def test_web_checkout_at_an_unreachable_gateway_shows_a_notice(shop, client, stocked_sku):
    slow = SlowGateway(secret=shop.sandbox_secret)
    slow.fail = True
    slow.release.set()
    shop.ctx.gateways.register(slow)
    order_no = await _web_order(shop, client, stocked_sku)
    pay = await client.post(f"/orders/{order_no}/pay", data=await with_csrf(client, {"gateway": "slow"}), headers=HTML)
    assert pay.status_code == 303 and pay.headers["location"] == f"/orders/{order_no}?error=gateway_unavailable"
    page = await client.get(pay.headers["location"], headers=HTML)
    assert "支付渠道暂时无法连接" in page.text
    unknown = await client.post(f"/orders/{order_no}/pay", data=await with_csrf(client, {"gateway": "nope"}),
                                headers=HTML)
    assert unknown.headers["location"] == f"/orders/{order_no}?error=no_gateway"
