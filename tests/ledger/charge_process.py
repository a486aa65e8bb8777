"""Runs in a separate OS process: charges one supplier's prepaid balance as fast as it can.

Not a test module; test_prepaid_concurrency.py starts several of these at once.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def _charge(db: Any, supplier_id: int, amount: int, reference: str) -> tuple[str, str]:
    from quanyi.ledger import service as ledger_service

    try:
        async with db.transaction() as session:
            charge = await ledger_service.charge_supplier(session=session, supplier_id=supplier_id,
                                                          amount_cents=amount, reference=reference)
            return reference, f"charged:{charge.balance_after_cents}"
    except ledger_service.SupplierBalanceInsufficient:
        return reference, "insufficient"


async def _run(url: str, supplier_id: int, amount: int, references: list[str], go: Any) -> list[tuple[str, str]]:
    import quanyi.models  # noqa: F401  (every table mapped, as in the app)
    from quanyi.db import Database

    db = Database(url, pool_size=6)
    try:
        await asyncio.to_thread(go.wait)  # every process starts charging at the same moment
        return list(await asyncio.gather(*[_charge(db, supplier_id, amount, ref) for ref in references]))
    finally:
        await db.dispose()


def charge(url: str, supplier_id: int, amount: int, references: list[str], go: Any, results: Any) -> None:
    results.put(asyncio.run(_run(url, supplier_id, amount, references, go)))
