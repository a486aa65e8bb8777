"""Supplier statements per cycle in the shop's timezone (JSON and CSV), and reconciliation against the quanyi
supplier simulator (a real HTTP test peer) finding planted mismatches."""

from __future__ import annotations

import csv
import datetime as dt
import io

from sqlalchemy import select

from quanyi.ledger import service as ledger_service
from quanyi.orders.models import Order
from quanyi.suppliers import service as suppliers_service
from quanyi.suppliers.adapter import CardPurchaseRequest
from quanyi.testpeers.suppliers import CARD_PRODUCT, start_supplier_simulator

from .support import make_supplier

UTC = dt.UTC


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


async def _movements(shop, supplier_id: int, order_id: int) -> None:
    """Shanghai is UTC+8: 2026-12-01 local runs from 2026-11-30T16:00Z to 2026-12-01T16:00Z."""
    async with shop.ctx.db.transaction() as session:
        await ledger_service.top_up_supplier(session=session, supplier_id=supplier_id, amount_cents=10_000,
                                             note="opening", actor="test", now=_at("2026-11-30T10:00:00"))
        await ledger_service.charge_supplier(session=session, supplier_id=supplier_id, amount_cents=700,
                                             reference="B-700", now=_at("2026-11-30T16:00:00"))
        await ledger_service.charge_supplier(session=session, supplier_id=supplier_id, amount_cents=1_500,
                                             reference="A-1500", order_id=order_id, now=_at("2026-12-01T00:30:00"))
        await ledger_service.release_supplier_charge(session=session, reference="B-700", reason="failed",
                                                     now=_at("2026-12-01T03:00:00"))
        await ledger_service.top_up_supplier(session=session, supplier_id=supplier_id, amount_cents=2_000,
                                             note="bank 1201", actor="test", now=_at("2026-12-01T10:00:00"))
        await ledger_service.charge_supplier(session=session, supplier_id=supplier_id, amount_cents=300,
                                             reference="C-300", now=_at("2026-12-01T16:00:00"))


async def test_daily_and_weekly_statements_follow_local_day_boundaries(shop, app, order):
    supplier = await make_supplier(shop.ctx, code="SUPST")
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
    await _movements(shop, supplier.id, order_id)

    daily = await shop.client.get("/api/admin/ledger/suppliers/SUPST/statement",
                                  params={"period": "2026-12-01", "cycle": "daily"}, headers=shop.admin)
    assert daily.status_code == 200, daily.text
    body = daily.json()
    assert (body["opening_cents"], body["purchases_cents"], body["releases_cents"], body["top_ups_cents"],
            body["closing_cents"]) == (10_000, 2_200, 700, 2_000, 10_500)
    assert [(ln["kind"], ln["reference"], ln["amount_cents"], ln["balance_after_cents"]) for ln in body["lines"]] == [
        ("purchase", "B-700", -700, 9_300), ("purchase", "A-1500", -1_500, 7_800),
        ("release", "B-700", 700, 8_500), ("top_up", body["lines"][3]["reference"], 2_000, 10_500)]
    assert body["lines"][1]["order_no"] == order["order_no"]
    assert body["period_start"].startswith("2026-11-30T16:00:00") and body["untracked_cents"] == 0

    weekly = (await shop.client.get("/api/admin/ledger/suppliers/SUPST/statement",
                                    params={"period": "2026-12-03", "cycle": "weekly"}, headers=shop.admin)).json()
    assert weekly["period"] == "2026-11-30..2026-12-06"
    assert (weekly["opening_cents"], weekly["closing_cents"], len(weekly["lines"])) == (0, 10_200, 6)
    # The supplier's own cycle (daily) is the default; the next day holds only C.
    next_day = (await shop.client.get("/api/admin/ledger/suppliers/SUPST/statement",
                                      params={"period": "2026-12-02"}, headers=shop.admin)).json()
    assert (next_day["cycle"], next_day["opening_cents"], next_day["closing_cents"]) == ("daily", 10_500, 10_200)


async def test_statement_csv_is_a_download_with_opening_lines_and_closing(shop, app, order):
    supplier = await make_supplier(shop.ctx, code="SUPCSV")
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
    await _movements(shop, supplier.id, order_id)
    response = await shop.client.get("/api/admin/ledger/suppliers/SUPCSV/statement.csv",
                                     params={"period": "2026-12-01", "cycle": "daily"}, headers=shop.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="statement-SUPCSV-daily-2026-12-01.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [r["kind"] for r in rows] == ["opening", "purchase", "purchase", "release", "top_up", "closing"]
    assert rows[0]["balance_cents"] == "10000" and rows[-1]["balance_cents"] == "10500"
    assert rows[2]["order_no"] == order["order_no"] and rows[2]["amount"] == "-¥15.00"
    assert rows[1]["time"] == "2026-12-01T00:00:00+08:00"


async def test_reconciliation_finds_the_planted_mismatches(shop, app):
    sim = start_supplier_simulator("quanyi", seed=7)
    try:
        supplier = await make_supplier(shop.ctx, code="SUPQY", base_url=sim.base_url, credentials=sim.credentials)
        adapter = suppliers_service.adapter_for(supplier, cipher=shop.ctx.cipher, http=shop.ctx.http)
        one = await adapter.buy_card_keys(CardPurchaseRequest("REC-OK", CARD_PRODUCT, 1, 9_500))
        two = await adapter.buy_card_keys(CardPurchaseRequest("REC-AMOUNT", CARD_PRODUCT, 2, 9_500))
        await adapter.buy_card_keys(CardPurchaseRequest("REC-RELEASED", CARD_PRODUCT, 1, 9_500))
        async with shop.ctx.db.transaction() as session:
            await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id, amount_cents=100_000,
                                                 note="", actor="test")
            for reference, cents in [("REC-OK", one.unit_cost_cents), ("REC-AMOUNT", two.unit_cost_cents),
                                     ("REC-GHOST", 500), ("REC-RELEASED", 9_500), ("REC-NEVER", 800)]:
                await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=cents,
                                                     reference=reference)
            for reference in ("REC-RELEASED", "REC-NEVER"):
                await ledger_service.release_supplier_charge(session=session, reference=reference, reason="test")
        today = dt.datetime.now(UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        response = await shop.client.get("/api/admin/ledger/suppliers/SUPQY/reconciliation",
                                         params={"period": today, "cycle": "daily"}, headers=shop.admin)
        assert response.status_code == 200, response.text
        body = response.json()
    finally:
        sim.stop()
    assert body["checked"] == 5 and body["mismatches"] == 3
    problems = {item["reference"]: (item["problem"], item["supplier_state"]) for item in body["items"]}
    assert problems == {
        "REC-OK": (None, "succeeded"),
        "REC-AMOUNT": ("amount_differs", "succeeded"),  # we charged one unit, the supplier sold us two
        "REC-GHOST": ("charged_but_supplier_has_no_purchase", "not_found"),
        "REC-RELEASED": ("released_but_supplier_completed", "succeeded"),
        "REC-NEVER": (None, "not_found"),
    }
    amounts = {item["reference"]: item["supplier_amount_cents"] for item in body["items"]}
    assert amounts["REC-AMOUNT"] == 2 * two.unit_cost_cents


async def test_reconciliation_reports_an_unreachable_supplier_instead_of_failing(shop, app):
    supplier = await make_supplier(shop.ctx, code="SUPDOWN", base_url="http://127.0.0.1:9",
                                   credentials={"app_id": "x", "secret": "y"})
    async with shop.ctx.db.transaction() as session:
        await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id, amount_cents=1_000,
                                             note="", actor="test")
        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=100,
                                             reference="DOWN-1")
    today = dt.datetime.now(UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    response = await shop.client.get("/api/admin/ledger/suppliers/SUPDOWN/reconciliation",
                                     params={"period": today}, headers=shop.admin)
    assert response.status_code == 200, response.text
    assert [(i["reference"], i["problem"]) for i in response.json()["items"]] == [("DOWN-1", "query_failed")]
