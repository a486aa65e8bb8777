"""The one function that writes postings, and the ledger's read helpers (balances, per-order sums).

`post` refuses an unbalanced posting before anything is written, so no other code path can put an
unbalanced entry into the books; a posting whose reference already exists is returned untouched.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, true, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.db import Database, utcnow
from quanyi.ledger import accounts
from quanyi.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

__all__ = ["Line", "Draft", "UnbalancedPosting", "post", "post_many", "posting_ctes", "new_posting_params",
           "order_posting_ctes", "new_posting_lines", "new_posting_steps",
           "get_account", "install_account_cache",
           "account_balances", "order_account_sums", "orders_account_sums", "posting_by_reference"]


class UnbalancedPosting(ValueError):
    """A programming error: the entries of a posting must sum to zero per currency."""


@dataclass(frozen=True, slots=True)
class Line:
    """One entry to post: debit (amount > 0) or credit (amount < 0) an account."""

    account: str
    amount_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A posting to write with `post_many`: the same fields `post` takes."""

    reference: str
    kind: str
    lines: Sequence[Line]
    order_id: int | None = None
    payment_no: str | None = None
    memo: str = ""


async def get_account(session: AsyncSession, code: str) -> LedgerAccount:
    """The account with this code, created on first use."""
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is not None:
        return account
    kind, name = accounts.describe(code)
    try:
        # A savepoint: a concurrent creator wins the unique constraint and we read its row instead.
        async with session.begin_nested():
            account = LedgerAccount(code=code, kind=kind.value, name=name[:200], created_at=utcnow())
            session.add(account)
            await session.flush()
        session.info.setdefault(_CREATED_HERE, set()).add(code)  # uncommitted: never into the shared cache
    except IntegrityError:
        account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
        assert account is not None
    return account


_ACCOUNT_IDS = "quanyi.ledger.account_ids"
_CREATED_HERE = "quanyi.ledger.accounts_created"


def install_account_cache(db: Database) -> None:
    """Let every session of this database share one code -> id map of ledger accounts. Accounts are never
    deleted or renumbered, so an id read from a committed row stays right for the life of the process."""
    db.session_info[_ACCOUNT_IDS] = {}


async def _account_ids(session: AsyncSession, codes: set[str]) -> dict[str, int]:
    """Ids of these accounts, creating the missing ones: one query at most, none once they are known."""
    cache: dict[str, int] | None = session.info.get(_ACCOUNT_IDS)
    ids = {code: cache[code] for code in codes if cache is not None and code in cache}
    if len(ids) == len(codes):
        return ids
    found = dict((await session.execute(
        select(LedgerAccount.code, LedgerAccount.id).where(LedgerAccount.code.in_(codes - ids.keys())))).all())
    created_here = session.info.get(_CREATED_HERE, set())
    if cache is not None:
        # Not an account this transaction created itself: it could still roll back and take the row along.
        cache.update({code: id_ for code, id_ in found.items() if code not in created_here})
    ids.update(found)
    for code in sorted(codes - ids.keys()):
        ids[code] = (await get_account(session, code)).id
    return ids


async def posting_by_reference(session: AsyncSession, reference: str) -> LedgerPosting | None:
    return await session.scalar(select(LedgerPosting).where(LedgerPosting.reference == reference))


def _check_balanced(lines: Sequence[Line], reference: str) -> None:
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if not isinstance(line.amount_cents, int) or isinstance(line.amount_cents, bool):
            raise UnbalancedPosting(f"posting {reference}: amount {line.amount_cents!r} is not integer cents")
        totals[line.currency] += line.amount_cents
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise UnbalancedPosting(f"posting {reference} does not balance: {unbalanced}")


async def post(
    session: AsyncSession,
    *,
    reference: str,
    kind: str,
    lines: Iterable[Line],
    order_id: int | None = None,
    supplier_id: int | None = None,
    payment_no: str | None = None,
    refund_no: str | None = None,
    attempt_key: str | None = None,
    memo: str = "",
    actor: str = "system",
    now: dt.datetime | None = None,
    new: bool = False,
) -> tuple[LedgerPosting | None, bool]:
    """Write one balanced posting. Returns (posting, created); a known reference returns its posting,
    created False. Lines of zero are dropped, lines of one account merged; nothing left posts nothing
    (None, False). Raises UnbalancedPosting, writing nothing, if the lines do not sum to zero per currency.
    `new`: the reference names something made in this very transaction (e.g. an order just placed), so it
    cannot be on record: it is not looked up (the unique reference would still refuse a repeat), and the
    entries are written in one statement."""
    lines = list(lines)
    _check_balanced(lines, reference)
    existing = None if new else await posting_by_reference(session, reference)
    if existing is not None:
        return existing, False
    merged = _merged(lines)
    if not merged:
        return None, False
    now = now or utcnow()
    posting = LedgerPosting(
        reference=reference[:160], kind=kind, order_id=order_id, supplier_id=supplier_id, payment_no=payment_no,
        refund_no=refund_no, attempt_key=attempt_key, memo=memo[:500], actor=actor[:64], created_at=now,
    )
    session.add(posting)
    await session.flush()
    ids = await _account_ids(session, {code for code, _ in merged})
    if new:
        await session.execute(insert(LedgerEntry), [
            {"posting_id": posting.id, "account_id": ids[code], "amount_cents": amount, "currency": currency}
            for (code, currency), amount in merged.items()])
        return posting, True
    for (code, currency), amount in merged.items():
        session.add(LedgerEntry(posting_id=posting.id, account_id=ids[code], amount_cents=amount, currency=currency))
    await session.flush()
    return posting, True


@functools.cache
def posting_ctes(lines: int) -> tuple[Any, ...]:
    """A new posting of `lines` entries as two data-modifying CTEs (the posting, its entries), built once per
    number of lines, for a caller's statement of its own (PostgreSQL); `new_posting_params` gives the values."""
    if not lines:
        return ()
    table, entries = LedgerPosting.__table__, LedgerEntry.__table__
    names = ("reference", "kind", "order_id", "memo", "actor", "created_at")
    posting = (insert(table).from_select(list(names), select(*(
        bindparam(f"posting_{name}", type_=table.c[name].type).label(name) for name in names)))
        .returning(table.c.id).cte("posting"))
    rows = union_all(*(select(*(bindparam(f"line{n}_{name}", type_=entries.c[name].type).label(name)
                                for name in ("account_id", "amount_cents", "currency")))
                       for n in range(lines))).subquery("lines")
    written = (insert(entries).from_select(["posting_id", "account_id", "amount_cents", "currency"],
                                           select(posting.c.id, rows.c.account_id, rows.c.amount_cents,
                                                  rows.c.currency).select_from(posting).join(rows, true()))
               .returning(entries.c.id).cte("entries"))
    return posting, written


def order_posting_ctes(lines: int, name: str, *, reference: Any, order_id: Any, memo: Any,
                       source: Any) -> tuple[Any, ...]:
    """`posting_ctes` for a statement that places the order it posts for (orders.one_statement's takes): the
    reference, order id and memo are SQL expressions of the new order's id, the posting is written once per row of
    `source` (one row: posted; none: nothing), and its CTEs and bind parameters are prefixed with `name`
    (`new_posting_lines` gives the values)."""
    if not lines:
        return ()
    table, entries = LedgerPosting.__table__, LedgerEntry.__table__
    values = [reference.label("reference"), bindparam(f"{name}posting_kind", type_=table.c.kind.type).label("kind"),
              order_id.label("order_id"), memo.label("memo"),
              bindparam(f"{name}posting_actor", type_=table.c.actor.type).label("actor"),
              bindparam(f"{name}posting_created_at", type_=table.c.created_at.type).label("created_at")]
    posting = (insert(table).from_select(["reference", "kind", "order_id", "memo", "actor", "created_at"],
                                         select(*values).select_from(source))
               .returning(table.c.id).cte(f"{name}posting"))
    rows = union_all(*(select(*(bindparam(f"{name}line{n}_{column}", type_=entries.c[column].type).label(column)
                                for column in ("account_id", "amount_cents", "currency")))
                       for n in range(lines))).subquery(f"{name}lines")
    written = (insert(entries).from_select(["posting_id", "account_id", "amount_cents", "currency"],
                                           select(posting.c.id, rows.c.account_id, rows.c.amount_cents,
                                                  rows.c.currency).select_from(posting).join(rows, true()))
               .returning(entries.c.id).cte(f"{name}entries"))
    return posting, written


async def new_posting_lines(session: AsyncSession, *, reference: str, kind: str, lines: Iterable[Line],
                            actor: str = "system", now: dt.datetime) -> tuple[int, dict[str, Any]]:
    """The values of `order_posting_ctes(n, ...)` (names without its prefix): (n, values). The rules of `post`:
    refuses an unbalanced posting before anything is written (UnbalancedPosting; `reference` names it), drops zero
    lines, merges lines of one account; nothing left: n = 0 (nothing to write)."""
    lines = list(lines)
    _check_balanced(lines, reference)
    merged = _merged(lines)
    if not merged:
        return 0, {}
    ids = await _account_ids(session, {code for code, _ in merged})
    params: dict[str, Any] = {"posting_kind": kind, "posting_actor": actor[:64], "posting_created_at": now}
    for n, ((code, currency), amount) in enumerate(merged.items()):
        params |= {f"line{n}_account_id": ids[code], f"line{n}_amount_cents": amount, f"line{n}_currency": currency}
    return len(merged), params


_STEP_POSTING = insert(LedgerPosting.__table__).returning(LedgerPosting.__table__.c.id)
_STEP_ENTRIES = insert(LedgerEntry.__table__)


async def new_posting_steps(session: AsyncSession, *, reference: str | sqlite_trip.Returned, kind: str,
                            lines: Iterable[Line], order_id: int | sqlite_trip.Returned | None = None,
                            memo: str | sqlite_trip.Returned = "", actor: str = "system", now: dt.datetime,
                            at: int) -> list[sqlite_trip.Step]:
    """`post(..., new=True)` as steps of a caller's trip on SQLite (quanyi.sqlite_trip), the posting being step
    number `at` of that trip: the same rules (refuses an unbalanced posting before anything is written, drops zero
    lines, merges lines of one account; nothing left: no step). The reference, the memo and the order's id may be
    made of what an earlier step returned (`sqlite_trip.Returned`: the new order's id)."""
    lines = list(lines)
    _check_balanced(lines, reference)
    merged = _merged(lines)
    if not merged:
        return []
    ids = await _account_ids(session, {code for code, _ in merged})
    entries = [{"posting_id": sqlite_trip.Returned(at), "account_id": ids[code], "amount_cents": amount,
                "currency": currency} for (code, currency), amount in merged.items()]
    return [sqlite_trip.Step(_STEP_POSTING, {"reference": _cut(reference, 160), "kind": kind, "order_id": order_id,
                                             "memo": _cut(memo, 500), "actor": actor[:64], "created_at": now}),
            sqlite_trip.Step(_STEP_ENTRIES, entries if len(entries) > 1 else entries[0])]


def _cut(text: str | sqlite_trip.Returned, length: int) -> str | sqlite_trip.Returned:
    return text if isinstance(text, sqlite_trip.Returned) else text[:length]  # a Returned: short prefix + an id


async def new_posting_params(session: AsyncSession, *, reference: str, kind: str, lines: Iterable[Line],
                             order_id: int | None = None, memo: str = "", actor: str = "system",
                             now: dt.datetime) -> tuple[int, dict[str, Any]]:
    """`post(..., new=True)` written by `posting_ctes(n)` in the caller's statement: (n, its values). The same
    rules: refuses an unbalanced posting before anything is written (UnbalancedPosting), drops zero lines, merges
    lines of one account; nothing left: n = 0 (nothing to write)."""
    lines = list(lines)
    _check_balanced(lines, reference)
    merged = _merged(lines)
    if not merged:
        return 0, {}
    ids = await _account_ids(session, {code for code, _ in merged})
    params: dict[str, Any] = {"posting_reference": reference[:160], "posting_kind": kind,
                              "posting_order_id": order_id, "posting_memo": memo[:500], "posting_actor": actor[:64],
                              "posting_created_at": now}
    for n, ((code, currency), amount) in enumerate(merged.items()):
        params |= {f"line{n}_account_id": ids[code], f"line{n}_amount_cents": amount, f"line{n}_currency": currency}
    return len(merged), params


def _merged(lines: Iterable[Line]) -> dict[tuple[str, str], int]:
    merged: dict[tuple[str, str], int] = defaultdict(int)
    for line in lines:
        merged[(line.account, line.currency)] += line.amount_cents
    return {key: amount for key, amount in merged.items() if amount != 0}


async def existing_references(session: AsyncSession, references: Iterable[str]) -> set[str]:
    wanted = {reference[:160] for reference in references}
    if not wanted:
        return set()
    found = await session.scalars(select(LedgerPosting.reference).where(LedgerPosting.reference.in_(wanted)))
    return set(found.all())


_INSERT_POSTINGS = insert(LedgerPosting.__table__).returning(LedgerPosting.__table__.c.id,
                                                              LedgerPosting.__table__.c.reference)
# RETURNING (ids unread) for the same reason: SQLAlchemy then sends all the batch's entries as one multi-row INSERT
# (insertmanyvalues); without it asyncpg's executemany ran the statement once per entry (4 executions a purchase).
_INSERT_ENTRIES = insert(LedgerEntry.__table__).returning(LedgerEntry.__table__.c.id)


async def post_many(session: AsyncSession, drafts: Sequence[Draft], *, now: dt.datetime | None = None) -> int:
    """`post` for many postings in three statements (known references, postings, entries): the ledger
    worker's batch. The same rules: each must balance (checked before anything is written), a known reference
    posts nothing, zero lines are dropped. Returns how many postings were written."""
    for draft in drafts:
        _check_balanced(draft.lines, draft.reference)
    known = await existing_references(session, (draft.reference for draft in drafts))
    now = now or utcnow()
    rows, entries = [], []
    for draft in drafts:
        merged = _merged(draft.lines)
        if not merged or draft.reference[:160] in known:
            continue
        known.add(draft.reference[:160])
        rows.append({"reference": draft.reference[:160], "kind": draft.kind, "order_id": draft.order_id,
                     "payment_no": draft.payment_no, "memo": draft.memo[:500], "actor": "system", "created_at": now})
        entries.append(merged)
    if not rows:
        return 0
    # RETURNING the reference (unique) rather than ids in parameter order: ordered RETURNING has no sentinel column
    # here and made SQLAlchemy send one INSERT per posting; unordered, all of them go in one statement.
    inserted = (await session.execute(_INSERT_POSTINGS, rows)).all()
    by_reference = {reference: posting_id for posting_id, reference in inserted}
    ids = [by_reference[row["reference"]] for row in rows]
    accounts_ = await _account_ids(session, {code for merged in entries for code, _ in merged})
    await session.execute(_INSERT_ENTRIES, [
        {"posting_id": posting_id, "account_id": accounts_[code], "amount_cents": amount, "currency": currency}
        for posting_id, merged in zip(ids, entries, strict=True) for (code, currency), amount in merged.items()])
    return len(rows)


async def account_balances(
    session: AsyncSession, *, prefix: str | None = None, until: dt.datetime | None = None
) -> dict[tuple[str, str], int]:
    """Balance (debits minus credits) of every account per currency, optionally only postings before `until`."""
    stmt = (
        select(LedgerAccount.code, LedgerEntry.currency, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.code, LedgerEntry.currency)
    )
    if prefix is not None:
        stmt = stmt.where(LedgerAccount.code.startswith(prefix, autoescape=True))
    if until is not None:
        stmt = stmt.join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id).where(
            LedgerPosting.created_at < until)
    return {(code, currency): int(total) for code, currency, total in (await session.execute(stmt)).all()}


async def order_account_sums(session: AsyncSession, order_id: int) -> dict[str, int]:
    """What this order's postings did to each account (debits minus credits)."""
    rows = await session.execute(
        select(LedgerAccount.code, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
        .where(LedgerPosting.order_id == order_id)
        .group_by(LedgerAccount.code)
    )
    return {code: int(total) for code, total in rows.all() if int(total) != 0}


async def orders_account_sums(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """`order_account_sums` of many orders in one query."""
    sums: dict[int, dict[str, int]] = {order_id: {} for order_id in order_ids}
    if not order_ids:
        return sums
    rows = await session.execute(
        select(LedgerPosting.order_id, LedgerAccount.code, func.sum(LedgerEntry.amount_cents))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
        .where(LedgerPosting.order_id.in_(order_ids))
        .group_by(LedgerPosting.order_id, LedgerAccount.code)
    )
    for order_id, code, total in rows.all():
        if int(total) != 0:
            sums[order_id][code] = int(total)
    return sums
