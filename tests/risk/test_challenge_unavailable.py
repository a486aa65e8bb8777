"""A challenge whose code cannot reach the buyer (its channel is not configured): the buyer is never asked
for a code; checkout answers 403 verification_unavailable saying what to do, creates nothing, and the
decision log records it. A plugged-in captcha still verifies such a buyer through the API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpers import make_settings, with_csrf
from quanyi.catalog import service as catalog_service
from quanyi.notifications.models import OutboxMessage
from quanyi.orders.models import Order
from quanyi.risk.challenges import StaticTokenCaptcha
from quanyi.risk.models import RiskChallenge, RiskDecisionLog
from risk.support import add_rule, checkout

PHONE = "13800138000"


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="CH-NOSEND")
    await shop.stock(sku, 10)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="challenge")
    return sku


async def _nothing_created(shop) -> None:
    assert await shop.count(RiskChallenge) == 0
    assert await shop.count(OutboxMessage) == 0
    assert await shop.count(Order) == 0


async def _decisions(shop) -> list[RiskDecisionLog]:
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(RiskDecisionLog).order_by(RiskDecisionLog.id))).all())


async def test_phone_buyer_on_an_email_only_shop_is_told_to_use_email(shop, goods):
    response = await checkout(shop, goods.id, contact=PHONE)
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "verification_unavailable" and body["use_contact_kind"] == "email"
    assert "e-mail" in body["detail"] and "challenge_id" not in body
    await _nothing_created(shop)
    log = await _decisions(shop)
    assert [entry.outcome for entry in log] == ["verification_unavailable"]
    assert log[0].decision == "challenge" and log[0].rules_hit[0]["reason_code"] == "test_new_account"
    # The advice works: the same buyer with an e-mail address gets a code.
    response = await checkout(shop, goods.id, contact="phone-owner@example.com")
    assert response.status_code == 403 and response.json()["code"] == "verification_required"
    assert await shop.count(OutboxMessage) == 1


async def test_captcha_still_verifies_a_buyer_no_code_can_reach(shop, goods):
    shop.ctx.risk.captcha = StaticTokenCaptcha({"good-token"})
    response = await checkout(shop, goods.id, contact=PHONE)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "verification_required" and body["challenge_id"] is None
    assert body["captcha_accepted"] is True and body["channel"] is None
    await _nothing_created(shop)
    assert [entry.outcome for entry in await _decisions(shop)] == ["captcha_only"]
    assert (await checkout(shop, goods.id, contact=PHONE, captcha_token="good-token")).status_code == 201


async def test_storefront_form_shows_what_to_do_instead_of_a_code_field(shop, goods):
    async with shop.ctx.db.read_session() as session:
        slug = (await catalog_service.get_product(session=session, product_id=goods.product_id,
                                                  active_only=False)).slug
    form = await with_csrf(shop.client, {"sku_id": str(goods.id), "quantity": "1", "contact": PHONE})
    page = await shop.client.post(f"/p/{slug}/checkout?lang=en", data=form)
    assert page.status_code == 403
    assert 'data-testid="form-error"' in page.text and "please use an e-mail address" in page.text
    assert 'name="verification_code"' not in page.text and 'name="challenge_id"' not in page.text
    await _nothing_created(shop)


class TestNoChannelAtAll:
    @pytest.fixture
    def settings(self, database_url: str):
        return make_settings(database_url)  # neither e-mail nor SMS configured

    async def test_buyer_is_told_to_contact_the_shop(self, shop, goods):
        response = await checkout(shop, goods.id, contact="new@example.com")
        assert response.status_code == 403
        body = response.json()
        assert body["code"] == "verification_unavailable" and body["use_contact_kind"] is None
        assert "contact the shop" in body["detail"] and "e-mail address" not in body["detail"]
        await _nothing_created(shop)
        assert [entry.outcome for entry in await _decisions(shop)] == ["verification_unavailable"]
