"""Tenancy rules beyond the route sweep: merchant staff login and suspension, card keys across merchants (one code
once per platform, imports and leak traces that reveal nothing of another merchant), the database refusing
mixed rows, and `--merchant` on the command line."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from merchants.support import PASSWORD, admit, buy, shared_category, stock_up
from quanyi.catalog.models import Sku
from quanyi.inventory.models import CardKey
from quanyi.staff import service as staff_service


@pytest.fixture
async def pair(shop):
    category = await shared_category(shop)
    a, b = await admit(shop, "shop-a"), await admit(shop, "shop-b")
    await stock_up(shop, a, category, keys=3)
    await stock_up(shop, b, category, keys=3)
    return a, b


async def test_merchant_staff_log_in_into_their_scope_and_a_suspended_merchant_locks_them_out(shop, pair):
    a, _ = pair
    async with shop.ctx.db.transaction() as session:
        await staff_service.create_staff(session=session, username="amy", password=PASSWORD,
                                         permissions=["admin"], merchant_id=a.merchant_id)
    login = await shop.client.post("/api/staff/login", json={"username": "amy", "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    assert [m["code"] for m in (await shop.client.get("/api/admin/merchants", headers=headers)).json()] == [a.code]
    # Terms are the platform's to set.
    refused = await shop.client.patch(f"/api/admin/merchants/{a.code}", headers=headers, json={"commission_bps": 0})
    assert refused.status_code == 403 and refused.json()["code"] == "platform_only"

    suspended = await shop.client.patch(f"/api/admin/merchants/{a.code}", headers=shop.admin,
                                        json={"status": "suspended"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert (await shop.client.get("/api/admin/merchants", headers=headers)).status_code == 401  # open session ends
    again = await shop.client.post("/api/staff/login", json={"username": "amy", "password": PASSWORD})
    assert again.status_code == 401 and again.json()["code"] == "login_failed"  # same answer as a wrong password

    platform = await shop.client.patch("/api/admin/merchants/platform", headers=shop.admin,
                                       json={"status": "suspended"})
    assert platform.status_code == 422


async def test_merchant_codes_are_checked_and_unique(shop):
    bad = await shop.client.post("/api/admin/merchants", headers=shop.admin, json={"code": "No Spaces", "name": "x"})
    assert bad.status_code == 422
    assert (await shop.client.post("/api/admin/merchants", headers=shop.admin,
                                   json={"code": "acme", "name": "Acme", "commission_bps": 800})).status_code == 201
    taken = await shop.client.post("/api/admin/merchants", headers=shop.admin, json={"code": "ACME", "name": "y"})
    assert taken.status_code == 409 and taken.json()["code"] == "merchant_code_taken"


async def test_a_code_exists_once_on_the_platform_and_the_report_names_nothing_of_the_other_merchant(shop, pair):
    a, b = pair
    upload = "\n".join([*b.codes[:2], "FRESH-CODE-0001"]).encode()
    response = await shop.client.post(f"/api/admin/skus/{a.sku_id}/card-keys/import", headers=a.headers,
                                      files={"file": ("k.txt", upload)})
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["added"] == 1 and report["duplicates"] == 2
    assert {line["reason"] for line in report["duplicate_lines"]} == {"already held elsewhere on the platform"}
    # Within one merchant the report may say which SKU holds the code.
    again = await shop.client.post(f"/api/admin/skus/{b.sku_id}/card-keys/import", headers=b.headers,
                                   files={"file": ("k.txt", b.codes[0].encode())})
    assert again.status_code == 422 and again.json()["report"]["duplicate_lines"][0]["reason"] == \
        "already in stock for this SKU"


async def test_leak_traces_stay_within_the_merchant_and_the_platform_traces_everywhere(shop, pair):
    a, b = pair
    mine = await shop.client.post("/api/admin/leaks/trace", headers=a.headers, json={"codes": [a.codes[0], b.codes[0]]})
    assert mine.status_code == 200
    assert [item["found"] for item in mine.json()["items"]] == [True, False]
    async with shop.ctx.db.read_session() as session:
        leaked = dict((await session.execute(select(CardKey.merchant_id, CardKey.leaked_at)
                                             .where(CardKey.leaked_at.is_not(None)))).all())
    assert list(leaked) == [a.merchant_id]  # B's key was not touched by A's trace
    everywhere = await shop.client.post("/api/admin/leaks/trace", headers=shop.admin,
                                        json={"codes": [b.codes[1]], "mark_leaked": False})
    assert everywhere.json()["items"][0]["found"] is True and everywhere.json()["items"][0]["sku_id"] == b.sku_id


async def test_the_database_refuses_rows_that_mix_merchants(shop, pair):
    a, b = pair
    async with shop.ctx.db.read_session() as session:
        key = (await session.execute(select(CardKey.batch_id, CardKey.key_id).where(
            CardKey.merchant_id == a.merchant_id).limit(1))).one()
    with pytest.raises(IntegrityError):  # a key of A's batch claimed for B's SKU under A's name
        async with shop.ctx.db.transaction() as session:
            await session.execute(insert(CardKey).values(
                sku_id=b.sku_id, merchant_id=a.merchant_id, batch_id=key.batch_id, status="available",
                fingerprint=b"x" * 32, key_id=key.key_id, ciphertext=b"x", created_at=dt.datetime.now(dt.UTC)))
    with pytest.raises(IntegrityError):  # moving A's SKU to B without its product
        async with shop.ctx.db.transaction() as session:
            await session.execute(update(Sku).where(Sku.id == a.sku_id).values(merchant_id=b.merchant_id))


async def _cli(shop, monkeypatch, *args: str):  # type: ignore[no-untyped-def]
    """Run `quanyi ARGS` in-process (in a thread: the command runs its own event loop) against this shop."""
    from quanyi.cli import app
    from quanyi.config import get_settings

    settings = shop.ctx.settings
    for name in ("database_url", "admin_token", "app_secret", "card_keys", "card_key_active_id",
                 "card_key_hash_key", "sandbox_secret"):
        value = getattr(settings, name)
        monkeypatch.setenv(f"QUANYI_{name.upper()}", value.get_secret_value() if hasattr(value, "get_secret_value")
                           else str(value))
    monkeypatch.setenv("QUANYI_RUN_BACKGROUND_TASKS", "false")
    # The CLI's Rich consoles were made at import, with the width of that moment (pytest-xdist workers set
    # COLUMNS=80): give them the width of a wide terminal so tables are not cut.
    from quanyi.cli_support import console, err
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err, "width", 200)
    get_settings.cache_clear()
    try:
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    finally:
        get_settings.cache_clear()


async def test_cli_commands_take_a_merchant_scope(shop, pair, monkeypatch, tmp_path):
    a, b = pair
    shop_stock = await _cli(shop, monkeypatch, "keys", "stock", "--merchant", a.code)
    assert shop_stock.exit_code == 0, shop_stock.output
    assert a.sku_code in shop_stock.output and b.sku_code not in shop_stock.output
    foreign = await _cli(shop, monkeypatch, "keys", "void", str(b.batch_id), "--reason", "not mine",
                         "--merchant", a.code)
    assert foreign.exit_code == 1 and "batch_not_found" in foreign.output
    keys = tmp_path / "keys.txt"
    keys.write_text("CLI-CODE-0001\n")
    wrong = await _cli(shop, monkeypatch, "keys", "import", str(keys), "--sku", b.sku_code, "--merchant", a.code)
    assert wrong.exit_code == 1 and "sku_not_found" in wrong.output
    unknown = await _cli(shop, monkeypatch, "keys", "stock", "--merchant", "nobody")
    assert unknown.exit_code == 1 and "merchant_not_found" in unknown.output
    mine = await _cli(shop, monkeypatch, "keys", "void", str(a.batch_id), "--reason", "recalled", "--merchant", a.code)
    assert mine.exit_code == 0, mine.output
    staff = await _cli(shop, monkeypatch, "staff", "list", "--merchant", b.code)
    assert f"{b.code}-staff" in staff.output and f"{a.code}-staff" not in staff.output
    assert (await _cli(shop, monkeypatch, "merchants", "balance", a.code)).exit_code == 0
    assert "shop-b" in (await _cli(shop, monkeypatch, "merchants", "list")).output


async def test_merchant_roles_are_given_within_the_merchant_and_open_what_they_name(shop, pair):
    a, b = pair
    staff = "/api/admin/staff"
    wrong_side = await shop.client.post(staff, headers=a.headers, json={
        "username": "a-boss", "password": PASSWORD, "roles": ["owner"]})  # a platform role
    assert wrong_side.status_code == 422 and wrong_side.json()["code"] == "invalid_staff_input"
    made = await shop.client.post(staff, headers=a.headers, json={
        "username": "a-money", "password": PASSWORD, "roles": ["merchant_finance"]})
    assert made.status_code == 201 and made.json()["merchant_id"] == a.merchant_id
    assert "merchant.finance" in made.json()["permissions"] and "admin" not in made.json()["permissions"]
    platform_side = await shop.client.post(staff, headers=shop.admin, json={
        "username": "p-ops", "password": PASSWORD, "roles": ["merchant_operator"]})
    assert platform_side.status_code == 422  # platform staff hold platform roles
    offered = {r["name"] for r in (await shop.client.get(f"{staff}/roles", headers=a.headers)).json()}
    assert offered == {"merchant_owner", "merchant_operator", "merchant_finance", "merchant_support"}

    login = await shop.client.post("/api/staff/login", json={"username": "a-money", "password": PASSWORD})
    money = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await shop.client.get(f"/api/admin/merchants/{a.code}/balance", headers=money)).status_code == 200
    assert (await shop.client.get(f"/api/admin/merchants/{b.code}/balance", headers=money)).status_code == 404
    products = await shop.client.post("/api/admin/products", headers=money, json={
        "category_id": 1, "slug": "nope", "name": "x"})
    assert products.status_code == 403 and products.json()["code"] == "permission_denied"
    # A's owner manages A's staff only; B's staff member is "not found" to them.
    assert (await shop.client.put(f"{staff}/a-money/roles", headers=a.headers,
                                  json={"roles": ["merchant_support"]})).json()["roles"] == ["merchant_support"]
    assert (await shop.client.get(f"/api/admin/merchants/{a.code}/balance", headers=money)).status_code == 403
    assert (await shop.client.post(f"{staff}/{b.code}-staff/disable", headers=a.headers)).status_code == 404


async def test_idempotency_keys_are_per_merchant_and_name_nothing_of_another(shop, pair):
    a, b = pair
    a_order, b_order = await buy(shop, a, refundable=True), await buy(shop, b, refundable=True)
    key = {"Idempotency-Key": "refund-ticket-0001"}
    first = await shop.client.post(f"/api/admin/orders/{b_order['order_no']}/refunds", headers={**b.headers, **key},
                                   json={"reason": "b's buyer"})
    assert first.status_code == 201
    # The same key from A is A's own request: refunded, not "already used" (which would name B's refund).
    mine = await shop.client.post(f"/api/admin/orders/{a_order['order_no']}/refunds", headers={**a.headers, **key},
                                  json={"reason": "a's buyer"})
    assert mine.status_code == 201 and mine.json()["refund_no"] != first.json()["refund_no"]
    again = await shop.client.post(f"/api/admin/orders/{a_order['order_no']}/refunds", headers={**a.headers, **key},
                                   json={"reason": "a's buyer"})
    assert again.status_code == 200 and again.json()["refund_no"] == mine.json()["refund_no"]
