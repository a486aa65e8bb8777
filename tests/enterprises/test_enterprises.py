"""Enterprise customers (企业客户): registration with invoice data and contacts, prepaid top-ups booked in the
ledger (idempotent), suspension freezing the account, negotiated tier prices (阶梯价) and the CLI."""

from __future__ import annotations

from sqlalchemy import select

from enterprises.support import add_enterprise, balance_of, books_balanced, run_cli, set_tiers, top_up
from helpers import Shop
from quanyi.enterprises.models import Enterprise, EnterprisePriceTier
from quanyi.ledger.models import CustomerAccount, LedgerPosting

INVOICE = {"invoice_title": "上海某某科技有限公司", "tax_number": "91310000MA1FL8XQ3B",
           "invoice_address": "上海市浦东新区 1 号", "invoice_phone": "021-12345678", "bank_name": "招商银行上海分行",
           "bank_account": "6214 8301 2345 6789", "invoice_email": "Finance@ACME.example"}


async def test_an_enterprise_keeps_its_invoice_data_and_contacts(shop: Shop):
    created = await add_enterprise(shop, credit_limit_cents=10_000, invoice=INVOICE)
    assert created["account_code"] == "enterprise:ACME" and created["balance_cents"] == 0
    assert created["invoice"]["invoice_email"] == "finance@acme.example"
    assert created["invoice"]["tax_number"] == "91310000MA1FL8XQ3B"
    contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin, json={
        "name": "王芳", "role": "hr", "email": "wang@acme.example", "phone": "+86 138-0013-8000"})
    assert contact.status_code == 201, contact.text
    assert contact.json()["phone"] == "13800138000"
    shown = (await shop.client.get("/api/admin/enterprises/ACME", headers=shop.admin)).json()
    assert [c["name"] for c in shown["contacts"]] == ["王芳"]
    changed = await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin,
                                      json={"invoice": {**INVOICE, "invoice_title": "新抬头"}})
    assert changed.json()["invoice"]["invoice_title"] == "新抬头"
    removed = await shop.client.delete(f"/api/admin/enterprises/ACME/contacts/{contact.json()['id']}",
                                       headers=shop.admin)
    assert removed.status_code == 204
    again = await shop.client.delete(f"/api/admin/enterprises/ACME/contacts/{contact.json()['id']}",
                                     headers=shop.admin)
    assert again.status_code == 404 and again.json()["code"] == "enterprise_contact_not_found"


async def test_bad_enterprise_input_is_refused_and_changes_nothing(shop: Shop):
    cases = [
        ({"code": "ACME", "name": "x", "invoice": {"tax_number": "12345"}}, 422),
        ({"code": "ACME", "name": "x", "invoice": {"invoice_email": "not-mail"}}, 422),
        ({"code": "ACME", "name": "x", "invoice": {"bank_account": "abc"}}, 422),
        ({"code": "-bad", "name": "x"}, 422),
        ({"code": "ACME", "name": "x\x00"}, 422),
        ({"code": "ACME", "name": "x", "credit_limit_cents": -1}, 422),
        ({"code": "ACME", "name": "x", "surprise": 1}, 422),
    ]
    for body, status in cases:
        response = await shop.client.post("/api/admin/enterprises", headers=shop.admin, json=body)
        assert response.status_code == status, (body, response.text)
    assert await shop.count(Enterprise) == 0 and await shop.count(CustomerAccount) == 0
    await add_enterprise(shop)
    twice = await shop.client.post("/api/admin/enterprises", headers=shop.admin, json={"code": "ACME", "name": "y"})
    assert twice.status_code == 409 and twice.json()["code"] == "enterprise_exists"
    nobody = await shop.client.post("/api/admin/enterprises", json={"code": "B", "name": "y"})
    assert nobody.status_code == 401
    bad_contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin,
                                         json={"name": "x", "role": "hr"})
    assert bad_contact.status_code == 422 and "e-mail address or a phone" in bad_contact.json()["detail"]
    missing = await shop.client.get("/api/admin/enterprises/NOPE", headers=shop.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "enterprise_not_found"


async def test_top_ups_are_booked_in_the_ledger_once_per_reference(shop: Shop):
    await add_enterprise(shop)
    first = await top_up(shop, "ACME", 500_000, key="bank-2026-001")
    again = await top_up(shop, "ACME", 500_000, key="bank-2026-001")
    assert first["created"] is True and again["created"] is False
    assert again["balance_cents"] == 500_000 == await balance_of(shop, "ACME")
    await top_up(shop, "ACME", 1)
    assert await balance_of(shop, "ACME") == 500_001
    assert await shop.count(LedgerPosting, LedgerPosting.kind == "customer_top_up") == 2
    zero = await shop.client.post("/api/admin/enterprises/ACME/top-ups", headers=shop.admin,
                                  json={"amount_cents": 0, "note": "x"})
    assert zero.status_code == 422
    assert await balance_of(shop, "ACME") == 500_001
    await books_balanced(shop)


async def test_suspending_freezes_the_prepaid_account(shop: Shop):
    await add_enterprise(shop, top_up_cents=1000)
    suspended = await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin,
                                        json={"status": "suspended", "credit_limit_cents": 500})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert suspended.json()["credit_limit_cents"] == 500
    assert await shop.scalar(select(CustomerAccount.status).where(CustomerAccount.code == "enterprise:ACME")) == \
        "frozen"
    active = await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin, json={"status": "active"})
    assert active.json()["status"] == "active"
    assert await shop.scalar(select(CustomerAccount.status).where(CustomerAccount.code == "enterprise:ACME")) == \
        "active"


async def test_tier_prices_apply_by_quantity(shop: Shop):
    await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await add_enterprise(shop)

    async def quote(quantity: int) -> int:
        response = await shop.client.get(f"/api/admin/enterprises/ACME/quote?sku=gift-100&quantity={quantity}",
                                         headers=shop.admin)
        assert response.status_code == 200, response.text
        return response.json()["unit_price_cents"]  # type: ignore[no-any-return]

    assert await quote(5) == 10_000  # no tiers: the list price
    await set_tiers(shop, "ACME", "GIFT-100", (100, 9_500), (10, 9_800), (1000, 9_300))
    assert [await quote(q) for q in (1, 9, 10, 99, 100, 999, 1000, 50_000)] == [
        10_000, 10_000, 9_800, 9_800, 9_500, 9_500, 9_300, 9_300]
    listed = (await shop.client.get("/api/admin/enterprises/ACME/prices", headers=shop.admin)).json()
    assert listed == [{"sku_code": "GIFT-100", "list_price_cents": 10_000, "currency": "CNY", "tiers": [
        {"min_quantity": 10, "unit_price_cents": 9_800}, {"min_quantity": 100, "unit_price_cents": 9_500},
        {"min_quantity": 1000, "unit_price_cents": 9_300}]}]
    await set_tiers(shop, "ACME", "GIFT-100", (1, 9_900))  # replaces all tiers: a flat negotiated price
    assert await quote(5000) == 9_900
    removed = await shop.client.delete("/api/admin/enterprises/ACME/prices/GIFT-100", headers=shop.admin)
    assert removed.status_code == 204 and await quote(5000) == 10_000


async def test_bad_tiers_are_refused_and_keep_the_old_price(shop: Shop):
    await shop.make_sku(code="GIFT-100", price_cents=10_000)
    await add_enterprise(shop)
    await set_tiers(shop, "ACME", "GIFT-100", (1, 9_900))
    for tiers, words in (([(1, 9_000), (10, 9_500)], "must not rise"), ([(5, 9_000), (5, 8_000)], "two tiers"),
                         ([(0, 9_000)], None), ([(1, 0)], None), ([], None)):
        response = await shop.client.put("/api/admin/enterprises/ACME/prices/GIFT-100", headers=shop.admin, json={
            "tiers": [{"min_quantity": q, "unit_price_cents": p} for q, p in tiers]})
        assert response.status_code == 422, response.text
        if words:
            assert words in response.json()["detail"]
    unknown = await shop.client.put("/api/admin/enterprises/ACME/prices/NOPE", headers=shop.admin,
                                    json={"tiers": [{"min_quantity": 1, "unit_price_cents": 1}]})
    assert unknown.status_code == 404
    assert await shop.scalar(select(EnterprisePriceTier.unit_price_cents)) == 9_900
    assert await shop.count(EnterprisePriceTier) == 1


async def test_the_cli_registers_tops_up_and_sets_tiers(shop: Shop, monkeypatch):
    await shop.make_sku(code="GIFT-100", price_cents=10_000)
    added = await run_cli(shop, monkeypatch, "enterprises", "add", "ACME", "--name", "Acme",
                          "--tax-number", "91310000MA1FL8XQ3B")
    assert added.exit_code == 0, added.output
    topped = await run_cli(shop, monkeypatch, "enterprises", "top-up", "ACME", "--amount", "1234.50",
                           "--reference", "b1")
    assert topped.exit_code == 0 and "¥1,234.50" in topped.output.replace("¥1234.50", "¥1,234.50"), topped.output
    again = await run_cli(shop, monkeypatch, "enterprises", "top-up", "ACME", "--amount", "1234.50",
                          "--reference", "b1")
    assert "Already recorded" in again.output
    assert await balance_of(shop, "ACME") == 123_450
    tiers = await run_cli(shop, monkeypatch, "enterprises", "prices", "ACME", "--set", "GIFT-100=1:99.00,100:95")
    assert tiers.exit_code == 0 and "100+" in tiers.output, tiers.output
    bad = await run_cli(shop, monkeypatch, "enterprises", "prices", "ACME", "--set", "GIFT-100=1:90,100:95")
    assert bad.exit_code != 0 and "must not rise" in bad.output
    listed = await run_cli(shop, monkeypatch, "enterprises", "list")
    assert "ACME" in listed.output and "91310000MA1FL8XQ3B" in listed.output
