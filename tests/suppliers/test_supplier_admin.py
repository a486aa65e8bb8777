"""Supplier records and product mapping through the admin API and the CLI: credentials sealed and never
shown, bad input answered 4xx with nothing changed, card-key and direct-recharge products never crossed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from helpers import raw_database_bytes
from quanyi.suppliers.models import SkuSupplierMapping, Supplier
from quanyi.testpeers.suppliers import CARD_PRODUCT, RECHARGE_PRODUCT
from suppliers.shop_support import map_sku, quanyi_cli, register, sync


@pytest.fixture
def sim(supplier_sim):
    return supplier_sim("quanyi")


async def test_credentials_are_sealed_and_never_shown(shop, sim, settings):
    secret = sim.credentials["secret"]
    created = await register(shop, sim)
    assert created["credential_fields"] == ["app_id", "secret"] and created["credentials_readable"]
    assert created["stock_callback_path"] == "/api/suppliers/ACME/stock-callback"
    outputs = [created]
    for path in ("/api/admin/suppliers", "/api/admin/suppliers/ACME", "/api/admin/suppliers/ACME/sync-status"):
        response = await shop.client.get(path, headers=shop.admin)
        assert response.status_code == 200, response.text
        outputs.append(response.text)
    outputs.append((await shop.client.get("/openapi.json")).text)

    # Replacing the credentials: the new secret is used (sync works), and shown nowhere either.
    new_secret = "rotated-" + secret[::-1]
    sim.credentials["secret"] = new_secret
    patched = await shop.client.patch("/api/admin/suppliers/ACME", headers=shop.admin,
                                      json={"credentials": {"app_id": sim.credentials["app_id"], "secret": new_secret}})
    assert patched.status_code == 200 and patched.json()["credential_fields"] == ["app_id", "secret"]
    outputs.append(patched.text)
    assert (await sync(shop))["ok"]

    for args in (["suppliers", "list"], ["suppliers", "show", "ACME"], ["suppliers", "status", "ACME"],
                 ["suppliers", "sync", "ACME"]):
        result = await quanyi_cli(settings, *args)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert "secret=***" in outputs[-3]  # `show` says which fields are set

    for text in map(str, outputs):
        assert secret not in text and new_secret not in text
    raw = await raw_database_bytes(shop.ctx.db)
    assert b"ACME" in raw  # the dump is real
    for value in (secret, new_secret, sim.credentials["app_id"]):
        assert value.encode() not in raw


async def test_cli_adds_a_supplier_with_credentials_from_stdin_and_never_echoes_them(shop, sim, settings):
    import json

    secret = sim.credentials["secret"]
    result = await quanyi_cli(settings, "suppliers", "add", "VIA-CLI", "--name", "From the CLI", "--dialect",
                              "quanyi", "--base-url", sim.base_url, "--settlement", "weekly", "--stdin",
                              stdin=json.dumps(sim.credentials))
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr and "weekly" in result.stdout
    synced = await quanyi_cli(settings, "suppliers", "sync", "VIA-CLI")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "syncing" in synced.stdout and "ok" in synced.stdout  # progress bar, then the result table
    missing = await quanyi_cli(settings, "suppliers", "add", "NOCREDS", "--name", "x", "--dialect", "quanyi",
                               "--base-url", sim.base_url)
    assert missing.returncode == 2 and "--stdin" in missing.stderr
    assert await shop.count(Supplier) == 1


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"dialect": "soap"}, 422, "validation_failed"),
    ({"base_url": "ftp://supplier.example"}, 422, "validation_failed"),
    ({"base_url": "javascript:alert(1)"}, 422, "validation_failed"),
    ({"credentials": {}}, 422, "validation_failed"),
    ({"credentials": {"app_id": "only-an-id"}}, 422, "invalid_input"),
    ({"credentials": {"app_id": 5, "secret": "x"}}, 422, "validation_failed"),
    ({"settlement_cycle": "monthly"}, 422, "validation_failed"),
    ({"credit_limit_cents": -1}, 422, "validation_failed"),
    ({"timeout_ms": 0}, 422, "validation_failed"),
    ({"code": "no spaces"}, 422, "validation_failed"),
    ({"balance_cents": 100000}, 422, "validation_failed"),  # the ledger owns the balance
])
async def test_bad_supplier_input_is_refused_and_changes_nothing(shop, sim, change, status, code):
    body = {"code": "ACME", "name": "Acme", "dialect": "quanyi", "base_url": sim.base_url,
            "credentials": sim.credentials, **change}
    response = await shop.client.post("/api/admin/suppliers", json=body, headers=shop.admin)
    assert response.status_code == status and response.json()["code"] == code, response.text
    assert await shop.count(Supplier) == 0


async def test_supplier_admin_errors_are_clear(shop, sim):
    assert (await shop.client.get("/api/admin/suppliers")).status_code == 401
    await register(shop, sim)
    again = await shop.client.post("/api/admin/suppliers", headers=shop.admin, json={
        "code": "acme", "name": "Acme 2", "dialect": "quanyi", "base_url": sim.base_url,
        "credentials": sim.credentials})
    assert again.status_code == 409 and again.json()["code"] == "supplier_code_taken"
    missing = await shop.client.get("/api/admin/suppliers/NOPE", headers=shop.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "supplier_not_found"
    bad_patch = await shop.client.patch("/api/admin/suppliers/ACME", headers=shop.admin, json={"status": None})
    assert bad_patch.status_code == 422
    paused = await shop.client.patch("/api/admin/suppliers/ACME", headers=shop.admin, json={"status": "paused"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["balance_cents"] == 0
    disabled = await shop.client.patch("/api/admin/suppliers/ACME", headers=shop.admin, json={"status": "disabled"})
    assert disabled.status_code == 200
    refused = await shop.client.post("/api/admin/suppliers/ACME/sync", headers=shop.admin)
    assert refused.status_code == 409 and refused.json()["code"] == "supplier_disabled"
    bad_mode = await shop.client.post("/api/admin/suppliers/ACME/sync?mode=everything", headers=shop.admin)
    assert bad_mode.status_code == 422


async def test_sync_of_an_unreachable_supplier_answers_502_and_records_its_health(shop, sim):
    await register(shop, sim)
    sim.stop()
    response = await shop.client.post("/api/admin/suppliers/ACME/sync", headers=shop.admin)
    assert response.status_code == 502 and response.json()["code"] == "supplier_sync_failed"
    supplier = (await shop.client.get("/api/admin/suppliers/ACME", headers=shop.admin)).json()
    assert supplier["health"]["last_failure_at"] and supplier["health"]["last_error"]
    assert supplier["sync"]["last_pull_error"] and not supplier["sync"]["pulling"]  # the claim was given back
    assert sim.credentials["secret"] not in response.text + str(supplier)


async def test_mapping_kinds_must_match_and_mistakes_are_4xx(shop, sim):
    await register(shop, sim)
    result = await sync(shop)
    assert result["ok"] and result["new_products"] == 4
    card_sku = await shop.make_sku(code="GIFT-CARD", price_cents=10000)
    recharge_sku = await shop.make_sku(code="MOBILE-TOPUP", price_cents=5000, delivery_type="direct_recharge")
    manual_sku = await shop.make_sku(code="BY-HAND", delivery_type="manual")

    for sku, product in ((card_sku, RECHARGE_PRODUCT), (recharge_sku, CARD_PRODUCT), (manual_sku, CARD_PRODUCT)):
        response = await shop.client.post(f"/api/admin/skus/{sku.id}/supplier-mappings", headers=shop.admin,
                                          json={"supplier_code": "ACME", "product_code": product})
        assert response.status_code == 422 and response.json()["code"] == "mapping_kind_mismatch", response.text
    assert await shop.count(SkuSupplierMapping) == 0

    mapping = await map_sku(shop, card_sku.id, CARD_PRODUCT)
    assert mapping["product"]["cost_cents"] == 9500 and mapping["product"]["last_sync_source"] == "pull"
    assert mapping["usable"] and mapping["product"]["last_synced_at"]
    await map_sku(shop, recharge_sku.id, RECHARGE_PRODUCT)
    for body, status, code in (
        ({"supplier_code": "ACME", "product_code": CARD_PRODUCT}, 409, "mapping_exists"),
        ({"supplier_code": "ACME", "product_code": "NOT-THERE"}, 404, "supplier_product_not_found"),
        ({"supplier_code": "NOBODY", "product_code": CARD_PRODUCT}, 404, "supplier_not_found"),
        ({"supplier_code": "ACME", "product_code": CARD_PRODUCT, "priority": -3}, 422, "validation_failed"),
    ):
        response = await shop.client.post(f"/api/admin/skus/{card_sku.id}/supplier-mappings", headers=shop.admin,
                                          json=body)
        assert response.status_code == status and response.json()["code"] == code, response.text
    unknown_sku = await shop.client.post("/api/admin/skus/999999/supplier-mappings", headers=shop.admin,
                                         json={"supplier_code": "ACME", "product_code": CARD_PRODUCT})
    assert unknown_sku.status_code == 404

    disabled = await shop.client.patch(f"/api/admin/supplier-mappings/{mapping['id']}", headers=shop.admin,
                                       json={"enabled": False})
    assert disabled.status_code == 200 and not disabled.json()["enabled"] and not disabled.json()["usable"]
    listed = (await shop.client.get(f"/api/admin/skus/{card_sku.id}/supplier-mappings", headers=shop.admin)).json()
    assert [m["product"]["product_code"] for m in listed] == [CARD_PRODUCT]
    unmapped = (await shop.client.get("/api/admin/suppliers/ACME/products?unmapped=true", headers=shop.admin)).json()
    assert {p["product_code"] for p in unmapped} == {"VIP-MONTH", "QQ-COIN-10"}
    url = f"/api/admin/supplier-mappings/{mapping['id']}"
    assert (await shop.client.delete(url, headers=shop.admin)).status_code == 204
    assert (await shop.client.delete(url, headers=shop.admin)).status_code == 404
    assert await shop.scalar(select(func.count()).select_from(SkuSupplierMapping)) == 1


async def test_cli_maps_and_unmaps(shop, sim, settings):
    await register(shop, sim)
    await sync(shop)
    sku = await shop.make_sku(code="GIFT-CARD", price_cents=10000)
    mapped = await quanyi_cli(settings, "suppliers", "map", "gift-card", "ACME", CARD_PRODUCT, "--priority", "5")
    assert mapped.returncode == 0 and "priority 5" in mapped.stdout, mapped.stderr
    crossed = await quanyi_cli(settings, "suppliers", "map", "gift-card", "ACME", RECHARGE_PRODUCT)
    assert crossed.returncode == 1 and "mapping_kind_mismatch" in crossed.stderr
    assert await shop.count(SkuSupplierMapping, SkuSupplierMapping.sku_id == sku.id) == 1
    unmapped = await quanyi_cli(settings, "suppliers", "unmap", "GIFT-CARD", "acme", CARD_PRODUCT)
    assert unmapped.returncode == 0, unmapped.stderr
    assert await shop.count(SkuSupplierMapping) == 0
