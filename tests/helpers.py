"""Test helpers: set up catalog and stock through the real services, buy through the real HTTP API,
and sign sandbox notifications the way the sandbox gateway does."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Sku
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.config import Settings
from quanyi.context import ShopContext
from quanyi.inventory import service as inventory_service
from quanyi.payments.sandbox.signing import sign_params

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings with strong throwaway secrets, ignoring any local var/quanyi.env."""
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": "test-admin-token-" + secrets.token_hex(8),
        "app_secret": secrets.token_urlsafe(32),
        "card_keys": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "card_key_active_id": "k1",
        "card_key_hash_key": secrets.token_urlsafe(32),
        "sandbox_secret": secrets.token_urlsafe(32),
        "sandbox_enabled": True,
        "run_background_tasks": False,
        "public_base_url": "http://test",  # where the test shop lives (the loopback transport answers it)
        "redis_url": None,
        # Tests place many orders from one address; risk tests turn the checkout flood limits back on.
        "checkout_limit_per_ip": 0,
        "checkout_limit_per_device": 0,
        # Nor bound the stock one client holds in unpaid orders (risk.holdings); tests/risk/test_held_stock.py does.
        "held_units_limit_per_ip": 0,
        "held_units_limit_per_device": 0,
        "held_units_limit_per_contact": 0,
        "held_units_limit_per_payer": 0,
        # Tests restock through the service layer and buy at once; tests/orders/test_sold_out_memo.py turns it on.
        "sold_out_memo_seconds": 0,
        # Streamed imports spool here (each spool has a random name; tests of the spool use their own dir).
        "import_spool_dir": str(Path(tempfile.gettempdir()) / "quanyi-test-import-spool"),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def page_csrf_token(html: str) -> str:
    """The CSRF token a page's forms carry (web/csrf.py)."""
    found = _CSRF_INPUT.search(html)
    assert found is not None, "the page has no csrf_token field"
    return found.group(1)


async def with_csrf(client: httpx.AsyncClient, data: dict[str, Any] | None = None,
                    page: str = "/lookup") -> dict[str, Any]:
    """`data` plus the CSRF token of this client, as a browser's form would carry it (the page visit sets the
    client's qy_csrf cookie in the client's jar)."""
    response = await client.get(page, headers={"Accept": "text/html"})
    return {**(data or {}), "csrf_token": page_csrf_token(response.text)}


async def open_order_link(client: httpx.AsyncClient, link: str) -> httpx.Response:
    """What a browser does with an e-mailed order link (`.../orders/NO/open#t=TOKEN`): load the page (the fragment
    stays in the browser), and app.js posts the fragment's token with the page's form."""
    url = urlparse(link)
    page = await client.get(url.path, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    token = url.fragment.removeprefix("t=")
    return await client.post(url.path, data={"t": token, "csrf_token": page_csrf_token(page.text)})


def random_code() -> str:
    return "-".join("".join(secrets.choice(_ALNUM) for _ in range(4)) for _ in range(4))


def signed_notification(
    secret: str, *, payment_no: str, amount_cents: int, currency: str = "CNY", trade_no: str | None = None,
    timestamp: int | None = None, status: str = "SUCCESS", **overrides: str,
) -> dict[str, str]:
    params = {
        "out_trade_no": payment_no,
        "trade_no": trade_no or "SBTEST" + secrets.token_hex(8).upper(),
        "total_amount_cents": str(amount_cents),
        "currency": currency,
        "trade_status": status,
        "paid_at": dt.datetime.now(dt.UTC).isoformat(),
        "timestamp": str(timestamp if timestamp is not None else int(dt.datetime.now(dt.UTC).timestamp())),
        "nonce": secrets.token_hex(12),
        "sign_type": "HMAC-SHA256",
    }
    params.update(overrides)
    params["sign"] = sign_params(params, secret)
    return params


@dataclass
class Shop:
    ctx: ShopContext
    client: httpx.AsyncClient
    _counter: list[int] = field(default_factory=lambda: [0])

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ctx.settings.admin_token.get_secret_value()}"}

    @property
    def sandbox_secret(self) -> str:
        return self.ctx.settings.sandbox_secret.get_secret_value()

    # ------------------------------------------------------------ catalog and stock (services)

    async def make_sku(self, *, code: str | None = None, price_cents: int = 1980, currency: str = "CNY",
                       delivery_type: str = "card_key", min_quantity: int = 1, max_quantity: int = 10,
                       guide: str = "1. Open the app\n2. Paste the code", on_sale: bool = True) -> Sku:
        self._counter[0] += 1
        n = self._counter[0]
        async with self.ctx.db.transaction() as session:
            category = await catalog_service.create_category(
                session=session, data=CategoryCreate(slug=f"cat-{n}", name=f"Category {n}"))
            product = await catalog_service.create_product(session=session, data=ProductCreate(
                category_id=category.id, slug=f"product-{n}", name=f"Video VIP {n}", redemption_guide=guide,
                skus=[SkuCreate(code=code or f"SKU-{n}", name="Monthly", price_cents=price_cents, currency=currency,
                                delivery_type=delivery_type, min_quantity=min_quantity, max_quantity=max_quantity,
                                on_sale=on_sale)]))
            return product.skus[0]

    async def stock(self, sku: Sku, count: int, *, expiry: str | None = None) -> list[str]:
        codes = [random_code() for _ in range(count)]
        text = "\n".join(f"{c},{expiry}" if expiry else c for c in codes)
        async with self.ctx.db.transaction() as session:
            fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
            await inventory_service.import_card_keys(session=session, cipher=self.ctx.cipher, sku=fresh, text=text)
        return codes

    async def available(self, sku_id: int) -> int:
        async with self.ctx.db.read_session() as session:
            return (await inventory_service.available_counts(session=session, sku_ids=[sku_id])).get(sku_id, 0)

    async def scalar(self, statement: Any) -> Any:
        async with self.ctx.db.read_session() as session:
            return await session.scalar(statement)

    async def count(self, model: Any, *where: Any) -> int:
        return int(await self.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    # ------------------------------------------------------------ buying (HTTP)

    async def create_order(self, sku_id: int, quantity: int = 1, contact: str = "buyer@example.com",
                           **extra: Any) -> dict[str, Any]:
        response = await self.client.post("/api/orders", json={"sku_id": sku_id, "quantity": quantity,
                                                                "contact": contact, **extra})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    @staticmethod
    def auth(order: dict[str, Any]) -> dict[str, str]:
        return {"X-Order-Token": order["access_token"]}

    async def get_order(self, order: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.get(f"/api/orders/{order['order_no']}", headers=self.auth(order))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def start_payment(self, order: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(f"/api/orders/{order['order_no']}/payments", headers=self.auth(order),
                                          json={"gateway": "sandbox"})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def notification(self, payment: dict[str, Any], **overrides: Any) -> dict[str, str]:
        return signed_notification(self.sandbox_secret, payment_no=payment["payment_no"],
                                   amount_cents=payment["amount_cents"], currency=payment["currency"], **overrides)

    async def notify(self, params: dict[str, str]) -> httpx.Response:
        return await self.client.post("/payments/sandbox/notify", data=params)

    async def pay(self, order: dict[str, Any]) -> dict[str, Any]:
        """Start a payment and deliver the gateway's signed notification; asserts it was acknowledged."""
        payment = await self.start_payment(order)
        response = await self.notify(self.notification(payment))
        assert response.status_code == 200 and response.text == "success", response.text
        return payment

    async def pay_via_cashier(self, order: dict[str, Any]) -> httpx.Response:
        """The buyer's path: cashier page, press pay; the sandbox notifies the shop, then redirects back."""
        payment = await self.start_payment(order)
        url = urlparse(payment["cashier_url"])
        page = await self.client.get(f"{url.path}?{url.query}")
        assert page.status_code == 200, page.text
        token = re.search(r'name="t" value="([^"]+)"', page.text)
        assert token is not None
        return await self.client.post("/sandbox/cashier/pay",
                                      data={"t": token.group(1), "csrf_token": page_csrf_token(page.text)})

    async def reveal(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.client.post(f"/api/orders/{order['order_no']}/reveal", headers=self.auth(order))
        assert response.status_code == 200, response.text
        return response.json()["keys"]  # type: ignore[no-any-return]

    async def refused_delete(self, sku: Sku, references: dict[str, int]) -> dict[str, Any]:
        """DELETE the SKU through the admin API: a 409 naming exactly `references` (kind -> count); the SKU stays."""
        response = await self.client.delete(f"/api/admin/skus/{sku.id}", headers=self.admin)
        assert response.status_code == 409, response.text
        answer = response.json()
        assert answer["code"] == "in_use" and answer["sku_code"] == sku.code
        assert {r["kind"]: r["count"] for r in answer["references"]} == references
        assert "same time" not in answer["detail"] and answer["detail"].startswith(f"SKU {sku.code} cannot be deleted")
        assert await self.count(Sku, Sku.id == sku.id) == 1
        return answer  # type: ignore[no-any-return]


async def raw_database_bytes(db: Any) -> bytes:
    """Everything the database holds, as stored: the SQLite files, or every PostgreSQL table dumped."""
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        await db.dispose()  # checkpoint-free: read the main file and the WAL as they are
        path = Path(url.database)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    connection = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        tables = [r["tablename"] for r in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        chunks = []
        for table in tables:
            for row in await connection.fetch(f'SELECT t::text AS line FROM "{table}" t'):
                chunks.append(row["line"].encode())
        return b"\n".join(chunks)
    finally:
        await connection.close()
