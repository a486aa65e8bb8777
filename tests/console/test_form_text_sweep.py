"""Every form posted to the console or a portal with a control character in a field (a NUL: PostgreSQL cannot store
it, SQLite would) is refused with a 4xx page saying so in Chinese, before anything runs: nothing changes. The
routes come from the app, so a route added later is swept too. And the console's "refund not found" is a 404."""

from __future__ import annotations

import hashlib
import re

from fastapi.routing import iter_route_contexts
from sqlalchemy import select

import quanyi.models  # noqa: F401 - every table on Base.metadata
from console.support import console_login, csrf_token, make_staff, post_form
from quanyi.db import Base
from quanyi.staff.permissions import ADMIN
from quanyi.web.form_text import require_clean_form
from risk.support import add_rule, checkout

ORIGIN = {"Origin": "http://test", "Accept": "text/html"}  # as a browser posts it
# The names the console's forms read (any one holding a NUL is enough; several so a handler that reads only its own
# field sees one). Values are otherwise plausible so a handler without the check would go on and store them.
FIELDS = ("reason", "request_key", "note", "name", "code", "codes", "description", "contact", "payout_account",
          "username", "display_name", "roles", "role", "active", "enabled", "sale_limit", "amount", "quantity",
          "kind", "params", "action", "status", "mode", "dialect", "employees", "redemption_guide", "title")
# Tables a request may touch without changing anything of the shop's (the login's idle clock).
VOLATILE = {"staff_session", "enterprises_user_session"}


def _area_routes(app) -> list:  # type: ignore[no-untyped-def]
    return [r for r in iter_route_contexts(app.routes) if (r.path or "").startswith(("/console", "/portal"))]


def test_every_console_and_portal_route_checks_its_form_for_control_characters(app):
    unchecked = [r.path for r in _area_routes(app)
                 if require_clean_form not in {d.call for d in r.dependant.dependencies}]
    assert unchecked == []


async def _snapshot(shop) -> str:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256()
    async with shop.ctx.db.read_session() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE:
                continue
            rows = (await session.execute(select(table))).all()
            digest.update(f"{table.name}:{sorted(repr(tuple(row)) for row in rows)}".encode())
    return digest.hexdigest()


async def _held_order(shop) -> str:  # type: ignore[no-untyped-def]
    sku = await shop.make_sku(code="SWEEP-HELD")
    await shop.stock(sku, 3)
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="review", stages=["payment"])
    held = (await checkout(shop, sku.id, quantity=2, contact="held@example.com")).json()
    assert (await shop.pay_via_cashier(held)).status_code == 303
    return str(held["order_no"])


async def test_a_control_character_in_any_console_form_is_refused_and_changes_nothing(shop, app, paid_order):
    held = await _held_order(shop)
    # The objects the forms act on exist, so a form that does not check its fields would really run.
    real = {"/console/reviews/{order_no}": held, "/console/orders/{order_no}": paid_order["order_no"]}
    routes = [(method, r.path) for r in _area_routes(app) if r.path.startswith("/console")
              for method in sorted((r.methods or set()) - {"GET", "HEAD"})]
    assert len(routes) >= 40, routes
    await make_staff(shop, "sweeper", permissions=(ADMIN,))
    assert (await console_login(shop.client, "sweeper")).status_code == 303
    client = shop.client
    before = await _snapshot(shop)
    wrong = []
    for method, path in routes:
        url = path
        for prefix, value in real.items():
            url = url.replace(prefix, prefix.replace("{order_no}", value))
        url = re.sub(r"\{[^}]+\}", "1", url)
        token = csrf_token((await client.get("/console/account")).text)
        if not token:  # a form on main logged the sweeper out: log in again, carry on
            await console_login(client, "sweeper")
            token = csrf_token((await client.get("/console/account")).text)
        data = {name: "ok\x00ok" for name in FIELDS} | {"csrf_token": token}
        response = await client.request(method, url, data=data, headers=ORIGIN)
        after = await _snapshot(shop)
        if response.status_code != 422 or "控制字符" not in response.text or after != before:
            wrong.append((method, url, response.status_code, after != before))
        before = after
    assert wrong == []


async def test_a_control_character_in_a_review_reason_or_notice_key_is_refused_on_its_own(shop, app, paid_order):
    """The handlers' own readers refuse it too (and an over-long value, which they used to cut short)."""
    held = await _held_order(shop)
    await make_staff(shop, "rita", permissions=(ADMIN,))
    assert (await console_login(shop.client, "rita")).status_code == 303
    before = await _snapshot(shop)
    url = f"/console/orders/{paid_order['order_no']}"
    long_key = await post_form(shop.client, f"{url}/resend-notice", {"request_key": "k" * 65}, page_url=url)
    assert long_key.status_code == 422 and "request_key" in long_key.text
    long_reason = await post_form(shop.client, f"/console/reviews/{held}/approve", {"reason": "r" * 501},
                                  page_url=f"/console/reviews/{held}")
    assert long_reason.status_code == 422
    assert await _snapshot(shop) == before  # still held, no reason stored, nothing queued


async def test_a_refund_that_is_not_found_is_a_404(shop, app, paid_order):
    await make_staff(shop, "fay", permissions=(ADMIN,))
    assert (await console_login(shop.client, "fay")).status_code == 303
    url = f"/console/orders/{paid_order['order_no']}"
    for action, data in (("retry", {}), ("withdraw", {"reason": "gone"})):
        missing = await post_form(shop.client, f"{url}/refunds/RF{'0' * 18}/{action}", data, page_url=url)
        assert missing.status_code == 404, (action, missing.status_code)


async def test_the_form_check_reads_the_content_type_as_starlette_does_whatever_its_case(shop, app):
    """Starlette parses a form whose Content-Type is written in any case; the check must see it too (it compared
    case-sensitively, so `Application/X-WWW-Form-Urlencoded` with the token in the header reached the handler: a 500
    on PostgreSQL from the login limiter's insert of the NUL)."""
    from quanyi.web.csrf import CSRF_HEADER

    page = await shop.client.get("/console/login")
    body = "username=ad%00min&password=x"
    before = await _snapshot(shop)
    for content_type in ("application/x-www-form-urlencoded", "Application/X-WWW-Form-Urlencoded",
                         " APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8"):
        response = await shop.client.post("/console/login", content=body, headers={
            **ORIGIN, "Content-Type": content_type, CSRF_HEADER: csrf_token(page.text)})
        assert response.status_code == 422 and "控制字符" in response.text, (content_type, response.status_code)
    assert await _snapshot(shop) == before
