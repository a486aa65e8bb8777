"""The console pages draw their message with the shared flash_message (console/_ui.html), as the import page does:
a refusal is an alert (role="alert", read out by a screen reader), a success a status; one message per page;
a refusal whose text lacks its detail shows it once in brackets, a review refused for a missing reason does not
repeat the reason in brackets."""

from __future__ import annotations

import html
import re

from console.support import logged_in, post_form


def _flash(page: str) -> tuple[str, str]:
    found = re.findall(r'<p class="c-flash (\w+)" role="(\w+)" data-testid="flash">(.*?)</p>', page, re.S)
    assert len(found) == 1, found
    kind, role, text = found[0]
    assert role == ("alert" if kind == "err" else "status"), found
    return kind, html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


async def test_refusals_on_the_catalog_key_and_order_pages_are_alerts(shop, app, stocked_sku):
    client = await logged_in(shop, "flo", roles=("owner",))

    shared = await shop.make_sku(code="SHARED-FLASH", delivery_type="shared_code")
    url = f"/console/catalog/shared/{shared.id}"
    bad = await post_form(client, url, {"code": "x", "sale_limit": "3"}, page_url=url)
    assert bad.status_code == 422 and _flash(bad.text)[0] == "err"

    url = f"/console/catalog/picks/{stocked_sku.id}"
    too_many = await post_form(client, url, {f"label-{i}": "x" for i in range(1, 502)}, page_url=url)
    assert too_many.status_code == 422 and _flash(too_many.text)[0] == "err"

    url = f"/console/keys/skus/{stocked_sku.id}"
    batch = re.search(r'action="/console/keys/batches/(\d+)/void"', (await client.get(url)).text).group(1)
    no_reason = await post_form(client, f"/console/keys/batches/{batch}/void", {"reason": " "}, page_url=url)
    assert no_reason.status_code == 422 and _flash(no_reason.text) == ("err", "请填写原因")

    order = await shop.create_order(stocked_sku.id)
    url = f"/console/orders/{order['order_no']}"
    not_delivered = await post_form(client, f"{url}/resend-notice", {"request_key": "k1"}, page_url=url)
    assert not_delivered.status_code == 409
    kind, text = _flash(not_delivered.text)
    # err.order_not_delivered has no text of its own: the general headline, never the raw key
    assert (kind, text) == ("err", "操作未完成，未做任何更改（只有已发货的订单可以重发发货通知）"), text

    listed = await client.get("/console/catalog?m=saved")
    assert _flash(listed.text)[0] == "ok"


async def test_a_review_refused_for_a_missing_reason_says_it_once(shop, app):
    from risk.support import add_rule, checkout

    sku = await shop.make_sku(code="REVIEW-FLASH")
    await shop.stock(sku, 5)
    await add_rule(shop, "amount_limit", {"scope": "order", "max_quantity": 1}, action="review",
                   stages=["payment"], name="big order review")
    held = (await checkout(shop, sku.id, quantity=2, contact="held@example.com")).json()
    assert (await shop.pay_via_cashier(held)).status_code == 303
    client = await logged_in(shop, "rex", roles=("risk_reviewer",))
    url = f"/console/reviews/{held['order_no']}"
    refused = await post_form(client, f"{url}/approve", {"reason": " "}, page_url=url)
    assert refused.status_code == 422
    assert _flash(refused.text) == ("err", "请填写审核理由")
