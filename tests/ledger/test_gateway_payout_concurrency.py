"""Gateway settlements recorded from 4 OS processes at once: every settlement number is booked at most once, and
together they never take more out of the gateway's clearing account than it holds."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from quanyi.ledger.models import GatewayPayout
from quanyi.ledger.postings import Line, account_balances, post
from races import race_processes

from .processes import record
from .support import posting_count, unbalanced_postings

PROCESSES = 4
SHARED = 3  # the same statements sent by every process
OWN = 4  # per process
NET = 100
ROOM = 10  # the clearing account holds exactly 10 payouts


@pytest.mark.slow
async def test_payouts_from_4_processes_book_each_settlement_once_and_never_overdraw(ctx, settings):
    async with ctx.db.transaction() as session:  # the gateway took 10 × 1.00 for the shop
        await post(session, reference="payments:test", kind="payment_received",
                   lines=[Line("gateway_clearing:sandbox", ROOM * NET, "CNY"),
                          Line("customer_liability", -ROOM * NET, "CNY")])
    day = dt.date.today() - dt.timedelta(days=1)
    args = []
    for p in range(PROCESSES):
        settlements = [f"P{p}-{i}" for i in range(OWN)]
        for j in range(SHARED):
            settlements.insert(j * 2, f"SHARED-{j}")
        args.append((ctx.db.url, settlements, NET, day))
    outcomes = race_processes(record, args, doing="recording")

    booked = [no for no, outcome in outcomes if outcome == "booked"]
    assert len(booked) == len(set(booked)) == ROOM, outcomes
    assert {outcome for _, outcome in outcomes} <= {"booked", "exists", "exceeds"}
    async with ctx.db.read_session() as session:
        rows = set((await session.scalars(select(GatewayPayout.settlement_no))).all())
        assert int(await session.scalar(select(func.count()).select_from(GatewayPayout))) == ROOM
        balances = await account_balances(session)
    assert rows == set(booked)
    assert balances[("gateway_clearing:sandbox", "CNY")] == 0 and balances[("platform_cash", "CNY")] == ROOM * NET
    assert await posting_count(ctx, kind="gateway_payout") == ROOM
    assert await unbalanced_postings(ctx) == []
