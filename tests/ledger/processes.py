"""Run in separate OS processes, several at once (tests/races.py `race_processes`): each charges a supplier's
prepaid balance (`charge`) or records gateway settlements (`record`) as fast as it can.

Not a test module; test_prepaid_concurrency.py and test_gateway_payout_concurrency.py start these.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

Outcome = tuple[str, str]


async def _all_at_once(url: str, go: Any, units: Callable[[Any], list[Awaitable[Outcome]]]) -> list[Outcome]:
    """Every unit of work `units(db)` makes, all at once on one shop's database, once `go` is set."""
    import quanyi.models  # noqa: F401  (every table mapped, as in the app)
    from quanyi.db import Database

    db = Database(url, pool_size=6)
    try:
        await asyncio.to_thread(go.wait)  # every process starts at the same moment
        return list(await asyncio.gather(*units(db)))
    finally:
        await db.dispose()


async def _charge(db: Any, supplier_id: int, amount: int, reference: str) -> Outcome:
    from quanyi.ledger import service as ledger_service

    try:
        async with db.transaction() as session:
            charge = await ledger_service.charge_supplier(session=session, supplier_id=supplier_id,
                                                          amount_cents=amount, reference=reference)
            return reference, f"charged:{charge.balance_after_cents}"
    except ledger_service.SupplierBalanceInsufficient:
        return reference, "insufficient"


def charge(url: str, supplier_id: int, amount: int, references: list[str], go: Any, results: Any) -> None:
    results.put(asyncio.run(_all_at_once(
        url, go, lambda db: [_charge(db, supplier_id, amount, ref) for ref in references])))


async def _record(db: Any, settlement_no: str, net: int, day: dt.date) -> Outcome:
    from quanyi.ledger import service as ledger_service

    try:
        async with db.transaction() as session:
            await ledger_service.record_gateway_payout(
                session, gateway="sandbox", settlement_no=settlement_no, period_from=day, period_to=day,
                net_cents=net, fee_cents=0, actor="test", configured=("sandbox",))
        return settlement_no, "booked"
    except ledger_service.GatewayPayoutExists:
        return settlement_no, "exists"
    except ledger_service.PayoutExceedsClearing:
        return settlement_no, "exceeds"


def record(url: str, settlements: list[str], net: int, day: dt.date, go: Any, results: Any) -> None:
    results.put(asyncio.run(_all_at_once(url, go, lambda db: [_record(db, no, net, day) for no in settlements])))
