"""The console's coupon page: an operator sees the shop's coupons with their counts; a merchant's staff only their
merchant's; staff without catalog.manage are refused."""

from __future__ import annotations

from console.support import logged_in
from coupons.support import make_coupon, try_order, window
from merchants.support import admit


async def test_operators_see_coupons_with_counts_and_merchants_only_theirs(shop, stocked_sku):
    await make_coupon(shop, name="平台满减", code="PLAT3", total_quantity=10)
    assert (await try_order(shop, stocked_sku.id, coupon_codes=["PLAT3"])).status_code == 201
    tenant = await admit(shop, "coupon-merchant")
    theirs = await shop.client.post("/api/admin/coupons", headers=tenant.headers, json={
        "name": "商户领券", "kind": "percent_off", "percent_off_bps": 1000, "distribution": "claim",
        **window()})
    assert theirs.status_code == 201, theirs.text
    client = await logged_in(shop, "marketer", roles=("operator",))
    page = await client.get("/console/coupons")
    assert page.status_code == 200
    assert page.text.count('data-testid="coupon-row"') == 2
    assert "平台满减" in page.text and "立减¥3.00" in page.text and "1 / 10" in page.text
    assert "商户领券" in page.text and "9折" in page.text
    client.cookies.clear()  # another browser
    support = await logged_in(shop, "helpdesk", roles=("support",))
    assert (await support.get("/console/coupons")).status_code == 403
