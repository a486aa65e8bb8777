"""Members' coupons: the sign-up gift, the claim centre, an operator's issue, per-member and new-member rules,
and the abuse limits per device (薅羊毛)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from coupons.support import coupon, make_coupon, try_order
from helpers import make_settings
from members.support import sign_in
from quanyi.coupons.models import CouponGrant
from quanyi.orders.models import Order
from quanyi.risk.device import DEVICE_COOKIE


@pytest.fixture
def settings(database_url: str):  # sign-in codes go to the outbox (e-mail configured); tight abuse limits
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com",
                         coupon_claims_per_device_per_day=3, coupon_new_members_per_device=1,
                         coupon_new_members_per_payer=1)


def _as(member: dict, device: str = "device-one") -> dict[str, str]:
    return {"X-Member-Token": member["token"], "X-Device-Id": device}


def _new_device(shop) -> None:
    """Forget the shop-issued device cookie: the next request counts as the device its X-Device-Id names."""
    shop.client.cookies.delete(DEVICE_COOKIE)


async def test_a_new_member_gets_the_sign_up_gift_and_pays_less_with_it_once(shop, stocked_sku):
    gift = await make_coupon(shop, name="新人礼", distribution="issued", code=None, signup_gift=True,
                             amount_off_cents=500, new_members_only=True)
    member = await sign_in(shop, "fresh@example.com")
    mine = (await shop.client.get("/api/coupons/mine", headers=_as(member))).json()
    assert [(c["coupon_id"], c["status"]) for c in mine] == [(gift["id"], "available")]
    order = await try_order(shop, stocked_sku.id, member_coupon_ids=[mine[0]["id"]], headers=_as(member))
    assert order.status_code == 201, order.text
    assert (order.json()["total_cents"], order.json()["coupon_discount_cents"]) == (1480, 500)
    assert await shop.scalar(select(Order.member_id).where(Order.order_no == order.json()["order_no"])) \
        == member["member"]["id"]
    again = await try_order(shop, stocked_sku.id, member_coupon_ids=[mine[0]["id"]], headers=_as(member))
    assert again.status_code == 409 and again.json()["reason"] == "already_used"
    stranger = await sign_in(shop, "other@example.com")
    _new_device(shop)
    theirs = await try_order(shop, stocked_sku.id, member_coupon_ids=[mine[0]["id"]],
                             headers=_as(stranger, "device-two"))
    assert theirs.status_code == 404  # someone else's coupon is not yours to use
    guest = await try_order(shop, stocked_sku.id, member_coupon_ids=[mine[0]["id"]])
    assert guest.status_code == 404


async def test_the_claim_centre_hands_out_exactly_its_total_and_one_per_member(shop, stocked_sku):
    made = await make_coupon(shop, name="限量券", distribution="claim", code=None, total_quantity=2,
                             per_member_limit=1)
    listed = (await shop.client.get("/api/coupons/claimable")).json()
    assert [(c["id"], c["left"], c["held"]) for c in listed] == [(made["id"], 2, 0)]
    assert (await shop.client.post(f"/api/coupons/{made['id']}/claim")).status_code == 401
    first = await sign_in(shop, "a@example.com")
    claimed = await shop.client.post(f"/api/coupons/{made['id']}/claim", headers=_as(first))
    assert claimed.status_code == 201 and claimed.json()["status"] == "available"
    twice = await shop.client.post(f"/api/coupons/{made['id']}/claim", headers=_as(first))
    assert twice.status_code == 409 and twice.json()["code"] == "coupon_limit_reached"
    second = await sign_in(shop, "b@example.com")
    claimed = await shop.client.post(f"/api/coupons/{made['id']}/claim", headers=_as(second, "device-two"))
    assert claimed.status_code == 201
    third = await sign_in(shop, "c@example.com")
    gone = await shop.client.post(f"/api/coupons/{made['id']}/claim", headers=_as(third, "device-three"))
    assert gone.status_code == 409 and gone.json()["code"] == "coupon_sold_out"
    assert await shop.count(CouponGrant) == 2
    # An operator hands an issued coupon to members: limits apply, refusals are named per member.
    issued = await make_coupon(shop, distribution="issued", code=None, per_member_limit=1)
    answer = await shop.client.post(f"/api/admin/coupons/{issued['id']}/issue", headers=shop.admin,
                                    json={"member_ids": [first["member"]["id"], first["member"]["id"],
                                                         second["member"]["id"]]})
    assert answer.json() == {"issued": 2, "refused": {}}
    again = await shop.client.post(f"/api/admin/coupons/{issued['id']}/issue", headers=shop.admin,
                                   json={"member_ids": [first["member"]["id"]]})
    assert again.json() == {"issued": 0, "refused": {str(first["member"]["id"]): "coupon_limit_reached"}}


async def test_per_member_limits_and_new_member_coupons_need_a_member(shop, stocked_sku):
    await make_coupon(shop, code="ONCE", per_member_limit=1)
    await make_coupon(shop, code="NEWBIE", new_members_only=True)
    guest = await try_order(shop, stocked_sku.id, coupon_codes=["ONCE"])
    assert guest.status_code == 409 and guest.json()["reason"] == "member_required"
    member = await sign_in(shop, "m@example.com")
    first = await try_order(shop, stocked_sku.id, coupon_codes=["ONCE"], headers=_as(member))
    assert first.status_code == 201
    second = await try_order(shop, stocked_sku.id, coupon_codes=["ONCE"], headers=_as(member))
    assert second.status_code == 409 and second.json()["code"] == "coupon_limit_reached"
    # The member has an unpaid order now: not a new member any more (until it is cancelled).
    newbie = await try_order(shop, stocked_sku.id, coupon_codes=["NEWBIE"], headers=_as(member))
    assert newbie.status_code == 409 and newbie.json()["reason"] == "new_members_only"
    cancel = await shop.client.post(f"/api/orders/{first.json()['order_no']}/cancel", headers=shop.auth(first.json()))
    assert cancel.status_code == 200
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["ONCE"], headers=_as(member))).status_code == 201


async def test_one_device_farming_new_member_coupons_with_many_accounts_is_refused(shop, stocked_sku):
    new5 = await make_coupon(shop, code="NEW5", new_members_only=True)
    claimable = await make_coupon(shop, distribution="claim", code=None)
    first = await sign_in(shop, "farm1@example.com")
    _new_device(shop)  # a script: no cookie jar, one made-up device id for all its accounts
    placed = await try_order(shop, stocked_sku.id, coupon_codes=["NEW5"], headers=_as(first, "farm-device"))
    assert placed.status_code == 201
    second = await sign_in(shop, "farm2@example.com")
    _new_device(shop)
    refused = await try_order(shop, stocked_sku.id, coupon_codes=["NEW5"], headers=_as(second, "farm-device"))
    assert refused.status_code == 403 and refused.json()["code"] == "coupon_refused_by_risk"
    # Refused in the checkout's transaction, after pricing: nothing placed, the coupon not taken.
    assert (await coupon(shop, new5["id"]))["taken_count"] == 1
    assert await shop.count(Order) == 1
    _new_device(shop)  # the second account on a phone of its own: the device is new, the address saw 2 members
    elsewhere = await try_order(shop, stocked_sku.id, coupon_codes=["NEW5"], headers=_as(second, "own-phone-1"))
    assert elsewhere.status_code == 201, elsewhere.text
    # Claims per device per day: 3, then 429 with Retry-After.
    answers = []
    for n in range(4):  # (a login on this client ends the session its cookie held: claim right after each)
        member = await sign_in(shop, f"claimer{n}@example.com")
        answers.append(await shop.client.post(f"/api/coupons/{claimable['id']}/claim",
                                              headers=_as(member, "claims-device")))
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert answers[3].json()["code"] == "coupon_claims_limited" and answers[3].headers["Retry-After"] == "86400"


async def test_one_payer_account_paying_new_member_coupons_of_many_accounts_is_held_for_review(shop, stocked_sku):
    await make_coupon(shop, code="WELCOME", new_members_only=True)
    statuses = []
    for n in range(2):  # two accounts on two devices, one payment account (the same person)
        member = await sign_in(shop, f"payer{n}@example.com")
        _new_device(shop)
        order = await try_order(shop, stocked_sku.id, coupon_codes=["WELCOME"], headers=_as(member, f"phone-{n}-xyz"))
        assert order.status_code == 201, order.text
        payment = await shop.start_payment(order.json())
        assert (await shop.notify(shop.notification(payment, buyer_id="2088-farmer"))).text == "success"
        view = await shop.get_order(order.json())
        statuses.append((view["status"], "coupon_farming_payer" in (view["status_reason"] or "")))
    assert statuses == [("delivered", False), ("under_review", True)]
