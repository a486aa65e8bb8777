"""Resellers in the console: balances, a top-up sent twice credits once, a rotated secret shown once and never
stored in the page's log, own prices per SKU; through the reseller service, audited, platform staff only."""

from __future__ import annotations

import re

from sqlalchemy import select

from console.support import csrf_token, logged_in, post_form
from quanyi.resellers import service as resellers_service
from quanyi.staff.models import StaffAuditEntry


async def _balance(shop) -> int:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        reseller = await resellers_service.get_reseller(session=session, code="ACME-RESALE")
        return (await resellers_service.account_of(session=session, reseller=reseller)).balance_cents


async def test_top_up_once_rotate_secret_shown_once_and_own_prices(shop):
    sku = await shop.make_sku(code="RESALE-GOODS", price_cents=1000)
    async with shop.ctx.db.transaction() as session:
        first = await resellers_service.create_reseller(session=session, cipher=shop.ctx.cipher, code="ACME-RESALE",
                                                        name="Acme resale", contact_email="ops@acme.example")
    client = await logged_in(shop, "rhea", roles=("owner",))
    listing = await client.get("/console/resellers")
    assert listing.status_code == 200 and "ACME-RESALE" in listing.text and first.secret not in listing.text

    page = await client.get("/console/resellers/ACME-RESALE")
    key = re.search(r'name="request_key" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"amount": "300.50", "note": "bank ref 88", "request_key": key, "csrf_token": csrf_token(page.text)}
    headers = {"Origin": "http://test"}
    credited = await client.post("/console/resellers/ACME-RESALE/top-up", data=form, headers=headers)
    again = await client.post("/console/resellers/ACME-RESALE/top-up", data=form, headers=headers)
    assert credited.status_code == again.status_code == 303
    assert "m=topped_up" in credited.headers["location"] and "m=top_up_repeated" in again.headers["location"]
    assert await _balance(shop) == 30_050  # once
    for bad in ("-5", "1.234", "abc", "0"):
        refused = await post_form(client, "/console/resellers/ACME-RESALE/top-up",
                                  {"amount": bad, "request_key": f"k-{bad}"}, page_url="/console/resellers/ACME-RESALE")
        assert refused.status_code == 422, bad
    assert await _balance(shop) == 30_050

    rotated = await post_form(client, "/console/resellers/ACME-RESALE/rotate-secret", {"overlap_hours": "2"},
                              page_url="/console/resellers/ACME-RESALE")
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    secret = re.search(r'data-testid="new-secret">([^<]+)<', rotated.text).group(1)  # type: ignore[union-attr]
    assert secret != first.secret and len(secret) >= 20
    assert secret not in (await client.get("/console/resellers/ACME-RESALE")).text  # shown once
    too_long = await post_form(client, "/console/resellers/ACME-RESALE/rotate-secret", {"overlap_hours": "9999"},
                               page_url="/console/resellers/ACME-RESALE")
    assert too_long.status_code == 422 and 'data-testid="new-secret"' not in too_long.text

    priced = await post_form(client, "/console/resellers/ACME-RESALE/prices", {"sku_code": "resale-goods",
                                                                                "price": "8.80"},
                             page_url="/console/resellers/ACME-RESALE")
    assert priced.status_code == 303
    async with shop.ctx.db.read_session() as session:
        assert ("RESALE-GOODS", 1000, 880) in await resellers_service.price_list(session=session, code="ACME-RESALE")
    unknown = await post_form(client, "/console/resellers/ACME-RESALE/prices", {"sku_code": "NOPE", "price": "1"},
                              page_url="/console/resellers/ACME-RESALE")
    assert unknown.status_code == 404
    removed = await post_form(client, f"/console/resellers/ACME-RESALE/prices/{sku.code}/remove", {},
                              page_url="/console/resellers/ACME-RESALE")
    assert removed.status_code == 303
    async with shop.ctx.db.read_session() as session:
        assert ("RESALE-GOODS", 1000, None) in await resellers_service.price_list(session=session, code="ACME-RESALE")
        audit = (await session.execute(select(StaffAuditEntry.action, StaffAuditEntry.summary).where(
            StaffAuditEntry.actor == "rhea", StaffAuditEntry.action != "login").order_by(StaffAuditEntry.id))).all()
    assert [a for a, _ in audit] == ["reseller_topped_up", "reseller_secret_rotated", "reseller_price_set",
                                     "reseller_price_removed"]
    assert all(secret not in summary for _, summary in audit)
    assert (await client.get("/console/resellers/NOPE")).status_code == 404
