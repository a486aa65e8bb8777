"""Staff and roles in the console: add staff, give roles of the right side only, disable (sessions end at once,
never oneself), reset a lost second factor (never one's own); through the staff service, audited, scoped to a
merchant's staff."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select

from console.support import PASSWORD, console_login, logged_in, make_staff, post_form
from console.test_console_said import _all_chinese, _refusals
from merchants.support import admit
from quanyi.staff import second_factor, totp
from quanyi.staff import service as staff_service
from quanyi.staff.models import StaffAuditEntry, StaffUser


async def _member(shop, username: str) -> StaffUser:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return await session.scalar(select(StaffUser).where(StaffUser.username == username))  # type: ignore[no-any-return]


async def test_the_owner_adds_staff_gives_roles_disables_and_resets_a_second_factor(shop):
    client = await logged_in(shop, "owen", roles=("owner",))
    page = await client.get("/console/staff?lang=en")
    assert page.status_code == 200 and "owen" in page.text
    assert page.text.count('data-testid="flash"') == 0  # no message drawn when there is none

    short = await post_form(client, "/console/staff", {"username": "sally", "password": "short", "roles": "support"},
                            page_url="/console/staff")
    assert short.status_code == 422 and await _member(shop, "sally") is None
    wrong_side = await post_form(client, "/console/staff", {"username": "sally", "password": PASSWORD,
                                                            "roles": "merchant_owner"}, page_url="/console/staff")
    assert wrong_side.status_code == 422 and await _member(shop, "sally") is None  # platform staff: platform roles
    created = await post_form(client, "/console/staff", {"username": "sally", "password": PASSWORD,
                                                         "roles": "support"}, page_url="/console/staff")
    assert created.status_code == 303 and created.headers["location"].startswith("/console/staff/sally")
    sally = await _member(shop, "sally")
    assert (sally.roles, sally.merchant_id, sally.active) == ("support", None, True)
    assert PASSWORD not in (await client.get("/console/staff/sally")).text
    taken = await post_form(client, "/console/staff", {"username": "sally", "password": PASSWORD},
                            page_url="/console/staff")
    assert taken.status_code == 409

    roles = await post_form(client, "/console/staff/sally/roles", {"roles": ["support", "risk_reviewer"]},
                            page_url="/console/staff/sally")
    assert roles.status_code == 303 and (await _member(shop, "sally")).roles == "risk_reviewer support"
    bad_roles = await post_form(client, "/console/staff/sally/roles", {"roles": "merchant_finance"},
                                page_url="/console/staff/sally")
    assert bad_roles.status_code == 422 and (await _member(shop, "sally")).roles == "risk_reviewer support"

    # Sally logs in elsewhere; disabling her ends that session at once.
    sally_browser = httpx.AsyncClient(transport=shop.client._transport, base_url="http://test")  # noqa: SLF001
    assert (await console_login(sally_browser, "sally")).status_code == 303
    assert (await sally_browser.get("/console/reviews")).status_code == 200
    disabled = await post_form(client, "/console/staff/sally/active", {}, page_url="/console/staff/sally")
    assert disabled.status_code == 303 and not (await _member(shop, "sally")).active
    assert (await sally_browser.get("/console/reviews")).status_code == 303  # back to the login page
    await sally_browser.aclose()
    myself = await post_form(client, "/console/staff/owen/active", {}, page_url="/console/staff/owen")
    assert myself.status_code == 422 and (await _member(shop, "owen")).active  # nobody disables themself
    enabled = await post_form(client, "/console/staff/sally/active", {"active": "on"}, page_url="/console/staff/sally")
    assert enabled.status_code == 303 and (await _member(shop, "sally")).active

    none_to_reset = await post_form(client, "/console/staff/sally/reset-2fa", {}, page_url="/console/staff/sally")
    assert none_to_reset.status_code == 409
    async with shop.ctx.db.transaction() as session:
        enrolment = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=sally.id, account="sally",
                                                  issuer="shop")
        now = dt.datetime.now(dt.UTC)
        await second_factor.confirm_enrolment(session=session, cipher=shop.ctx.cipher, staff_id=sally.id,
                                              sealed=enrolment.sealed, now=now,
                                              code=totp.totp(enrolment.secret, now.timestamp()))
    assert (await _member(shop, "sally")).totp_enabled_at is not None
    reset = await post_form(client, "/console/staff/sally/reset-2fa", {}, page_url="/console/staff/sally")
    assert reset.status_code == 303 and (await _member(shop, "sally")).totp_enabled_at is None
    assert (await client.get("/console/staff/nobody")).status_code == 404

    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(StaffAuditEntry.action).where(
            StaffAuditEntry.actor == "owen", StaffAuditEntry.action != "login").order_by(StaffAuditEntry.id))).all()
    assert actions == ["staff_created", "staff_roles_set", "staff_disabled", "staff_enabled", "staff_2fa_reset"]


async def test_a_merchant_owner_manages_only_their_merchant_staff_with_merchant_roles(shop):
    tenant = await admit(shop, "tea-house", permissions=(), username="tea-boss")
    async with shop.ctx.db.transaction() as session:
        await staff_service.replace_roles(session=session, username="tea-boss", roles=["merchant_owner"])
        await staff_service.set_password(session=session, username="tea-boss", password=PASSWORD)
        await staff_service.create_staff(session=session, username="platform-pat", password=PASSWORD,
                                         roles=["support"])
    assert (await console_login(shop.client, "tea-boss")).status_code == 303
    page = await shop.client.get("/console/staff")
    assert page.status_code == 200 and "tea-boss" in page.text and "platform-pat" not in page.text
    assert 'value="support"' not in page.text and 'value="merchant_support"' in page.text
    assert (await shop.client.get("/console/staff/platform-pat")).status_code == 404

    platform_role = await post_form(shop.client, "/console/staff", {"username": "tea-clerk", "password": PASSWORD,
                                                                    "roles": "owner"}, page_url="/console/staff")
    assert platform_role.status_code == 422 and await _member(shop, "tea-clerk") is None
    made = await post_form(shop.client, "/console/staff", {"username": "tea-clerk", "password": PASSWORD,
                                                           "roles": "merchant_support"}, page_url="/console/staff")
    assert made.status_code == 303
    clerk = await _member(shop, "tea-clerk")
    assert (clerk.merchant_id, clerk.roles) == (tenant.merchant_id, "merchant_support")
    touched = await post_form(shop.client, "/console/staff/platform-pat/active", {}, page_url="/console/staff")
    assert touched.status_code == 404 and (await _member(shop, "platform-pat")).active
    assert (await shop.client.get("/console/gateways")).status_code == 403  # platform configuration


async def _enrol(shop, username: str) -> None:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.transaction() as session:
        member = await session.scalar(select(StaffUser).where(StaffUser.username == username))
        enrolment = second_factor.start_enrolment(cipher=shop.ctx.cipher, staff_id=member.id, account=username,
                                                  issuer="shop")
        now = dt.datetime.now(dt.UTC)
        await second_factor.confirm_enrolment(session=session, cipher=shop.ctx.cipher, staff_id=member.id,
                                              sealed=enrolment.sealed, now=now,
                                              code=totp.totp(enrolment.secret, now.timestamp()))


async def _second_factor_on(shop, username: str) -> bool:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        member = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    return member.totp_enabled_at is not None


async def test_nobody_resets_their_own_second_factor_from_the_staff_page(shop):
    client = await logged_in(shop, "owen", roles=("owner",))
    await _enrol(shop, "owen")
    own = await client.get("/console/staff/owen")
    assert own.status_code == 200 and 'data-testid="reset-2fa"' not in own.text  # no button for oneself
    refused = await post_form(client, "/console/staff/owen/reset-2fa", {}, page_url="/console/staff/owen")
    assert refused.status_code == 422 and await _second_factor_on(shop, "owen")
    said = _refusals(refused.text)
    _all_chinese(said)
    assert any("不能重置自己的两步验证" in text for text in said), said
    assert (await client.get("/console/account")).status_code == 200  # still logged in: nothing was reset

    await make_staff(shop, "olga", roles=("owner",))  # another administrator can, from her own browser
    async with httpx.AsyncClient(transport=shop.client._transport, base_url="http://test") as olga:  # noqa: SLF001
        assert (await console_login(olga, "olga")).status_code == 303
        other = await olga.get("/console/staff/owen")
        assert 'data-testid="reset-2fa"' in other.text
        reset = await post_form(olga, "/console/staff/owen/reset-2fa", {}, page_url="/console/staff/owen")
        assert reset.status_code == 303 and not await _second_factor_on(shop, "owen")


def test_every_role_says_what_it_is_for_in_both_languages():
    from quanyi.staff.roles import ROLES, role_description

    for name, role in ROLES.items():
        assert role.description and role.description_zh, name
        assert role_description(name, "zh-CN") == role.description_zh
        assert role_description(name, "en") == role.description


async def test_the_staff_pages_describe_the_roles_in_the_pages_language(shop):
    client = await logged_in(shop, "rosa", roles=("owner",))
    for url in ("/console/staff", "/console/staff/rosa"):
        page = await client.get(url)
        assert page.status_code == 200
        assert "日常运营：经营概览" in page.text and "daily running" not in page.text, url
    english = await client.get("/console/staff/rosa?lang=en")
    assert "daily running: dashboard" in english.text


def test_every_permission_has_a_name_in_both_languages():
    from quanyi.console.i18n import MESSAGES
    from quanyi.staff.permissions import PERMISSIONS

    for locale in ("zh-CN", "en"):
        assert all(f"perm.{name}" in MESSAGES[locale] for name in PERMISSIONS), locale


async def test_the_effective_permissions_are_named_in_chinese_with_their_codes_at_hand(shop):
    await make_staff(shop, "otto", roles=("operator",))
    client = await logged_in(shop, "rina", roles=("owner",))
    page = await client.get("/console/staff/otto?lang=zh-CN")
    assert page.status_code == 200
    shown = page.text[page.text.index('data-testid="permissions"'):].split("</dd>")[0]
    assert "查看订单" in shown and "补单、重发通知与手动发货" in shown and "管理卡密库存" in shown
    assert 'title="orders.read"' in shown and ">orders.read<" not in shown and ", " not in shown
    account = await client.get("/console/account")
    assert "全部权限（店主 / 管理员）" in account.text and ">admin<" not in account.text
    client.cookies.clear()
    assert (await console_login(client, "otto")).status_code == 303
    refused = await client.get("/console/ledger")
    assert refused.status_code == 403 and "所需的权限（查看总账与结算 ledger.read）" in refused.text
