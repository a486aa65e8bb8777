"""Roles as permission bundles, and the second factor (TOTP + recovery codes) on the API login."""

from __future__ import annotations

import datetime as dt

from quanyi.staff import second_factor, totp
from quanyi.staff import service as staff_service
from quanyi.staff.roles import ROLES
from quanyi.staff.sessions import open_console_session
from staff.staff_helpers import PASSWORD, login


async def test_roles_give_their_permissions_and_only_those(shop, sku):
    async with shop.ctx.db.transaction() as session:
        await staff_service.create_staff(session=session, username="fin", password=PASSWORD, roles=["finance"])
        await staff_service.create_staff(session=session, username="boss", password=PASSWORD, roles=["owner"])
    headers = await login(shop, "fin")
    me = (await shop.client.get("/api/staff/me", headers=headers)).json()
    assert me["roles"] == ["finance"] and me["permissions"] == sorted(ROLES["finance"].permissions)
    stock = f"/api/admin/skus/{sku.id}/stock"
    assert (await shop.client.get(stock, headers=headers)).status_code == 403
    assert (await shop.client.get(stock, headers=await login(shop, "boss"))).status_code == 200
    # Taking the role away takes its permissions away on the next request.
    async with shop.ctx.db.transaction() as session:
        await staff_service.unassign_roles(session=session, username="fin", roles=["finance"])
    assert (await shop.client.get("/api/staff/me", headers=headers)).json()["permissions"] == []
    async with shop.ctx.db.transaction() as session:
        try:
            await staff_service.assign_roles(session=session, username="fin", roles=["emperor"])
            raise AssertionError("an unknown role was accepted")
        except staff_service.InvalidStaffInput as exc:
            assert "emperor" in exc.message


async def _enrol(shop, username: str) -> tuple[bytes, list[str]]:
    now = dt.datetime.now(dt.UTC)
    async with shop.ctx.db.transaction() as session:
        user = await staff_service.create_staff(session=session, username=username, password=PASSWORD,
                                                permissions=["admin"])
        enrolment = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=user.id, account=username,
                                                  issuer="shop", now=now)
        wrong = str((int(totp.totp(enrolment.secret, now.timestamp())) + 1) % 10**6).zfill(6)
        try:
            await second_factor.confirm_enrolment(session=session, cipher=shop.ctx.cipher, staff_id=user.id,
                                                  sealed=enrolment.sealed, code=wrong, now=now)
            raise AssertionError("a wrong code enrolled the second factor")
        except second_factor.EnrolmentInvalid:
            pass
    async with shop.ctx.db.transaction() as session:
        codes = await second_factor.confirm_enrolment(
            session=session, cipher=shop.ctx.cipher, staff_id=user.id, sealed=enrolment.sealed,
            code=totp.totp(enrolment.secret, now.timestamp() - 30), now=now)
    return enrolment.secret, codes


async def test_api_login_of_an_account_with_a_second_factor_needs_a_fresh_code_or_a_recovery_code(shop):
    secret, recovery = await _enrol(shop, "gina")
    assert len(recovery) == 10 and len(set(recovery)) == 10
    body = {"username": "gina", "password": PASSWORD}
    missing = await shop.client.post("/api/staff/login", json=body)
    assert missing.status_code == 401 and missing.json()["code"] == "second_factor_required"
    code = totp.totp(secret, dt.datetime.now(dt.UTC).timestamp())
    assert (await shop.client.post("/api/staff/login", json={**body, "otp": code})).status_code == 200
    replay = await shop.client.post("/api/staff/login", json={**body, "otp": code})
    assert replay.status_code == 401 and replay.json()["code"] == "login_failed"  # each code works once
    assert (await shop.client.post("/api/staff/login", json={**body, "otp": recovery[3].upper()})).status_code == 200
    assert (await shop.client.post("/api/staff/login", json={**body, "otp": recovery[3]})).status_code == 401
    async with shop.ctx.db.read_session() as session:
        user = await staff_service.get_staff(session=session, username="gina")
        assert await second_factor.remaining_recovery_codes(session=session, staff_id=user.id) == 9
    # Wrong codes count as failed logins (two so far): past the per-user limit even a right code is refused.
    shop.ctx.settings.staff_login_max_failures_per_user = 3
    assert (await shop.client.post("/api/staff/login", json={**body, "otp": "000000"})).status_code == 401
    limited = await shop.client.post("/api/staff/login", json={**body, "otp": recovery[0]})
    assert limited.status_code == 429


async def test_a_console_session_token_is_not_an_api_bearer_token(shop):
    async with shop.ctx.db.transaction() as session:
        user = await staff_service.create_staff(session=session, username="hal", password=PASSWORD,
                                                permissions=["admin"])
    token = await open_console_session(db=shop.ctx.db, user=user, hours=1, ip="", user_agent="",
                                       second_factor_pending=False)
    refused = await shop.client.get("/api/staff/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
