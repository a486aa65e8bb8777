"""The review queue in the console (same review service as the API), order exports (CSV and XLSX, contacts
masked by role, nothing a spreadsheet would run), and the dashboard's figures."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import openpyxl
from sqlalchemy import select, update

from console.support import logged_in, post_form
from quanyi.console.dashboard import build_dashboard
from quanyi.exports import Column, csv_chunks
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, OutboxMessage
from quanyi.risk.models import ReviewAction
from quanyi.shoptime import shop_zone
from quanyi.staff.models import StaffAuditEntry
from risk.support import add_rule, checkout


async def test_a_held_order_is_approved_or_rejected_with_a_reason(shop, app):
    sku = await shop.make_sku(code="REVIEW-GOODS")
    await shop.stock(sku, 5)
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="review",
                   stages=["payment"], name="large order")  # a shipped rule's name: shown in Chinese
    held = []
    for contact in ("a@example.com", "b@example.com"):
        response = await checkout(shop, sku.id, quantity=2, contact=contact)
        held.append(response.json())
        assert (await shop.pay_via_cashier(held[-1])).status_code == 303
    client = await logged_in(shop, "rita", roles=("risk_reviewer",))
    queue = await client.get("/console/reviews")
    assert queue.status_code == 200 and queue.text.count('data-testid="held-order"') == 2
    first, second = (h["order_no"] for h in held)
    page = await client.get(f"/console/reviews/{first}")
    assert "大数量订单" in page.text and ">large order<" not in page.text and "198.51.100.7" in page.text
    assert ">人工审核</td>" in page.text and ">review</td>" not in page.text  # the rule's action, said

    no_reason = await post_form(client, f"/console/reviews/{first}/approve", {"reason": "  "},
                                page_url=f"/console/reviews/{first}")
    assert no_reason.status_code == 422 and (await shop.get_order(held[0]))["status"] == "under_review"
    approved = await post_form(client, f"/console/reviews/{first}/approve", {"reason": "known customer, called"},
                               page_url=f"/console/reviews/{first}")
    assert approved.status_code == 303 and "m=approved" in approved.headers["location"]
    assert (await shop.get_order(held[0]))["delivered_keys"] == 2
    twice = await post_form(client, f"/console/reviews/{first}/approve", {"reason": "again"},
                            page_url=f"/console/reviews/{first}")
    assert twice.status_code == 409
    assert "此订单已不在审核中" in twice.text and "not under review" not in twice.text

    rejected = await post_form(client, f"/console/reviews/{second}/reject", {"reason": "stolen card pattern"},
                               page_url=f"/console/reviews/{second}")
    assert rejected.status_code == 303 and "m=rejected" in rejected.headers["location"]
    assert (await shop.get_order(held[1]))["status"] == "refunded"
    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(ReviewAction).order_by(ReviewAction.id))).all()
        audit = (await session.scalars(select(StaffAuditEntry.action).where(StaffAuditEntry.actor == "rita")
                                       .order_by(StaffAuditEntry.id))).all()
    assert [(a.action, a.actor, a.reason) for a in actions] == [
        ("approve", "rita", "known customer, called"), ("reject", "rita", "stolen card pattern")]
    assert audit == ["login", "review_approved", "review_rejected"]


async def test_csv_cells_a_spreadsheet_would_run_are_defused():
    async def rows():
        yield [["=HYPERLINK(\"http://evil\")", "+1", "-2", "@SUM(A1)", "plain", 5]]

    body = b"".join([chunk async for chunk in csv_chunks([Column("a")] * 6, rows())]).decode("utf-8")
    assert body.startswith("\ufeff")
    assert body.splitlines()[1] == "\"'=HYPERLINK(\"\"http://evil\"\")\",'+1,'-2,'@SUM(A1),plain,5"


async def test_order_exports_stream_every_match_with_contacts_masked_by_role(shop, app, stocked_sku):
    orders = [await shop.create_order(stocked_sku.id, contact=f"buyer{i}@example.com") for i in range(3)]
    await shop.pay(orders[0])
    client = await logged_in(shop, "fin", roles=("finance",))
    csv_answer = await client.get("/console/orders/export", params={"format": "csv"})
    assert csv_answer.status_code == 200 and csv_answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_answer.headers["content-disposition"]
    lines = csv_answer.text.lstrip("\ufeff").splitlines()
    assert len(lines) == 4 and lines[0].startswith("order_no,created_at,status")
    assert "b***@example.com" in csv_answer.text and "buyer0@example.com" not in csv_answer.text

    paid_only = await client.get("/console/orders/export", params={"format": "xlsx", "status": "paid"})
    assert paid_only.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(paid_only.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("order_no", "created_at", "status") and len(rows) == 1  # paid = delivered now
    delivered = await client.get("/console/orders/export", params={"format": "xlsx", "status": "delivered"})
    rows = list(openpyxl.load_workbook(io.BytesIO(delivered.content)).active.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][0] == orders[0]["order_no"]
    assert isinstance(rows[1][1], dt.datetime) and rows[1][8] == stocked_sku.price_cents / 100
    async with shop.ctx.db.read_session() as session:
        audit = (await session.scalars(select(StaffAuditEntry.summary).where(
            StaffAuditEntry.action == "orders_exported").order_by(StaffAuditEntry.id))).all()
    assert audit == ["csv ", "xlsx status=paid", "xlsx status=delivered"]


async def test_dashboard_figures_come_from_the_orders_refunds_stock_and_outbox(shop, app, stocked_sku):
    empty = await shop.make_sku(code="EMPTY-SKU")
    for i in range(3):
        order = await shop.create_order(stocked_sku.id, contact=f"d{i}@example.com")
        if i < 2:
            await shop.pay(order)
    async with shop.ctx.db.transaction() as session:
        await notifications_service.enqueue(session=session, channel=Channel.EMAIL, recipient="x@example.com",
                                            kind=Kind.ORDER_DELIVERED, locale="zh-CN", payload={}, dedupe_key="t1")
        await session.execute(update(OutboxMessage).values(status="dead", last_error="550 mailbox unavailable"))
    zone = shop_zone(shop.ctx.settings.shop_timezone)
    board = await build_dashboard(db=shop.ctx.db, zone=zone, period="7d", low_stock_threshold=8)
    price = stocked_sku.price_cents
    assert board.sales == {"CNY": 2 * price} and board.paid_orders == 2
    assert (board.placed_orders, board.placed_and_paid) == (3, 2)
    hour = dt.datetime.now(zone).hour
    assert board.by_hour[hour] == 2 * price and sum(board.by_hour) == 2 * price
    assert board.by_day[-1] == (dt.datetime.now(zone).date(), 2 * price) and len(board.by_day) == 7
    assert [(s.sku_code, s.units, s.cents) for s in board.by_sku] == [("STOCKED-1M", 2, 2 * price)]
    alerts = {a.sku_code: (a.available, a.sold_out) for a in board.stock_alerts}
    assert alerts == {"EMPTY-SKU": (0, True), "STOCKED-1M": (7, False)}  # 10 keys: 2 sold, 1 reserved
    assert board.dead_notifications == 1 and board.review_queue == 0
    assert board.waiting == {"paid": 0, "refund_pending": 0}
    assert empty.code == "EMPTY-SKU"

    client = await logged_in(shop, "ola", roles=("operator",))
    page = await client.get("/console/dashboard", params={"period": "7d", "lang": "zh-CN"})
    assert page.status_code == 200
    assert 'data-testid="dead-kind" title="order_delivered">发货通知<' in page.text  # not the raw kind
    data = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page.text,
                                re.S).group(1))
    assert data["by_hour"]["series"][0]["data"][hour] == 2 * price and data["by_sku"]["labels"]
