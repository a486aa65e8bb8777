"""An employee claims a benefit on a phone (390x844, Chromium through Playwright): opens the claim link from HR
(the code rides in the URL fragment and fills the form), signs in, picks a benefit within the budget, claims and
sees the codes; then the page in English. Screenshots land in test-artifacts/screenshots/claim-*.png."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import random_code
from live_shop import LiveShop, serve_demo_shop
from web.test_browser import DESKTOP, PHONE, _new_context, _shoot, _watch, browser, shots

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"
__all__ = ["browser", "shots"]  # the browser test's fixtures, used here too


async def _campaign(ctx: Any, found: dict[str, str]) -> None:
    from quanyi.catalog import service as catalog_service
    from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
    from quanyi.enterprises import campaigns, pricing, purchases
    from quanyi.enterprises import service as enterprises_service
    from quanyi.inventory import service as inventory_service
    from quanyi.staff import service as staff_service

    async with ctx.db.transaction() as session:
        category = await catalog_service.create_category(session=session, data=CategoryCreate(
            slug="benefits", name="员工福利"))
        skus = {}
        for code, name, price in (("FIT-MONTH", "健身月卡", 9_900), ("COFFEE-10", "咖啡十杯券", 15_000)):
            product = await catalog_service.create_product(session=session, data=ProductCreate(
                category_id=category.id, slug=code.lower(), name=name, redemption_guide="1. 打开 App\n2. 输入兑换码",
                skus=[SkuCreate(code=code, name="电子券", price_cents=price, delivery_type="card_key")]))
            skus[code] = product.skus[0]
        for sku in skus.values():
            fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
            await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=fresh,
                                                     text="\n".join(random_code() for _ in range(5)))
        await enterprises_service.create_enterprise(session=session, code="ACME", name="艾克米科技")
        await enterprises_service.top_up(session=session, code="ACME", amount_cents=100_000, note="bank", actor="t")
        now = dt.datetime.now(dt.UTC)
        campaign = await campaigns.create_campaign(
            session=session, code="ACME", name="2026 新年福利", name_en="New Year 2026 benefits",
            greeting="感谢你这一年的付出，新年快乐！", sku_codes=["FIT-MONTH", "COFFEE-10"],
            budget_per_employee_cents=20_000, starts_at=now - dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(days=14))
        issued = await campaigns.add_employees(session=session, cipher=ctx.cipher, code="ACME",
                                               campaign_no=campaign.campaign_no, employees=[
                                                   campaigns.EmployeeIn("E001", "张伟", phone="13800000001")])
        await campaigns.activate_campaign(session=session, code="ACME", campaign_no=campaign.campaign_no)
        # For the console's page: a contact, a tier price, a bulk purchase, and a staff member to look.
        await enterprises_service.add_contact(session=session, code="ACME", name="采购 李", role="purchasing",
                                              email="buy@acme.example")
        await pricing.set_tiers(session=session, code="ACME", sku_code="FIT-MONTH",
                                tiers=[pricing.Tier(1, 9_500), pricing.Tier(3, 9_000)])
        await purchases.create_purchase(session=session, code="ACME", sku_code="FIT-MONTH", quantity=3, actor="t")
        await staff_service.create_staff(session=session, username="ella", password=PASSWORD, roles=["owner"])
    await purchases.run_due_purchases(db=ctx.db, owner="setup")
    found.update(no=campaign.campaign_no, code=issued[0][1])


@pytest.fixture(scope="module")
def claim_shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveShop, dict]]:
    found: dict[str, str] = {}
    with serve_demo_shop(sqlite_template, tmp_path_factory.mktemp("claim-browser"),
                         setup=lambda ctx: _campaign(ctx, found)) as live:
        yield live, found


def test_an_employee_claims_a_benefit_on_a_phone(browser, claim_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    live, found = claim_shop
    errors: list[str] = []
    context = _new_context(browser, live, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    _watch(page, errors)
    page.goto(f"/claim/{found['no']}#code={found['code']}")  # the link from HR's message
    expect(page.get_by_test_id("campaign-title")).to_have_text("2026 新年福利")
    expect(page.get_by_test_id("claim-code-input")).to_have_value(found["code"])  # claim.js took the fragment
    assert "#" not in page.url  # and dropped it from the address bar
    _shoot(page, shots, "claim-1-phone-sign-in")
    page.get_by_test_id("code-submit").click()

    expect(page.get_by_test_id("claim-form")).to_be_visible()
    expect(page.get_by_test_id("claim-option")).to_have_count(2)
    page.get_by_text("咖啡十杯券").click()
    _shoot(page, shots, "claim-2-phone-choose")
    page.get_by_test_id("claim-submit").click()

    expect(page.get_by_test_id("claimed")).to_be_visible()
    expect(page.get_by_test_id("claim-code")).to_have_count(1)
    code = page.get_by_test_id("code-value").inner_text()
    assert len(code) >= 16
    _shoot(page, shots, "claim-3-phone-codes")
    # No horizontal scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto(f"/claim/{found['no']}?lang=en")
    expect(page.get_by_test_id("campaign-title")).to_have_text("New Year 2026 benefits")
    expect(page.get_by_test_id("claim-reveal")).to_be_visible()  # codes again behind a button (an audited reveal)
    page.get_by_test_id("claim-reveal").click()
    expect(page.get_by_test_id("code-value")).to_have_text(code)
    _shoot(page, shots, "claim-4-phone-english")
    page.set_viewport_size(DESKTOP)
    _shoot(page, shots, "claim-5-desktop-english")
    assert errors == [], errors
    context.close()


def test_an_operator_sees_the_enterprise_in_the_console(browser, claim_shop, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    live, found = claim_shop
    errors: list[str] = []
    context = _new_context(browser, live, viewport=DESKTOP)
    page = context.new_page()
    _watch(page, errors)
    page.goto("/console/login")
    page.locator("#username").fill("ella")
    page.locator("#password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.goto("/console/enterprises/ACME")
    expect(page.get_by_test_id("enterprise-balance")).to_be_visible()
    expect(page.get_by_test_id("purchase-row")).to_have_count(1)
    expect(page.get_by_test_id("campaign-row")).to_have_count(1)
    _shoot(page, shots, "claim-6-console-enterprise")
    page.set_viewport_size(PHONE)
    page.goto("/console/enterprises/ACME")
    page.get_by_test_id("purchase-link").click()  # the link is on this answer only
    expect(page.get_by_test_id("link-csv")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(page, shots, "claim-7-console-enterprise-phone")
    assert errors == [], errors
    context.close()
