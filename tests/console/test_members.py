"""Console member pages (会员): search by contact (masked without orders.contact), a member's file with their orders
and sessions, disable (every session ends) / enable through the members service, audited; platform staff only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from console.support import PASSWORD, console_login, logged_in, post_form
from helpers import make_settings
from members.support import sign_in
from merchants.support import admit
from quanyi.members.models import Member, MemberStatus
from quanyi.staff import service as staff_service
from quanyi.staff.models import StaffAuditEntry


@pytest.fixture
def settings(database_url: str):  # type: ignore[no-untyped-def]
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


async def _buy(shop, member: dict, sku) -> str:  # type: ignore[no-untyped-def]
    response = await shop.client.post("/api/orders", headers={"X-Member-Token": member["token"]},
                                      json={"sku_id": sku.id, "quantity": 1, "contact": "member@example.com"})
    assert response.status_code == 201, response.text
    return str(response.json()["order_no"])


async def _me(shop, member: dict) -> int:  # type: ignore[no-untyped-def]
    shop.client.cookies.delete("qy_member")
    return (await shop.client.get("/api/members/me", headers={"X-Member-Token": member["token"]})).status_code


async def _member(shop, member_id: int) -> Member:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        found = await session.get(Member, member_id)
        assert found is not None
        return found


async def test_support_finds_a_member_by_part_of_a_contact_and_opens_their_orders(shop, stocked_sku):
    member = await sign_in(shop, "member@example.com")
    mid = member["member"]["id"]
    async with shop.ctx.db.transaction() as session:
        session.add(Member(phone="+8613800138000"))  # SMS is not configured here: a phone member made directly
    order_no = await _buy(shop, member, stocked_sku)
    client = await logged_in(shop, "sue", roles=("support",))

    found = await client.get("/console/members", params={"q": "MEMBER@exa"})
    assert found.status_code == 200
    assert found.text.count('data-testid="member-row"') == 1 and "member@example.com" in found.text
    everyone = await client.get("/console/members")
    assert everyone.text.count('data-testid="member-row"') == 2 and "13800138000" in everyone.text
    assert (await client.get("/console/members", params={"q": "nobody-like-this"})).text.count(
        'data-testid="no-members"') == 1
    for wildcard in ("m_mber@", "member%example"):  # a typed _ or % is a character, not a LIKE wildcard
        assert (await client.get("/console/members", params={"q": wildcard})).text.count(
            'data-testid="no-members"') == 1
    assert (await client.get("/console/members", params={"status": "gone"})).status_code == 422

    page = await client.get(f"/console/members/{mid}")
    assert page.status_code == 200
    assert f'href="/console/orders/{order_no}"' in page.text
    assert 'data-testid="member-sessions">1<' in page.text
    assert 'data-testid="member-points">0<' in page.text  # the loyalty section reads the loyalty service
    assert (await client.get(f"/console/orders/{order_no}")).status_code == 200
    assert (await client.get("/console/members/2147483000")).status_code == 404
    assert (await client.get("/console/members/0")).status_code == 422


async def test_contacts_are_masked_without_the_full_contact_permission(shop):
    member = await sign_in(shop, "member@example.com")
    mid = member["member"]["id"]
    client = await logged_in(shop, "viewer", permissions=("members.manage",))
    listing = await client.get("/console/members", params={"q": "member"})
    page = await client.get(f"/console/members/{mid}")
    for response in (listing, page):
        assert response.status_code == 200
        assert "member@example.com" not in response.text and "m***@example.com" in response.text

    async with shop.ctx.db.transaction() as session:
        session.add_all([Member(email=f"bulk{i:02}@example.com") for i in range(55)])
    first = await client.get("/console/members", params={"q": "bulk"})
    assert first.text.count('data-testid="member-row"') == 50 and "b***@example.com" in first.text
    assert 'href="/console/members?q=bulk&amp;page=2"' in first.text and "prev-page" not in first.text
    second = await client.get("/console/members", params={"q": "bulk", "page": "2"})
    assert second.text.count('data-testid="member-row"') == 5 and "next-page" not in second.text
    assert "prev-page" in second.text and "共 55 位会员" in second.text


async def test_disabling_a_member_ends_every_session_is_audited_and_enabling_lets_them_back(shop):
    member = await sign_in(shop, "member@example.com")
    mid = member["member"]["id"]
    shop.client.cookies.delete("qy_member")  # a second device: the first session stays open
    second = await sign_in(shop, "member@example.com")
    assert await _me(shop, member) == 200 and await _me(shop, second) == 200
    client = await logged_in(shop, "sue", roles=("support",))
    url = f"/console/members/{mid}"

    no_reason = await post_form(client, f"{url}/disable", {"reason": "  "}, page_url=url)
    assert no_reason.status_code == 422 and 'data-testid="disable-form"' in no_reason.text
    assert (await _member(shop, mid)).status is MemberStatus.ACTIVE
    assert await _me(shop, member) == 200

    disabled = await post_form(client, f"{url}/disable", {"reason": "chargeback fraud, ticket 88"}, page_url=url)
    assert disabled.status_code == 303, disabled.text
    page = await client.get(disabled.headers["location"])
    assert 'data-testid="disabled-reason">chargeback fraud, ticket 88<' in page.text
    assert 'data-testid="member-sessions">0<' in page.text and 'data-testid="enable-form"' in page.text
    stored = await _member(shop, mid)
    assert stored.status is MemberStatus.DISABLED and stored.disabled_reason == "chargeback fraud, ticket 88"
    assert await _me(shop, member) == 401 and await _me(shop, second) == 401
    code_login = await shop.client.post("/api/members/sessions/password",
                                        json={"contact": "member@example.com", "password": "whatever-123"})
    assert code_login.status_code in (401, 403)

    enabled = await post_form(client, f"{url}/enable", page_url=url)
    assert enabled.status_code == 303
    assert (await _member(shop, mid)).status is MemberStatus.ACTIVE
    async with shop.ctx.db.read_session() as session:
        audit = (await session.execute(select(StaffAuditEntry.action, StaffAuditEntry.object_id,
                                              StaffAuditEntry.summary)
                                       .where(StaffAuditEntry.object_type == "member")
                                       .order_by(StaffAuditEntry.id))).all()
    assert [(a, o) for a, o, _ in audit] == [("member_disabled", str(mid)),
                                            ("member_enabled", str(mid))]
    assert "2 sessions ended" in audit[0][2] and "ticket 88" in audit[0][2]

    forged = await client.post(f"{url}/disable", data={"reason": "x", "csrf_token": "forged"},
                               headers={"Origin": str(client.base_url).rstrip("/")})
    assert forged.status_code == 403
    assert (await _member(shop, mid)).status is MemberStatus.ACTIVE


async def test_merchant_staff_and_staff_without_the_permission_are_refused(shop):
    member = await sign_in(shop, "member@example.com")
    mid = member["member"]["id"]
    await admit(shop, "tea-house", permissions=(), username="tea-boss")
    async with shop.ctx.db.transaction() as session:
        await staff_service.replace_roles(session=session, username="tea-boss", roles=["merchant_owner"])
        await staff_service.set_password(session=session, username="tea-boss", password=PASSWORD)
    assert (await console_login(shop.client, "tea-boss")).status_code == 303
    url = f"/console/members/{mid}"
    for path in ("/console/members", url):
        refused = await shop.client.get(path)
        assert refused.status_code == 403 and "member@example.com" not in refused.text
    assert 'href="/console/members"' not in (await shop.client.get("/console/account")).text
    refused = await post_form(shop.client, f"{url}/disable", {"reason": "by a merchant"})
    assert refused.status_code == 403
    assert (await _member(shop, mid)).status is MemberStatus.ACTIVE

    shop.client.cookies.clear()
    operator = await logged_in(shop, "ops", roles=("finance",))
    assert (await operator.get("/console/members")).status_code == 403
