"""The one writer of postings refuses unbalanced or non-integer lines before writing anything, and written
postings and entries cannot be changed or deleted (a correction is a new posting)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quanyi.ledger.models import ImmutableLedgerRow, LedgerAccount, LedgerEntry, LedgerPosting
from quanyi.ledger.postings import Line, UnbalancedPosting, post

from .support import posting_count


@pytest.mark.parametrize("lines", [
    [Line("platform_cash", 100, "CNY"), Line("platform_revenue", -99, "CNY")],
    # Balanced overall but not per currency.
    [Line("platform_cash", 100, "CNY"), Line("platform_revenue", -100, "USD")],
    [Line("platform_cash", 1.5, "CNY"), Line("platform_revenue", -1.5, "CNY")],  # type: ignore[arg-type]
])
async def test_unbalanced_postings_are_refused_and_write_nothing(ctx, lines):
    with pytest.raises(UnbalancedPosting):
        async with ctx.db.transaction() as session:
            await post(session, reference="bad-1", kind="test", lines=lines)
    assert await posting_count(ctx) == 0


async def test_unknown_account_families_are_refused(ctx):
    with pytest.raises(ValueError, match="unknown ledger account"):
        async with ctx.db.transaction() as session:
            await post(session, reference="typo-1", kind="test",
                       lines=[Line("platfrom_cash", 100, "CNY"), Line("platform_revenue", -100, "CNY")])
    assert await posting_count(ctx) == 0


async def test_same_reference_posts_once_and_lines_merge(ctx):
    lines = [Line("platform_cash", 60, "CNY"), Line("platform_cash", 40, "CNY"), Line("platform_revenue", -100, "CNY")]
    async with ctx.db.transaction() as session:
        first, created = await post(session, reference="once-1", kind="test", lines=lines)
        again, created_again = await post(session, reference="once-1", kind="test", lines=lines)
    assert created and not created_again and again.id == first.id
    async with ctx.db.read_session() as session:
        amounts = sorted((await session.scalars(select(LedgerEntry.amount_cents))).all())
    assert amounts == [-100, 100]


async def test_entries_and_postings_are_immutable(ctx):
    async with ctx.db.transaction() as session:
        await post(session, reference="fixed-1", kind="test",
                   lines=[Line("platform_cash", 100, "CNY"), Line("platform_revenue", -100, "CNY")])
    with pytest.raises(ImmutableLedgerRow):
        async with ctx.db.transaction() as session:
            entry = await session.scalar(select(LedgerEntry).limit(1))
            entry.amount_cents = 1
            await session.flush()
    with pytest.raises(ImmutableLedgerRow):
        async with ctx.db.transaction() as session:
            await session.delete(await session.scalar(select(LedgerPosting).limit(1)))
            await session.flush()
    async with ctx.db.read_session() as session:
        assert sorted((await session.scalars(select(LedgerEntry.amount_cents))).all()) == [-100, 100]


class _RolledBack(Exception):
    pass


async def test_an_account_created_by_a_rolled_back_posting_is_not_remembered(ctx):
    """Account ids are cached per process; one created in a transaction that rolls back is gone again, so it
    must never reach the cache (a later posting would point at a row that does not exist)."""
    lines = [Line("platform_cash", 100, "CNY"), Line("platform_revenue", -100, "CNY")]
    with pytest.raises(_RolledBack):
        async with ctx.db.transaction() as session:
            await post(session, reference="gone-1", kind="test", lines=lines)
            await post(session, reference="gone-2", kind="test", lines=lines)  # reads the accounts it created
            raise _RolledBack
    cache = ctx.db.session_info["quanyi.ledger.account_ids"]
    assert cache == {}
    async with ctx.db.transaction() as session:
        await post(session, reference="kept-1", kind="test", lines=lines)
    async with ctx.db.transaction() as session:
        await post(session, reference="kept-2", kind="test", lines=lines)  # committed rows: now cached
    async with ctx.db.read_session() as session:
        accounts = dict((await session.execute(select(LedgerAccount.code, LedgerAccount.id))).all())
        entries = (await session.scalars(select(LedgerEntry.account_id))).all()
    assert cache == accounts and set(entries) == set(accounts.values()) and len(entries) == 4
