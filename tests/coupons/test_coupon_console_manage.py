"""Managing coupons in the console: create every kind, change what may change, pause / resume, issue to members,
single-use code batches downloaded as CSV; each action audited; a refused form shows why and changes nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import func, select

from console.support import csrf_token, logged_in
from coupons.support import make_coupon, try_order
from helpers import make_settings
from members.support import sign_in
from merchants.console_sweep import console_client
from merchants.support import admit
from quanyi.coupons.models import Coupon, CouponGrant, CouponTarget
from quanyi.staff.models import StaffAuditEntry

ORIGIN = {"Origin": "http://test"}


@pytest.fixture
def settings(database_url: str):  # members sign in by a code from the outbox
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")


def _when(days: int) -> str:
    """A datetime-local value on the shop's clock (Asia/Shanghai, the default)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days, hours=8)).strftime("%Y-%m-%dT%H:%M")


def _form(**fields: str) -> dict[str, str]:
    return {"name": "满100减20", "kind": "amount_off", "amount_off": "20.00", "threshold": "100", "currency": "CNY",
            "starts_at": _when(-1), "ends_at": _when(30), "distribution": "claim", "scope": "all", **fields}


async def _post(client, url: str, data: dict[str, str], page: str = "/console/coupons/new"):  # type: ignore[no-untyped-def]
    token = csrf_token((await client.get(page)).text)
    return await client.post(url, data={**data, "csrf_token": token}, headers=ORIGIN)


async def _audit(shop, action: str) -> list[str]:
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(StaffAuditEntry.summary).where(StaffAuditEntry.action == action)
                                           .order_by(StaffAuditEntry.id))).all())


async def _count(shop, model) -> int:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_an_operator_creates_every_kind_of_coupon_and_buyers_get_its_discount(shop, stocked_sku):
    client = await logged_in(shop, "marketer", roles=("operator",))
    made = await _post(client, "/console/coupons", _form(new_members_only="on", per_member_limit="1",
                                                         total_quantity="100"))
    assert made.status_code == 303, made.text
    coupon_id = int(re.search(r"/console/coupons/(\d+)\?m=created", made.headers["location"]).group(1))  # type: ignore[union-attr]
    page = await client.get(made.headers["location"])
    assert 'data-testid="flash"' in page.text and "满¥100.00减¥20.00" in page.text
    percent = await _post(client, "/console/coupons", _form(
        name="85折", kind="percent_off", percent_off="15", max_discount="5", threshold="", distribution="code",
        code="vip-85", stackable="on"))
    assert percent.status_code == 303, percent.text
    fixed = await _post(client, "/console/coupons", _form(
        name="一口价", kind="fixed_price", fixed_price="9.90", threshold="", distribution="issued", scope="some",
        skus=stocked_sku.code, signup_gift="on"))
    assert fixed.status_code == 303, fixed.text
    async with shop.ctx.db.read_session() as session:
        coupons = {c.name: c for c in (await session.scalars(select(Coupon))).all()}
        targets = (await session.execute(select(CouponTarget.kind, CouponTarget.target_id))).all()
    first = coupons["满100减20"]
    assert (first.id, first.amount_off_cents, first.threshold_cents, first.total_quantity, first.per_member_limit,
            first.new_members_only, first.distribution, first.applies_to_all, first.merchant_id) == (
        coupon_id, 2000, 10000, 100, 1, True, "claim", True, 1)
    vip = coupons["85折"]
    assert (vip.percent_off_bps, vip.max_discount_cents, vip.code, vip.stackable) == (1500, 500, "VIP85", True)
    assert (coupons["一口价"].fixed_price_cents, coupons["一口价"].signup_gift) == (990, True)
    assert targets == [("sku", stocked_sku.id)]
    assert len(await _audit(shop, "coupon_created")) == 3
    # The code made in the console works at checkout: 15 % of ¥19.80 is ¥2.97, capped at ¥5.
    order = await try_order(shop, stocked_sku.id, coupon_codes=["VIP85"])
    assert order.status_code == 201, order.text
    assert (order.json()["total_cents"], order.json()["coupon_discount_cents"]) == (1683, 297)


@pytest.mark.parametrize(("fields", "field"), [
    ({"amount_off": ""}, "amount_off"),
    ({"amount_off": "12.345"}, "amount_off"),
    ({"kind": "percent_off", "percent_off": "100"}, "percent_off"),
    ({"ends_at": _when(-2)}, "ends_at"),
    ({"distribution": "code", "code": ""}, "code"),
    ({"total_quantity": "-1"}, "total_quantity"),
    ({"scope": "some"}, "scope"),
    ({"scope": "some", "skus": "NO-SUCH-SKU"}, "scope"),
    ({"signup_gift": "on"}, "form"),
    ({"name": ""}, "name"),
])
async def test_a_refused_coupon_form_says_why_on_the_page_and_changes_nothing(shop, fields, field):
    client = await logged_in(shop, "marketer", roles=("operator",))
    refused = await _post(client, "/console/coupons", _form(**fields))
    assert refused.status_code == 422, refused.text
    assert f'data-testid="{field}-error"' in refused.text, refused.text
    assert 'data-testid="flash"' in refused.text  # the headline: nothing was changed
    assert 'value="满100减20"' in refused.text or field == "name"  # what was typed is kept
    assert await _count(shop, Coupon) == 0
    assert await _audit(shop, "coupon_created") == []


async def test_a_taken_public_code_and_another_merchants_goods_are_refused(shop, stocked_sku):
    await make_coupon(shop, code="SAVE3")
    tenant = await admit(shop, "other-shop")
    client = await logged_in(shop, "marketer", roles=("operator",))
    clash = await _post(client, "/console/coupons", _form(distribution="code", code="save 3"))
    assert clash.status_code == 422 and 'data-testid="code-error"' in clash.text
    theirs = await _post(client, "/console/coupons", _form(merchant_code=tenant.code, scope="some",
                                                           skus=stocked_sku.code))
    assert theirs.status_code == 422 and "本店商品中没有此规格（SKU）" in theirs.text  # the platform's SKU
    assert await _count(shop, Coupon) == 1


async def test_pause_resume_and_change_what_may_change(shop, stocked_sku):
    made = await make_coupon(shop, code="SAVE3", total_quantity=5)
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).status_code == 201
    client = await logged_in(shop, "marketer", roles=("operator",))
    page_url = f"/console/coupons/{made['id']}"
    paused = await _post(client, f"{page_url}/active", {}, page=page_url)
    assert paused.status_code == 303 and paused.headers["location"].endswith("?m=paused")
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).json()["reason"] == "inactive"
    resumed = await _post(client, f"{page_url}/active", {"active": "on"}, page=page_url)
    assert resumed.headers["location"].endswith("?m=resumed")
    edit = {"name": "改名了", "description": "", "starts_at": _when(-1), "ends_at": _when(60), "total_quantity": "0",
            "per_member_limit": "", "stackable": "on"}
    below = await _post(client, page_url, edit, page=page_url)
    assert below.status_code == 422 and 'data-testid="total_quantity-error"' in below.text
    assert "已领取或使用 1 张，总量不能少于此数" in below.text
    saved = await _post(client, page_url, {**edit, "total_quantity": "1"}, page=page_url)
    assert saved.status_code == 303, saved.text
    async with shop.ctx.db.read_session() as session:
        coupon = await session.get(Coupon, made["id"])
    assert (coupon.name, coupon.total_quantity, coupon.stackable, coupon.active) == ("改名了", 1, True, True)
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).json()["code"] == "coupon_sold_out"
    assert [a for a in ("coupon_paused", "coupon_resumed", "coupon_updated") if await _audit(shop, a)] == [
        "coupon_paused", "coupon_resumed", "coupon_updated"]
    assert len(await _audit(shop, "coupon_updated")) == 1  # the refused edit left no entry


async def test_issue_to_members_by_id_or_contact_and_unknown_members_issue_nothing(shop):
    first = await sign_in(shop, "first@example.com")
    second = await sign_in(shop, "second@example.com")
    made = await make_coupon(shop, name="定向券", distribution="issued", code=None, per_member_limit=1)
    client = await logged_in(shop, "marketer", roles=("operator",))
    page_url = f"/console/coupons/{made['id']}"
    unknown = await _post(client, f"{page_url}/issue", {"members": f"{first['member']['id']}\nnobody@example.com"},
                          page=page_url)
    assert unknown.status_code == 422 and "nobody@example.com" in unknown.text
    assert await _count(shop, CouponGrant) == 0
    issued = await _post(client, f"{page_url}/issue", {"members": f"{first['member']['id']}, second@example.com"},
                         page=page_url)
    assert issued.status_code == 303 and "m=issued&count=2" in issued.headers["location"]
    again = await _post(client, f"{page_url}/issue", {"members": "second@example.com"}, page=page_url)
    assert "m=issued_some&count=0" in again.headers["location"]
    assert f"%23{second['member']['id']}" in again.headers["location"]  # who was refused, and why
    async with shop.ctx.db.read_session() as session:
        held = sorted((await session.scalars(select(CouponGrant.member_id))).all())
    assert held == sorted([first["member"]["id"], second["member"]["id"]])
    assert len(await _audit(shop, "coupon_issued")) == 2


async def test_a_merchants_staff_make_their_own_coupons_and_issue_by_member_id_only(shop):
    member = await sign_in(shop, "buyer@example.com")
    tenant = await admit(shop, "coupon-shop", permissions=("catalog.manage",))
    client = await console_client(shop, tenant)
    try:
        made = await _post(client, "/console/coupons", _form(distribution="issued", merchant_code="ignored-or-404"))
        assert made.status_code == 404  # naming another merchant: not found, nothing made
        made = await _post(client, "/console/coupons", _form(distribution="issued"))
        assert made.status_code == 303, made.text
        url = made.headers["location"].split("?")[0]
        async with shop.ctx.db.read_session() as session:
            coupon = await session.scalar(select(Coupon))
        assert coupon.merchant_id == tenant.merchant_id
        by_contact = await _post(client, f"{url}/issue", {"members": "buyer@example.com"}, page=url)
        assert by_contact.status_code == 422 and "member ids" in by_contact.text
        by_id = await _post(client, f"{url}/issue", {"members": str(member["member"]["id"])}, page=url)
        assert by_id.status_code == 303 and "count=1" in by_id.headers["location"]
    finally:
        await client.aclose()


async def test_a_batch_of_ten_thousand_codes_is_made_and_downloaded_as_csv(shop, stocked_sku):
    made = await make_coupon(shop, name="合作方券", distribution="codes", code=None, total_quantity=10_001)
    client = await logged_in(shop, "marketer", roles=("operator",))
    page_url = f"/console/coupons/{made['id']}"
    too_many = await _post(client, f"{page_url}/code-batches", {"count": "10001"}, page=page_url)
    assert too_many.status_code == 422 and 'data-testid="batch_count-error"' in too_many.text
    batch = await _post(client, f"{page_url}/code-batches", {"count": "10000", "note": "partner A"}, page=page_url)
    assert batch.status_code == 303, batch.text
    page = await client.get(page_url)
    link = re.search(r'href="(/console/coupons/\d+/code-batches/\d+/codes\.csv)"', page.text).group(1)  # type: ignore[union-attr]
    over = await _post(client, f"{page_url}/code-batches", {"count": "2"}, page=page_url)
    assert over.status_code == 409 and "生成这批券码会超过优惠券的总量" in over.text  # 10,000 of 10,001 made
    download = await client.get(link)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0] == ["code", "coupon", "status"] and len(rows) == 10_001
    codes = {r[0] for r in rows[1:]}
    assert len(codes) == 10_000 and all(r[1:] == ["合作方券", "available"] for r in rows[1:])
    assert len(await _audit(shop, "coupon_codes_made")) == 1
    assert len(await _audit(shop, "coupon_codes_exported")) == 1
    code = next(iter(codes))
    assert (await try_order(shop, stocked_sku.id, coupon_codes=[code])).status_code == 201
    assert (await try_order(shop, stocked_sku.id, coupon_codes=[code])).status_code == 409  # single use


async def test_the_admin_api_changes_only_what_may_change(shop, stocked_sku):
    made = await make_coupon(shop, code="SAVE3", total_quantity=5)
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["SAVE3"])).status_code == 201
    url = f"/api/admin/coupons/{made['id']}"
    for body in ({"amount_off_cents": 1}, {"code": "OTHER"}, {}, {"name": None}, {"total_quantity": 0},
                 {"ends_at": made["starts_at"]}):
        refused = await shop.client.patch(url, json=body, headers=shop.admin)
        assert refused.status_code == 422, (body, refused.text)
    changed = await shop.client.patch(url, json={"total_quantity": None, "per_member_limit": 2, "name": "新名字"},
                                      headers=shop.admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["total_quantity"], changed.json()["per_member_limit"], changed.json()["name"],
            changed.json()["amount_off_cents"], changed.json()["taken_count"]) == (None, 2, "新名字", 300, 1)


async def test_code_batches_made_and_downloaded_through_the_admin_api_are_audited_too(shop):
    made = await make_coupon(shop, name="API券", distribution="codes", code=None)
    batch = await shop.client.post(f"/api/admin/coupons/{made['id']}/code-batches", headers=shop.admin,
                                   json={"count": 3, "note": "partner B"})
    assert batch.status_code == 201, batch.text
    download = await shop.client.get(batch.json()["export_url"], headers=shop.admin)
    assert download.status_code == 200 and len(download.content.decode("utf-8-sig").splitlines()) == 4
    made_entries = await _audit(shop, "coupon_codes_made")
    assert made_entries == [f"API券: batch {batch.json()['id']} of 3 codes; partner B"]
    assert await _audit(shop, "coupon_codes_exported") == made_entries
    missing = await shop.client.get(f"/api/admin/coupons/{made['id']}/code-batches/999/codes.csv", headers=shop.admin)
    assert missing.status_code == 404 and len(await _audit(shop, "coupon_codes_exported")) == 1


async def test_the_coupon_pages_speak_english_too(shop):
    made = await make_coupon(shop, name="Partner", distribution="codes", code=None)
    client = await logged_in(shop, "marketer", roles=("operator",))
    new = await client.get("/console/coupons/new?lang=en")
    assert new.status_code == 200 and "New coupon" in new.text and "Amount off (yuan)" in new.text
    assert "新建优惠券" not in new.text
    refused = await client.post("/console/coupons", data={**_form(amount_off=""), "csrf_token": csrf_token(new.text)},
                                headers=ORIGIN)
    assert refused.status_code == 422 and 'data-testid="amount_off-error">required<' in refused.text
    page = await client.get(f"/console/coupons/{made['id']}")
    assert "Single-use codes" in page.text and "Make codes" in page.text and "一次性券码" not in page.text
    gifts = await client.get("/console/level-gifts")
    assert gifts.status_code == 200 and "Level-up gifts" in gifts.text
