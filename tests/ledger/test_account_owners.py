"""Whose account a per-supplier or per-customer code is: only ASCII-digit keys are ids."""

from __future__ import annotations

from quanyi.ledger import service as ledger_service

from .support import make_supplier


async def test_account_owners_name_ascii_ids_and_skip_other_digits(ctx):
    supplier = await make_supplier(ctx)
    codes = [f"supplier_payable:{supplier.id}", "supplier_prepaid:²", "customer_prepaid:٣", "supplier_prepaid:1x"]
    async with ctx.db.read_session() as session:
        owners = await ledger_service.account_owners(session=session, codes=codes)
    assert owners == {f"supplier_payable:{supplier.id}": supplier.name}
