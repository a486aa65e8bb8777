"""Days and times on forms are typed and shown the Chinese way (2026-12-31, 24-hour 14:30) in text fields, never in
the browser's locale (12/31/2026, 02:30 PM): the portal's campaign days, the console's coupon times."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from enterprises.portal_support import csrf_token, logged_in
from helpers import Shop
from quanyi.enterprises.models import Campaign
from quanyi.shoptime import DAY_PATTERN, MINUTE_PATTERN, MONTH_PATTERN, parse_day, parse_minute, parse_month

ORIGIN = {"Origin": "http://test"}


@pytest.mark.parametrize(("typed", "day"), [
    ("2026-12-31", dt.date(2026, 12, 31)), ("2026/1/5", dt.date(2026, 1, 5)), ("2026.01.05", dt.date(2026, 1, 5)),
    ("2026年1月5日", dt.date(2026, 1, 5)), (" 2026 年 12 月 31 日 ", dt.date(2026, 12, 31)),
    ("2026-02-30", None), ("12/31/2026", None), ("20261231", None), ("", None)])
def test_days_are_read_the_chinese_way(typed: str, day: dt.date | None):
    assert parse_day(typed) == day
    if day is not None:
        assert re.fullmatch(DAY_PATTERN, typed)


@pytest.mark.parametrize(("typed", "first"), [
    ("2026-12", dt.date(2026, 12, 1)), ("2026/1", dt.date(2026, 1, 1)), ("2026.01", dt.date(2026, 1, 1)),
    ("2026年12月", dt.date(2026, 12, 1)), (" 2026 年 3 ", dt.date(2026, 3, 1)), ("2026-13", None), ("2026-0", None),
    ("December 2026", None), ("12/2026", None), ("202612", None), ("2026-12-05", None), ("", None)])
def test_months_are_read_the_chinese_way(typed: str, first: dt.date | None):
    assert parse_month(typed) == first
    if first is not None:
        assert re.fullmatch(MONTH_PATTERN, typed)


async def test_the_portal_statement_month_is_a_text_field_and_a_bad_month_is_refused(shop: Shop):
    client = await logged_in(shop, "ACME", "vera", "viewer", top_up_cents=100_000)
    page = await client.get("/portal/statement")
    assert 'type="month"' not in page.text and 'placeholder="2026-12"' in page.text
    assert re.search(r'data-testid="month"', page.text) and 'data-testid="totals"' in page.text
    for typed in ("2026年1月", "2026/1", "2026-01"):
        seen = await client.get("/portal/statement", params={"month": typed})
        assert seen.status_code == 200 and 'value="2026-01"' in seen.text, typed
    for typed in ("December 2026", "2026-13", "12/2026"):
        refused = await client.get("/portal/statement", params={"month": typed})
        assert refused.status_code == 422, typed
        assert "请按 2026-12 的格式填写月份" in refused.text and 'data-testid="totals"' not in refused.text


@pytest.mark.parametrize(("typed", "moment"), [
    ("2026-12-31 14:30", dt.datetime(2026, 12, 31, 14, 30)), ("2026-12-31T14:30", dt.datetime(2026, 12, 31, 14, 30)),
    ("2026/12/31 9:05", dt.datetime(2026, 12, 31, 9, 5)), ("2026年12月31日 14：30", dt.datetime(2026, 12, 31, 14, 30)),
    ("2026-12-31", dt.datetime(2026, 12, 31)), ("2026-12-31 24:00", None), ("12/31/2026, 02:30 PM", None)])
def test_times_are_read_to_the_minute_on_a_24_hour_clock(typed: str, moment: dt.datetime | None):
    assert parse_minute(typed) == moment
    if moment is not None:
        assert re.fullmatch(MINUTE_PATTERN, typed)


async def test_portal_campaign_days_are_text_typed_the_chinese_way(shop: Shop):
    sku = await shop.make_sku(code="FIT-MONTH", price_cents=9_900)
    await shop.stock(sku, 5)
    client = await logged_in(shop, "ACME", "hana", "purchaser", top_up_cents=100_000)
    page = await client.get("/portal/campaigns")
    assert 'type="date"' not in page.text and 'placeholder="2026-12-31"' in page.text
    today = dt.date.today()
    later = today + dt.timedelta(days=30)
    made = await client.post("/portal/campaigns", headers=ORIGIN, data={
        "name": "新年福利", "skus": "FIT-MONTH", "budget": "200.00",
        "starts": f"{today.year}年{today.month}月{today.day}日",
        "ends": f"{later.year}/{later.month}/{later.day}", "csrf_token": csrf_token(page.text)})
    assert made.status_code == 303, made.text
    ends_at = await shop.scalar(Campaign.__table__.select().with_only_columns(Campaign.ends_at))
    assert ends_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date() == later + dt.timedelta(days=1)
    bad = await client.post("/portal/campaigns", headers=ORIGIN, data={
        "name": "x", "skus": "FIT-MONTH", "starts": "12/31/2026", "ends": "2026-12-31",
        "csrf_token": csrf_token(page.text)})
    assert bad.status_code == 422 and "请按 2026-12-31 的格式填写日期" in bad.text
    assert await shop.count(Campaign) == 1


async def test_console_coupon_times_show_24_hour_and_read_the_chinese_way(shop: Shop):
    from console.support import logged_in as console_logged_in
    from console.support import post_form
    from quanyi.coupons.models import Coupon

    client = await console_logged_in(shop, "boss", roles=("owner",))
    form = await client.get("/console/coupons/new")
    assert 'type="datetime-local"' not in form.text
    shown = re.search(r'name="starts_at" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", shown)
    made = await post_form(client, "/console/coupons", {
        "name": "满10减3", "kind": "amount_off", "amount_off": "3", "currency": "CNY", "distribution": "claim",
        "starts_at": "2026年1月5日 14：30", "ends_at": "2027/1/5 9:05"}, page_url="/console/coupons/new")
    assert made.status_code == 303, made.text
    starts_at = await shop.scalar(Coupon.__table__.select().with_only_columns(Coupon.starts_at))
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert starts_at.astimezone(shanghai).replace(tzinfo=None) == dt.datetime(2026, 1, 5, 14, 30)
    bad = await post_form(client, "/console/coupons", {
        "name": "x", "kind": "amount_off", "amount_off": "3", "currency": "CNY", "distribution": "claim",
        "starts_at": "01/05/2026, 02:30 PM", "ends_at": "2027-01-05 09:05"}, page_url="/console/coupons/new")
    assert bad.status_code == 422 and "24 小时制" in bad.text


async def test_console_day_filters_read_the_chinese_way(shop: Shop, order: dict):
    from console.support import logged_in as console_logged_in

    client = await console_logged_in(shop, "boss", roles=("owner",))
    page = await client.get("/console/orders")
    assert 'type="date"' not in page.text and 'placeholder="2026-12-31"' in page.text
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()  # the shop's day (Asia/Shanghai)
    tomorrow = today + dt.timedelta(days=1)
    found = await client.get("/console/orders", params={"from": f"{today.year}年{today.month}月{today.day}日"})
    assert order["order_no"] in found.text
    later = await client.get("/console/orders", params={"from": f"{tomorrow.year}/{tomorrow.month}/{tomorrow.day}"})
    assert order["order_no"] not in later.text
