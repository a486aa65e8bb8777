"""Console login: sessions rotated at login, idle and absolute expiry, logout, the second factor, and the
staff login limits shared with the API."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, update

from console.support import COOKIE, PASSWORD, console_login, csrf_token, make_staff, post_form
from quanyi.staff import second_factor, totp
from quanyi.staff.models import StaffAuditEntry, StaffSession, StaffUser


async def _audit(shop) -> list[tuple[str, str]]:
    async with shop.ctx.db.read_session() as session:
        rows = (await session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id))).all()
    return [(row.actor, row.action) for row in rows]


async def test_login_rotates_the_session_and_logout_ends_it(shop):
    client = shop.client
    anonymous = await client.get("/console/account?from=mail")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=/console/account%3Ffrom%3Dmail"
    await make_staff(shop, "ann", roles=("support",))
    wrong = await console_login(client, "ann", "not the password")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text

    client.cookies.set(COOKIE, "qs_planted-by-someone-else", domain="test.local", path="/console")
    ok = await console_login(client, "ann")
    assert ok.status_code == 303 and ok.headers["location"] == "/console"
    assert "httponly" in ok.headers["set-cookie"].lower() and "path=/console" in ok.headers["set-cookie"].lower()
    token = client.cookies.get(COOKIE, path="/console")
    assert token and token != "qs_planted-by-someone-else"
    account = await client.get("/console/account")
    assert account.status_code == 200 and "ann" in account.text and "客服" in account.text

    out = await post_form(client, "/console/logout")
    assert out.status_code == 303 and out.headers["location"] == "/console/login?m=out"
    client.cookies.set(COOKIE, token, domain="test.local", path="/console")  # the old cookie, kept by an attacker
    assert (await client.get("/console/account")).status_code == 303
    assert await _audit(shop) == [("ann", "login_failed"), ("ann", "login"), ("ann", "logout")]


async def test_a_session_ends_when_idle_too_long_or_past_its_absolute_expiry(shop):
    await make_staff(shop, "ben", roles=("support",))
    assert (await console_login(shop.client, "ben")).status_code == 303
    assert (await shop.client.get("/console/account")).status_code == 200
    idle = dt.timedelta(minutes=shop.ctx.settings.console_idle_minutes + 1)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(StaffSession).values(last_seen_at=dt.datetime.now(dt.UTC) - idle))
    assert (await shop.client.get("/console/account")).status_code == 303

    assert (await console_login(shop.client, "ben")).status_code == 303
    assert (await shop.client.get("/console/account")).status_code == 200  # used: the idle clock restarted
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(StaffSession).where(StaffSession.revoked_at.is_(None))
                              .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert (await shop.client.get("/console/account")).status_code == 303


def _code(secret_text: str, offset: float = 0) -> str:
    return totp.totp(totp.secret_from_base32(secret_text), dt.datetime.now(dt.UTC).timestamp() + offset)


async def test_second_factor_enrolled_in_the_console_is_asked_for_at_the_next_login(shop):
    client = shop.client
    await make_staff(shop, "cat", roles=("owner",))
    await console_login(client, "cat")
    started = await post_form(client, "/console/account/second-factor/start")
    assert started.status_code == 200 and "<svg" in started.text
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', started.text).group(1)
    sealed = re.search(r'name="enrolment" value="([^"]+)"', started.text).group(1)
    page_token = csrf_token(started.text)
    headers = {"Origin": "http://test"}
    wrong = await client.post("/console/account/second-factor/confirm",
                              data={"enrolment": sealed, "code": "000000", "csrf_token": page_token}, headers=headers)
    assert wrong.status_code == 422 and secret in wrong.text  # the same secret: the phone's entry stays valid
    tampered = await client.post("/console/account/second-factor/confirm", headers=headers,
                                 data={"enrolment": sealed[:-4] + "AAAA", "code": _code(secret),
                                       "csrf_token": page_token})
    assert tampered.status_code == 422 and "重新开始" in tampered.text
    confirmed = await client.post("/console/account/second-factor/confirm", headers=headers,
                                  data={"enrolment": sealed, "code": _code(secret), "csrf_token": page_token})
    assert confirmed.status_code == 200
    recovery = re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", confirmed.text)
    assert len(recovery) == 10
    on = (await client.get("/console/account")).text
    assert 'data-testid="second-factor-on"' in on and 'action="/console/account/second-factor/recovery-codes"' in on
    assert 'action="/console/account/second-factor/disable"' in on
    await post_form(client, "/console/logout")

    first = await console_login(client, "cat")
    assert first.status_code == 303 and first.headers["location"].startswith("/console/login/verify")
    pending = client.cookies.get(COOKIE, path="/console")
    assert (await client.get("/console/account")).status_code == 303  # nothing opens before the second factor
    client.cookies.set(COOKIE, pending, domain="test.local", path="/console")
    verify_page = await client.get("/console/login/verify")
    assert verify_page.status_code == 200
    failed = await client.post("/console/login/verify", data={"code": "123456", "csrf_token": csrf_token(
        verify_page.text)}, headers=headers)
    assert failed.status_code == 401
    passed = await client.post("/console/login/verify", data={"code": _code(secret, 30), "next": "/console/account",
                                                             "csrf_token": csrf_token(verify_page.text)},
                               headers=headers)
    assert passed.status_code == 303 and passed.headers["location"] == "/console/account"
    assert client.cookies.get(COOKIE, path="/console") != pending  # a new token once fully logged in
    assert (await client.get("/console/account")).status_code == 200
    actions = [action for _, action in await _audit(shop)]
    assert actions == ["login", "second_factor_enabled", "logout", "second_factor_failed", "login"]

    # A recovery code works once, instead of the app.
    await post_form(client, "/console/logout")
    await console_login(client, "cat")
    page = await client.get("/console/login/verify")
    used = await client.post("/console/login/verify", data={"code": recovery[0], "csrf_token": csrf_token(page.text)},
                             headers=headers)
    assert used.status_code == 303


async def test_console_and_api_logins_share_the_failure_limit(shop):
    await make_staff(shop, "dan", roles=("owner",))
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    for _ in range(3):
        assert (await console_login(shop.client, "dan", "guess")).status_code == 401
    limited = await console_login(shop.client, "dan", PASSWORD)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    api = await shop.client.post("/api/staff/login", json={"username": "dan", "password": PASSWORD})
    assert api.status_code == 429


async def test_codes_typed_on_the_account_page_count_like_failed_logins(shop):
    """A session cannot guess its way to new recovery codes or to turning the second factor off: wrong codes
    there count under the login limits, as in the portal, and past them even a right code is refused."""
    user = await make_staff(shop, "gus", roles=("owner",))
    client = shop.client
    assert (await console_login(client, "gus")).status_code == 303
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with shop.ctx.db.transaction() as session:
        enrolment = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=user.id, account="gus",
                                                  issuer="shop")
        await second_factor.confirm_enrolment(session=session, cipher=shop.ctx.cipher, staff_id=user.id,
                                              sealed=enrolment.sealed, now=before,
                                              code=totp.totp(enrolment.secret, before.timestamp()))
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    for url in ("/console/account/second-factor/recovery-codes", "/console/account/second-factor/disable",
                "/console/account/second-factor/disable"):
        wrong = await post_form(client, url, {"code": "000000"})
        assert wrong.status_code == 422 and 'data-testid="account-error"' in wrong.text
    right = totp.totp(enrolment.secret, dt.datetime.now(dt.UTC).timestamp())
    limited = await post_form(client, "/console/account/second-factor/disable", {"code": right})
    assert limited.status_code == 429 and "Retry-After" in limited.headers and "分钟后再试" in limited.text
    async with shop.ctx.db.read_session() as session:
        assert (await second_factor.remaining_recovery_codes(session=session, staff_id=user.id)) == 10
        enabled = await session.scalar(select(StaffUser.totp_enabled_at).where(StaffUser.id == user.id))
    assert enabled is not None  # still on


async def test_a_second_factor_that_is_on_is_not_replaced_by_a_new_enrolment(shop):
    """A session that knows no current code cannot swap in its own authenticator (and get fresh recovery codes):
    the console refuses to start an enrolment while one is on, and a sealed enrolment form (one started before,
    say) is refused at confirmation; the secret and recovery codes stay as they were."""
    user = await make_staff(shop, "hal", roles=("owner",))
    client = shop.client
    assert (await console_login(client, "hal")).status_code == 303
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    early = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=user.id, account="hal", issuer="shop")
    async with shop.ctx.db.transaction() as session:
        enrolment = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=user.id, account="hal",
                                                  issuer="shop")
        await second_factor.confirm_enrolment(session=session, cipher=shop.ctx.cipher, staff_id=user.id,
                                              sealed=enrolment.sealed, now=before,
                                              code=totp.totp(enrolment.secret, before.timestamp()))
    async with shop.ctx.db.read_session() as session:
        stored = await session.scalar(select(StaffUser.totp_ciphertext).where(StaffUser.id == user.id))

    started = await post_form(client, "/console/account/second-factor/start")
    assert started.status_code == 409 and 'name="enrolment"' not in started.text
    page = await client.get("/console/account")
    swapped = await client.post("/console/account/second-factor/confirm", headers={"Origin": "http://test"}, data={
        "enrolment": early.sealed, "code": totp.totp(early.secret, dt.datetime.now(dt.UTC).timestamp()),
        "csrf_token": csrf_token(page.text)})
    assert swapped.status_code == 422 and not re.findall(r"<li><code>([a-z2-9-]{19})</code></li>", swapped.text)
    assert "两步验证已经开启" in swapped.text and "已失效" not in swapped.text  # says why, in Chinese
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(StaffUser.totp_ciphertext).where(StaffUser.id == user.id)) == stored
        assert (await second_factor.remaining_recovery_codes(session=session, staff_id=user.id)) == 10
    assert ("hal", "second_factor_enabled") not in await _audit(shop)
