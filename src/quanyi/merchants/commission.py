"""Platform commission (平台佣金): a merchant's rate in basis points, overridden per category (类目佣金).

The ledger asks `order_terms_many` once per batch of delivered orders of merchants (never for the platform's own
store, so a single-shop install pays no query for it) and books the split in the delivery posting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog.models import Category, Product
from quanyi.db import utcnow
from quanyi.errors import NotFound
from quanyi.merchants.models import CommissionRule, Merchant

__all__ = ["OrderTerms", "CommissionRuleNotFound", "order_terms", "order_terms_many", "set_commission_rule",
           "delete_commission_rule", "list_commission_rules"]


class CommissionRuleNotFound(NotFound):
    code = "commission_rule_not_found"


@dataclass(frozen=True, slots=True)
class OrderTerms:
    merchant_code: str
    self_operated: bool
    commission_bps: int


async def order_terms_many(*, session: AsyncSession,
                           pairs: set[tuple[int, int]]) -> dict[tuple[int, int], OrderTerms]:
    """Terms of merchants' orders, by (merchant id, product id): the merchant's code, and the commission of the
    product's category rule, else the merchant's own rate. One query for a whole batch; none for no pairs."""
    if not pairs:
        return {}
    rows = await session.execute(
        select(Product.id, Merchant.id, Merchant.code, Merchant.self_operated, Merchant.commission_bps,
               CommissionRule.commission_bps)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .outerjoin(CommissionRule, (CommissionRule.merchant_id == Merchant.id)
                   & (CommissionRule.category_id == Product.category_id))
        .where(Product.id.in_({product_id for _, product_id in pairs})))
    found = {(merchant_id, product_id): OrderTerms(merchant_code=code, self_operated=bool(own_store),
                                                   commission_bps=int(by_category if by_category is not None else own))
             for product_id, merchant_id, code, own_store, own, by_category in rows.all()}
    return {pair: found[pair] for pair in pairs if pair in found}


async def order_terms(*, session: AsyncSession, merchant_id: int, product_id: int) -> OrderTerms:
    """The terms of one merchant's order (see order_terms_many)."""
    return (await order_terms_many(session=session, pairs={(merchant_id, product_id)}))[(merchant_id, product_id)]


async def set_commission_rule(*, session: AsyncSession, merchant_id: int, category_id: int, commission_bps: int,
                              actor: str, now: dt.datetime | None = None) -> CommissionRule:
    """Create or change the commission of one merchant's category (applies to orders delivered from now on)."""
    if await session.get(Category, category_id) is None:
        raise NotFound(f"category {category_id} does not exist")
    rule = await session.scalar(select(CommissionRule).where(
        CommissionRule.merchant_id == merchant_id, CommissionRule.category_id == category_id).with_for_update())
    if rule is None:
        rule = CommissionRule(merchant_id=merchant_id, category_id=category_id)
        session.add(rule)
    rule.commission_bps, rule.updated_by, rule.updated_at = commission_bps, actor[:64], now or utcnow()
    await session.flush()
    return rule


async def delete_commission_rule(*, session: AsyncSession, merchant_id: int, category_id: int) -> None:
    rule = await session.scalar(select(CommissionRule).where(
        CommissionRule.merchant_id == merchant_id, CommissionRule.category_id == category_id))
    if rule is None:
        raise CommissionRuleNotFound(f"no commission rule for category {category_id}")
    await session.delete(rule)
    await session.flush()


async def list_commission_rules(*, session: AsyncSession, merchant_id: int) -> Sequence[CommissionRule]:
    return (await session.scalars(select(CommissionRule).where(CommissionRule.merchant_id == merchant_id)
                                  .order_by(CommissionRule.category_id))).all()
