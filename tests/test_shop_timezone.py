"""QUANYI_SHOP_TIMEZONE is the shop's one clock: order-number dates, times on pages, import expiry dates and
risk time windows all follow it (here New York, 13 hours behind the default Asia/Shanghai in December);
an unknown zone stops the shop at startup with a clear message."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import typer
from pydantic import ValidationError
from sqlalchemy import select, update

from helpers import make_settings, with_csrf
from quanyi.catalog.models import Product
from quanyi.cli_support import load_settings
from quanyi.config import get_settings
from quanyi.inventory.models import CardKey
from quanyi.inventory.schemas import RevealedKey
from quanyi.notifications.rendering import render_email
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_access_token
from quanyi.orders.models import Order
from quanyi.shoptime import day_bounds, shop_zone, valid_through
from risk.support import add_rule, checkout, refused, set_clock

NEW_YORK = ZoneInfo("America/New_York")
# 2026-12-01 22:30 in New York is already 2026-12-02 11:30 in Shanghai.
EVENING = dt.datetime(2026, 12, 2, 3, 30, tzinfo=dt.UTC)
UNUSED_DB = "sqlite:///never-opened.db"


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, shop_timezone="America/New_York")


async def test_order_numbers_carry_the_shops_date(shop, stocked_sku):
    async with shop.ctx.db.transaction() as session:
        order = await orders_service.create_order(session=session, sku_id=stocked_sku.id, quantity=1,
                                                  contact="buyer@example.com", now=EVENING,
                                                  reservation_ttl=dt.timedelta(minutes=15))
    assert order.order_no.startswith("261201"), order.order_no


async def test_order_page_shows_times_on_the_shops_clock(shop, client, stocked_sku):
    slug = await shop.scalar(select(Product.slug).where(Product.id == stocked_sku.product_id))
    response = await client.post(f"/p/{slug}/checkout", headers={"Accept": "text/html"},
                                 data=await with_csrf(client, {"sku_id": str(stocked_sku.id),
                                                               "contact": "buyer@example.com", "quantity": "1"}))
    assert response.status_code == 303, response.text
    order_no = response.headers["location"].removeprefix("/orders/")
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(Order).where(Order.order_no == order_no).values(created_at=EVENING))
    page = await client.get(f"/orders/{order_no}")
    assert page.status_code == 200
    assert re.search(r"<dd>2026-12-01 22:30</dd>", page.text), page.text


async def test_import_expiry_dates_are_days_on_the_shops_calendar(shop, sku):
    await shop.stock(sku, 1, expiry="2027-06-30")
    expires_at = await shop.scalar(select(CardKey.expires_at).where(CardKey.sku_id == sku.id))
    assert expires_at == dt.datetime(2027, 7, 1, 4, 0, tzinfo=dt.UTC)  # midnight in New York (EDT, UTC-4)


async def test_risk_night_window_is_night_in_the_shops_zone(shop, stocked_sku):
    await add_rule(shop, "time_window", {"start": "00:00", "end": "06:00"}, action="deny")
    set_clock(shop, dt.datetime(2026, 12, 2, 2, 0, tzinfo=NEW_YORK))  # 15:00 in Shanghai
    assert refused(await checkout(shop, stocked_sku.id))
    set_clock(shop, dt.datetime(2026, 12, 2, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # 13:00 in New York
    assert (await checkout(shop, stocked_sku.id)).status_code == 201


def test_the_default_is_shanghai_whose_days_start_at_1600_utc():
    assert make_settings(UNUSED_DB).shop_timezone == "Asia/Shanghai"
    start, end = day_bounds(dt.date(2026, 11, 25), shop_zone())
    assert (start, end - start) == (dt.datetime(2026, 11, 24, 16, 0, tzinfo=dt.UTC), dt.timedelta(days=1))


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "Asia", "../etc/passwd", "asia/shanghai"])
def test_an_unknown_zone_is_refused_naming_the_setting(name):
    with pytest.raises(ValidationError, match="QUANYI_SHOP_TIMEZONE: unknown time zone"):
        make_settings(UNUSED_DB, shop_timezone=name)


def test_an_unknown_zone_stops_every_command_with_a_configuration_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUANYI_SHOP_TIMEZONE", "Mars/Olympus")
    get_settings.cache_clear()
    try:
        with pytest.raises(typer.Exit) as stopped:
            load_settings()
    finally:
        get_settings.cache_clear()
    assert stopped.value.exit_code == 2
    message = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "Configuration problem: QUANYI_SHOP_TIMEZONE: unknown time zone 'Mars/Olympus'" in message


async def test_a_key_valid_through_june_30_reads_june_30_on_the_page_and_in_the_email(shop, client, sku):
    # Stored as the midnight that ends June 30 in New York; shown as that day, not as July 1.
    await shop.stock(sku, 1, expiry="2027-06-30")
    slug = await shop.scalar(select(Product.slug).where(Product.id == sku.product_id))
    response = await client.post(f"/p/{slug}/checkout", headers={"Accept": "text/html"},
                                 data=await with_csrf(client, {"sku_id": str(sku.id), "contact": "buyer@example.com",
                                                               "quantity": "1"}))
    assert response.status_code == 303, response.text
    order_no = response.headers["location"].removeprefix("/orders/")
    await shop.pay({"order_no": order_no, "access_token": order_access_token(
        shop.ctx.settings.app_secret.get_secret_value(), order_no)})
    page = (await client.post(f"/orders/{order_no}/reveal", params={"lang": "en"},
                              data=await with_csrf(client))).text
    assert "Valid until 2027-06-30" in page and "2027-07-01" not in page, page

    async with shop.ctx.db.read_session() as session:
        expires_at = await session.scalar(select(CardKey.expires_at).where(CardKey.sku_id == sku.id))
    key = RevealedKey(card_no=None, code="CODE-1", expires_at=expires_at)
    mail = render_email("order_delivered", "en", {"order_no": order_no, "total_cents": 100, "currency": "CNY",
                                                  "product_name": "P", "sku_name": "S", "quantity": 1},
                        shop_name="Shop", order_url="http://shop/o", keys=[key], zone=NEW_YORK)
    assert "(valid until 2027-06-30)" in mail.text and "2027-07-01" not in mail.text + mail.html


def test_valid_through_is_the_last_day_before_an_exclusive_expiry():
    shanghai = shop_zone()
    assert valid_through(dt.datetime(2027, 6, 30, 16, 0, tzinfo=dt.UTC), shanghai) == dt.date(2027, 6, 30)
    assert valid_through(dt.datetime(2027, 6, 30, 15, 59, 59, tzinfo=dt.UTC), shanghai) == dt.date(2027, 6, 30)
    assert valid_through(dt.datetime(2027, 6, 30, 16, 0, 1, tzinfo=dt.UTC), shanghai) == dt.date(2027, 7, 1)
