"""Runs in a separate OS process: records gateway settlements as fast as it can.

Not a test module; test_gateway_payout_concurrency.py starts several of these at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any


async def _record(db: Any, settlement_no: str, net: int, day: dt.date) -> tuple[str, str]:
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


async def _run(url: str, settlements: list[str], net: int, day: dt.date, go: Any) -> list[tuple[str, str]]:
    import quanyi.models  # noqa: F401  (every table mapped, as in the app)
    from quanyi.db import Database

    db = Database(url, pool_size=6)
    try:
        await asyncio.to_thread(go.wait)  # every process starts at the same moment
        return list(await asyncio.gather(*[_record(db, no, net, day) for no in settlements]))
    finally:
        await db.dispose()


def record(url: str, settlements: list[str], net: int, day: dt.date, go: Any, results: Any) -> None:
    results.put(asyncio.run(_run(url, settlements, net, day, go)))
