"""Concurrent purchases in several OS processes never overdraw a supplier's prepaid balance."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from quanyi.ledger.models import SupplierCharge
from quanyi.ledger.postings import account_balances
from races import race_processes

from .processes import charge
from .support import make_supplier, supplier_balance, unbalanced_postings

PROCESSES = 4
OWN_REFERENCES = 25  # per process
SHARED_REFERENCES = 5  # the same attempt keys retried by every process at once
AMOUNT = 100
BALANCE, CREDIT_LIMIT = 1_000, 500  # room for exactly (1000 + 500) / 100 = 15 charges
ALLOWED = (BALANCE + CREDIT_LIMIT) // AMOUNT


@pytest.mark.slow
async def test_charges_from_4_processes_succeed_exactly_as_often_as_the_balance_allows(ctx, settings):
    supplier = await make_supplier(ctx, balance_cents=BALANCE, credit_limit_cents=CREDIT_LIMIT)
    args = []
    for p in range(PROCESSES):
        # Shared references interleaved with own ones, so duplicates race with real charges.
        references = [f"P{p}-{i}" for i in range(OWN_REFERENCES)]
        for j in range(SHARED_REFERENCES):
            references.insert(j * 5, f"SHARED-{j}")
        args.append((ctx.db.url, supplier.id, AMOUNT, references))
    outcomes = race_processes(charge, args, doing="charging")

    charged = {ref for ref, outcome in outcomes if outcome.startswith("charged")}
    assert len(charged) == ALLOWED
    assert all(int(outcome.split(":")[1]) >= -CREDIT_LIMIT for _, outcome in outcomes if outcome != "insufficient")
    assert await supplier_balance(ctx, supplier.id) == BALANCE - ALLOWED * AMOUNT == -CREDIT_LIMIT
    async with ctx.db.read_session() as session:
        rows = await session.scalar(select(func.count()).select_from(SupplierCharge))
        assert rows == ALLOWED
        assert set((await session.scalars(select(SupplierCharge.reference))).all()) == charged
        assert min((await session.scalars(select(SupplierCharge.balance_after_cents))).all()) == -CREDIT_LIMIT
        balances = await account_balances(session)
    assert balances[(f"supplier_prepaid:{supplier.id}", "CNY")] == -ALLOWED * AMOUNT
    assert await unbalanced_postings(ctx) == []
