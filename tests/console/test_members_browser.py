"""The member pages (会员) in chromium on a phone: search, the member's file with an order that opens its order
page, disable through the confirm dialog (the member's sessions end), enable. Screenshots land in
test-artifacts/screenshots/members-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from console.test_console_browser import PASSWORD, _log_in, _order
from live_shop import LiveShop, serve_demo_shop
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders.models import Order
from quanyi.staff import service as staff_service
from web.test_browser import PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
__all__ = ["browser", "shots"]  # module-scoped fixtures shared with the storefront's browser test


@pytest.fixture(scope="module")
def member_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    facts: dict[str, Any] = {}

    async def setup(ctx: Any) -> None:
        order_no = await _order(ctx, "STAR-VIP-1M", contact="vip.buyer@example.com")
        async with ctx.db.transaction() as session:
            await staff_service.create_staff(session=session, username="helpdesk", password=PASSWORD,
                                             roles=["support"])
            member = Member(email="vip.buyer@example.com", phone="+8613800138000")
            session.add(member)
            await session.flush()
            await session.execute(update(Order).where(Order.order_no == order_no).values(member_id=member.id))
            facts["token"] = await open_member_session(session=session, member=member, method=LoginMethod.CODE,
                                                       days=30, ip="203.0.113.7", user_agent="phone")
            facts.update(member_id=member.id, order_no=order_no)

    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("members-browser"), setup=setup,
                         sandbox_here=True) as live:
        yield live, facts


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url


def test_support_finds_a_member_and_disables_then_enables_them_on_a_phone(
        browser: Any, member_shop: tuple[LiveShop, dict], shots: Path) -> None:
    from playwright.sync_api import expect

    shop, facts = member_shop
    errors: list[str] = []
    context = _new_context(browser, shop, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/members")
    _log_in(page, "helpdesk")
    expect(page).to_have_url(re.compile(r"/console/members$"))
    page.get_by_test_id("filter-contact").fill("vip.buyer")
    page.get_by_test_id("search").click()
    expect(page.get_by_test_id("member-row")).to_have_count(1)
    expect(page.get_by_test_id("member-row")).to_contain_text("vip.buyer@example.com")
    _fits(page)
    _shoot(page, shots, "members-01-search-phone")

    page.get_by_test_id("member-link").click()
    expect(page.get_by_test_id("member-sessions")).to_have_text("1")
    expect(page.get_by_test_id("order-link")).to_have_count(1)
    _fits(page)
    _shoot(page, shots, "members-02-file-phone")

    page.get_by_test_id("disable-reason").fill("account takeover reported, ticket 512")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("disable-member").click()
    expect(page.get_by_test_id("flash")).to_contain_text("1 个会话已结束")
    expect(page.get_by_test_id("member-state")).to_have_text("已停用")
    expect(page.get_by_test_id("disabled-reason")).to_have_text("account takeover reported, ticket 512")
    expect(page.get_by_test_id("member-sessions")).to_have_text("0")
    _fits(page)
    _shoot(page, shots, "members-03-disabled-phone")

    page.get_by_test_id("enable-member").click()
    expect(page.get_by_test_id("member-state")).to_have_text("正常")
    page.get_by_test_id("order-link").click()
    expect(page).to_have_url(re.compile(rf"/console/orders/{facts['order_no']}$"))
    context.close()
    assert errors == [], errors
