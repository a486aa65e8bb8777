"""Reading the books: account balances, the trial balance (试算平衡), an account's statement (明细账), an order's
postings, profit-sharing rules."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput, NotFound
from quanyi.ledger.accounts import customer_prepaid
from quanyi.ledger.customer_accounts import customer_balance_drift, get_customer_account
from quanyi.ledger.models import CustomerAccount, LedgerAccount, LedgerEntry, LedgerPosting, ProfitShareRule
from quanyi.ledger.postings import account_balances
from quanyi.suppliers.models import Supplier

__all__ = [
    "AccountBalance", "TrialBalance", "PostingView", "InvalidShareRule", "ShareRuleNotFound", "trial_balance",
    "order_postings", "set_share_rule", "list_share_rules", "delete_share_rule", "prepaid_drift",
    "UnknownAccount", "AccountLine", "AccountStatement", "account_statement", "customer_account_statement",
    "account_owners",
]

# Merchant and distributor codes become part of account codes.
_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass(frozen=True, slots=True)
class AccountBalance:
    code: str
    kind: str
    name: str
    currency: str
    balance_cents: int  # debits minus credits


@dataclass(frozen=True, slots=True)
class TrialBalance:
    accounts: list[AccountBalance]
    totals: dict[str, int]  # per currency: must be 0
    postings: int

    @property
    def balanced(self) -> bool:
        return all(total == 0 for total in self.totals.values())


@dataclass(frozen=True, slots=True)
class PostingView:
    reference: str
    kind: str
    created_at: dt.datetime
    memo: str
    entries: list[tuple[str, int, str]] = field(default_factory=list)  # (account, amount, currency)


async def trial_balance(*, session: AsyncSession) -> TrialBalance:
    """Every account's balance and the total per currency over all accounts (zero when the books balance)."""
    balances = await account_balances(session)
    meta = {code: (kind, name) for code, kind, name in (await session.execute(
        select(LedgerAccount.code, LedgerAccount.kind, LedgerAccount.name))).all()}
    totals: dict[str, int] = defaultdict(int)
    rows = []
    for (code, currency), balance in sorted(balances.items()):
        totals[currency] += balance
        kind, name = meta.get(code, ("", code))
        rows.append(AccountBalance(code=code, kind=kind, name=name, currency=currency, balance_cents=balance))
    count = int(await session.scalar(select(func.count()).select_from(LedgerPosting)) or 0)
    return TrialBalance(accounts=rows, totals=dict(totals), postings=count)


class UnknownAccount(NotFound):
    code = "ledger_account_not_found"


@dataclass(frozen=True, slots=True)
class AccountLine:
    at: dt.datetime
    reference: str
    kind: str
    memo: str
    order_id: int | None
    amount_cents: int  # debit positive, credit negative
    balance_after_cents: int


@dataclass(frozen=True, slots=True)
class AccountStatement:
    code: str
    kind: str
    name: str
    currency: str
    currencies: list[str]  # every currency the account has entries in
    start: dt.datetime
    end: dt.datetime  # exclusive
    opening_cents: int
    debits_cents: int
    credits_cents: int  # a positive figure
    closing_cents: int
    lines: list[AccountLine]
    truncated: bool  # more lines than the limit: the first `limit` are listed, the totals cover all


async def account_statement(*, session: AsyncSession, code: str, start: dt.datetime, end: dt.datetime,
                            currency: str | None = None, limit: int = 1000) -> AccountStatement:
    """One account's movements in [start, end) in one currency (its first, unless named), oldest first, with the
    opening balance, the running balance after each posting, and the closing balance (debits minus credits)."""
    account = await session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    if account is None:
        raise UnknownAccount(f"the ledger has no account {code!r}")
    currencies = sorted(c for c in (await session.scalars(select(LedgerEntry.currency).where(
        LedgerEntry.account_id == account.id).distinct())).all())
    chosen = currency if currency in currencies else (currencies[0] if currencies else "CNY")
    mine = (LedgerEntry.account_id == account.id, LedgerEntry.currency == chosen)

    async def total(*where: Any) -> int:
        return int(await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
                                        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
                                        .where(*mine, *where)) or 0)

    opening = await total(LedgerPosting.created_at < start)
    in_period = (LedgerPosting.created_at >= start, LedgerPosting.created_at < end)
    debits = await total(*in_period, LedgerEntry.amount_cents > 0)
    credits = -await total(*in_period, LedgerEntry.amount_cents < 0)
    rows = (await session.execute(
        select(LedgerPosting.created_at, LedgerPosting.reference, LedgerPosting.kind, LedgerPosting.memo,
               LedgerPosting.order_id, func.sum(LedgerEntry.amount_cents))
        .join(LedgerPosting, LedgerPosting.id == LedgerEntry.posting_id)
        .where(*mine, *in_period)
        .group_by(LedgerPosting.id, LedgerPosting.created_at, LedgerPosting.reference, LedgerPosting.kind,
                  LedgerPosting.memo, LedgerPosting.order_id)
        .order_by(LedgerPosting.created_at, LedgerPosting.id).limit(limit + 1))).all()
    lines, running = [], opening
    for at, reference, kind, memo, order_id, amount in rows[:limit]:
        running += int(amount)
        lines.append(AccountLine(at=at, reference=reference, kind=kind, memo=memo, order_id=order_id,
                                 amount_cents=int(amount), balance_after_cents=running))
    return AccountStatement(code=account.code, kind=account.kind, name=account.name, currency=chosen,
                            currencies=currencies, start=start, end=end, opening_cents=opening, debits_cents=debits,
                            credits_cents=credits, closing_cents=opening + debits - credits, lines=lines,
                            truncated=len(rows) > limit)


async def customer_account_statement(*, session: AsyncSession, account_id: int, start: dt.datetime,
                                     end: dt.datetime, limit: int = 1000) -> AccountStatement:
    """A customer prepaid account's statement in its currency (the ledger account `customer_prepaid:<id>`, a
    liability: a top-up is a credit, so money in shows as negative amounts)."""
    account = await get_customer_account(session=session, account_id=account_id)
    try:
        return await account_statement(session=session, code=customer_prepaid(account_id), start=start, end=end,
                                       currency=account.currency, limit=limit)
    except UnknownAccount:  # the ledger opens the account at its first posting: nothing happened yet
        return AccountStatement(code=customer_prepaid(account_id), kind="liability", name=account.name,
                                currency=account.currency, currencies=[], start=start, end=end, opening_cents=0,
                                debits_cents=0, credits_cents=0, closing_cents=0, lines=[], truncated=False)


async def order_postings(*, session: AsyncSession, order_id: int) -> list[PostingView]:
    """Every posting of one order with its entries, oldest first."""
    postings = (await session.scalars(select(LedgerPosting).where(LedgerPosting.order_id == order_id)
                                      .order_by(LedgerPosting.id))).all()
    if not postings:
        return []
    entries: dict[int, list[tuple[str, int, str]]] = defaultdict(list)
    for posting_id, code, amount, currency in (await session.execute(
            select(LedgerEntry.posting_id, LedgerAccount.code, LedgerEntry.amount_cents, LedgerEntry.currency)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.posting_id.in_([p.id for p in postings])).order_by(LedgerEntry.id))).all():
        entries[posting_id].append((code, int(amount), currency))
    return [PostingView(reference=p.reference, kind=p.kind, created_at=p.created_at, memo=p.memo,
                        entries=entries[p.id]) for p in postings]


async def account_owners(*, session: AsyncSession, codes: list[str]) -> dict[str, str]:
    """Whose account each per-supplier or per-customer account code is, by name (its key is only an id):
    `supplier_prepaid:3` -> the supplier's name, `customer_prepaid:7` -> the customer account's."""
    ids: dict[str, dict[int, list[str]]] = {"supplier": defaultdict(list), "customer": defaultdict(list)}
    for code in codes:
        family, _, key = code.partition(":")
        owner = {"supplier_prepaid": "supplier", "supplier_payable": "supplier",
                 "customer_prepaid": "customer"}.get(family)
        if owner and key.isascii() and key.isdigit():
            ids[owner][int(key)].append(code)
    owners: dict[str, str] = {}
    for model, found in ((Supplier, ids["supplier"]), (CustomerAccount, ids["customer"])):
        if found:
            for row_id, name in (await session.execute(
                    select(model.id, model.name).where(model.id.in_(list(found))))).all():
                owners.update({code: name for code in found[row_id]})
    return owners


async def prepaid_drift(*, session: AsyncSession) -> dict[str, int]:
    """Suppliers whose balance_cents differs from their prepaid account in the ledger (changed without a
    top-up, e.g. an opening balance typed in), by supplier code: balance minus ledger; and customer accounts
    (codes `reseller:...`, `enterprise:...`) whose balance differs from theirs."""
    ledger = await account_balances(session, prefix="supplier_prepaid:")
    by_id: dict[int, int] = defaultdict(int)
    for (code, _currency), total in ledger.items():
        by_id[int(code.partition(":")[2])] += total
    drift = {}
    for supplier_id, code, balance in (await session.execute(
            select(Supplier.id, Supplier.code, Supplier.balance_cents))).all():
        if balance != by_id.get(supplier_id, 0):
            drift[code] = int(balance) - by_id.get(supplier_id, 0)
    drift.update(await customer_balance_drift(session=session))
    return drift


# ---------------------------------------------------------------- profit-sharing rules (分润规则)

class InvalidShareRule(InvalidInput):
    code = "invalid_share_rule"


class ShareRuleNotFound(NotFound):
    code = "share_rule_not_found"


async def set_share_rule(
    *, session: AsyncSession, sku_id: int | None, merchant_code: str, merchant_bps: int, distributor_bps: int,
    actor: str, distributor_l2_bps: int = 0, now: dt.datetime | None = None,
) -> ProfitShareRule:
    """Create or replace the rule of one SKU (or the default rule when sku_id is None)."""
    if min(merchant_bps, distributor_bps, distributor_l2_bps) < 0 \
            or merchant_bps + distributor_bps + distributor_l2_bps > 10_000:
        raise InvalidShareRule("shares are basis points from 0 to 10000 and together at most 10000")
    if merchant_bps and not merchant_code:
        raise InvalidShareRule("a merchant share needs a merchant code")
    if merchant_code and not _CODE.fullmatch(merchant_code):
        raise InvalidShareRule("a merchant code is 1-64 letters, digits, '.', '_' or '-'")
    if sku_id is not None:
        from quanyi.catalog.models import Sku

        if await session.get(Sku, sku_id) is None:
            raise ShareRuleNotFound(f"no SKU with id {sku_id}")
    scope = "default" if sku_id is None else f"sku:{sku_id}"
    now = now or utcnow()
    rule = await session.scalar(select(ProfitShareRule).where(ProfitShareRule.scope == scope).with_for_update())
    if rule is None:
        rule = ProfitShareRule(scope=scope, sku_id=sku_id)
        session.add(rule)
    rule.merchant_code, rule.merchant_bps, rule.distributor_bps = merchant_code, merchant_bps, distributor_bps
    rule.distributor_l2_bps = distributor_l2_bps
    rule.updated_by, rule.updated_at = actor[:64], now
    await session.flush()
    return rule


async def list_share_rules(*, session: AsyncSession) -> list[ProfitShareRule]:
    return list((await session.scalars(select(ProfitShareRule).order_by(ProfitShareRule.id))).all())


async def delete_share_rule(*, session: AsyncSession, sku_id: int | None) -> None:
    scope = "default" if sku_id is None else f"sku:{sku_id}"
    rule = await session.scalar(select(ProfitShareRule).where(ProfitShareRule.scope == scope))
    if rule is None:
        raise ShareRuleNotFound(f"no profit-sharing rule for {scope}")
    await session.delete(rule)
