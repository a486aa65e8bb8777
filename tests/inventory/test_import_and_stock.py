"""Card-key import (dedupe, report, encryption at rest), voiding, key rotation, tamper detection."""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from sqlalchemy import select, update

from helpers import make_settings, random_code, raw_database_bytes
from quanyi.context import build_context
from quanyi.inventory.crypto import CardKeyDecryptionError
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch
from quanyi.shoptime import shop_day, shop_zone


async def _upload(shop, sku_id: int, text: str, *, encoding: str = "utf-8", name: str = "keys.txt"):
    return await shop.client.post(
        f"/api/admin/skus/{sku_id}/card-keys/import", headers=shop.admin,
        files={"file": (name, text.encode(encoding), "text/plain")}, data={"source_name": "supplier A"})


async def test_import_reports_added_duplicates_and_invalid_lines(shop, sku):
    a, b, c = random_code(), random_code(), random_code()
    text = f"{a}\n{b}\n{a}\nX,Y,Z,W\n{c},2020-01-01\n{c}\n"
    response = await _upload(shop, sku.id, text)
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["added"], report["duplicates"], report["invalid"]) == (3, 1, 2)
    assert report["duplicate_lines"] == [{"line": 3, "reason": "duplicate of line 1 in this file"}]
    assert [p["line"] for p in report["invalid_lines"]] == [4, 5]
    assert report["lines_read"] == 6
    assert await shop.available(sku.id) == 3

    again = await _upload(shop, sku.id, f"{b}\n{random_code()}\n")
    assert again.json()["added"] == 1
    assert again.json()["duplicate_lines"] == [{"line": 1, "reason": "already in stock for this SKU"}]


async def test_a_code_sold_or_in_another_sku_can_never_be_imported_again(shop, sku):
    other = await shop.make_sku()
    [code] = await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    await shop.pay(order)
    for target in (sku.id, other.id):
        response = await _upload(shop, target, f"{code}\n")
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "nothing_imported"
        assert body["report"]["duplicates"] == 1
    assert await shop.count(ImportBatch) == 1  # the refused imports left no batch behind


async def test_a_code_with_invisible_characters_is_the_same_code(shop, sku):
    """`AB\u200bC` is `ABC` with debris from a copy-paste: one code may never be stocked twice that way."""
    code = random_code()
    first = await _upload(shop, sku.id, f"{code}\n")
    assert first.json()["added"] == 1
    variants = [code[:3] + "\u200b" + code[3:], "\ufeff" + code, code[:5] + "\u00ad" + code[5:] + "\u2060",
                code[:1] + "\u200d" + code[1:] + "\u200c"]
    again = await _upload(shop, sku.id, "\n".join(variants) + "\n")
    assert again.status_code == 422 and again.json()["code"] == "nothing_imported"
    report = again.json()["report"]
    assert (report["added"], report["duplicates"]) == (0, 4)
    assert report["duplicate_lines"][0] == {"line": 1, "reason": "already in stock for this SKU"}
    assert await shop.available(sku.id) == 1


async def test_all_invalid_file_is_refused_and_changes_nothing(shop, sku):
    response = await _upload(shop, sku.id, "A,B,C,D\n\n# nothing\n")
    assert response.status_code == 422
    assert response.json()["report"]["invalid_lines"][0]["line"] == 1
    assert await shop.count(ImportBatch) == 0 and await shop.count(CardKey) == 0


async def test_import_accepts_gb18030_files_from_excel(shop, sku):
    response = await _upload(shop, sku.id, "卡号,密码\nMJ0001,123456\n", encoding="gb18030", name="卡密.csv")
    assert response.status_code == 201 and response.json()["added"] == 1


async def test_import_refuses_binary_files_and_non_card_key_skus(shop, sku):
    binary = await shop.client.post(f"/api/admin/skus/{sku.id}/card-keys/import", headers=shop.admin,
                                    files={"file": ("x.bin", bytes(range(256)) * 4, "application/octet-stream")})
    assert binary.status_code == 422 and binary.json()["code"] == "import_file_invalid"
    direct = await shop.make_sku(delivery_type="direct_recharge")
    refused = await _upload(shop, direct.id, "CODE\n")
    assert refused.status_code == 422 and refused.json()["code"] == "not_a_card_key_sku"


async def test_import_requires_the_admin_token(shop, sku):
    response = await shop.client.post(f"/api/admin/skus/{sku.id}/card-keys/import",
                                      files={"file": ("k.txt", b"CODE\n", "text/plain")},
                                      headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json()["code"] == "not_authorized"
    assert await shop.count(CardKey) == 0


async def test_no_plaintext_code_ever_reaches_the_database(shop, sku):
    codes = await shop.stock(sku, 20)
    pair = f"GC{secrets.randbelow(10**10):010d},{secrets.randbelow(10**12):012d}"
    assert (await _upload(shop, sku.id, pair + "\n")).status_code == 201
    order = await shop.create_order(sku.id, quantity=2)
    await shop.pay(order)
    revealed = await shop.reveal(order)
    assert {k["code"] for k in revealed} <= set(codes) | {pair.split(",")[1]}
    raw = await raw_database_bytes(shop.ctx.db)
    assert b"Video VIP" in raw and b"buyer@example.com" in raw  # the dump really holds the shop's data
    needles = codes + pair.split(",")
    for needle in needles:
        for form in (needle.encode(), needle.encode().hex().encode(), needle.encode("utf-16-le")):
            assert form not in raw, f"plaintext {needle!r} found in the database"


async def test_void_withdraws_unsold_keys_only(shop, sku):
    await shop.stock(sku, 5)
    batch_id = await shop.scalar(select(ImportBatch.id))
    sold = await shop.create_order(sku.id)
    await shop.pay(sold)
    await shop.create_order(sku.id)  # one reserved
    response = await shop.client.post(f"/api/admin/batches/{batch_id}/void", json={"reason": "supplier recall"},
                                      headers=shop.admin)
    assert response.status_code == 200
    assert response.json()["voided_count"] == 4 and response.json()["void_reason"] == "supplier recall"
    assert await shop.available(sku.id) == 0
    assert await shop.count(CardKey, CardKey.status == CardKeyStatus.SOLD) == 1
    assert len(await shop.reveal(sold)) == 1  # the buyer keeps what they bought
    twice = await shop.client.post(f"/api/admin/batches/{batch_id}/void", json={"reason": "again"},
                                   headers=shop.admin)
    assert twice.status_code == 409 and twice.json()["code"] == "batch_already_voided"
    stock = await shop.client.get(f"/api/admin/skus/{sku.id}/stock", headers=shop.admin)
    assert stock.json() == {"sku_id": sku.id, "available": 0, "reserved": 0, "sold": 1, "voided": 4, "expired": 0}


async def test_keys_near_expiry_are_not_sold(shop, sku):
    today = shop_day(dt.datetime.now(dt.UTC), shop_zone(shop.ctx.settings.shop_timezone)).isoformat()
    await shop.stock(sku, 2, expiry=today)  # valid only until tonight: under a day of use left
    await shop.stock(sku, 1)
    assert await shop.available(sku.id) == 1
    stock = await shop.client.get(f"/api/admin/skus/{sku.id}/stock", headers=shop.admin)
    assert stock.json()["expired"] == 2


async def test_sooner_expiring_keys_are_sold_first(shop, sku):
    [late] = await shop.stock(sku, 1, expiry="2099-12-31")
    [soon] = await shop.stock(sku, 1, expiry="2098-01-01")
    await shop.stock(sku, 1)
    order = await shop.create_order(sku.id)
    await shop.pay(order)
    assert [k["code"] for k in await shop.reveal(order)] == [soon]
    assert late != soon


async def test_old_keys_stay_readable_after_rotating_to_a_new_key(shop, sku, database_url):
    await shop.stock(sku, 3)
    old_ring = shop.ctx.settings.card_keys.get_secret_value()
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotated = make_settings(database_url, card_keys=f"{old_ring},k2:{new_key}", card_key_active_id="k2",
                            card_key_hash_key=shop.ctx.settings.card_key_hash_key.get_secret_value(),
                            app_secret=shop.ctx.settings.app_secret.get_secret_value())
    ctx2 = build_context(rotated)
    try:
        from quanyi.catalog import service as catalog_service
        from quanyi.inventory import service as inventory_service

        async with ctx2.db.transaction() as session:
            fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
            await inventory_service.import_card_keys(session=session, cipher=ctx2.cipher, sku=fresh,
                                                     text=random_code())
        async with ctx2.db.read_session() as session:
            key_ids = sorted((await session.scalars(select(CardKey.key_id))).all())
        assert key_ids == ["k1", "k1", "k1", "k2"]
        order = await shop.create_order(sku.id, quantity=4)
        await shop.pay(order)
        async with ctx2.db.transaction() as session:
            order_id = await session.scalar(select(CardKey.order_id).where(CardKey.order_id.is_not(None)))
            keys = await inventory_service.reveal_card_keys(session=session, cipher=ctx2.cipher,
                                                            order_id=order_id, channel="test", ip="", user_agent="")
        assert len(keys) == 4
    finally:
        await ctx2.close()


async def test_ciphertext_moved_to_another_row_fails_to_decrypt(shop, sku):
    await shop.stock(sku, 2)
    async with shop.ctx.db.transaction() as session:
        first, second = (await session.scalars(select(CardKey).order_by(CardKey.id))).all()
        await session.execute(update(CardKey).where(CardKey.id == second.id).values(ciphertext=first.ciphertext))
    order = await shop.create_order(sku.id, quantity=2)
    await shop.pay(order)
    async with shop.ctx.db.transaction() as session:
        order_id = await session.scalar(select(CardKey.order_id).where(CardKey.id == second.id))
        from quanyi.inventory import service as inventory_service

        try:
            await inventory_service.reveal_card_keys(session=session, cipher=shop.ctx.cipher, order_id=order_id,
                                                     channel="test", ip="", user_agent="")
        except CardKeyDecryptionError:
            pass
        else:
            raise AssertionError("a swapped ciphertext must not decrypt")
