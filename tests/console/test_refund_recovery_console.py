"""The console's two answers to a refund the gateway refused, on the order page: retry it (same refund number), or
withdraw it, after which a paid manual order is delivered by hand again. A refund that covers the whole order
stops manual delivery (the buyer would get the goods and the money). Audited, and only with orders.refund."""

from __future__ import annotations

from sqlalchemy import select

from console.support import logged_in, post_form
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.refunds.models import Refund
from quanyi.staff.models import StaffAuditEntry
from refund_helpers import cashier_pay


class Refusing(SandboxGateway):
    async def refund(self, request: RefundRequest) -> RefundResult:
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail="ACQ.SELLER_BALANCE_NOT_ENOUGH: balance too low")


def _gateway(shop, refusing: bool) -> SandboxGateway:  # type: ignore[no-untyped-def]
    kind = Refusing if refusing else SandboxGateway
    return kind(secret=shop.sandbox_secret, http=shop.ctx.http, api_base_url="http://127.0.0.1:8000")


async def _refused_manual_order(shop) -> tuple[dict, str, str]:  # type: ignore[no-untyped-def]
    """A paid manual-delivery order whose full refund the gateway refused; (order, its page, the refund's number)."""
    sku = await shop.make_sku(code="BY-HAND-R", delivery_type="manual", price_cents=500)
    order = await shop.create_order(sku.id)
    await cashier_pay(shop, order)  # the sandbox holds a real trade to refund
    shop.ctx.gateways.register(_gateway(shop, refusing=True))
    refused = await shop.client.post(f"/api/admin/orders/{order['order_no']}/refunds", headers=shop.admin,
                                     json={"reason": "buyer asked"})
    assert refused.json()["status"] == "failed", refused.text
    shop.ctx.gateways.register(_gateway(shop, refusing=False))
    return order, f"/console/orders/{order['order_no']}", refused.json()["refund_no"]


async def _audit(shop) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return [tuple(row) for row in (await session.execute(
            select(StaffAuditEntry.actor, StaffAuditEntry.action, StaffAuditEntry.object_id)
            .where(StaffAuditEntry.action.like("refund_%")).order_by(StaffAuditEntry.id))).all()]


async def test_a_refused_refund_blocks_manual_delivery_until_an_operator_withdraws_it(shop, app):
    order, url, refund_no = await _refused_manual_order(shop)
    client = await logged_in(shop, "fin", roles=("finance", "operator"))
    queue = (await client.get("/console/refunds")).text  # 退款待处理: where staff find it
    assert f'data-refund="{refund_no}"' in queue and f'href="{url}#refund-{refund_no}"' in queue
    assert 'href="/console/refunds"' in (await client.get("/console/dashboard")).text
    page = (await client.get(url)).text
    assert 'data-testid="refund-attention"' in page and "支付渠道拒绝了退款" in page
    assert 'data-testid="refund-retry"' in page and 'data-testid="refund-withdraw"' in page
    assert "渠道拒绝：ACQ.SELLER_BALANCE_NOT_ENOUGH" in page  # the timeline says why, in Chinese
    assert 'data-testid="manual-form"' not in page  # not offered while the refund covers the order
    waiting = (await client.get("/console/fulfilment")).text  # 待发货 says so too
    assert f'data-order="{order["order_no"]}"' in waiting and 'data-testid="refunding-link"' in waiting
    assert 'data-testid="deliver-link"' not in waiting

    # Sent anyway (an old tab): refused, nothing delivered. The old code delivered it: goods and money both.
    sent = await post_form(client, f"{url}/deliver", {"codes": "ACCT-1 pw-1"}, page_url=url)
    assert sent.status_code == 422 and "正在全额退款；请先撤回退款再发货" in sent.text
    assert (await shop.get_order(order))["status"] == "paid"

    no_reason = await post_form(client, f"{url}/refunds/{refund_no}/withdraw", {"reason": " "}, page_url=url)
    assert no_reason.status_code == 422 and "请填写原因" in no_reason.text
    done = await post_form(client, f"{url}/refunds/{refund_no}/withdraw", {"reason": "买家改为要货"}, page_url=url)
    assert done.status_code == 303 and "m=refund_withdrawn" in done.headers["location"], done.text
    page = (await client.get(done.headers["location"])).text
    assert f"退款 {refund_no} 已撤回" in page and "已撤回" in page
    assert 'data-testid="refund-withdraw"' not in page and 'data-testid="manual-form"' in page
    again = await post_form(client, f"{url}/refunds/{refund_no}/withdraw", {"reason": "x"}, page_url=url)
    assert again.status_code == 409 and "这笔退款当前的状态不允许此操作" in again.text

    assert 'data-testid="refunds-empty"' in (await client.get("/console/refunds")).text
    assert 'data-testid="deliver-link"' in (await client.get("/console/fulfilment")).text
    delivered = await post_form(client, f"{url}/deliver", {"codes": "ACCT-1 pw-1"}, page_url=url)
    assert delivered.status_code == 303
    view = await shop.get_order(order)
    assert (view["status"], view["refunded_cents"], view["delivered_keys"]) == ("delivered", 0, 1)
    assert await _audit(shop) == [("fin", "refund_withdrawn", refund_no)]


async def test_a_refused_refund_is_retried_from_the_console_with_its_own_number(shop, app):
    order, url, refund_no = await _refused_manual_order(shop)
    client = await logged_in(shop, "fin", roles=("finance",))
    done = await post_form(client, f"{url}/refunds/{refund_no}/retry", page_url=url)
    assert done.status_code == 303 and "m=refund_retried" in done.headers["location"], done.text
    page = (await client.get(done.headers["location"])).text
    assert f"退款 {refund_no} 已重新提交，当前状态：成功" in page
    assert [r.refund_no for r in (await shop.scalar(select(Refund)),)] == [refund_no]
    assert (await shop.get_order(order))["status"] == "refunded"
    assert await _audit(shop) == [("fin", "refund_retried", refund_no)]
    other = await post_form(client, f"/console/orders/{order['order_no']}X/refunds/{refund_no}/retry", page_url=url)
    assert other.status_code == 404


async def test_only_staff_who_may_refund_see_and_use_the_actions(shop, app):
    _, url, refund_no = await _refused_manual_order(shop)
    client = await logged_in(shop, "ops", roles=("operator",))
    page = (await client.get(url)).text
    assert 'data-testid="refund-attention"' in page and 'data-testid="refund-withdraw"' not in page
    assert (await client.get("/console/refunds")).status_code == 403
    for action, form in (("retry", {}), ("withdraw", {"reason": "x"})):
        response = await post_form(client, f"{url}/refunds/{refund_no}/{action}", form, page_url=url)
        assert response.status_code == 403, response.text
    assert (await shop.scalar(select(Refund.status))) == "failed" and await _audit(shop) == []


async def test_a_reason_with_a_control_character_is_refused_and_changes_nothing(shop, app):
    """PostgreSQL cannot store NUL in text: the withdraw and refund forms refuse such a reason (422), not a 500."""
    order, url, refund_no = await _refused_manual_order(shop)
    client = await logged_in(shop, "fin", roles=("finance", "operator"))
    withdraw = await post_form(client, f"{url}/refunds/{refund_no}/withdraw", {"reason": "买家\x00要货"}, page_url=url)
    assert withdraw.status_code == 422 and "控制字符" in withdraw.text, withdraw.text
    again = await post_form(client, f"{url}/refund", {"reason": "again\x00"}, page_url=url)
    assert again.status_code == 422 and "控制字符" in again.text, again.text
    keyed = await post_form(client, f"{url}/refund", {"reason": "again", "request_key": "k\x00"}, page_url=url)
    assert keyed.status_code == 422 and "控制字符" in keyed.text, keyed.text
    assert await shop.count(Refund) == 1 and await shop.scalar(select(Refund.status)) == "failed"
    assert (await shop.get_order(order))["status"] == "paid" and await _audit(shop) == []


async def test_a_new_refund_waits_until_the_refused_one_is_settled(shop, app):
    """The order page's refund form while a refused refund of the payment waits: refused in Chinese, naming it and
    what to do (the old code made a second refund of the whole order beside it); after the withdrawal it works."""
    order, url, refund_no = await _refused_manual_order(shop)
    client = await logged_in(shop, "fin", roles=("finance", "operator"))
    sent = await post_form(client, f"{url}/refund", {"reason": "买家再次申请"}, page_url=url)
    assert sent.status_code == 409, sent.text
    assert f"这笔付款的退款 {refund_no} 被支付渠道拒绝，正在等待处理：请先在「退款待处理」重新退款或撤回它" in sent.text
    assert "这笔付款有一笔退款待处理" in sent.text
    assert await shop.count(Refund) == 1 and (await shop.get_order(order))["status"] == "paid"
    assert await _audit(shop) == []

    done = await post_form(client, f"{url}/refunds/{refund_no}/withdraw", {"reason": "重新申请"}, page_url=url)
    assert done.status_code == 303, done.text
    again = await post_form(client, f"{url}/refund", {"reason": "买家再次申请"}, page_url=url)
    assert again.status_code == 303 and "m=refunded" in again.headers["location"], again.text
    assert await shop.count(Refund) == 2 and (await shop.get_order(order))["status"] == "refunded"
