"""Ledger test helpers: suppliers made through the real tables, and the books' invariants checked in SQL."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import func, select

from quanyi.context import ShopContext
from quanyi.ledger.models import LedgerEntry, LedgerPosting
from quanyi.suppliers.adapter import SupplierDialect
from quanyi.suppliers.credentials import seal_credentials
from quanyi.suppliers.models import Supplier


async def make_supplier(ctx: ShopContext, *, code: str | None = None, balance_cents: int = 0,
                        credit_limit_cents: int = 0, base_url: str = "http://127.0.0.1:9/",
                        cycle: str = "daily", credentials: dict[str, str] | None = None,
                        dialect: SupplierDialect = SupplierDialect.QUANYI) -> Supplier:
    code = code or "SUP" + secrets.token_hex(3).upper()
    sealed = seal_credentials(ctx.cipher, supplier_code=code,
                              credentials=credentials or {"app_id": "QY1", "secret": "s"})
    async with ctx.db.transaction() as session:
        supplier = Supplier(code=code, name=f"Supplier {code}", dialect=dialect, base_url=base_url,
                            credentials_key_id=sealed.key_id, credentials_ciphertext=sealed.ciphertext,
                            settlement_cycle=cycle, balance_cents=balance_cents,
                            credit_limit_cents=credit_limit_cents)
        session.add(supplier)
        await session.flush()
        return supplier


async def supplier_balance(ctx: ShopContext, supplier_id: int) -> int:
    async with ctx.db.read_session() as session:
        return int(await session.scalar(select(Supplier.balance_cents).where(Supplier.id == supplier_id)))


async def unbalanced_postings(ctx: ShopContext) -> list[Any]:
    """Postings whose entries do not sum to zero in some currency (must always be empty)."""
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(LedgerEntry.posting_id, LedgerEntry.currency, func.sum(LedgerEntry.amount_cents))
            .group_by(LedgerEntry.posting_id, LedgerEntry.currency)
            .having(func.sum(LedgerEntry.amount_cents) != 0))
        return list(rows.all())


async def posting_count(ctx: ShopContext, **where: Any) -> int:
    async with ctx.db.read_session() as session:
        stmt = select(func.count()).select_from(LedgerPosting)
        for column, value in where.items():
            stmt = stmt.where(getattr(LedgerPosting, column) == value)
        return int(await session.scalar(stmt) or 0)


async def order_sums(ctx: ShopContext, order_no: str) -> dict[str, int]:
    """What one order's postings did to each account family (gateway_clearing:*, merchant_payable:* ... summed)."""
    from quanyi.ledger.postings import order_account_sums
    from quanyi.orders.models import Order

    async with ctx.db.read_session() as session:
        order_id = await session.scalar(select(Order.id).where(Order.order_no == order_no))
        sums = await order_account_sums(session, order_id)
    families: dict[str, int] = {}
    for code, total in sums.items():
        family = code.partition(":")[0]
        families[family] = families.get(family, 0) + total
    return {family: total for family, total in families.items() if total}


async def expected_order_sums(ctx: ShopContext, order_no: str) -> dict[str, int]:
    """The same, derived only from what happened to the money (payments, refunds, keys, supplier charges),
    never from the ledger: the two must agree."""
    from quanyi.inventory.models import CardKey, ImportBatch
    from quanyi.ledger.models import SupplierCharge
    from quanyi.orders.models import Order, OrderEvent
    from quanyi.payments.models import Payment
    from quanyi.refunds.models import Refund

    async with ctx.db.read_session() as session:
        order = await session.scalar(select(Order).where(Order.order_no == order_no))
        payments = {p.id: p for p in (await session.scalars(select(Payment).where(Payment.order_id == order.id)))}
        refunds = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
        charges = (await session.scalars(select(SupplierCharge).where(SupplierCharge.order_id == order.id))).all()
        went_pending = await session.scalar(select(func.count()).select_from(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.to_status == "refund_pending"))
        key_cost = int(await session.scalar(
            select(func.coalesce(func.sum(ImportBatch.unit_cost_cents), 0)).select_from(CardKey)
            .join(ImportBatch, ImportBatch.id == CardKey.batch_id)
            .where(CardKey.order_id == order.id, CardKey.status.in_(["sold", "refunded"]))) or 0)
    primary = sum(p.amount_cents for p in payments.values() if p.status == "succeeded")
    duplicate = sum(p.amount_cents for p in payments.values() if p.status == "duplicate")

    def refunded(payment_status: str, states: tuple[str, ...]) -> int:
        return sum(r.amount_cents for r in refunds if payments[r.payment_id].status == payment_status
                   and r.status in states)

    paid_back = refunded("succeeded", ("succeeded",)) + refunded("duplicate", ("succeeded",))
    open_primary = refunded("succeeded", ("requested", "processing"))
    kept = primary - refunded("succeeded", ("succeeded", "requested", "processing"))
    expected = {
        "gateway_clearing": primary + duplicate - paid_back,
        "refunds_payable": -(duplicate - refunded("duplicate", ("succeeded",)) + open_primary),
    }
    delivered = order.delivered_at is not None
    if went_pending:
        expected["refunds_due"] = -kept
    elif delivered:
        expected["revenue_shares"] = -kept
    else:
        expected["customer_liability"] = -kept
    live_charges = sum(c.amount_cents for c in charges if c.status == "charged")
    expected["supplier_prepaid"] = -live_charges
    if delivered:
        expected["cost_of_goods"] = key_cost + live_charges
        expected["card_key_stock"] = -key_cost
    else:
        expected["supplier_payable"] = live_charges
    return {family: total for family, total in expected.items() if total}


def group_revenue(sums: dict[str, int]) -> dict[str, int]:
    """Platform revenue, merchant payables and distributor commissions as one `revenue_shares` figure."""
    grouped = {k: v for k, v in sums.items()
               if k not in ("platform_revenue", "merchant_payable", "distributor_commission")}
    shares = sum(v for k, v in sums.items() if k in ("platform_revenue", "merchant_payable", "distributor_commission"))
    if shares:
        grouped["revenue_shares"] = shares
    return grouped
