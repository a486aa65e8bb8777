"""循环卡密: one code sold to many buyers, each code with its own sale counter and limit; never past the limit,
even with buyers racing; every buyer's reveal audited; unpaid orders give their units back."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.inventory import shared_codes
from quanyi.inventory.models import KeyReveal, SharedCode
from quanyi.inventory.service import OutOfStock
from quanyi.orders import service as orders_service

CODE = "VIP-SHARED-ACCOUNT-2026"


async def _shared_sku(shop, limit: int):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(code=f"SHARED-{limit}", delivery_type="shared_code", price_cents=300)
    added = await shop.client.post(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin,
                                   json={"code": CODE, "sale_limit": limit})
    assert added.status_code == 201, added.text
    assert CODE not in added.text and added.json()[0]["masked"].startswith("VI")
    return sku, added.json()[0]["id"]


async def _available(shop, sku) -> int:  # type: ignore[no-untyped-def]
    product = (await shop.client.get(f"/api/catalog/products/product-{sku.product_id}")).json()
    return product["skus"][0]["stock"]["available"]  # type: ignore[no-any-return]


async def test_one_code_sells_to_many_buyers_up_to_its_limit_and_each_reveal_is_audited(shop):
    sku, code_id = await _shared_sku(shop, 3)
    product = (await shop.client.get(f"/api/catalog/products/product-{sku.product_id}")).json()
    assert product["skus"][0]["product_type"] == "shared_code" and await _available(shop, sku) == 3

    unpaid = await shop.create_order(sku.id, contact="late@example.com")
    assert await _available(shop, sku) == 2
    await shop.client.post(f"/api/orders/{unpaid['order_no']}/cancel", headers=shop.auth(unpaid))
    assert await _available(shop, sku) == 3  # a cancelled order's unit comes back

    buyers = []
    for n in range(3):
        order = await shop.create_order(sku.id, contact=f"buyer{n}@example.com")
        await shop.pay(order)
        assert [k["code"] for k in await shop.reveal(order)] == [CODE]
        buyers.append(order)
    view = await shop.get_order(buyers[0])
    assert view["status"] == "delivered" and view["delivered_keys"] == 1
    over = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "x@example.com"})
    assert over.status_code == 409 and over.json()["code"] == "sold_out"
    async with shop.ctx.db.read_session() as session:
        code = await session.get(SharedCode, code_id)
        reveals = (await session.scalars(select(KeyReveal).where(KeyReveal.card_key_id == code.card_key_id))).all()
    assert (code.sold_count, code.sale_limit) == (3, 3)
    assert len(reveals) == 3 and len({r.order_id for r in reveals}) == 3

    url = f"/api/admin/skus/{sku.id}/shared-codes/{code_id}"
    lower = await shop.client.patch(url, headers=shop.admin, json={"sale_limit": 2})
    assert lower.status_code == 422 and lower.json()["code"] == "shared_code_invalid"
    raised = await shop.client.patch(url, headers=shop.admin, json={"sale_limit": 5})
    assert raised.status_code == 200 and raised.json()["sold_count"] == 3 and await _available(shop, sku) == 2
    again = await shop.client.post(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin,
                                   json={"code": CODE, "sale_limit": 1})
    assert again.status_code == 409 and again.json()["code"] == "shared_code_known"
    card_sku = await shop.make_sku(code="NOT-SHARED")
    wrong = await shop.client.post(f"/api/admin/skus/{card_sku.id}/shared-codes", headers=shop.admin,
                                   json={"code": "OTHER-CODE-1", "sale_limit": 1})
    assert wrong.status_code == 422

    traced = await shop.client.post("/api/admin/leaks/trace", headers=shop.admin,
                                    json={"codes": [CODE], "mark_leaked": True})
    assert traced.status_code == 200, traced.text
    assert await _available(shop, sku) == 0  # a leaked shared code is never sold again


async def test_buyers_racing_for_the_last_units_never_pass_the_limit(shop):
    sku, code_id = await _shared_sku(shop, 5)
    racers = 12

    async def checkout(n: int) -> str:
        try:
            async with shop.ctx.db.transaction() as session:
                await orders_service.create_order(session=session, sku_id=sku.id, quantity=1,
                                                  contact=f"racer{n}@example.com",
                                                  reservation_ttl=dt.timedelta(minutes=15))
            return "bought"
        except OutOfStock:
            return "sold_out"

    outcomes = await asyncio.gather(*(checkout(n) for n in range(racers)))
    assert outcomes.count("bought") == 5 and outcomes.count("sold_out") == racers - 5
    async with shop.ctx.db.read_session() as session:
        code = await session.get(SharedCode, code_id)
        left = await shared_codes.capacity(session=session, sku_ids=[sku.id])
    assert code.sold_count == 5 and left == {}


async def test_an_operator_adds_a_shared_code_and_changes_its_limit_in_the_console(shop, app):
    sku = await shop.make_sku(code="SHARED-CONSOLE", delivery_type="shared_code")
    client = await logged_in(shop, "sharer", roles=("operator",))
    url = f"/console/catalog/shared/{sku.id}"
    bad = await post_form(client, url, {"code": "x", "sale_limit": "3"}, page_url=url)
    assert bad.status_code == 422  # too short to be a code; nothing stored
    added = await post_form(client, url, {"code": "CONSOLE-SHARED-CODE", "sale_limit": "3"}, page_url=url)
    assert added.status_code == 303
    page = await client.get(url)
    assert 'data-testid="shared-row"' in page.text and "CONSOLE-SHARED-CODE" not in page.text
    code_id = await shop.scalar(select(SharedCode.id).where(SharedCode.sku_id == sku.id))
    changed = await post_form(client, f"{url}/change", {"code_id": str(code_id), "sale_limit": "7", "active": "off"},
                              page_url=url)
    assert changed.status_code == 303
    code = await shop.scalar(select(SharedCode).where(SharedCode.id == code_id))
    assert (code.sale_limit, code.active) == (7, False)
    assert await _available(shop, sku) == 0  # stopped: nothing to sell
