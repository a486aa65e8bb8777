"""The ledger admin API: trial balance, an order's postings, supplier top-ups, profit-sharing rules; and bad
input answered with a clear 4xx that changes nothing."""

from __future__ import annotations

import pytest

from promoters.support import make_promoter

from .support import make_supplier, posting_count, supplier_balance


async def test_trial_balance_and_order_postings_after_a_sale(shop, app, stocked_sku):
    await make_promoter(shop, "D7")
    order = await shop.create_order(stocked_sku.id, distributor_code="D7")
    await shop.pay(order)
    trial = await shop.client.get("/api/admin/ledger/trial-balance", headers=shop.admin)
    assert trial.status_code == 200
    body = trial.json()
    assert body["balanced"] and body["totals"] == {"CNY": 0} and body["postings"] == 2
    assert {a["code"]: a["balance_cents"] for a in body["accounts"]} == {
        "gateway_clearing:sandbox": 1980, "customer_liability": 0, "platform_revenue": -1980}
    postings = (await shop.client.get(f"/api/admin/ledger/orders/{order['order_no']}/postings",
                                      headers=shop.admin)).json()
    assert [p["kind"] for p in postings] == ["payment_received", "order_delivered"]
    assert postings[0]["entries"] == [
        {"account": "gateway_clearing:sandbox", "amount_cents": 1980, "currency": "CNY"},
        {"account": "customer_liability", "amount_cents": -1980, "currency": "CNY"}]


async def test_top_up_with_idempotency_key_credits_once(shop, app):
    supplier = await make_supplier(shop.ctx, code="SUPTOP", balance_cents=0)
    headers = {**shop.admin, "Idempotency-Key": "topup-2026-12-01-a"}
    for _ in range(2):
        response = await shop.client.post("/api/admin/ledger/suppliers/SUPTOP/top-ups", headers=headers,
                                          json={"amount_cents": 250_000, "note": "bank transfer"})
        assert response.status_code == 201, response.text
        assert response.json()["balance_cents"] == 250_000
    assert await supplier_balance(shop.ctx, supplier.id) == 250_000
    assert await posting_count(shop.ctx, kind="supplier_top_up") == 1


async def test_share_rules_can_be_set_listed_and_removed(shop, app, sku):
    put = await shop.client.put("/api/admin/ledger/share-rules", headers=shop.admin,
                                json={"sku_id": sku.id, "merchant_code": "M-1", "merchant_bps": 2000,
                                      "distributor_bps": 300})
    assert put.status_code == 200 and put.json()["scope"] == f"sku:{sku.id}"
    listed = (await shop.client.get("/api/admin/ledger/share-rules", headers=shop.admin)).json()
    assert [(r["scope"], r["merchant_bps"], r["distributor_bps"]) for r in listed] == [(f"sku:{sku.id}", 2000, 300)]
    gone = await shop.client.delete("/api/admin/ledger/share-rules", params={"sku_id": sku.id}, headers=shop.admin)
    assert gone.status_code == 204
    again = await shop.client.delete("/api/admin/ledger/share-rules", params={"sku_id": sku.id}, headers=shop.admin)
    assert again.status_code == 404


@pytest.mark.parametrize("body", [{"amount_cents": 0}, {"amount_cents": -5}, {"amount_cents": 1.5},
                                  {"amount_cents": "100"}, {"amount_cents": 10**12}, {},
                                  {"amount_cents": 100, "extra": 1}, {"amount_cents": 100, "note": "x" * 501},
                                  {"amount_cents": 100, "note": "paid\x00"}])
async def test_bad_top_ups_are_refused_and_change_nothing(shop, app, body):
    supplier = await make_supplier(shop.ctx, code="SUPBAD", balance_cents=0)
    response = await shop.client.post("/api/admin/ledger/suppliers/SUPBAD/top-ups", headers=shop.admin, json=body)
    assert response.status_code == 422, response.text
    assert await supplier_balance(shop.ctx, supplier.id) == 0
    assert await posting_count(shop.ctx) == 0


@pytest.mark.parametrize(("path", "params", "status"), [
    ("/api/admin/ledger/suppliers/NOPE/statement", {"period": "2026-12-01"}, 404),
    ("/api/admin/ledger/suppliers/SUPQ/statement", {"period": "2026-13-01"}, 422),
    ("/api/admin/ledger/suppliers/SUPQ/statement", {}, 422),
    ("/api/admin/ledger/suppliers/SUPQ/statement", {"period": "2026-12-01", "cycle": "monthly"}, 422),
    ("/api/admin/ledger/suppliers/SUPQ/statement.csv", {"period": "yesterday"}, 422),
    ("/api/admin/ledger/suppliers/NOPE/reconciliation", {"period": "2026-12-01"}, 404),
    ("/api/admin/ledger/orders/Q000/postings", {}, 404),
])
async def test_bad_statement_requests_get_4xx(shop, app, path, params, status):
    await make_supplier(shop.ctx, code="SUPQ")
    response = await shop.client.get(path, params=params, headers=shop.admin)
    assert response.status_code == status, response.text
    assert response.json()["code"]


async def test_ledger_needs_the_admin_token(shop, app):
    await make_supplier(shop.ctx, code="SUPAUTH")
    for method, path in [("GET", "/api/admin/ledger/trial-balance"),
                         ("POST", "/api/admin/ledger/suppliers/SUPAUTH/top-ups"),
                         ("GET", "/api/admin/ledger/suppliers/SUPAUTH/statement.csv?period=2026-12-01")]:
        response = await shop.client.request(method, path, json={"amount_cents": 100},
                                              headers={"Authorization": "Bearer wrong"})
        assert response.status_code == 401
    assert await posting_count(shop.ctx) == 0


@pytest.mark.parametrize("body", [{"merchant_bps": 10_001}, {"merchant_bps": 6000, "distributor_bps": 5000,
                                                               "merchant_code": "M"},
                                  {"merchant_bps": 100}, {"merchant_code": "bad code!"}, {"sku_id": 0},
                                  {"sku_id": 999_999}])
async def test_bad_share_rules_are_refused(shop, app, body):
    response = await shop.client.put("/api/admin/ledger/share-rules", headers=shop.admin, json=body)
    assert response.status_code in (404, 422), response.text
    assert (await shop.client.get("/api/admin/ledger/share-rules", headers=shop.admin)).json() == []


async def test_checkout_refuses_a_malformed_distributor_code(shop, app, stocked_sku):
    response = await shop.client.post("/api/orders", json={"sku_id": stocked_sku.id, "contact": "a@example.com",
                                                           "distributor_code": "<script>"})
    assert response.status_code == 422


async def test_import_records_unit_cost_and_refuses_a_negative_one(shop, app, sku):
    files = {"file": ("keys.txt", b"AAAA-BBBB-CCCC-DDD1\nAAAA-BBBB-CCCC-DDD2\n", "text/plain")}
    bad = await shop.client.post(f"/api/admin/skus/{sku.id}/card-keys/import", headers=shop.admin, files=files,
                                 data={"unit_cost_cents": "-1"})
    assert bad.status_code == 422
    good = await shop.client.post(f"/api/admin/skus/{sku.id}/card-keys/import", headers=shop.admin, files=files,
                                  data={"unit_cost_cents": "1234"})
    assert good.status_code == 201, good.text
    batches = (await shop.client.get(f"/api/admin/skus/{sku.id}/batches", headers=shop.admin)).json()
    assert [b["unit_cost_cents"] for b in batches] == [1234]
