"""The member foundation: sign up by code, the session cookie (HttpOnly, rotated at login, revocable, log out
everywhere), CurrentMember / OptionalMember on the API, and orders.member_id set at checkout when logged in."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from helpers import with_csrf
from members.support import ask_code, last_code, sign_in
from quanyi.members.dependencies import MEMBER_COOKIE
from quanyi.members.models import Member, MemberSession
from quanyi.orders.models import Order


async def test_sign_up_by_code_makes_an_account_and_an_httponly_session_cookie(shop, client):
    sent = await ask_code(client, "New.Buyer@Example.com")
    assert sent["channel"] == "email" and sent["expires_in_seconds"] == 600
    code = await last_code(shop, "new.buyer@example.com")  # normalized like a checkout contact
    response = await client.post("/api/members/sessions", json={"code_id": sent["code_id"], "code": code})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True and body["member"]["email"] == "new.buyer@example.com"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{MEMBER_COOKIE}=qm_") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    me = await client.get("/api/members/me")  # the cookie
    assert me.status_code == 200 and me.json()["id"] == body["member"]["id"]
    async with shop.ctx.db.read_session() as session:
        stored = await session.scalar(select(MemberSession))
    assert body["token"].encode() not in stored.token_hash  # only a hash is kept

    again = await client.post("/api/members/sessions", json={"code_id": sent["code_id"], "code": code})
    assert again.status_code == 410 and again.json()["code"] == "code_expired"  # a code works once


async def test_api_without_a_session_is_401_and_a_token_header_works_for_apps(shop, app):
    signed = await sign_in(shop)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as app_client:
        assert (await app_client.get("/api/members/me")).json()["code"] == "member_login_required"
        assert (await app_client.get("/api/members/me")).status_code == 401
        me = await app_client.get("/api/members/me", headers={"X-Member-Token": signed["token"]})
        assert me.status_code == 200 and me.json()["email"] == "member@example.com"
        forged = await app_client.get("/api/members/me", headers={"X-Member-Token": signed["token"][:-2] + "xx"})
        assert forged.status_code == 401


async def test_logging_in_again_rotates_the_session(shop, client):
    first = await sign_in(shop)
    second = await sign_in(shop)  # the client comes with the first session's cookie
    assert second["created"] is False and second["member"]["id"] == first["member"]["id"]
    assert first["token"] != second["token"]
    old = await client.get("/api/members/me", headers={"X-Member-Token": first["token"]})
    assert old.status_code == 401
    assert (await client.get("/api/members/me")).status_code == 200


async def test_log_out_and_log_out_everywhere(shop, app, client):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as phone:
        on_phone = await sign_in(shop, client=phone)
    on_laptop = await sign_in(shop, client=client)  # a second session of the same account
    sessions = await client.get("/api/members/me/sessions")
    assert [s["current"] for s in sessions.json()] == [True, False]

    # A cookie session on an unsafe request needs the CSRF token (a cross-site page cannot log the buyer out).
    refused = await client.delete("/api/members/sessions")
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    token = (await with_csrf(client))["csrf_token"]
    everywhere = await client.delete("/api/members/sessions", headers={"X-CSRF-Token": token})
    assert everywhere.status_code == 200 and everywhere.json()["sessions_ended"] == 2
    assert MEMBER_COOKIE in everywhere.headers["set-cookie"] and "Max-Age=0" in everywhere.headers["set-cookie"]
    for signed in (on_phone, on_laptop):
        assert (await client.get("/api/members/me", headers={"X-Member-Token": signed["token"]})).status_code == 401

    again = await sign_in(shop, client=client)
    out = await client.delete("/api/members/sessions/current", headers={"X-Member-Token": again["token"]})
    assert out.status_code == 200 and out.json()["sessions_ended"] == 1
    assert (await client.get("/api/members/me", headers={"X-Member-Token": again["token"]})).status_code == 401


async def test_checkout_while_logged_in_sets_the_member_and_a_guest_checkout_does_not(shop, client, stocked_sku):
    signed = await sign_in(shop)
    member_id = signed["member"]["id"]
    headers = {"X-Member-Token": signed["token"]}
    mine = await client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                  "contact": "someone-else@example.com"}, headers=headers)
    assert mine.status_code == 201, mine.text
    # The cookie alone on an API POST without the CSRF token does not count: a guest order.
    guest = await client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                   "contact": "someone-else@example.com"})
    assert guest.status_code == 201
    # The storefront form (CSRF-checked) with the cookie: the member's.
    form = await with_csrf(client, {"sku_id": str(stocked_sku.id), "quantity": "1", "contact": "x@example.com"},
                           page="/p/product-1")
    page = await client.post("/p/product-1/checkout", data=form)
    assert page.status_code == 303, page.text
    async with shop.ctx.db.read_session() as session:
        owners = dict((await session.execute(select(Order.order_no, Order.member_id))).all())
    page_order = page.headers["location"].rsplit("/", 1)[1]
    assert owners == {mine.json()["order_no"]: member_id, guest.json()["order_no"]: None, page_order: member_id}
    listed = await client.get("/api/members/me/orders", headers=headers)
    assert [o["order_no"] for o in listed.json()["orders"]] == [page_order, mine.json()["order_no"]]


async def test_guest_orders_of_the_proved_contact_join_the_account_at_sign_up(shop, client, stocked_sku):
    placed = [await shop.create_order(stocked_sku.id, contact="guest@example.com") for _ in range(2)]
    other = await shop.create_order(stocked_sku.id, contact="stranger@example.com")
    signed = await sign_in(shop, "GUEST@example.com")
    assert signed["attached_orders"] == 2
    listed = (await client.get("/api/members/me/orders")).json()
    assert sorted(o["order_no"] for o in listed["orders"]) == sorted(o["order_no"] for o in placed)
    assert (await client.get(f"/api/members/me/orders/{other['order_no']}")).status_code == 404
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Member.email)) == "guest@example.com"


async def test_sign_up_hooks_run_once_per_new_account_in_its_transaction(shop, monkeypatch):
    from quanyi.members import extensions

    monkeypatch.setattr(extensions, "_created_handlers", {})
    seen: list[tuple[int, str, str]] = []

    @extensions.on_member_created
    async def gift(*, session, member_id, contact_kind, contact, now):
        assert await session.get(Member, member_id) is not None  # the new row, in the same transaction
        seen.append((member_id, contact_kind, contact))

    first = await sign_in(shop, "hooked@example.com")
    await sign_in(shop, "hooked@example.com")  # a login, not a sign-up
    assert seen == [(first["member"]["id"], "email", "hooked@example.com")]


async def test_the_sweeper_deletes_old_codes_and_long_ended_sessions_only(shop, client):
    import datetime as dt

    from sqlalchemy import func, update

    from quanyi.members.models import MemberCode
    from quanyi.tasks import sweep_once

    old = await sign_in(shop, "old@example.com")
    await client.delete("/api/members/sessions/current", headers={"X-Member-Token": old["token"]})
    current = await sign_in(shop, "current@example.com")
    await ask_code(client, "pending@example.com")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(MemberSession).where(MemberSession.revoked_at.is_not(None))
                              .values(revoked_at=long_ago))
        await session.execute(update(MemberCode).where(MemberCode.contact != "pending@example.com")
                              .values(expires_at=long_ago))
    await sweep_once(shop.ctx)
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(MemberSession)) == 1
        assert await session.scalar(select(MemberCode.contact)) == "pending@example.com"
    assert (await client.get("/api/members/me", headers={"X-Member-Token": current["token"]})).status_code == 200
