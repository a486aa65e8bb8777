"""Reading the books: account balances, the trial balance (试算平衡), an order's postings, profit-sharing rules."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput, NotFound
from quanyi.ledger.customer_accounts import customer_balance_drift
from quanyi.ledger.models import LedgerAccount, LedgerEntry, LedgerPosting, ProfitShareRule
from quanyi.ledger.postings import account_balances
from quanyi.suppliers.models import Supplier

__all__ = [
    "AccountBalance", "TrialBalance", "PostingView", "InvalidShareRule", "ShareRuleNotFound", "trial_balance",
    "order_postings", "set_share_rule", "list_share_rules", "delete_share_rule", "prepaid_drift",
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
    actor: str, now: dt.datetime | None = None,
) -> ProfitShareRule:
    """Create or replace the rule of one SKU (or the default rule when sku_id is None)."""
    if min(merchant_bps, distributor_bps) < 0 or merchant_bps + distributor_bps > 10_000:
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
