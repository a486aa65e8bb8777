"""The review queue: a paid order held by risk control is delivered exactly once on approval, or waits
refunded in full on rejection; every decision is audited."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from quanyi.inventory.models import CardKey, CardKeyStatus
from quanyi.orders.models import Order
from risk.support import add_rule, checkout, checkout_answering, sent_codes


@pytest.fixture
async def held(shop):
    sku = await shop.make_sku(code="REVIEW-GOODS")
    await shop.stock(sku, 5)
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="review",
                   stages=["payment"], name="big order review")
    response = await checkout(shop, sku.id, quantity=2)
    assert response.status_code == 201
    order = response.json()
    paid = await shop.pay_via_cashier(order)  # a real sandbox trade, so the refund can go through it
    assert paid.status_code == 303
    return sku, order


async def _keys(shop, order_no: str) -> list[CardKey]:
    async with shop.ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order_no))
        return list((await session.scalars(select(CardKey).where(CardKey.order_id == order_id))).all())


async def test_held_order_waits_with_its_reasons_and_keys_unsold(shop, held):
    sku, order = held
    status = await shop.get_order(order)
    assert status["status"] == "under_review" and status["delivered_keys"] == 0
    assert all(k.status != CardKeyStatus.SOLD for k in await _keys(shop, order["order_no"]))
    queue = (await shop.client.get("/api/admin/risk/reviews", headers=shop.admin)).json()
    assert [q["order_no"] for q in queue] == [order["order_no"]]
    assert queue[0]["decisions"][0]["rules_hit"][0]["name"] == "big order review"
    assert queue[0]["signals"]["ip"] == "198.51.100.7"
    revealed = await shop.client.post(f"/api/orders/{order['order_no']}/reveal", headers=shop.auth(order))
    assert revealed.status_code == 409


async def test_approve_needs_a_reason(shop, held):
    _, order = held
    response = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/approve", headers=shop.admin,
                                      json={"reason": ""})
    assert response.status_code == 422
    response = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/approve", headers=shop.admin,
                                      json={"reason": "   "})
    assert response.status_code == 422
    assert (await shop.get_order(order))["status"] == "under_review"


async def test_approve_delivers_exactly_once_even_when_approved_twice_at_once(shop, held):
    _, order = held
    url = f"/api/admin/risk/reviews/{order['order_no']}/approve"
    first, second = await asyncio.gather(
        shop.client.post(url, headers=shop.admin, json={"reason": "known customer, called back"}),
        shop.client.post(url, headers=shop.admin, json={"reason": "double click"}))
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert (await shop.get_order(order))["status"] == "delivered"
    sold = [k for k in await _keys(shop, order["order_no"]) if k.status == CardKeyStatus.SOLD]
    assert len(sold) == 2
    assert len(await shop.reveal(order)) == 2
    audit = (await shop.client.get("/api/admin/risk/review-actions", headers=shop.admin)).json()
    assert len(audit) == 1
    assert (audit[0]["action"], audit[0]["actor"]) == ("approve", "admin")
    assert audit[0]["reason"] in ("known customer, called back", "double click")


async def test_reject_frees_its_keys_and_refunds_the_whole_payment(shop, held):
    sku, order = held
    before = await shop.available(sku.id)
    response = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/reject", headers=shop.admin,
                                      json={"reason": "stolen card reported"})
    assert response.status_code == 200, response.text
    result = response.json()
    # The refund goes to the gateway at once (through the sandbox here): the payer has the money back.
    assert result["status"] == "refunded" and result["refund_no"]
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await shop.available(sku.id) == before + 2
    refunds = (await shop.client.get(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin)).json()
    assert [(r["refund_no"], r["status"], r["amount_cents"], r["requested_by"]) for r in refunds] == [
        (result["refund_no"], "succeeded", order["total_cents"], "admin")]
    assert "stolen card reported" in refunds[0]["reason"]
    again = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/approve", headers=shop.admin,
                                   json={"reason": "changed my mind"})
    assert again.status_code == 409
    assert (await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/reject", headers=shop.admin,
                                   json={"reason": "twice"})).status_code == 409
    audit = (await shop.client.get("/api/admin/risk/review-actions", headers=shop.admin)).json()
    assert [(a["action"], a["reason"]) for a in audit] == [("reject", "stolen card reported")]
    # Nothing is left to refund: a second refund by hand is refused, the payer is never paid twice.
    extra = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                   json={"reason": "again"})
    assert extra.status_code == 409, extra.text


async def test_review_flag_at_checkout_holds_the_order_at_payment(shop):
    sku = await shop.make_sku(code="REVIEW-FLAG")
    await shop.stock(sku, 3)
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="review", stages=["order"])
    asked = (await checkout(shop, sku.id)).json()  # review demands what challenge does: the code first
    assert asked["code"] == "verification_required"
    code = (await sent_codes(shop))[-1].payload["code"]
    order = (await checkout(shop, sku.id, challenge_id=asked["challenge_id"], verification_code=code)).json()
    await shop.pay(order)
    assert (await shop.get_order(order))["status"] == "under_review"


async def test_a_reviewer_works_the_queue_but_cannot_edit_rules(shop, held):
    from staff.staff_helpers import staff_headers

    _, order = held
    reviewer = await staff_headers(shop, "rita", "risk.review")
    assert (await shop.client.get("/api/admin/risk/reviews", headers=reviewer)).status_code == 200
    edit = await shop.client.put("/api/admin/risk/policy", headers=reviewer,
                                 json={"challenge_score": 10, "review_score": 20, "deny_score": 30})
    assert edit.status_code == 403 and edit.json()["code"] == "permission_denied"
    outsider = await staff_headers(shop, "otto", "leaks.trace")
    refused = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/approve", headers=outsider,
                                     json={"reason": "looks fine to me"})
    assert refused.status_code == 403
    approved = await shop.client.post(f"/api/admin/risk/reviews/{order['order_no']}/approve", headers=reviewer,
                                      json={"reason": "customer confirmed by phone"})
    assert approved.status_code == 200
    actions = (await shop.client.get("/api/admin/risk/review-actions", headers=shop.admin)).json()
    assert actions[0]["actor"] == "rita" and actions[0]["reason"] == "customer confirmed by phone"


async def test_order_flagged_at_checkout_is_held_under_one_stable_reason_code(shop):
    sku = await shop.make_sku(code="FLAGGED-GOODS")
    await shop.stock(sku, 5)
    # Listed first, but only scores: the review rule is the main reason.
    await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="allow", score=10)
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="review")
    response = await checkout_answering(shop, sku.id, quantity=2)  # flagged at checkout: the code first
    assert response.status_code == 201
    order = response.json()
    await shop.pay(order)
    assert (await shop.get_order(order))["status"] == "under_review"
    queue = (await shop.client.get("/api/admin/risk/reviews", headers=shop.admin)).json()
    [held] = [d for d in queue[0]["decisions"] if d["outcome"] == "held"]
    [entry] = held["rules_hit"]
    assert entry["reason_code"] == "test_amount_limit"
    assert entry["reasons"] == ["test_amount_limit", "test_new_account"]
    assert queue[0]["signals"]["review_reason"] == "test_amount_limit, test_new_account"
