"""Two shops as real processes: shop B has shop A as a supplier (dialect `quanyi`, A's open API base URL, the
reseller credentials A issued) and sells A's goods to its own buyers. B's buyer pays in B's sandbox, B buys from
A through the open API, A debits B's prepaid balance, B delivers: card keys, and a direct recharge that A has
credited by its own upstream supplier and reports to B by a signed callback; a recharge that fails upstream goes
back to B's balance at A by itself. Afterwards both ledgers balance and B's view of its balance at A is A's.

One test, one pair of processes (and A's upstream simulator), whose steps run in order: as separate tests of one
module-scoped pair, pytest-xdist split them across workers, each worker started its own pair (about 8 s, alone:
the tests are `slow`) and the last step saw only the orders of the steps that ran on its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from faults.support import QuanyiProcess
from helpers import Shop, make_settings, signed_notification
from quanyi.app import create_app
from quanyi.catalog.models import Sku
from quanyi.config import Settings
from quanyi.context import build_context
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import CustomerAccount
from quanyi.notifications.models import Channel, MessageStatus, OutboxMessage
from quanyi.openapi_client import OpenApiClient
from quanyi.orders.models import Order
from quanyi.suppliers.adapter import ProductKind
from quanyi.suppliers.models import Supplier
from quanyi.testpeers.runner import free_port
from quanyi.testpeers.suppliers import RECHARGE_PRODUCT, SupplierSimulator, start_supplier_simulator
from resellers.support import add_reseller
from suppliers.routing.support import add_supplier

pytestmark = pytest.mark.slow

FAILING_ACCOUNT = "13900000000"
WAIT = 120.0


@dataclass
class Shops:
    a: QuanyiProcess
    b: QuanyiProcess
    settings_a: Settings
    settings_b: Settings
    sim: SupplierSimulator
    app_id: str
    secret: str


def _settings(path: Path, port: int) -> Settings:
    return make_settings(f"sqlite:///{path}", public_base_url=f"http://127.0.0.1:{port}",
                         sandbox_api_url=f"http://127.0.0.1:{port}", run_background_tasks=True,
                         fulfilment_poll_seconds=0.2, notification_poll_seconds=0.2, notification_backoff_seconds=1,
                         refund_retry_interval_seconds=0.5, fulfilment_query_seconds=0.5,
                         fulfilment_not_found_grace_seconds=0.0)


class _Local:
    """A shop's database and admin API in this process (setup and inspection; the process serves buyers)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __aenter__(self) -> Shop:
        self.ctx = build_context(self.settings)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(ctx=self.ctx)),
                                      base_url="http://test", timeout=60)
        return Shop(ctx=self.ctx, client=self.http)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.ctx.close()


async def _set_up_a(settings: Settings, sim: SupplierSimulator) -> tuple[str, str]:
    async with _Local(settings) as a:
        gift = await a.make_sku(code="GIFT-A", price_cents=1000)
        await a.stock(gift, 5)
        mobile = await a.make_sku(code="MOBILE-A", price_cents=5000, delivery_type="direct_recharge")
        await add_supplier(a, sim, code="UPSTREAM", sku=mobile, product_code=RECHARGE_PRODUCT,
                           kind=ProductKind.DIRECT_RECHARGE, balance_cents=0)
        topped = await a.client.post("/api/admin/ledger/suppliers/UPSTREAM/top-ups", headers=a.admin,
                                     json={"amount_cents": 100_000, "note": "prepaid upstream"})
        assert topped.status_code == 201, topped.text
        reseller = await add_reseller(a, "SHOPB", top_up_cents=20_000, rate_limit_per_minute=0)
        for sku, price in (("GIFT-A", 900), ("MOBILE-A", 4950)):
            response = await a.client.put(f"/api/admin/resellers/SHOPB/prices/{sku}", headers=a.admin,
                                          json={"price_cents": price})
            assert response.status_code == 200, response.text
        return reseller.app_id, reseller.secret


async def _set_up_b(settings: Settings, a_url: str, app_id: str, secret: str) -> None:
    async with _Local(settings) as b:
        gift = await b.make_sku(code="GIFT-B", price_cents=1500)  # no keys of its own: A fills it
        mobile = await b.make_sku(code="MOBILE-B", price_cents=5500, delivery_type="direct_recharge")
        response = await b.client.post("/api/admin/suppliers", headers=b.admin, json={
            "code": "SHOPA", "name": "Shop A", "dialect": "quanyi", "base_url": f"{a_url}/api/open",
            "credentials": {"app_id": app_id, "secret": secret}, "timeout_ms": 30_000})
        assert response.status_code == 201, response.text
        synced = await b.client.post("/api/admin/suppliers/SHOPA/sync?mode=catalog", headers=b.admin)
        assert synced.status_code == 200, synced.text
        for sku, product in ((gift, "GIFT-A"), (mobile, "MOBILE-A")):
            mapped = await b.client.post(f"/api/admin/skus/{sku.id}/supplier-mappings", headers=b.admin,
                                         json={"supplier_code": "SHOPA", "product_code": product})
            assert mapped.status_code == 201, mapped.text
        # What B paid into its balance at A, recorded on B's side too.
        topped = await b.client.post("/api/admin/ledger/suppliers/SHOPA/top-ups", headers=b.admin,
                                     json={"amount_cents": 20_000, "note": "prepaid at shop A"})
        assert topped.status_code == 201, topped.text


@pytest.fixture
def shops(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shops]:
    cwd = tmp_path_factory.mktemp("two-shops")
    port_a, port_b = free_port(), free_port()
    shutil.copyfile(sqlite_template, cwd / "a.db")
    shutil.copyfile(sqlite_template, cwd / "b.db")
    settings_a, settings_b = _settings(cwd / "a.db", port_a), _settings(cwd / "b.db", port_b)
    sim = start_supplier_simulator("quanyi", seed=41)
    sim.fail_accounts(FAILING_ACCOUNT)
    processes: list[QuanyiProcess] = []
    try:
        app_id, secret = asyncio.run(_set_up_a(settings_a, sim))
        a = QuanyiProcess.server(settings_a, cwd, port=port_a, name="shop-a")
        processes.append(a)
        asyncio.run(_set_up_b(settings_b, a.url, app_id, secret))
        b = QuanyiProcess.server(settings_b, cwd, port=port_b, name="shop-b")
        processes.append(b)
        yield Shops(a, b, settings_a, settings_b, sim, app_id, secret)
    finally:
        for process in processes:
            process.stop()
        sim.stop()


async def _buy_at_b(shops: Shops, sku_code: str, **extra: Any) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """B's buyer: checkout at B and pay in B's sandbox (the signed notification its cashier would send)."""
    async with _Local(shops.settings_b) as local:
        sku = await local.scalar(select(Sku.id).where(Sku.code == sku_code))
    client = httpx.AsyncClient(base_url=shops.b.url, timeout=60)
    buyer = Shop(ctx=None, client=client)  # type: ignore[arg-type]
    order = await buyer.create_order(sku, **extra)
    payment = await buyer.start_payment(order)
    params = signed_notification(shops.settings_b.sandbox_secret.get_secret_value(),
                                 payment_no=payment["payment_no"], amount_cents=payment["amount_cents"])
    response = await client.post("/payments/sandbox/notify", data=params)
    assert response.status_code == 200 and response.text == "success", response.text
    return client, order


async def _until(client: httpx.AsyncClient, order: dict[str, Any], statuses: set[str]) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        response = await client.get(f"/api/orders/{order['order_no']}",
                                    headers={"X-Order-Token": order["access_token"]})
        current = response.json()
        if current["status"] in statuses:
            return current  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, f"order stuck: {current}"
        await asyncio.sleep(0.2)


def _reseller_client(shops: Shops) -> OpenApiClient:
    return OpenApiClient(f"{shops.a.url}/api/open", app_id=shops.app_id, secret=shops.secret)


async def _balance_at_a(shops: Shops) -> int:
    async with _Local(shops.settings_a) as a:
        return int(await a.scalar(select(CustomerAccount.balance_cents).where(
            CustomerAccount.code == "reseller:SHOPB")))


async def _b_sells_a_card_keys_bought_from_a_through_the_open_api(shops: Shops) -> None:
    client, order = await _buy_at_b(shops, "GIFT-B", quantity=2)
    async with contextlib.aclosing(client):
        delivered = await _until(client, order, {"delivered", "refund_pending"})
        assert delivered["status"] == "delivered", delivered
        revealed = await client.post(f"/api/orders/{order['order_no']}/reveal",
                                     headers={"X-Order-Token": order["access_token"]})
        assert revealed.status_code == 200, revealed.text
    codes_at_b = sorted(k["code"] for k in revealed.json()["keys"])
    # The same codes A handed to B for B's purchase attempt (B's order number at A is its attempt key).
    at_a = await asyncio.to_thread(_reseller_client(shops).order, f"{order['order_no']}-01")
    assert at_a["state"] == "succeeded" and at_a["unit_cost_cents"] == 900
    assert sorted(c["code"] for c in at_a["codes"]) == codes_at_b and len(codes_at_b) == 2
    assert await _balance_at_a(shops) == 20_000 - 1800


async def _b_sells_a_direct_recharge_that_a_confirms_by_callback(shops: Shops) -> None:
    before = await _balance_at_a(shops)
    client, order = await _buy_at_b(shops, "MOBILE-B", recharge_account="13800138000")
    async with contextlib.aclosing(client):
        done = await _until(client, order, {"delivered", "refund_pending"})
    assert done["status"] == "delivered", done
    assert await _balance_at_a(shops) == before - 4950
    # A told B by a signed recharge.updated callback, which B accepted (answered 200).
    async with _Local(shops.settings_a) as a:
        rows = await a.scalar(select(OutboxMessage.provider_message_id).where(
            OutboxMessage.channel == Channel.WEBHOOK.value, OutboxMessage.status == MessageStatus.SENT.value,
            OutboxMessage.kind == "order_delivered").order_by(OutboxMessage.id.desc()).limit(1))
    assert rows == "HTTP 200"
    assert "Traceback" not in shops.a.log() and "Traceback" not in shops.b.log()


async def _a_failed_recharge_goes_back_to_b_balance_and_b_order_waits_for_refund(shops: Shops) -> None:
    before = await _balance_at_a(shops)
    client, order = await _buy_at_b(shops, "MOBILE-B", recharge_account=FAILING_ACCOUNT)
    async with contextlib.aclosing(client):
        done = await _until(client, order, {"delivered", "refund_pending"})
    assert done["status"] == "refund_pending", done
    deadline = asyncio.get_running_loop().time() + WAIT
    while await _balance_at_a(shops) != before:  # A refunds its failed order to B's balance by itself
        assert asyncio.get_running_loop().time() < deadline, "A did not credit the failed recharge back"
        await asyncio.sleep(0.2)


async def _both_ledgers_balance_and_b_knows_its_balance_at_a(shops: Shops) -> None:
    for settings in (shops.settings_a, shops.settings_b):
        async with _Local(settings) as local:
            async with local.ctx.db.read_session() as session:
                trial = await ledger_service.trial_balance(session=session)
                drift = await ledger_service.prepaid_drift(session=session)
            assert trial.balanced and drift == {}, (trial.totals, drift)
    async with _Local(shops.settings_b) as b:
        at_b = await b.scalar(select(Supplier.balance_cents).where(Supplier.code == "SHOPA"))
    # What B spent at A is what A kept of B's paid orders: the card keys and the recharge (the failed one refunded).
    async with _Local(shops.settings_a) as a:
        kept = await a.scalar(select(func.coalesce(func.sum(Order.total_cents - Order.refunded_cents), 0))
                              .join(CustomerAccount, CustomerAccount.id == Order.customer_account_id)
                              .where(CustomerAccount.code == "reseller:SHOPB", Order.paid_at.is_not(None)))
    assert kept == 1800 + 4950
    assert at_b == await _balance_at_a(shops) == 20_000 - kept


async def test_b_resells_a_goods_and_both_ledgers_balance(shops: Shops):
    await _b_sells_a_card_keys_bought_from_a_through_the_open_api(shops)
    await _b_sells_a_direct_recharge_that_a_confirms_by_callback(shops)
    await _a_failed_recharge_goes_back_to_b_balance_and_b_order_waits_for_refund(shops)
    await _both_ledgers_balance_and_b_knows_its_balance_at_a(shops)
