"""Enterprise portal users and logins: created by operators (API, CLI) and enterprise admins; login with
enterprise code + username + password (no account enumeration, rate-limited), optional TOTP; HttpOnly
session cookies rotated at login, revocable; CSRF on forms; every login audited with the user as actor."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from enterprises.portal_support import (
    COOKIE,
    PASSWORD,
    add_user,
    browser,
    csrf_token,
    logged_in,
    portal_login,
    post_form,
)
from enterprises.support import add_enterprise, run_cli
from quanyi.enterprises import users
from quanyi.enterprises.models import EnterpriseUserSession
from quanyi.staff import totp
from quanyi.staff.models import StaffAuditEntry


async def test_operator_creates_users_through_the_api_with_checked_input(shop):
    await add_enterprise(shop, "ACME")
    made = await add_user(shop, "ACME", "Alice", "purchaser")
    assert made["username"] == "alice" and made["role"] == "purchaser" and made["active"] is True
    url = "/api/admin/enterprises/ACME/users"
    again = await shop.client.post(url, headers=shop.admin, json={"username": "alice", "password": PASSWORD,
                                                                   "role": "viewer"})
    assert again.status_code == 409 and again.json()["code"] == "enterprise_user_exists"
    for bad in ({"username": "bob", "password": "short", "role": "viewer"},
                {"username": "bob", "password": PASSWORD, "role": "owner"},
                {"username": "b o b", "password": PASSWORD, "role": "viewer"}):
        refused = await shop.client.post(url, headers=shop.admin, json=bad)
        assert refused.status_code == 422, bad
    assert (await shop.client.post("/api/admin/enterprises/NOPE/users", headers=shop.admin, json={
        "username": "bob", "password": PASSWORD, "role": "viewer"})).status_code == 404
    assert (await shop.client.get(url)).status_code == 401
    # The same username in another enterprise is another person.
    await add_enterprise(shop, "BETA")
    await add_user(shop, "BETA", "alice", "viewer")
    listed = await shop.client.get(url, headers=shop.admin)
    assert [u["username"] for u in listed.json()] == ["alice"]


async def test_login_sets_an_httponly_portal_cookie_rotated_at_every_login_and_logout_ends_it(shop):
    client = await logged_in(shop, "ACME", "alice")
    cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
    assert cookie.path == "/portal" and cookie.has_nonstandard_attr("HttpOnly")
    first = cookie.value
    home = await client.get("/portal")
    assert home.status_code == 200 and "ACME" in home.text and home.headers["cache-control"] == "no-store"
    # Logging in again (same browser) ends the old session: its token opens nothing any more.
    assert (await portal_login(client, "ACME", "alice")).status_code == 303
    second = next(c for c in client.cookies.jar if c.name == COOKIE).value
    assert second != first
    stale = browser(shop)
    stale.cookies.set(COOKIE, first, path="/portal")
    assert (await stale.get("/portal")).status_code == 303
    logout = await post_form(client, "/portal/logout", page_url="/portal")
    assert logout.status_code == 303 and logout.headers["location"] == "/portal/login?m=out"
    replay = browser(shop)
    replay.cookies.set(COOKIE, second, path="/portal")
    assert (await replay.get("/portal")).headers["location"].startswith("/portal/login")


async def test_wrong_password_unknown_user_and_unknown_enterprise_get_one_answer(shop):
    await add_enterprise(shop, "ACME")
    await add_user(shop, "ACME", "alice")
    answers = []
    for code, name, password in (("ACME", "alice", "wrong password!"), ("ACME", "nobody", PASSWORD),
                                 ("NOPE", "alice", PASSWORD)):
        response = await portal_login(browser(shop), code, name, password)
        answers.append((response.status_code, "企业代码、用户名或密码错误" in response.text))
        assert COOKIE not in response.cookies
    assert answers == [(401, True)] * 3
    # The code typed in lower case still finds ACME.
    assert (await portal_login(browser(shop), "acme", "ALICE")).status_code == 303


async def test_failed_logins_are_limited_then_even_the_right_password_is_refused(shop):
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    await add_enterprise(shop, "ACME")
    await add_user(shop, "ACME", "alice")
    for _ in range(3):
        assert (await portal_login(browser(shop), "ACME", "alice", "wrong password!")).status_code == 401
    limited = await portal_login(browser(shop), "ACME", "alice")
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    # Staff logins count apart: the same name at the console is not limited by these failures.
    assert (await shop.client.get("/console/login")).status_code == 200


async def test_a_disabled_user_or_a_new_password_ends_every_session(shop):
    client = await logged_in(shop, "ACME", "alice")
    other = browser(shop)
    assert (await portal_login(other, "ACME", "alice")).status_code == 303
    changed = await shop.client.patch("/api/admin/enterprises/ACME/users/alice", headers=shop.admin,
                                      json={"password": "a brand new password"})
    assert changed.status_code == 200
    for c in (client, other):
        assert (await c.get("/portal")).status_code == 303
    assert (await portal_login(client, "ACME", "alice")).status_code == 401
    assert (await portal_login(client, "ACME", "alice", "a brand new password")).status_code == 303
    disabled = await shop.client.patch("/api/admin/enterprises/ACME/users/alice", headers=shop.admin,
                                       json={"active": False})
    assert disabled.json()["active"] is False
    assert (await client.get("/portal")).status_code == 303
    assert (await portal_login(client, "ACME", "alice", "a brand new password")).status_code == 401
    open_sessions = await shop.scalar(select(func.count()).select_from(EnterpriseUserSession).where(
        EnterpriseUserSession.revoked_at.is_(None)))
    assert open_sessions == 0


async def test_second_factor_is_asked_after_the_password_and_a_code_works_once(shop):
    client = await logged_in(shop, "ACME", "alice")
    async with shop.ctx.db.read_session() as session:
        me = await users.get_user(session=session, code="ACME", username="alice")
    enrolment = users.SECOND_FACTOR.start_enrolment(cipher=shop.ctx.cipher, owner_id=me.id, account="a", issuer="q")
    confirmed = await post_form(client, "/portal/account/second-factor/confirm", {
        "sealed": enrolment.sealed, "code": totp.totp(enrolment.secret, time.time() - 30)})
    assert confirmed.status_code == 200 and 'data-testid="recovery-codes"' in confirmed.text
    phone = browser(shop)
    pending = await portal_login(phone, "ACME", "alice")
    assert pending.status_code == 303 and pending.headers["location"].startswith("/portal/login/verify")
    probe = browser(shop)  # the password alone opens nothing
    probe.cookies.set(COOKIE, phone.cookies.get(COOKIE, path="/portal"), path="/portal")
    assert (await probe.get("/portal")).status_code == 303
    page = await phone.get("/portal/login/verify")
    code = totp.totp(enrolment.secret, time.time())
    verified = await phone.post("/portal/login/verify", data={"code": code, "csrf_token": csrf_token(page.text)})
    assert verified.status_code == 303 and (await phone.get("/portal")).status_code == 200
    # The same code again (another browser) is refused: a code works once.
    thief = browser(shop)
    await portal_login(thief, "ACME", "alice")
    page = await thief.get("/portal/login/verify")
    replay = await thief.post("/portal/login/verify", data={"code": code, "csrf_token": csrf_token(page.text)})
    assert replay.status_code == 401
    # An operator resets a lost phone: password alone again, sessions ended.
    reset = await shop.client.delete("/api/admin/enterprises/ACME/users/alice/second-factor", headers=shop.admin)
    assert reset.status_code == 200 and reset.json()["second_factor"] is False
    assert (await phone.get("/portal")).status_code == 303


async def test_forms_without_the_csrf_token_or_from_another_site_change_nothing(shop):
    client = await logged_in(shop, "ACME", "alice")
    bare = await client.post("/portal/logout")
    assert bare.status_code == 403
    page = await client.get("/portal")
    foreign = await client.post("/portal/logout", data={"csrf_token": csrf_token(page.text)},
                                headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert (await client.get("/portal")).status_code == 200  # still logged in


async def test_logins_are_audited_with_the_enterprise_user_as_actor(shop):
    await logged_in(shop, "ACME", "alice")
    await portal_login(browser(shop), "ACME", "alice", "wrong password!")
    async with shop.ctx.db.read_session() as session:
        rows = (await session.scalars(select(StaffAuditEntry).order_by(StaffAuditEntry.id))).all()
    assert [(r.actor, r.action, r.object_id) for r in rows] == [
        ("acme/alice", "portal_login", "ACME"), ("acme/alice", "portal_login_failed", "ACME")]
    assert all(r.staff_id is None for r in rows)


async def test_cli_adds_lists_disables_and_resets_users(shop, monkeypatch):
    await add_enterprise(shop, "ACME")
    added = await run_cli(shop, monkeypatch, "enterprises", "users", "add", "ACME", "carol", "--role", "purchaser",
                          "--password-stdin", input_text=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    listed = await run_cli(shop, monkeypatch, "enterprises", "users", "list", "ACME")
    assert "carol" in listed.output and "purchaser" in listed.output
    client = browser(shop)
    assert (await portal_login(client, "ACME", "carol")).status_code == 303
    disabled = await run_cli(shop, monkeypatch, "enterprises", "users", "set", "ACME", "carol", "--disable")
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    assert (await client.get("/portal")).status_code == 303
    bad = await run_cli(shop, monkeypatch, "enterprises", "users", "set", "ACME", "carol", "--role", "boss")
    assert bad.exit_code == 1 and "role must be one of" in bad.output


async def test_an_enterprise_admin_manages_their_own_colleagues_only(shop):
    admin = await logged_in(shop, "ACME", "alice", "admin")
    added = await post_form(admin, "/portal/users", {"username": "bob", "display_name": "Bob", "role": "viewer",
                                                     "password": PASSWORD}, page_url="/portal/users")
    assert added.status_code == 303 and "m=user_added" in added.headers["location"]
    bob = browser(shop)
    assert (await portal_login(bob, "ACME", "bob")).status_code == 303
    assert (await bob.get("/portal/users")).status_code == 403  # a viewer does not manage users
    promoted = await post_form(admin, "/portal/users/bob/role", {"role": "purchaser"}, page_url="/portal/users")
    assert promoted.status_code == 303
    assert 'data-testid="my-role">采购员<' in (await bob.get("/portal/account")).text  # effective at once
    weak = await post_form(admin, "/portal/users", {"username": "carl", "role": "viewer", "password": "short"},
                           page_url="/portal/users")
    assert weak.status_code == 422
    for action in ("disable", "role"):
        myself = await post_form(admin, f"/portal/users/alice/{action}", {"role": "viewer"}, page_url="/portal/users")
        assert myself.status_code == 422, action
    disabled = await post_form(admin, "/portal/users/bob/disable", page_url="/portal/users")
    assert disabled.status_code == 303 and (await bob.get("/portal")).status_code == 303
    async with shop.ctx.db.read_session() as session:
        rows = (await session.execute(select(StaffAuditEntry.actor, StaffAuditEntry.action).where(
            StaffAuditEntry.action.like("portal_user_%")))).all()
    assert sorted(rows) == [("acme/alice", "portal_user_created"), ("acme/alice", "portal_user_disable"),
                            ("acme/alice", "portal_user_role")]


async def test_own_password_change_checks_the_current_one_under_the_limits_and_ends_every_session(shop):
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    client = await logged_in(shop, "ACME", "alice")
    other = browser(shop)
    assert (await portal_login(other, "ACME", "alice")).status_code == 303
    wrong = await post_form(client, "/portal/account/password", {"current": "not my password", "new": "x" * 12})
    assert wrong.status_code == 403
    changed = await post_form(client, "/portal/account/password", {"current": PASSWORD, "new": "a new long password"})
    assert changed.status_code == 303 and changed.headers["location"] == "/portal/login?m=password"
    assert (await other.get("/portal")).status_code == 303
    assert (await portal_login(browser(shop), "ACME", "alice", "a new long password")).status_code == 303
    fresh = browser(shop)
    await portal_login(fresh, "ACME", "alice", "a new long password")
    for _ in range(2):
        assert (await post_form(fresh, "/portal/account/password", {"current": "guess", "new": "y" * 12})
                ).status_code == 403
    limited = await post_form(fresh, "/portal/account/password", {"current": "guess", "new": "y" * 12})
    assert limited.status_code == 429  # guesses through a session count like failed logins


async def test_second_factor_is_turned_off_only_with_a_current_code_and_not_replaced_silently(shop):
    client = await logged_in(shop, "ACME", "alice")
    async with shop.ctx.db.read_session() as session:
        me = await users.get_user(session=session, code="ACME", username="alice")
    enrolment = users.SECOND_FACTOR.start_enrolment(cipher=shop.ctx.cipher, owner_id=me.id, account="a", issuer="q")
    await post_form(client, "/portal/account/second-factor/confirm", {
        "sealed": enrolment.sealed, "code": totp.totp(enrolment.secret, time.time() - 30)})
    again = await post_form(client, "/portal/account/second-factor/start")
    assert again.status_code == 409 and 'data-testid="enrolment"' not in again.text
    wrong = await post_form(client, "/portal/account/second-factor/off", {"code": "000000"})
    assert wrong.status_code == 422 and 'data-testid="second-factor-on"' in wrong.text
    off = await post_form(client, "/portal/account/second-factor/off",
                          {"code": totp.totp(enrolment.secret, time.time())})
    assert off.status_code == 200 and 'data-testid="second-factor-off"' in off.text


async def test_a_sealed_enrolment_cannot_replace_a_second_factor_that_is_on(shop):
    client = await logged_in(shop, "ACME", "alice")
    async with shop.ctx.db.read_session() as session:
        me = await users.get_user(session=session, code="ACME", username="alice")
    early = users.SECOND_FACTOR.start_enrolment(cipher=shop.ctx.cipher, owner_id=me.id, account="a", issuer="q")
    enrolment = users.SECOND_FACTOR.start_enrolment(cipher=shop.ctx.cipher, owner_id=me.id, account="a", issuer="q")
    on = await post_form(client, "/portal/account/second-factor/confirm", {
        "sealed": enrolment.sealed, "code": totp.totp(enrolment.secret, time.time() - 30)})
    assert on.status_code == 200
    async with shop.ctx.db.read_session() as session:
        stored = (await users.get_user(session=session, code="ACME", username="alice")).totp_ciphertext
    swapped = await post_form(client, "/portal/account/second-factor/confirm", {
        "sealed": early.sealed, "code": totp.totp(early.secret, time.time())})
    assert swapped.status_code == 422
    assert "两步验证已经开启" in swapped.text and "already on" not in swapped.text  # said in Chinese
    async with shop.ctx.db.read_session() as session:
        assert (await users.get_user(session=session, code="ACME", username="alice")).totp_ciphertext == stored


async def test_an_admin_cannot_reset_their_own_password_or_second_factor_from_the_user_list(shop):
    """Their own password and second factor change on the account page only, with the current password or a
    current code under the login limits: the user list's password and reset-2fa (meant for a colleague who lost
    theirs) would let a hijacked admin session set a password it knows and take the second factor off."""
    client = await logged_in(shop, "ACME", "alice", "admin")
    async with shop.ctx.db.read_session() as session:
        me = await users.get_user(session=session, code="ACME", username="alice")
    enrolment = users.SECOND_FACTOR.start_enrolment(cipher=shop.ctx.cipher, owner_id=me.id, account="a", issuer="q")
    on = await post_form(client, "/portal/account/second-factor/confirm", {
        "sealed": enrolment.sealed, "code": totp.totp(enrolment.secret, time.time() - 30)})
    assert on.status_code == 200
    for action, data in (("password", {"password": "a password I chose"}), ("reset-2fa", {})):
        refused = await post_form(client, f"/portal/users/alice/{action}", data, page_url="/portal/users")
        assert refused.status_code == 422, action
    async with shop.ctx.db.read_session() as session:
        me = await users.get_user(session=session, code="ACME", username="alice")
    assert me.totp_enabled_at is not None
    assert (await portal_login(browser(shop), "ACME", "alice", "a password I chose")).status_code == 401
    assert (await client.get("/portal/account")).status_code == 200  # still logged in: nothing was changed
