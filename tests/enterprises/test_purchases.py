"""Bulk purchases (批量采购): N codes bought in chunks by a resumable job, each chunk one order paid from the
enterprise's balance at its tier price for N; exact under crashes (a chunk is committed whole or not at all,
the next worker resumes), paused by refusals and resumed; the codes download as CSV/XLSX by expiring, audited
links, never stored in plaintext."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest
from sqlalchemy import func, select, update

from enterprises.support import add_enterprise, balance_of, books_balanced, set_tiers, top_up
from helpers import Shop, raw_database_bytes
from quanyi.db import utcnow
from quanyi.enterprises import purchases
from quanyi.enterprises.models import BulkPurchase, BulkPurchaseOrder, DownloadAudit
from quanyi.inventory.models import CardKey, KeyReveal
from quanyi.ledger.models import CustomerCharge
from quanyi.orders.models import Order


async def _setup(shop: Shop, *, stock: int = 30, balance: int = 1_000_000, max_quantity: int = 10):
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000, max_quantity=max_quantity)
    codes = await shop.stock(sku, stock)
    await add_enterprise(shop, top_up_cents=balance)
    contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin, json={
        "name": "采购 李", "role": "purchasing", "email": "buy@acme.example"})
    assert contact.status_code == 201
    return sku, codes


async def _buy(shop: Shop, quantity: int, key: str | None = None, **extra) -> dict:  # type: ignore[no-untyped-def]
    headers = {**shop.admin, **({"Idempotency-Key": key} if key else {})}
    response = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers=headers,
                                      json={"sku_code": "GIFT-100", "quantity": quantity, **extra})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def _show(shop: Shop, no: str) -> dict:  # type: ignore[type-arg]
    response = await shop.client.get(f"/api/admin/enterprises/ACME/purchases/{no}", headers=shop.admin)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _exact(shop: Shop, sku_id: int, quantity: int, unit: int, start_balance: int) -> None:
    """Exactly `quantity` keys sold, each once, to orders of this purchase; charged once per order; books even."""
    assert await shop.count(CardKey, CardKey.sku_id == sku_id, CardKey.status == "sold") == quantity
    assert await shop.scalar(select(func.sum(Order.quantity)).join(
        BulkPurchaseOrder, BulkPurchaseOrder.order_id == Order.id)) == quantity
    charged = await shop.scalar(select(func.coalesce(func.sum(CustomerCharge.amount_cents), 0)))
    assert charged == quantity * unit
    assert await balance_of(shop, "ACME") == start_balance - quantity * unit
    await books_balanced(shop)


async def test_a_bulk_purchase_buys_n_codes_in_chunks_at_the_tier_price(shop: Shop):
    sku, _ = await _setup(shop)
    await set_tiers(shop, "ACME", "GIFT-100", (10, 9_800), (20, 9_500))
    queued = await _buy(shop, 25, key="po-1")
    assert queued["status"] == "queued" and queued["unit_price_cents"] == 9_500 and queued["total_cents"] == 237_500
    again = await _buy(shop, 25, key="po-1")
    assert again["purchase_no"] == queued["purchase_no"] and await shop.count(BulkPurchase) == 1
    differs = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers={
        **shop.admin, "Idempotency-Key": "po-1"}, json={"sku_code": "GIFT-100", "quantity": 26})
    assert differs.status_code == 409

    assert await purchases.run_due_purchases(db=shop.ctx.db, owner="w1") == 1
    done = await _show(shop, queued["purchase_no"])
    assert (done["status"], done["placed_quantity"], done["delivered_quantity"], done["orders"],
            done["progress_percent"]) == ("completed", 25, 25, 3, 100)
    async with shop.ctx.db.read_session() as session:  # chunks of at most the SKU's max_quantity
        chunks = (await session.scalars(select(BulkPurchaseOrder.quantity).order_by(BulkPurchaseOrder.seq))).all()
    assert list(chunks) == [10, 10, 5]
    await _exact(shop, sku.id, 25, 9_500, 1_000_000)
    assert await purchases.run_due_purchases(db=shop.ctx.db, owner="w2") == 0  # nothing more to do


async def test_bad_purchases_are_refused_and_change_nothing(shop: Shop):
    await _setup(shop)
    recharge = await shop.make_sku(code="TOPUP-1", delivery_type="direct_recharge")
    for body, status in (({"sku_code": "GIFT-100", "quantity": 0}, 422),
                         ({"sku_code": "GIFT-100", "quantity": 100_001}, 422),
                         ({"sku_code": "NOPE", "quantity": 1}, 404),
                         ({"sku_code": recharge.code, "quantity": 1}, 422),
                         ({"sku_code": "GIFT-100", "quantity": 1, "max_unit_price_cents": 9_999}, 409)):
        response = await shop.client.post("/api/admin/enterprises/ACME/purchases", headers=shop.admin, json=body)
        assert response.status_code == status, (body, response.text)
    await add_enterprise(shop, "NOCONTACT")
    lonely = await shop.client.post("/api/admin/enterprises/NOCONTACT/purchases", headers=shop.admin,
                                    json={"sku_code": "GIFT-100", "quantity": 1})
    assert lonely.status_code == 422 and "no contact" in lonely.json()["detail"]
    assert await shop.count(BulkPurchase) == 0
    missing = await shop.client.get("/api/admin/enterprises/ACME/purchases/BP000", headers=shop.admin)
    assert missing.status_code == 404 and missing.json()["code"] == "purchase_not_found"


async def test_a_short_balance_pauses_and_a_top_up_resumes_it(shop: Shop):
    sku, _ = await _setup(shop, balance=150_000)  # covers 15 codes: one chunk of 10, not two
    queued = await _buy(shop, 25)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    paused = await _show(shop, queued["purchase_no"])
    assert (paused["status"], paused["placed_quantity"], paused["error_code"]) == ("paused", 10,
                                                                                    "insufficient_balance")
    assert await balance_of(shop, "ACME") == 50_000  # the refused chunk took nothing
    assert await shop.count(CardKey, CardKey.sku_id == sku.id, CardKey.status == "sold") == 10
    not_yet = await shop.client.post(f"/api/admin/enterprises/ACME/purchases/{queued['purchase_no']}/cancel",
                                     headers=shop.admin)
    assert not_yet.status_code == 200  # (cancel works on a paused purchase; resume it in a fresh one below)
    blocked = await shop.client.post(f"/api/admin/enterprises/ACME/purchases/{queued['purchase_no']}/resume",
                                     headers=shop.admin)
    assert blocked.status_code == 409

    second = await _buy(shop, 15)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    assert (await _show(shop, second["purchase_no"]))["error_code"] == "insufficient_balance"
    await top_up(shop, "ACME", 200_000)
    resumed = await shop.client.post(f"/api/admin/enterprises/ACME/purchases/{second['purchase_no']}/resume",
                                     headers=shop.admin)
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    assert (await _show(shop, second["purchase_no"]))["status"] == "completed"
    await _exact(shop, sku.id, 25, 10_000, 350_000)


async def test_sold_out_pauses_until_restocked(shop: Shop):
    sku, _ = await _setup(shop, stock=12)
    queued = await _buy(shop, 20)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    paused = await _show(shop, queued["purchase_no"])
    assert (paused["status"], paused["placed_quantity"], paused["error_code"]) == ("paused", 10, "sold_out")
    await shop.stock(sku, 10)
    await shop.client.post(f"/api/admin/enterprises/ACME/purchases/{queued['purchase_no']}/resume",
                           headers=shop.admin)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    assert (await _show(shop, queued["purchase_no"]))["placed_quantity"] == 20
    await _exact(shop, sku.id, 20, 10_000, 1_000_000)


class _Crash(BaseException):
    """A process dying: not an error the job handles (BaseException, like SystemExit)."""


async def test_a_worker_dying_mid_chunk_loses_the_chunk_whole_and_the_next_worker_resumes(shop: Shop, monkeypatch):
    sku, _ = await _setup(shop)
    queued = await _buy(shop, 25)
    real_pay = purchases.pay_order_from_balance
    calls = {"n": 0}

    async def pay_then_die(**kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        result = await real_pay(**kwargs)  # charged and delivered inside the chunk's transaction ...
        if calls["n"] == 2:
            raise _Crash  # ... and the process dies before the commit
        return result

    monkeypatch.setattr(purchases, "pay_order_from_balance", pay_then_die)
    with pytest.raises(_Crash):
        await purchases.run_due_purchases(db=shop.ctx.db, owner="doomed")
    monkeypatch.setattr(purchases, "pay_order_from_balance", real_pay)
    state = await _show(shop, queued["purchase_no"])
    assert (state["status"], state["placed_quantity"]) == ("running", 10)  # the second chunk left nothing
    await _exact(shop, sku.id, 10, 10_000, 1_000_000)

    # While the dead worker's lease runs, nobody else takes the purchase; once it ran out, the next one does.
    assert await purchases.run_due_purchases(db=shop.ctx.db, owner="fresh") == 0
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(BulkPurchase).values(lease_until=utcnow() - dt.timedelta(seconds=1)))
    assert await purchases.run_due_purchases(db=shop.ctx.db, owner="fresh") == 1
    assert (await _show(shop, queued["purchase_no"]))["status"] == "completed"
    await _exact(shop, sku.id, 25, 10_000, 1_000_000)
    # The worker that lost its lease places nothing more even if it comes back.
    assert not await purchases.place_next_chunk(db=shop.ctx.db, purchase_id=1, owner="doomed")


async def test_two_workers_never_place_the_same_chunk(shop: Shop):
    import asyncio

    sku, _ = await _setup(shop)
    await _buy(shop, 25)
    claimed = await asyncio.gather(*(purchases.claim_purchase(db=shop.ctx.db, owner=f"w{i}") for i in range(4)))
    assert len([c for c in claimed if c is not None]) == 1
    # Every worker tries to place chunks at once: only the lease holder places any.
    placed = await asyncio.gather(*(purchases.work_purchase(db=shop.ctx.db, purchase_id=1, owner=f"w{i}")
                                    for i in range(4)))
    assert sum(placed) == 3
    await _exact(shop, sku.id, 25, 10_000, 1_000_000)


async def _link(shop: Shop, no: str, **body) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = await shop.client.post(f"/api/admin/enterprises/ACME/purchases/{no}/links", headers=shop.admin,
                                      json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _path(url: str) -> str:
    return url.removeprefix("http://test")


async def test_codes_download_by_expiring_audited_links_and_rest_only_encrypted(shop: Shop):
    sku, codes = await _setup(shop)
    queued = await _buy(shop, 12)
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    link = await _link(shop, queued["purchase_no"], max_downloads=2, ttl_minutes=60)

    as_csv = await shop.client.get(_path(link["csv_url"]))
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["purchase", "order", "sku", "card number", "code"]
    got = [row[4] for row in rows[1:]]
    assert len(got) == 12 == len(set(got)) and set(got) <= set(codes)

    as_xlsx = await shop.client.get(_path(link["xlsx_url"]))
    assert as_xlsx.status_code == 200
    sheet = zipfile.ZipFile(io.BytesIO(as_xlsx.content)).read("xl/worksheets/sheet1.xml").decode()
    assert all(code in sheet for code in got)

    used_up = await shop.client.get(_path(link["csv_url"]))
    assert used_up.status_code == 410 and used_up.json()["code"] == "download_link_invalid"
    assert await shop.count(KeyReveal, KeyReveal.channel == "enterprise") == 24  # two downloads of 12
    outcomes = (await shop.scalar(select(func.count()).select_from(DownloadAudit).where(
        DownloadAudit.outcome == "served")), await shop.scalar(select(func.count()).select_from(DownloadAudit).where(
            DownloadAudit.outcome == "used_up")))
    assert outcomes == (2, 1)

    expired = await _link(shop, queued["purchase_no"], ttl_minutes=1)
    async with shop.ctx.db.transaction() as session:
        from quanyi.enterprises.models import DownloadLink
        await session.execute(update(DownloadLink).where(DownloadLink.id == expired["id"])
                              .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert (await shop.client.get(_path(expired["csv_url"]))).status_code == 410
    revoked = await _link(shop, queued["purchase_no"])
    gone = await shop.client.delete(f"/api/admin/enterprises/ACME/purchases/{queued['purchase_no']}/links/"
                                    f"{revoked['id']}", headers=shop.admin)
    assert gone.status_code == 204
    assert (await shop.client.get(_path(revoked["csv_url"]))).status_code == 410
    unknown = await shop.client.get("/api/enterprise-downloads?t=" + "x" * 43)
    assert unknown.status_code == 410
    listed = (await shop.client.get(f"/api/admin/enterprises/ACME/purchases/{queued['purchase_no']}/links",
                                    headers=shop.admin)).json()
    assert all(item["csv_url"] is None for item in listed) and len(listed) == 3
    assert await shop.count(KeyReveal, KeyReveal.channel == "enterprise") == 24  # refusals revealed nothing

    raw = await raw_database_bytes(shop.ctx.db)  # no plaintext code, no link token rests in the database
    assert not any(code.encode() in raw for code in codes)
    assert link["csv_url"].rsplit("t=", 1)[1].encode() not in raw


async def test_the_cli_buys_with_a_progress_bar_lists_and_exports(shop: Shop, monkeypatch, tmp_path):
    from enterprises.support import run_cli

    sku, codes = await _setup(shop)
    bought = await run_cli(shop, monkeypatch, "enterprises", "purchase", "ACME", "--sku", "GIFT-100",
                           "--quantity", "15", "--reference", "po-9", "--wait")
    assert bought.exit_code == 0, bought.output
    assert "completed, 15/15 placed" in bought.output
    listed = await run_cli(shop, monkeypatch, "enterprises", "purchases", "ACME")
    assert "completed" in listed.output and "GIFT-100" in listed.output
    no = await shop.scalar(select(BulkPurchase.purchase_no))
    out = tmp_path / "codes.csv"
    exported = await run_cli(shop, monkeypatch, "enterprises", "export", "ACME", no, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert out.stat().st_mode & 0o777 == 0o600
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    assert len(rows) == 16 and {row[4] for row in rows[1:]} <= set(codes)
    assert await shop.count(DownloadAudit, DownloadAudit.actor == "cli") == 1
    wrong = await run_cli(shop, monkeypatch, "enterprises", "purchase-control", "ACME", no, "resume")
    assert wrong.exit_code != 0 and "only a paused purchase resumes" in wrong.output
    await _exact(shop, sku.id, 15, 10_000, 1_000_000)


async def test_an_order_refunded_while_the_download_waits_for_it_is_left_out_not_a_broken_download(
        shop: Shop, backend: str, database_url: str):
    """PostgreSQL: the download reads a batch of orders, then reveals each under its order row (FOR KEY SHARE, as
    every reveal since f7d6eee). A refund holding one of them commits it refunded meanwhile: that order is left out
    (as an order not delivered yet is), the others are served (the reveal raised OrderNotDelivered: a broken
    download)."""
    from faults.support import refunded_while_waiting

    if backend != "postgresql":
        pytest.skip("SQLite's writer lock: no reveal waits inside a batch")
    await _setup(shop)
    queued = await _buy(shop, 12)  # two orders: 10 and 2
    await purchases.run_due_purchases(db=shop.ctx.db, owner="w1")
    link = await _link(shop, queued["purchase_no"])
    first = await shop.scalar(select(Order.id).join(BulkPurchaseOrder, BulkPurchaseOrder.order_id == Order.id)
                              .order_by(BulkPurchaseOrder.seq).limit(1))
    served = await refunded_while_waiting(database_url, first, shop.client.get(_path(link["csv_url"])),
                                          what="the download")
    assert served.status_code == 200, served.text
    rows = list(csv.reader(io.StringIO(served.content.decode("utf-8-sig"))))
    refunded_no = await shop.scalar(select(Order.order_no).where(Order.id == first))
    assert len(rows) == 1 + 2 and refunded_no not in {row[1] for row in rows[1:]}  # the other order's 2 codes
