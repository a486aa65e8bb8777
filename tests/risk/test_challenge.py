"""A challenge decision: the checkout is refused with a challenge id, the code goes out by e-mail through the
outbox, and the buyer completes checkout with it. Codes are hashed at rest, expire and allow few attempts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from helpers import with_csrf
from quanyi.orders.models import Order
from quanyi.risk.challenges import StaticTokenCaptcha
from quanyi.risk.models import RiskChallenge
from risk.support import add_rule, checkout, sent_codes


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="CH-GOODS")
    await shop.stock(sku, 10)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="challenge")
    return sku


async def _challenge(shop, goods, contact="new@example.com"):
    response = await checkout(shop, goods.id, contact=contact)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "verification_required" and body["channel"] == "email"
    messages = await sent_codes(shop)
    assert messages[-1].recipient == contact and messages[-1].channel == "email"
    return body["challenge_id"], messages[-1].payload["code"]


async def test_code_sent_by_email_completes_checkout_once(shop, goods):
    challenge_id, code = await _challenge(shop, goods)
    assert re.fullmatch(r"\d{6}", code)
    async with shop.ctx.db.read_session() as session:
        stored = await session.scalar(select(RiskChallenge).where(RiskChallenge.public_id == challenge_id))
        assert code not in stored.code_hash  # only an HMAC is kept
    assert await shop.count(Order) == 0

    response = await checkout(shop, goods.id, contact="new@example.com", challenge_id=challenge_id,
                              verification_code=code)
    assert response.status_code == 201, response.text
    again = await checkout(shop, goods.id, contact="new@example.com", challenge_id=challenge_id,
                           verification_code=code)
    assert again.status_code == 422 and again.json()["code"] == "verification_failed"
    assert await shop.count(Order) == 1


async def test_wrong_code_is_refused_and_attempts_run_out(shop, goods):
    challenge_id, code = await _challenge(shop, goods)
    wrong = "000000" if code != "000000" else "111111"
    for left in range(4, -1, -1):
        response = await checkout(shop, goods.id, contact="new@example.com", challenge_id=challenge_id,
                                  verification_code=wrong)
        assert response.status_code == 422 and response.json()["attempts_left"] == left
    response = await checkout(shop, goods.id, contact="new@example.com", challenge_id=challenge_id,
                              verification_code=code)
    assert response.status_code == 410 and response.json()["code"] == "verification_expired"
    assert await shop.count(Order) == 0


async def test_code_is_bound_to_its_contact(shop, goods):
    challenge_id, code = await _challenge(shop, goods)
    response = await checkout(shop, goods.id, contact="thief@example.com", challenge_id=challenge_id,
                              verification_code=code)
    assert response.status_code == 422
    assert await shop.count(Order) == 0


async def test_expired_code_is_refused(shop, goods):
    challenge_id, code = await _challenge(shop, goods)
    async with shop.ctx.db.transaction() as session:
        await session.execute(update(RiskChallenge).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    response = await checkout(shop, goods.id, contact="new@example.com", challenge_id=challenge_id,
                              verification_code=code)
    assert response.status_code == 410 and response.json()["code"] == "verification_expired"
    assert await shop.count(Order) == 0


async def test_captcha_verifier_is_an_alternative_to_the_code(shop, goods):
    shop.ctx.risk.captcha = StaticTokenCaptcha({"good-token"})
    response = await checkout(shop, goods.id, contact="new@example.com", captcha_token="bad-token")
    assert response.status_code == 422
    assert (await checkout(shop, goods.id, contact="new@example.com", captcha_token="good-token")).status_code == 201
    assert (await checkout(shop, goods.id, contact="new@example.com", captcha_token="good-token")).status_code == 422


async def test_storefront_form_asks_for_the_code_and_accepts_it(shop, goods):
    async with shop.ctx.db.read_session() as session:
        from quanyi.catalog import service as catalog_service

        slug = (await catalog_service.get_product(session=session, product_id=goods.product_id,
                                                  active_only=False)).slug
    page = await shop.client.get(f"/p/{slug}")
    assert "qy_did" in page.headers.get("set-cookie", "")
    form = await with_csrf(shop.client, {"sku_id": str(goods.id), "quantity": "1", "contact": "web@example.com"})
    first = await shop.client.post(f"/p/{slug}/checkout", data=form)
    assert first.status_code == 403
    challenge_id = re.search(r'name="challenge_id" value="([^"]+)"', first.text).group(1)
    assert 'name="verification_code"' in first.text
    code = (await sent_codes(shop))[-1].payload["code"]
    wrong = await shop.client.post(f"/p/{slug}/checkout", data={**form, "challenge_id": challenge_id,
                                                                "verification_code": "12345x"})
    assert wrong.status_code == 422 and 'data-testid="verification-error"' in wrong.text
    done = await shop.client.post(f"/p/{slug}/checkout", data={**form, "challenge_id": challenge_id,
                                                               "verification_code": code})
    assert done.status_code == 303 and done.headers["location"].startswith("/orders/")
