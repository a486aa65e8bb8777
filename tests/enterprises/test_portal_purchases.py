"""Bulk purchases in the enterprise portal, through the real app on SQLite and PostgreSQL: a purchaser starts one
(the form sent twice buys once), the job places it, the balance pays exactly the tier price, the statement shows
it, and the codes download through the shop's expiring, audited link; a viewer sees but cannot buy or download;
bad input changes nothing; every action audited with the enterprise user as actor."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from enterprises.portal_support import add_user, browser, csrf_token, logged_in, portal_login
from enterprises.support import balance_of, books_balanced, set_tiers
from helpers import Shop
from quanyi.enterprises import purchases
from quanyi.enterprises.models import BulkPurchase, DownloadAudit
from quanyi.inventory.models import KeyReveal
from quanyi.staff.models import StaffAuditEntry

ORIGIN = {"Origin": "http://test"}


async def _setup(shop: Shop, stock: int = 12):  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(code="GIFT-100", price_cents=10_000, max_quantity=5)
    codes = await shop.stock(sku, stock)
    client = await logged_in(shop, "ACME", "pia", "purchaser", top_up_cents=500_000)
    contact = await shop.client.post("/api/admin/enterprises/ACME/contacts", headers=shop.admin, json={
        "name": "采购 李", "role": "purchasing", "email": "buy@acme.example"})
    assert contact.status_code == 201
    await set_tiers(shop, "ACME", "GIFT-100", (1, 9_800), (10, 9_500))
    return client, codes


async def _buy(client, quantity: str, key: str | None = None):  # type: ignore[no-untyped-def]
    page = await client.get("/portal/purchases")
    key = key or re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)
    return await client.post("/portal/purchases", headers=ORIGIN, data={
        "sku_code": "GIFT-100", "quantity": quantity, "request_key": key, "csrf_token": csrf_token(page.text)})


async def test_purchaser_buys_at_the_tier_price_watches_it_and_downloads_the_codes(shop):
    client, codes = await _setup(shop)
    prices = await client.get("/portal/prices")
    assert "GIFT-100" in prices.text and "¥95.00" in prices.text
    page = await client.get("/portal/purchases")
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    made = await _buy(client, "10", key)
    assert made.status_code == 303
    no = re.search(r"/portal/purchases/(BP[A-Z0-9]+)", made.headers["location"]).group(1)  # type: ignore[union-attr]
    again = await _buy(client, "10", key)  # the same form sent twice: one purchase
    assert again.headers["location"] == made.headers["location"]
    assert await shop.count(BulkPurchase) == 1
    queued = await client.get(f"/portal/purchases/{no}/progress")
    assert queued.status_code == 200 and 'hx-trigger="every 2s"' in queued.text and "<html" not in queued.text

    await purchases.run_due_purchases(db=shop.ctx.db, owner="test")
    done = await client.get(f"/portal/purchases/{no}")
    assert 'data-status="completed"' in done.text and "hx-get" not in done.text
    assert await balance_of(shop, "ACME") == 500_000 - 10 * 9_500
    statement = await client.get("/portal/statement")
    assert statement.status_code == 200 and statement.text.count('data-testid="statement-line"') == 3  # top-up, chunks
    assert "¥4,050.00" in statement.text  # closing: 5000 - 950

    linked = await client.post(f"/portal/purchases/{no}/link", headers=ORIGIN,
                               data={"csrf_token": csrf_token(done.text)})
    assert linked.status_code == 200 and linked.headers["cache-control"] == "no-store"
    url = re.search(r'href="(http://test/api/enterprise-downloads\?t=[^"&]+&amp;format=csv)"', linked.text)
    assert url is not None
    file = await shop.client.get(url.group(1).replace("&amp;", "&"))
    assert file.status_code == 200
    assert sum(code in file.text for code in codes) == 10
    assert await shop.count(DownloadAudit, DownloadAudit.outcome == "served") == 1
    assert await shop.count(KeyReveal) == 10
    async with shop.ctx.db.read_session() as session:
        actions = (await session.execute(select(StaffAuditEntry.actor, StaffAuditEntry.action).where(
            StaffAuditEntry.action.like("portal_purchase%")))).all()
    assert sorted(actions) == [("acme/pia", "portal_purchase_link"), ("acme/pia", "portal_purchase_made")]
    await books_balanced(shop)


async def test_bad_input_and_refusals_change_nothing(shop):
    client, _ = await _setup(shop)
    for quantity in ("0", "-3", "abc", "100001"):
        refused = await _buy(client, quantity)
        assert refused.status_code == 422, quantity
    page = await client.get("/portal/purchases")
    unknown = await client.post("/portal/purchases", headers=ORIGIN, data={
        "sku_code": "NOPE", "quantity": "1", "request_key": "k1", "csrf_token": csrf_token(page.text)})
    assert unknown.status_code == 404
    assert await shop.count(BulkPurchase) == 0
    assert await balance_of(shop, "ACME") == 500_000
    # Suspended after it was made (its account frozen): the purchase pauses with its reason, nothing is taken;
    # a new purchase is refused outright while suspended (test_portal_suspended.py).
    made = await _buy(client, "3")
    await shop.client.patch("/api/admin/enterprises/ACME", headers=shop.admin, json={"status": "suspended"})
    await purchases.run_due_purchases(db=shop.ctx.db, owner="test")
    paused = await client.get(made.headers["location"])
    assert 'data-status="paused"' in paused.text and 'data-testid="purchase-resume"' in paused.text
    assert 'data-testid="suspended"' in paused.text
    assert await balance_of(shop, "ACME") == 500_000


async def test_a_viewer_sees_purchases_but_cannot_buy_or_download(shop):
    client, _ = await _setup(shop)
    made = await _buy(client, "2")
    no = made.headers["location"].split("/")[-1].split("?")[0]
    await purchases.run_due_purchases(db=shop.ctx.db, owner="test")
    await add_user(shop, "ACME", "vera", "viewer")
    viewer = browser(shop)
    assert (await portal_login(viewer, "ACME", "vera")).status_code == 303
    page = await viewer.get(f"/portal/purchases/{no}")
    assert page.status_code == 200 and 'data-testid="purchase-link"' not in page.text
    assert 'data-testid="purchase-form"' not in (await viewer.get("/portal/purchases")).text
    token = csrf_token(page.text)
    for url in ("/portal/purchases", f"/portal/purchases/{no}/link", f"/portal/purchases/{no}/cancel"):
        refused = await viewer.post(url, headers=ORIGIN, data={"csrf_token": token, "sku_code": "GIFT-100",
                                                                "quantity": "1", "request_key": "v"})
        assert refused.status_code == 403, url
    assert await shop.count(BulkPurchase) == 1
    assert await shop.scalar(select(func.count()).select_from(DownloadAudit)) == 0
