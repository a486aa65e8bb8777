"""Automatic postings (分润) as orders move: payment, delivery with profit sharing and cost, refunds, refund
pending, duplicate payments, refused refunds. Each order's ledger sums must equal the money actually moved."""

from __future__ import annotations

from sqlalchemy import select

from helpers import random_code
from promoters.support import make_promoter
from quanyi.catalog import service as catalog_service
from quanyi.inventory import service as inventory_service
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import LedgerPosting
from quanyi.ledger.reports import set_share_rule, trial_balance
from quanyi.orders.models import Order
from quanyi.payments.gateway import RefundRequest, RefundResult
from quanyi.payments.models import Payment
from quanyi.payments.sandbox.gateway import SandboxGateway
from refund_helpers import SecondSandbox, ask_refund, cashier_pay, open_cashier, press_pay, refund_pending_order

from .support import expected_order_sums, group_revenue, make_supplier, order_sums, unbalanced_postings


async def _stock_at_cost(shop, sku, count: int, unit_cost: int | None) -> None:
    async with shop.ctx.db.transaction() as session:
        fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
        await inventory_service.import_card_keys(session=session, cipher=shop.ctx.cipher, sku=fresh,
                                                 text="\n".join(random_code() for _ in range(count)),
                                                 unit_cost_cents=unit_cost)


async def _books_balance(shop) -> None:
    assert await unbalanced_postings(shop.ctx) == []
    async with shop.ctx.db.read_session() as session:
        assert (await trial_balance(session=session)).balanced


async def _matches_money(shop, order_no: str) -> dict[str, int]:
    actual = await order_sums(shop.ctx, order_no)
    assert group_revenue(actual) == await expected_order_sums(shop.ctx, order_no)
    return actual


async def test_delivery_shares_revenue_and_books_key_cost(shop, app, sku):
    await _stock_at_cost(shop, sku, 3, unit_cost=1200)
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="M1", merchant_bps=1000,
                             distributor_bps=500, actor="test")
    await make_promoter(shop, "D-42")
    order = await shop.create_order(sku.id, quantity=2, distributor_code="D-42")
    await cashier_pay(shop, order)
    sums = await _matches_money(shop, order["order_no"])
    # 2 x 19.80 = 39.60: merchant 10% = 3.96, distributor 5% = 1.98, platform the rest.
    assert sums == {"gateway_clearing": 3960, "platform_revenue": -3366, "merchant_payable": -396,
                    "distributor_commission": -198, "cost_of_goods": 2400, "card_key_stock": -2400}
    async with shop.ctx.db.read_session() as session:
        codes = {(p.kind, p.reference) for p in (await session.scalars(select(LedgerPosting))).all()}
    assert ("order_delivered", f"delivered:{order['order_no']}") in codes
    await _books_balance(shop)


async def test_no_distributor_code_no_commission_and_sku_rule_wins(shop, app, sku):
    await _stock_at_cost(shop, sku, 1, unit_cost=None)
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="M1", merchant_bps=1000,
                             distributor_bps=500, actor="test")
        await set_share_rule(session=session, sku_id=sku.id, merchant_code="M2", merchant_bps=5000,
                             distributor_bps=0, actor="test")
    order = await shop.create_order(sku.id)
    await cashier_pay(shop, order)
    assert await _matches_money(shop, order["order_no"]) == {
        "gateway_clearing": 1980, "platform_revenue": -990, "merchant_payable": -990}


async def test_partial_then_full_refund_of_a_delivered_order_returns_every_share(shop, app, sku):
    await _stock_at_cost(shop, sku, 3, unit_cost=500)
    async with shop.ctx.db.transaction() as session:
        await set_share_rule(session=session, sku_id=None, merchant_code="M1", merchant_bps=3333,
                             distributor_bps=777, actor="test")
    await make_promoter(shop, "D1")
    order = await shop.create_order(sku.id, quantity=3, distributor_code="D1")
    await cashier_pay(shop, order)
    first = await ask_refund(shop, order, quantity=1)
    assert first.status_code == 201 and first.json()["status"] == "succeeded"
    await _matches_money(shop, order["order_no"])
    rest = await ask_refund(shop, order, quantity=2)
    assert rest.status_code == 201 and rest.json()["status"] == "succeeded"
    # Everything went back; what the keys cost stays spent (refunded keys are never resold).
    assert await _matches_money(shop, order["order_no"]) == {"cost_of_goods": 1500, "card_key_stock": -1500}
    await _books_balance(shop)


async def test_paid_but_undeliverable_order_owes_the_buyer_until_refunded(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)
    assert await _matches_money(shop, order["order_no"]) == {"gateway_clearing": 1980, "refunds_due": -1980}
    response = await ask_refund(shop, order, amount_cents=500)
    assert response.json()["status"] == "succeeded"
    assert await _matches_money(shop, order["order_no"]) == {"gateway_clearing": 1480, "refunds_due": -1480}
    await ask_refund(shop, order)
    assert await _matches_money(shop, order["order_no"]) == {}
    await _books_balance(shop)


async def test_duplicate_payment_is_refunds_payable_until_paid_back(shop, app, stocked_sku):
    shop.ctx.gateways.register(SecondSandbox(secret=shop.sandbox_secret, http=shop.ctx.http,
                                             api_base_url="http://127.0.0.1:8000"))
    order = await shop.create_order(stocked_sku.id)
    _, first = await open_cashier(shop, order, "sandbox")
    _, second = await open_cashier(shop, order, "sandbox2")
    await press_pay(shop, first)
    await press_pay(shop, second)
    sums = await _matches_money(shop, order["order_no"])
    assert sums["gateway_clearing"] == 3960 and sums["refunds_payable"] == -1980
    duplicate = await shop.scalar(select(Payment).where(Payment.status == "duplicate"))
    async with shop.ctx.db.read_session() as session:
        kinds = set((await session.scalars(select(LedgerPosting.kind).where(
            LedgerPosting.payment_no == duplicate.payment_no))).all())
    assert kinds == {"payment_duplicate"}
    await ask_refund(shop, order, payment_no=duplicate.payment_no)
    sums = await _matches_money(shop, order["order_no"])
    assert sums["gateway_clearing"] == 1980 and "refunds_payable" not in sums
    await _books_balance(shop)


async def test_refused_refund_reverses_its_request_and_a_retry_posts_it_again(shop, app, stocked_sku):
    order = await refund_pending_order(shop, stocked_sku)

    class Refusing(SandboxGateway):
        async def refund(self, request: RefundRequest) -> RefundResult:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="refused")

    real = shop.ctx.gateways.get("sandbox")
    shop.ctx.gateways.register(Refusing(secret=shop.sandbox_secret, http=shop.ctx.http,
                                        api_base_url="http://127.0.0.1:8000"))
    failed = (await ask_refund(shop, order)).json()
    assert failed["status"] == "failed"
    assert await _matches_money(shop, order["order_no"]) == {"gateway_clearing": 1980, "refunds_due": -1980}
    shop.ctx.gateways.register(real)
    retried = await shop.client.post(f"/api/admin/refunds/{failed['refund_no']}/retry", headers=shop.admin)
    assert retried.json()["status"] == "succeeded"
    assert await _matches_money(shop, order["order_no"]) == {}
    async with shop.ctx.db.read_session() as session:
        kinds = sorted((await session.scalars(select(LedgerPosting.kind).where(
            LedgerPosting.refund_no == failed["refund_no"]))).all())
    assert kinds == ["refund_paid", "refund_refused", "refund_requested", "refund_requested"]
    await _books_balance(shop)


async def test_supplier_purchase_cost_is_booked_on_delivery(shop, app, sku):
    supplier = await make_supplier(shop.ctx, balance_cents=0)
    async with shop.ctx.db.transaction() as session:
        await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id, amount_cents=10_000,
                                             note="opening", actor="test")
    await _stock_at_cost(shop, sku, 1, unit_cost=None)
    order = await shop.create_order(sku.id)
    async with shop.ctx.db.transaction() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order["order_no"]))
        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=700,
                                             reference="A-1", order_id=order_id)
        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=900,
                                             reference="A-2", order_id=order_id)
        await ledger_service.release_supplier_charge(session=session, reference="A-1", reason="failed")
    await cashier_pay(shop, order)
    sums = await _matches_money(shop, order["order_no"])
    assert sums["cost_of_goods"] == 900 and sums["supplier_prepaid"] == -900 and "supplier_payable" not in sums
    await _books_balance(shop)


async def test_replayed_events_post_nothing_new(shop, app, stocked_sku):
    order = await shop.create_order(stocked_sku.id)
    payment = await shop.start_payment(order)
    params = shop.notification(payment)
    for _ in range(3):
        assert (await shop.notify(params)).text == "success"
    async with shop.ctx.db.transaction() as session:
        row = await session.scalar(select(Order).where(Order.order_no == order["order_no"]))
        await ledger_service.record_order_status(session=session, order=row)
        await ledger_service.record_order_delivered(session=session, order=row)
    async with shop.ctx.db.read_session() as session:
        kinds = sorted((await session.scalars(select(LedgerPosting.kind))).all())
    assert kinds == ["order_delivered", "payment_received"]
    await _matches_money(shop, order["order_no"])
