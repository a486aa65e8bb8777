"""A leaked 循环卡密 (shared code) stops selling, whichever way the leak trace is asked to act, and an order that
holds units of it from before the leak is never handed it: it gets another code on sale, or waits for its refund."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.inventory import leaks
from quanyi.inventory.models import SharedCode
from quanyi.orders.models import Order

CODE, OTHER = "LEAKED-SHARED-ACCOUNT-2026", "SPARE-SHARED-ACCOUNT-2026"


async def _shared_sku(shop, *limits: int):  # type: ignore[no-untyped-def]
    """A 循环卡密 SKU with CODE (and OTHER, when two limits are given) on sale; their shared-code ids."""
    sku = await shop.make_sku(code="SHARED-LEAK", delivery_type="shared_code", price_cents=300)
    ids = []
    for code, limit in zip((CODE, OTHER), limits, strict=False):
        added = await shop.client.post(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin,
                                       json={"code": code, "sale_limit": limit})
        assert added.status_code == 201, added.text
        ids.append(added.json()[-1]["id"])
    return sku, ids


async def _codes(shop, sku) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    listed = await shop.client.get(f"/api/admin/skus/{sku.id}/shared-codes", headers=shop.admin)
    assert listed.status_code == 200, listed.text
    return {c["id"]: c for c in listed.json()}


async def _available(shop, sku) -> int:  # type: ignore[no-untyped-def]
    product = (await shop.client.get(f"/api/catalog/products/product-{sku.product_id}")).json()
    return product["skus"][0]["stock"]["available"]  # type: ignore[no-any-return]


async def _refund_pending_without_a_code(shop, order) -> None:  # type: ignore[no-untyped-def]
    view = await shop.get_order(order)
    assert view["status"] == "refund_pending", view  # money kept track of: it waits for its refund
    reveal = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert reveal.status_code != 200 and CODE not in reveal.text


async def test_a_leak_trace_that_only_voids_batches_stops_a_shared_code_and_says_so(shop, app):
    sku, (code_id,) = await _shared_sku(shop, 5)
    held = await shop.create_order(sku.id, contact="early@example.com")  # holds a unit from before the trace
    assert await _available(shop, sku) == 4

    traced = await shop.client.post("/api/admin/leaks/trace", headers=shop.admin,
                                    json={"codes": [CODE], "mark_leaked": False, "void_batches": True})
    assert traced.status_code == 200, traced.text
    assert await _available(shop, sku) == 0  # old code: 4, the code kept selling
    report = traced.json()
    assert report["stopped_shared_codes"] == [code_id]
    assert report["items"][0]["sale_stopped"] and not report["items"][0]["withdrawn"]
    assert report["voided_batches"] == []  # its batch is not voided (no unsold keys), the code is stopped
    code = (await _codes(shop, sku))[code_id]
    assert (code["active"], code["leaked"]) == (False, False)  # stopped, not marked leaked (not asked to)
    refused = await shop.client.post("/api/orders", json={"sku_id": sku.id, "contact": "late@example.com"})
    assert refused.status_code == 409 and refused.json()["code"] == "sold_out"

    await shop.pay(held)  # the only code is stopped: no code is handed over, the order waits for its refund
    await _refund_pending_without_a_code(shop, held)

    # The console's trace says so too, and links to the code's page (stop / resume).
    client = await logged_in(shop, "tracer", roles=("owner",))
    again = await shop.client.patch(f"/api/admin/skus/{sku.id}/shared-codes/{code_id}", headers=shop.admin,
                                    json={"active": True})
    assert again.status_code == 200
    page = await post_form(client, "/console/keys/leaks", {"codes": CODE, "void_batches": "on"},
                           page_url="/console/keys/leaks")
    assert page.status_code == 200 and 'data-testid="stopped-shared"' in page.text
    assert f'href="/console/catalog/shared/{sku.id}" data-testid="sale-stopped"' in page.text
    assert not (await _codes(shop, sku))[code_id]["active"]
    audit = await client.get("/console/audit?action=leaks_traced")
    assert "提交 1 个，找到 1 个，下架 0 个，停售循环卡密 1 个，并作废相关批次" in audit.text


async def test_an_order_holding_units_of_a_code_marked_leaked_gets_another_code_or_its_refund(shop):
    sku, (leaked_id, spare_id) = await _shared_sku(shop, 3, 1)
    first = await shop.create_order(sku.id, contact="first@example.com")  # both hold units of CODE (oldest)
    second = await shop.create_order(sku.id, contact="second@example.com")

    traced = await shop.client.post("/api/admin/leaks/trace", headers=shop.admin,
                                    json={"codes": [CODE], "mark_leaked": True})
    assert traced.status_code == 200, traced.text

    await shop.pay(first)  # old code: delivered the leaked CODE
    assert (await shop.get_order(first))["status"] == "delivered"
    assert [k["code"] for k in await shop.reveal(first)] == [OTHER]
    await shop.pay(second)  # OTHER's one unit is gone: refund, never the leaked code
    await _refund_pending_without_a_code(shop, second)

    codes = await _codes(shop, sku)
    assert (codes[leaked_id]["sold_count"], codes[leaked_id]["leaked"]) == (0, True)  # held units given back
    assert codes[spare_id]["sold_count"] == 1
    stock = (await shop.client.get(f"/api/admin/skus/{sku.id}/stock", headers=shop.admin)).json()
    assert (stock["available"], stock["reserved"], stock["sold"], stock["voided"]) == (0, 0, 1, 3)
    assert traced.json()["stopped_shared_codes"] == [leaked_id]


async def test_a_payment_waits_for_a_leak_trace_stopping_its_code(shop, backend):
    """PostgreSQL: a payment whose order holds units of the code a running trace stops waits for the trace (its
    FOR KEY SHARE against the trace's FOR UPDATE) and then hands the code over to nobody. SQLite: one writer."""
    if backend != "postgresql":
        pytest.skip("SQLite's writer lock already puts the trace and the payment one after the other")
    sku, (code_id,) = await _shared_sku(shop, 2)
    order = await shop.create_order(sku.id, contact="racing@example.com")
    payment = await shop.start_payment(order)
    async with shop.ctx.db.transaction() as session:
        report = await leaks.trace_leaked_codes(session=session, cipher=shop.ctx.cipher, text=CODE, actor="tracer",
                                                mark_leaked=False, void_batches=True)
        paying = asyncio.create_task(shop.notify(shop.notification(payment)))
        await asyncio.sleep(1.5)
        assert not paying.done()  # old code: delivered CODE at once, before the stop committed
    assert (await paying).status_code == 200 and report.stopped_shared_codes == [code_id]
    await _refund_pending_without_a_code(shop, order)
    assert not await shop.scalar(select(SharedCode.active).where(SharedCode.id == code_id))
    assert await shop.scalar(select(Order.delivered_at).where(Order.order_no == order["order_no"])) is None
