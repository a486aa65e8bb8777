"""Card-key pages: stock per SKU, batches and void, masked keys (no plaintext on the page), the audited staff
reveal, and leak tracing; each action through the inventory services and in the audit log."""

from __future__ import annotations

import re

from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.inventory.models import CardKey, ImportBatch, KeyReveal
from quanyi.staff.models import StaffAuditEntry


async def test_stock_batches_void_reveal_and_leak_trace(shop, app, stocked_sku):
    codes = await shop.stock(stocked_sku, 3)  # a second batch
    client = await logged_in(shop, "kim", roles=("owner",))
    stock = await client.get("/console/keys")
    assert stock.status_code == 200 and 'data-sku="STOCKED-1M"' in stock.text
    assert re.search(r'data-sku="STOCKED-1M".*?data-testid="available">13<', stock.text, re.S)

    async with shop.ctx.db.read_session() as session:
        first, second = (await session.scalars(select(ImportBatch.id).order_by(ImportBatch.id))).all()
        key_id = await session.scalar(select(CardKey.id).where(CardKey.batch_id == second).order_by(CardKey.id))
    page = await client.get(f"/console/keys/batches/{second}")
    assert page.text.count('data-testid="key-row"') == 3
    assert not any(code in page.text for code in codes)  # masked: first and last two characters only
    assert codes[0][:2] in page.text

    short = await post_form(client, f"/console/keys/{key_id}/reveal", {"reason": "why"},
                            page_url=f"/console/keys/batches/{second}")
    assert short.status_code == 422
    shown = await post_form(client, f"/console/keys/{key_id}/reveal", {"reason": "ticket 4711: buyer says invalid"},
                            page_url=f"/console/keys/batches/{second}")
    assert shown.status_code == 200 and codes[0] in shown.text and shown.headers["cache-control"] == "no-store"

    voided = await post_form(client, f"/console/keys/batches/{first}/void", {"reason": "supplier recall"},
                             page_url=f"/console/keys/skus/{stocked_sku.id}")
    assert voided.status_code == 303 and "count=10" in voided.headers["location"]
    assert await shop.available(stocked_sku.id) == 3
    again = await post_form(client, f"/console/keys/batches/{first}/void", {"reason": "twice"},
                            page_url=f"/console/keys/skus/{stocked_sku.id}")
    assert again.status_code == 409

    traced = await post_form(client, "/console/keys/leaks", {"codes": f"{codes[1]}\nNOT-A-KNOWN-CODE", "mark": "on"},
                             page_url="/console/keys/leaks")
    assert traced.status_code == 200 and traced.text.count('data-testid="leak-item"') == 2
    assert await shop.available(stocked_sku.id) == 2  # the leaked unsold key is off sale

    async with shop.ctx.db.read_session() as session:
        reveals = (await session.scalars(select(KeyReveal))).all()
        actions = (await session.scalars(select(StaffAuditEntry.action).where(StaffAuditEntry.actor == "kim")
                                         .order_by(StaffAuditEntry.id))).all()
    assert [(r.channel, r.actor, r.card_key_id) for r in reveals] == [("staff", "kim", key_id)]
    assert actions == ["login", "card_key_revealed", "batch_voided", "leaks_traced"]


async def test_the_audit_log_exports_what_it_shows(shop, app):
    client = await logged_in(shop, "aud", roles=("owner",))
    await client.get("/console/audit")
    answer = await client.get("/console/audit/export", params={"format": "csv", "actor": "aud"})
    assert answer.status_code == 200
    lines = answer.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("id,at,actor,action") and len(lines) == 3  # newest first: this export, the login
    assert ",aud,audit_log_exported," in lines[1] and ",aud,login," in lines[2]
    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(StaffAuditEntry.action).order_by(StaffAuditEntry.id))).all()
    assert actions == ["login", "audit_log_exported"]
