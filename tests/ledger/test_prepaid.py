"""Supplier prepaid balances: charges debit atomically within the credit limit, idempotently per reference."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import SupplierCharge
from quanyi.ledger.postings import account_balances

from .support import make_supplier, posting_count, supplier_balance, unbalanced_postings


async def test_charge_debits_balance_and_posts_balanced_entries(ctx):
    supplier = await make_supplier(ctx, balance_cents=10_000)
    async with ctx.db.transaction() as session:
        charge = await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=1_500,
                                                      reference="ATT-1")
    assert charge.balance_after_cents == 8_500 and charge.currency == "CNY"
    assert await supplier_balance(ctx, supplier.id) == 8_500
    assert await unbalanced_postings(ctx) == []
    async with ctx.db.read_session() as session:
        balances = await account_balances(session)
    assert balances[(f"supplier_prepaid:{supplier.id}", "CNY")] == -1_500
    assert balances[(f"supplier_payable:{supplier.id}", "CNY")] == 1_500


async def test_same_reference_charges_once(ctx):
    supplier = await make_supplier(ctx, balance_cents=10_000)
    for _ in range(3):
        async with ctx.db.transaction() as session:
            charge = await ledger_service.charge_supplier(session=session, supplier_id=supplier.id,
                                                          amount_cents=1_000, reference="ATT-SAME")
            assert charge.balance_after_cents == 9_000
    assert await supplier_balance(ctx, supplier.id) == 9_000
    assert await posting_count(ctx, kind="supplier_charge") == 1


async def test_reference_reused_for_another_amount_is_refused(ctx):
    supplier = await make_supplier(ctx, balance_cents=10_000)
    async with ctx.db.transaction() as session:
        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=1_000,
                                             reference="ATT-X")
    with pytest.raises(ledger_service.SupplierChargeConflict):
        async with ctx.db.transaction() as session:
            await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=2_000,
                                                 reference="ATT-X")
    assert await supplier_balance(ctx, supplier.id) == 9_000


async def test_insufficient_balance_changes_nothing_and_caller_can_continue(ctx):
    supplier = await make_supplier(ctx, balance_cents=1_000, credit_limit_cents=500)
    other = await make_supplier(ctx, balance_cents=5_000)
    async with ctx.db.transaction() as session:
        with pytest.raises(ledger_service.SupplierBalanceInsufficient):
            await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=1_501,
                                                 reference="ATT-A")
        # The failed charge rolled back alone: the same transaction buys from the next supplier.
        await ledger_service.charge_supplier(session=session, supplier_id=other.id, amount_cents=1_501,
                                             reference="ATT-B")
    assert await supplier_balance(ctx, supplier.id) == 1_000
    assert await supplier_balance(ctx, other.id) == 3_499
    async with ctx.db.read_session() as session:
        refs = set((await session.scalars(select(SupplierCharge.reference))).all())
    assert refs == {"ATT-B"}
    assert await posting_count(ctx, kind="supplier_charge") == 1


async def test_credit_limit_allows_down_to_minus_limit_exactly(ctx):
    supplier = await make_supplier(ctx, balance_cents=1_000, credit_limit_cents=500)
    async with ctx.db.transaction() as session:
        charge = await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=1_500,
                                                      reference="ATT-EDGE")
    assert charge.balance_after_cents == -500
    with pytest.raises(ledger_service.SupplierBalanceInsufficient):
        async with ctx.db.transaction() as session:
            await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=1,
                                                 reference="ATT-OVER")


async def test_release_credits_back_once(ctx):
    supplier = await make_supplier(ctx, balance_cents=2_000)
    async with ctx.db.transaction() as session:
        await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=2_000,
                                             reference="ATT-R")
    for _ in range(2):
        async with ctx.db.transaction() as session:
            charge = await ledger_service.release_supplier_charge(session=session, reference="ATT-R",
                                                                  reason="supplier said FAILED")
            assert charge.status == "released"
    assert await supplier_balance(ctx, supplier.id) == 2_000
    assert await posting_count(ctx, kind="supplier_release") == 1
    async with ctx.db.read_session() as session:
        balances = await account_balances(session, prefix="supplier_")
    assert all(total == 0 for total in balances.values())
    # A released reference stays used: charging it again returns the released charge, debiting nothing.
    async with ctx.db.transaction() as session:
        again = await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=2_000,
                                                     reference="ATT-R")
        assert again.status == "released"
    assert await supplier_balance(ctx, supplier.id) == 2_000


async def test_top_up_credits_balance_idempotently(ctx):
    supplier = await make_supplier(ctx, balance_cents=0)
    for _ in range(2):
        async with ctx.db.transaction() as session:
            await ledger_service.top_up_supplier(session=session, supplier_id=supplier.id, amount_cents=50_000,
                                                 note="bank transfer 12/01", actor="admin", reference="TOPUP-1")
    assert await supplier_balance(ctx, supplier.id) == 50_000
    async with ctx.db.read_session() as session:
        balances = await account_balances(session)
    assert balances[(f"supplier_prepaid:{supplier.id}", "CNY")] == 50_000
    assert balances[("platform_cash", "CNY")] == -50_000


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
async def test_bad_amounts_are_refused(ctx, amount):
    supplier = await make_supplier(ctx, balance_cents=1_000)
    with pytest.raises(ledger_service.InvalidLedgerAmount):
        async with ctx.db.transaction() as session:
            await ledger_service.charge_supplier(session=session, supplier_id=supplier.id, amount_cents=amount,
                                                 reference="ATT-BAD")
    assert await supplier_balance(ctx, supplier.id) == 1_000


async def test_unknown_supplier_is_not_found(ctx):
    with pytest.raises(ledger_service.UnknownSupplier):
        async with ctx.db.transaction() as session:
            await ledger_service.charge_supplier(session=session, supplier_id=999_999, amount_cents=100,
                                                 reference="ATT-NONE")
    with pytest.raises(ledger_service.UnknownSupplier):
        async with ctx.db.transaction() as session:
            await ledger_service.top_up_supplier(session=session, supplier_id=999_999, amount_cents=100,
                                                 note="", actor="admin")
