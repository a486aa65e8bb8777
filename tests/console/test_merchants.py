"""Merchants in the console for platform staff: applications approved (merchant and owner login created) or
rejected, commission terms and category rates, withdrawals approved and paid (booked) or rejected; through the
merchants' services, audited; a merchant's own staff are refused."""

from __future__ import annotations

from sqlalchemy import select

from console.support import logged_in, post_form
from merchants.support import admit, furnish, shared_category
from quanyi.merchants.models import CommissionRule, Merchant, MerchantApplication, Withdrawal
from quanyi.staff.models import StaffAuditEntry, StaffUser

FORM = {"name": "月光小铺", "description": "Game cards", "contact_name": "Li", "contact_email": "li@example.com",
        "contact_phone": "13800138000", "owner_password": "correct horse battery"}


async def _apply(shop, code: str) -> str:  # type: ignore[no-untyped-def]
    answer = await shop.client.post("/api/merchant-applications",
                                    json={**FORM, "code": code, "owner_username": f"{code}.owner"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["application_no"])


async def _one(shop, model, *where):  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return await session.scalar(select(model).where(*where))


async def test_applications_terms_and_withdrawals_through_the_merchant_services(shop):
    category = await shared_category(shop)
    tenant = await furnish(shop, await admit(shop, "tea-house", hold_days=0), category)
    moon, sun = await _apply(shop, "moon-shop"), await _apply(shop, "sun-shop")
    client = await logged_in(shop, "petra", roles=("owner",))
    page = await client.get("/console/merchants/applications")
    assert page.status_code == 200 and page.text.count('data-testid="application"') == 2

    too_much = await post_form(client, f"/console/merchants/applications/{moon}/approve",
                               {"commission": "150", "reason": "checked"}, page_url="/console/merchants/applications")
    assert too_much.status_code == 422
    assert (await _one(shop, MerchantApplication, MerchantApplication.application_no == moon)).status == "pending"
    approved = await post_form(client, f"/console/merchants/applications/{moon}/approve",
                               {"commission": "6.5", "reason": "documents checked"},
                               page_url="/console/merchants/applications")
    assert approved.status_code == 303
    merchant = await _one(shop, Merchant, Merchant.code == "moon-shop")
    assert merchant.commission_bps == 650
    owner = await _one(shop, StaffUser, StaffUser.username == "moon-shop.owner")
    assert owner.merchant_id == merchant.id and owner.roles == "merchant_owner"
    twice = await post_form(client, f"/console/merchants/applications/{moon}/reject", {"reason": "oops"},
                            page_url="/console/merchants/applications")
    assert twice.status_code == 409
    no_reason = await post_form(client, f"/console/merchants/applications/{sun}/reject", {"reason": " "},
                                page_url="/console/merchants/applications")
    assert no_reason.status_code == 422
    rejected = await post_form(client, f"/console/merchants/applications/{sun}/reject",
                               {"reason": "no business licence"}, page_url="/console/merchants/applications")
    assert rejected.status_code == 303
    assert (await _one(shop, MerchantApplication, MerchantApplication.application_no == sun)).status == "rejected"

    terms = await post_form(client, "/console/merchants/moon-shop/terms", {"commission": "12.5", "hold_days": "3"},
                            page_url="/console/merchants/moon-shop")
    assert terms.status_code == 303
    merchant = await _one(shop, Merchant, Merchant.code == "moon-shop")
    assert (merchant.commission_bps, merchant.hold_days) == (1250, 3)
    bad_terms = await post_form(client, "/console/merchants/moon-shop/terms", {"commission": "1.234"},
                                page_url="/console/merchants/moon-shop")
    assert bad_terms.status_code == 422
    rule = await post_form(client, "/console/merchants/moon-shop/commission-rules",
                           {"category_id": str(category), "commission": "3"}, page_url="/console/merchants/moon-shop")
    assert rule.status_code == 303
    assert (await _one(shop, CommissionRule, CommissionRule.merchant_id == merchant.id)).commission_bps == 300
    removed = await post_form(client, f"/console/merchants/moon-shop/commission-rules/{category}/remove", {},
                              page_url="/console/merchants/moon-shop")
    assert removed.status_code == 303 and await _one(shop, CommissionRule, CommissionRule.merchant_id == merchant.id) \
        is None
    gone = await post_form(client, f"/console/merchants/moon-shop/commission-rules/{category}/remove", {},
                           page_url="/console/merchants/moon-shop")
    assert gone.status_code == 404
    detail = await client.get("/console/merchants/tea-house")
    assert detail.status_code == 200 and 'data-testid="merchant-balance"' in detail.text

    listing = await client.get("/console/merchants/withdrawals?status=requested")
    assert tenant.withdrawal_no in listing.text
    unpaid = await post_form(client, f"/console/merchants/withdrawals/{tenant.withdrawal_no}/pay",
                             {"payout_reference": "BANK-1"}, page_url="/console/merchants/withdrawals")
    assert unpaid.status_code == 409  # approve first
    ok = await post_form(client, f"/console/merchants/withdrawals/{tenant.withdrawal_no}/approve",
                         {"reason": "matches the statement"}, page_url="/console/merchants/withdrawals")
    assert ok.status_code == 303
    paid = await post_form(client, f"/console/merchants/withdrawals/{tenant.withdrawal_no}/pay",
                           {"payout_reference": "BANK-20261204-7"}, page_url="/console/merchants/withdrawals")
    assert paid.status_code == 303
    withdrawal = await _one(shop, Withdrawal, Withdrawal.withdrawal_no == tenant.withdrawal_no)
    assert (withdrawal.status, withdrawal.payout_reference) == ("paid", "BANK-20261204-7")
    late = await post_form(client, f"/console/merchants/withdrawals/{tenant.withdrawal_no}/reject",
                           {"reason": "too late"}, page_url="/console/merchants/withdrawals")
    assert late.status_code == 409
    assert (await client.get("/console/merchants/no-such-shop")).status_code == 404

    async with shop.ctx.db.read_session() as session:
        actions = (await session.scalars(select(StaffAuditEntry.action).where(
            StaffAuditEntry.actor == "petra", StaffAuditEntry.action != "login").order_by(StaffAuditEntry.id))).all()
    assert actions == ["merchant_application_approved", "merchant_application_rejected", "merchant_terms_set",
                       "merchant_commission_rule_set", "merchant_commission_rule_removed",
                       "merchant_withdrawal_approve", "merchant_withdrawal_pay"]
