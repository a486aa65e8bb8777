"""Sign-in rules: no account enumeration, rate limits on every login path (counted before the answer), codes
bound to their purpose, disabled accounts, contacts added with a code, keys revealed through the member API
(audited), account sections of other features, malformed input answered 4xx."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpers import make_settings
from members.support import ask_code, last_code, sign_in
from quanyi.inventory.models import KeyReveal
from quanyi.members import service as members_service
from quanyi.members.extensions import AccountSection
from quanyi.members.models import Member, MemberStatus
from quanyi.orders.models import Order


@pytest.fixture
def settings(database_url: str):
    # Small limits, so the tests reach them in a few requests.
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com",
                         member_codes_per_contact=3, member_codes_per_client=6,
                         member_login_max_failures_per_client=6, member_login_max_failures_per_contact=3)


def _shape(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "code_id"}


async def test_asking_for_a_code_answers_the_same_whether_or_not_the_account_exists(shop, client):
    await sign_in(shop, "known@example.com")
    known = await client.post("/api/members/codes", json={"contact": "known@example.com"})
    unknown = await client.post("/api/members/codes", json={"contact": "unknown@example.com"})
    longest = await client.post("/api/members/codes", json={"contact": "b" * 240 + "@example.com"})
    assert known.status_code == unknown.status_code == longest.status_code == 202
    assert _shape(known.json()) == _shape(unknown.json())
    assert set(known.json()) == {"code_id", "expires_in_seconds", "channel"}


async def test_password_login_fails_alike_for_unknown_contact_no_password_and_wrong_password(shop, client):
    await sign_in(shop, "nopassword@example.com")
    answers = [await client.post("/api/members/sessions/password", json={"contact": contact, "password": "whatever1"})
               for contact in ("nobody@example.com", "nopassword@example.com", "not a contact",
                               "a" * 240 + "@example.com")]  # a long contact too (limiter keys are digests)
    assert {a.status_code for a in answers} == {401}
    assert {(a.json()["code"], a.json()["detail"]) for a in answers} == {("invalid_credentials",
                                                                          "wrong contact or password")}


async def test_codes_per_contact_are_limited_with_retry_after(shop, client):
    for _ in range(3):
        await ask_code(client, "flooded@example.com")
    response = await client.post("/api/members/codes", json={"contact": "flooded@example.com"})
    assert response.status_code == 429 and response.json()["code"] == "too_many_attempts"
    assert int(response.headers["Retry-After"]) == 900
    assert (await client.post("/api/members/codes", json={"contact": "other@example.com"})).status_code == 202


async def test_password_guessing_is_stopped_even_with_the_right_password_after_the_limit(shop, client):
    signed = await sign_in(shop, "target@example.com")
    changed = await client.put("/api/members/me/password", json={"password": "the right one 42"},
                               headers={"X-Member-Token": signed["token"]})
    assert changed.status_code == 200
    for _ in range(3):
        wrong = await client.post("/api/members/sessions/password",
                                  json={"contact": "target@example.com", "password": "guess guess"})
        assert wrong.status_code == 401
    blocked = await client.post("/api/members/sessions/password",
                                json={"contact": "Target@Example.com", "password": "the right one 42"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    # A code login still works for the owner of the contact (the limit is on passwords for this contact).
    assert (await sign_in(shop, "target@example.com"))["member"]["id"] == signed["member"]["id"]


async def test_wrong_codes_run_out_and_are_counted_per_client(shop, client):
    sent = await ask_code(client, "codes@example.com")
    code = await last_code(shop, "codes@example.com")
    wrong = "000000" if code != "000000" else "111111"
    lefts = []
    for _ in range(5):
        response = await client.post("/api/members/sessions", json={"code_id": sent["code_id"], "code": wrong})
        lefts.append((response.status_code, response.json().get("attempts_left")))
    assert lefts == [(422, 4), (422, 3), (422, 2), (422, 1), (422, 0)]
    # Out of attempts: even the right code is refused (and counts as this client's sixth failure) ...
    final = await client.post("/api/members/sessions", json={"code_id": sent["code_id"], "code": code})
    assert final.status_code == 410 and final.json()["code"] == "code_expired"
    # ... and the seventh is refused before any code is looked at: the client's failures are used up.
    other = await ask_code(client, "codes2@example.com")
    limited = await client.post("/api/members/sessions", json={
        "code_id": other["code_id"], "code": await last_code(shop, "codes2@example.com")})
    assert limited.status_code == 429 and limited.json()["code"] == "too_many_attempts"
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Member)) is None


async def test_a_code_for_adding_a_contact_does_not_log_in(shop, client):
    signed = await sign_in(shop, "owner@example.com")
    headers = {"X-Member-Token": signed["token"]}
    sent = await client.post("/api/members/me/contacts/codes", json={"contact": "13800138000"}, headers=headers)
    assert sent.status_code == 403 and sent.json()["code"] == "verification_unavailable"  # no SMS on this shop
    assert sent.json()["use_contact_kind"] == "email"
    sent = await client.post("/api/members/me/contacts/codes", json={"contact": "second@example.com"},
                             headers=headers)
    code = await last_code(shop, "second@example.com")
    as_login = await client.post("/api/members/sessions", json={"code_id": sent.json()["code_id"], "code": code})
    assert as_login.status_code == 410


async def test_adding_a_contact_attaches_its_guest_orders_and_refuses_a_taken_one(shop, client, stocked_sku):
    taken = await sign_in(shop, "taken@example.com")
    guest = await shop.create_order(stocked_sku.id, contact="work@example.com")
    signed = await sign_in(shop, "home@example.com")
    headers = {"X-Member-Token": signed["token"]}
    for contact, status in (("work@example.com", 200), ("taken@example.com", 409)):
        sent = await client.post("/api/members/me/contacts/codes", json={"contact": contact}, headers=headers)
        added = await client.post("/api/members/me/contacts", headers=headers, json={
            "code_id": sent.json()["code_id"], "code": await last_code(shop, contact)})
        assert added.status_code == status, added.text
    assert added.json()["code"] == "contact_taken"
    me = (await client.get("/api/members/me", headers=headers)).json()
    assert me["email"] == "work@example.com" and me["orders"] == 1
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Order.member_id).where(Order.order_no == guest["order_no"])) == me["id"]
        assert await session.scalar(select(Member.email).where(Member.id == taken["member"]["id"])) \
            == "taken@example.com"


async def test_a_disabled_member_is_logged_out_and_cannot_log_in(shop, client):
    signed = await sign_in(shop, "bad@example.com")
    async with shop.ctx.db.transaction() as session:
        member = await members_service.find_member(session=session, ref="BAD@example.com")
        assert await members_service.disable_member(session=session, member=member, reason="chargebacks") == 1
    assert (await client.get("/api/members/me", headers={"X-Member-Token": signed["token"]})).status_code == 401
    sent = await ask_code(client, "bad@example.com")  # said the same way as for anyone
    response = await client.post("/api/members/sessions", json={
        "code_id": sent["code_id"], "code": await last_code(shop, "bad@example.com")})
    assert response.status_code == 403 and response.json()["code"] == "member_disabled"
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Member.status)) is MemberStatus.DISABLED


async def test_member_api_reveals_only_my_delivered_keys_and_audits_it(shop, client, stocked_sku):
    mine = await shop.create_order(stocked_sku.id, contact="keys@example.com")
    await shop.pay(mine)
    theirs = await shop.create_order(stocked_sku.id, contact="else@example.com")
    await shop.pay(theirs)
    signed = await sign_in(shop, "keys@example.com")
    headers = {"X-Member-Token": signed["token"], "User-Agent": "member-app/1.0"}
    revealed = await client.post(f"/api/members/me/orders/{mine['order_no']}/reveal", headers=headers)
    assert revealed.status_code == 200 and len(revealed.json()["keys"]) == 1
    assert revealed.json()["keys"] == await shop.reveal(mine)
    refused = await client.post(f"/api/members/me/orders/{theirs['order_no']}/reveal", headers=headers)
    assert refused.status_code == 404
    async with shop.ctx.db.read_session() as session:
        audit = (await session.scalars(select(KeyReveal).order_by(KeyReveal.id))).all()
    assert [(a.channel, a.user_agent) for a in audit][0] == ("api", "member-app/1.0")


async def test_other_features_sections_appear_on_the_account_page(shop, client, monkeypatch, tmp_path):
    from quanyi.members import extensions
    from quanyi.web.templating import templates

    monkeypatch.setattr(extensions, "_sections", {})
    loader = templates.env.loader
    monkeypatch.setattr(templates.env, "loader", __import__("jinja2").ChoiceLoader(
        [loader, __import__("jinja2").DictLoader({"test/_points.html": "<p data-testid='pts'>{{ section.points }} "
                                                                        "{{ t('nav.account') }}</p>"})]))

    async def load(*, session, member):
        return {"points": 1200} if member.email == "rich@example.com" else None

    extensions.register_account_section(AccountSection(key="points", title={"zh-CN": "我的积分", "en": "Points"},
                                                       load=load, template="test/_points.html", href="/account/points"))
    await sign_in(shop, "rich@example.com")
    page = await client.get("/account", headers={"Accept": "text/html"})
    assert "我的积分" in page.text and "<p data-testid='pts'>1200 我的账户</p>" in page.text
    await sign_in(shop, "poor@example.com")
    page = await client.get("/account", headers={"Accept": "text/html"})
    assert "我的积分" not in page.text


MALFORMED_SIGN_INS = [
    ("/api/members/codes", {"contact": "x" * 300}),
    ("/api/members/codes", {"contact": "a@b.c\x00"}),
    ("/api/members/codes", {"contact": "a@example.com", "extra": 1}),
    ("/api/members/sessions", {"code_id": "mc_" + "a" * 200, "code": "123456"}),
    ("/api/members/sessions", {"code_id": "mc_abcdefghijkl", "code": "12345x"}),
    ("/api/members/sessions", {"code_id": 5, "code": 123456}),
    ("/api/members/sessions/password", {"contact": "", "password": "x"}),
    ("/api/members/sessions/password", {"contact": "a@example.com", "password": "p" * 1000}),
]


async def test_malformed_sign_in_input_is_a_4xx_and_changes_nothing(shop, client):
    for path, body in MALFORMED_SIGN_INS:
        response = await client.post(path, json=body)
        assert response.status_code == 422 and response.json()["code"] == "validation_failed", (body, response.text)
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(Member)) is None


async def test_malformed_input_with_a_session_is_a_4xx(shop, client):
    signed = await sign_in(shop, "fuzz@example.com")
    headers = {"X-Member-Token": signed["token"]}
    for method, path, body in (("PUT", "/api/members/me/password", {"password": ""}),
                               ("PUT", "/api/members/me/password", {"password": "aaaaaaaaaa"}),
                               ("POST", "/api/members/me/contacts", {"code_id": "nope", "code": "1"}),
                               ("GET", "/api/members/me/orders?limit=0", None),
                               ("GET", "/api/members/me/orders?before_id=99999999999999", None),
                               ("GET", "/api/members/me/orders/" + "9" * 65, None),
                               ("POST", "/api/members/me/orders/%00/reveal", None)):
        response = await client.request(method, path, json=body, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
