"""Staff reveal (permission + reason + audit) and leak tracing (SKU, batch, order, buyer, reveals; marking)."""

from __future__ import annotations

from sqlalchemy import select

from quanyi.catalog import service as catalog_service
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch, KeyReveal, LeakReport
from staff.staff_helpers import staff_headers

REASON = "ticket 4711: buyer says the code is rejected"


async def _key_id(shop, code: str) -> int:
    fingerprint = shop.ctx.cipher.fingerprint(code)
    return int(await shop.scalar(select(CardKey.id).where(CardKey.fingerprint == fingerprint)))


async def test_staff_reveal_needs_the_permission_and_a_reason_and_is_audited(shop):
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 2)
    key_id = await _key_id(shop, codes[0])
    url = f"/api/admin/card-keys/{key_id}/reveal"

    assert (await shop.client.post(url, json={"reason": REASON})).status_code == 401
    bad_token = {"Authorization": "Bearer qs_forged"}
    assert (await shop.client.post(url, json={"reason": REASON}, headers=bad_token)).status_code == 401
    tracer = await staff_headers(shop, "tracer", "leaks.trace")
    assert (await shop.client.post(url, json={"reason": REASON}, headers=tracer)).status_code == 403

    support = await staff_headers(shop, "support", "card_keys.reveal")
    support["User-Agent"] = "support-console/1.0"
    assert (await shop.client.post(url, json={}, headers=support)).status_code == 422
    short = await shop.client.post(url, json={"reason": "why"}, headers=support)
    assert short.status_code == 422 and short.json()["code"] == "reveal_reason_too_short"
    assert (await shop.client.post("/api/admin/card-keys/999999/reveal", json={"reason": REASON},
                                   headers=support)).status_code == 404
    assert await shop.count(KeyReveal) == 0  # refused reveals leave nothing behind

    shown = await shop.client.post(url, json={"reason": REASON}, headers=support)
    assert shown.status_code == 200, shown.text
    assert shown.json()["code"] == codes[0] and shown.json()["status"] == "available"
    assert shown.headers["cache-control"] == "no-store"  # a plaintext key: no cache keeps a copy
    reveal = await shop.scalar(select(KeyReveal))
    assert (reveal.card_key_id, reveal.channel, reveal.actor, reveal.reason, reveal.order_id) == (
        key_id, "staff", "support", REASON, None)
    assert reveal.user_agent == "support-console/1.0" and reveal.revealed_at is not None
    assert reveal.ip == "127.0.0.1"

    # The admin token acts as "admin", with every permission.
    assert (await shop.client.post(url, json={"reason": REASON}, headers=shop.admin)).status_code == 200
    assert await shop.count(KeyReveal, KeyReveal.actor == "admin") == 1


async def test_masked_listing_never_shows_a_whole_code(shop):
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 3)
    batch_id = await shop.scalar(select(ImportBatch.id))
    response = await shop.client.get(f"/api/admin/batches/{batch_id}/card-keys", headers=shop.admin)
    assert response.status_code == 200
    listed = [k["code"] for k in response.json()]
    assert not any(code in response.text for code in codes)
    assert sorted(listed) == sorted(c[:2] + "*" * 12 + c[-2:] for c in codes)
    # A batch id beyond the 32-bit column is a 422, not a database error (found by schemathesis on PG).
    huge = await shop.client.get("/api/admin/batches/9223372036854775806/card-keys", headers=shop.admin)
    assert huge.status_code == 422


async def test_leak_trace_finds_sku_batch_order_buyer_and_every_reveal_and_marks_them(shop):
    sku = await shop.make_sku(code="LEAKY-1M")
    async with shop.ctx.db.transaction() as session:
        fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
        await inventory_service.import_card_keys(session=session, cipher=shop.ctx.cipher, sku=fresh,
                                                 text="SOLD-AAAA-1111\nSTOCK-BBBB-2222\nSTOCK-CCCC-3333\n",
                                                 source_name="invoice 42", imported_by="ops-li")
    order = await shop.create_order(sku.id, contact="victim@example.com")
    await shop.pay(order)
    sold_code = (await shop.reveal(order))[0]["code"]
    sold_id = await _key_id(shop, sold_code)
    support = await staff_headers(shop, "support", "card_keys.reveal")
    assert (await shop.client.post(f"/api/admin/card-keys/{sold_id}/reveal", json={"reason": REASON},
                                   headers=support)).status_code == 200
    unsold_code = next(c for c in ("STOCK-BBBB-2222", "STOCK-CCCC-3333", "SOLD-AAAA-1111") if c != sold_code)

    url = "/api/admin/leaks/trace"
    # Pasted from a Chinese document in full-width characters: normalized exactly as an import does.
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in sold_code)
    body = {"codes": [full_width, "NEVER-SEEN-0000"], "text": f"  {unsold_code}  \n"}
    assert (await shop.client.post(url, json=body, headers=support)).status_code == 403
    tracer = await staff_headers(shop, "tracer", "leaks.trace")
    response = await shop.client.post(url, json=body, headers=tracer)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["submitted"], report["found"], report["withdrawn"], report["created_by"]) == (3, 2, 1, "tracer")
    assert sold_code not in response.text and unsold_code not in response.text  # codes echoed masked only
    sold, missing, unsold = report["items"]
    assert missing["found"] is False and missing["line"] == 2
    assert sold["sku_code"] == "LEAKY-1M" and sold["status"] == "sold" and not sold["withdrawn"]
    assert sold["batch"]["source_name"] == "invoice 42" and sold["batch"]["imported_by"] == "ops-li"
    assert sold["batch"]["supplier"] is None
    assert sold["order"]["order_no"] == order["order_no"] and sold["order"]["contact"] == "victim@example.com"
    assert sold["order"]["status"] == "delivered" and sold["order"]["delivered_at"] and sold["order"]["paid_at"]
    assert [(r["channel"], r["actor"]) for r in sold["reveals"]] == [("api", None), ("staff", "support")]
    assert sold["reveals"][1]["reason"] == REASON and sold["reveals"][0]["ip"] == "127.0.0.1"
    assert unsold["status"] == "available" and unsold["withdrawn"] and unsold["order"] is None

    report_row = await shop.scalar(select(LeakReport))
    assert (report_row.id, report_row.created_by, report_row.found_count) == (report["report_id"], "tracer", 2)
    assert await shop.count(CardKey, CardKey.leak_report_id == report_row.id, CardKey.leaked_at.is_not(None)) == 2
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 1  # the buyer keeps the sold one

    # The leaked unsold key is never sold: only the one clean key is left to sell.
    assert await shop.available(sku.id) == 1
    last = await shop.create_order(sku.id)
    await shop.pay(last)
    assert (await shop.reveal(last))[0]["code"] not in (sold_code, unsold_code)
    refused = await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": 1,
                                                           "contact": "x@example.com"})
    assert refused.status_code == 409  # sold out, the leaked key is not offered


async def test_a_leaked_key_that_is_available_again_is_never_sold(shop):
    """Marked leaked without withdrawing (e.g. status set back by hand): the sale condition still skips it."""
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 1)
    tracer = await staff_headers(shop, "tracer", "leaks.trace")
    response = await shop.client.post("/api/admin/leaks/trace", json={"codes": codes}, headers=tracer)
    assert response.json()["withdrawn"] == 1
    async with shop.ctx.db.transaction() as session:
        key = await session.scalar(select(CardKey))
        key.status = CardKeyStatus.AVAILABLE
    assert await shop.available(sku.id) == 0
    answer = await shop.client.post("/api/orders", json={"sku_id": sku.id, "quantity": 1, "contact": "a@example.com"})
    assert answer.status_code == 409


async def test_leak_trace_can_void_the_unsold_rest_of_affected_batches(shop):
    sku = await shop.make_sku()
    leaked_batch = await shop.stock(sku, 4)
    await shop.stock(sku, 3)  # another batch, untouched
    tracer = await staff_headers(shop, "tracer", "leaks.trace")
    response = await shop.client.post("/api/admin/leaks/trace", headers=tracer,
                                      json={"codes": leaked_batch[:1], "void_batches": True})
    assert response.status_code == 200
    report = response.json()
    assert [b["voided_count"] for b in report["voided_batches"]] == [3]  # the other 3 of that batch
    assert report["voided_batches"][0]["void_reason"] == f"leak report {report['report_id']}"
    assert await shop.available(sku.id) == 3


async def test_trace_without_marking_changes_nothing_and_bad_bodies_are_4xx(shop):
    sku = await shop.make_sku()
    codes = await shop.stock(sku, 2)
    url = "/api/admin/leaks/trace"
    response = await shop.client.post(url, headers=shop.admin, json={"codes": codes, "mark_leaked": False})
    assert response.json()["found"] == 2 and response.json()["report_id"] is None
    assert await shop.available(sku.id) == 2 and await shop.count(LeakReport) == 0
    for body in ({"codes": "ABC"}, {"codes": [1]}, {"text": 5}, {"other": 1}, {"codes": ["x" * 601]}):
        assert (await shop.client.post(url, headers=shop.admin, json=body)).status_code == 422
    empty = await shop.client.post(url, headers=shop.admin, json={})
    assert empty.status_code == 200 and empty.json()["submitted"] == 0


async def test_a_staff_reveal_does_not_count_as_the_buyer_having_seen_the_key(shop):
    sku = await shop.make_sku()
    await shop.stock(sku, 2)
    order = await shop.create_order(sku.id)
    await shop.pay(order)
    key_id = await shop.scalar(select(CardKey.id).where(CardKey.status == CardKeyStatus.SOLD))
    response = await shop.client.post(f"/api/admin/card-keys/{key_id}/reveal", json={"reason": REASON},
                                      headers=shop.admin)
    assert response.status_code == 200
    async with shop.ctx.db.read_session() as session:
        order_id = await shop.scalar(select(CardKey.order_id).where(CardKey.id == key_id))
        assert await inventory_service.withdrawable_keys(session=session, order_id=order_id) == (1, 1)
    await shop.reveal(order)
    async with shop.ctx.db.read_session() as session:
        assert await inventory_service.withdrawable_keys(session=session, order_id=order_id) == (1, 0)
