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
    sealed = seal_credentials(ctx.cipher, supplier_code=code, credentials=credentials or {"key": "k", "secret": "s"})
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
