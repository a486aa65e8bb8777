"""The margin-floor price policy (毛利保护): when a supplier's cost rises so that selling a SKU at its price
would leave less than the configured margin, either raise the price (reprice) or take the SKU off sale
(off_sale); when the cost falls back, undo what the policy did, never what an operator did.

The cost compared is the cheapest usable supplier's (enabled mapping, active supplier, product available
with stock, same currency), because that is what routing would pay. Local card keys bought earlier are
not costed here (their purchase price is not recorded): a SKU with a policy is judged by its suppliers
alone. Every automatic change is written to `suppliers_price_change`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Sku
from quanyi.catalog.schemas import SkuUpdate
from quanyi.db import utcnow
from quanyi.errors import NotFound
from quanyi.money import format_money
from quanyi.scope import PLATFORM, Scope
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus
from quanyi.suppliers.schemas import PricePolicySet
from quanyi.suppliers.sync_models import PriceChangeAction, PricePolicy, SkuPriceChange, SkuPricePolicy

__all__ = ["PricePolicyNotSet", "require_price_policy",
           "SupplierCost", "cheapest_usable_cost", "minimum_price", "meets_floor", "set_price_policy",
           "get_price_policy", "delete_price_policy", "apply_price_policies", "list_price_changes"]

_BPS = 10_000


@dataclass(frozen=True)
class SupplierCost:
    cost_cents: int
    supplier_product_id: int
    label: str  # SUPPLIER/product_code, for the audit reason


async def cheapest_usable_cost(*, session: AsyncSession, sku: Sku) -> SupplierCost | None:
    """What routing would pay per unit right now, or None when no supplier can fill the SKU."""
    row = (await session.execute(
        select(SupplierProduct.cost_cents, SupplierProduct.id, Supplier.code, SupplierProduct.product_code)
        .join(SkuSupplierMapping, SkuSupplierMapping.supplier_product_id == SupplierProduct.id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(SkuSupplierMapping.sku_id == sku.id, SkuSupplierMapping.enabled.is_(True),
               SupplierProduct.available.is_(True), Supplier.status == SupplierStatus.ACTIVE,
               SupplierProduct.currency == sku.currency,
               (SupplierProduct.stock.is_(None)) | (SupplierProduct.stock >= sku.min_quantity))
        .order_by(SupplierProduct.cost_cents, SkuSupplierMapping.priority, SupplierProduct.id)
        .limit(1)
    )).first()
    if row is None:
        return None
    return SupplierCost(cost_cents=row[0], supplier_product_id=row[1], label=f"{row[2]}/{row[3]}")


def meets_floor(price_cents: int, cost_cents: int, policy: SkuPricePolicy) -> bool:
    """price - cost >= floor cents, and >= floor bps of the price (exact integer arithmetic)."""
    margin = price_cents - cost_cents
    return margin >= policy.margin_floor_cents and margin * _BPS >= price_cents * policy.margin_floor_bps


def minimum_price(cost_cents: int, policy: SkuPricePolicy) -> int:
    """The lowest price that keeps the floor, plus the reprice markup (cents and bps of cost)."""
    by_cents = cost_cents + policy.margin_floor_cents
    by_bps = -(-cost_cents * _BPS // (_BPS - policy.margin_floor_bps))  # ceil(cost / (1 - bps))
    markup = max(cost_cents + policy.markup_cents, -(-cost_cents * (_BPS + policy.markup_bps) // _BPS))
    return max(by_cents, by_bps, markup)


class PricePolicyNotSet(NotFound):
    code = "price_policy_not_set"


async def get_price_policy(*, session: AsyncSession, sku_id: int) -> SkuPricePolicy | None:
    return await session.get(SkuPricePolicy, sku_id)


async def require_price_policy(*, session: AsyncSession, sku_id: int, scope: Scope = PLATFORM) -> SkuPricePolicy:
    await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)  # another merchant's: not found
    policy = await session.get(SkuPricePolicy, sku_id)
    if policy is None:
        raise PricePolicyNotSet(f"SKU {sku_id} has no price policy")
    return policy


async def set_price_policy(*, session: AsyncSession, sku_id: int, data: PricePolicySet,
                           now: dt.datetime | None = None,
                           scope: Scope = PLATFORM) -> tuple[SkuPricePolicy, list[SkuPriceChange]]:
    """Create or replace a SKU's policy and apply it at once to the current supplier costs."""
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id, scope=scope)
    policy = await session.get(SkuPricePolicy, sku.id)
    if policy is None:
        policy = SkuPricePolicy(sku_id=sku.id, off_sale_by_policy=False)
        session.add(policy)
    for field, value in data.model_dump().items():
        setattr(policy, field, value)
    policy.updated_at = utcnow()
    await session.flush()
    changes = await apply_price_policies(session=session, sku_ids=[sku.id], now=now)
    return policy, changes


async def delete_price_policy(*, session: AsyncSession, sku_id: int) -> None:
    """Stop guarding a SKU. Whatever the policy changed stays as it is (the operator decides)."""
    policy = await session.get(SkuPricePolicy, sku_id)
    if policy is not None:
        await session.delete(policy)
        await session.flush()


async def list_price_changes(*, session: AsyncSession, sku_id: int | None = None, limit: int = 200,
                             scope: Scope = PLATFORM) -> Sequence[SkuPriceChange]:
    stmt = select(SkuPriceChange).order_by(SkuPriceChange.id.desc()).limit(limit)
    if not scope.is_platform:
        stmt = stmt.join(Sku, Sku.id == SkuPriceChange.sku_id).where(scope.where(Sku.merchant_id))
    if sku_id is not None:
        stmt = stmt.where(SkuPriceChange.sku_id == sku_id)
    return (await session.scalars(stmt)).all()


async def apply_price_policies(*, session: AsyncSession, sku_ids: Sequence[int] | None = None,
                               now: dt.datetime | None = None) -> list[SkuPriceChange]:
    """Hold every policy (or those of `sku_ids`) against current supplier costs; returns the changes made."""
    now = now or utcnow()
    stmt = select(SkuPricePolicy.sku_id).order_by(SkuPricePolicy.sku_id)
    if sku_ids is not None:
        if not sku_ids:
            return []
        stmt = stmt.where(SkuPricePolicy.sku_id.in_(sorted(set(sku_ids))))
    changes: list[SkuPriceChange] = []
    for sku_id in (await session.scalars(stmt)).all():
        changes.extend(await _apply_one(session, sku_id, now))
    return changes


async def _apply_one(session: AsyncSession, sku_id: int, now: dt.datetime) -> list[SkuPriceChange]:
    # Lock the SKU row, then the policy: an operator's concurrent price edit is not lost, and two
    # syncs judging the same SKU take turns.
    await session.execute(select(Sku.id).where(Sku.id == sku_id).with_for_update())
    policy = await session.scalar(select(SkuPricePolicy).where(SkuPricePolicy.sku_id == sku_id)
                                  .with_for_update().execution_options(populate_existing=True))
    if policy is None:
        return []
    sku = await catalog_service.get_sku(session=session, sku_id=sku_id)
    # An operator acted since the policy did: their decision stands, the policy forgets its own.
    if policy.auto_price_cents is not None and sku.price_cents != policy.auto_price_cents:
        policy.base_price_cents = policy.auto_price_cents = None
    if policy.off_sale_by_policy and sku.on_sale:
        policy.off_sale_by_policy, policy.off_sale_reason = False, None
    if not sku.on_sale and not policy.off_sale_by_policy:
        return []  # taken off sale by an operator: not ours to touch
    cost = await cheapest_usable_cost(session=session, sku=sku)
    if cost is None:
        return []  # nobody can fill it: the storefront shows it sold out; keep prices as they are
    log = _Log(session, sku, cost, now)
    if policy.policy is PricePolicy.OFF_SALE:
        await _off_sale_policy(session, sku, policy, cost, log)
    else:
        await _reprice_policy(session, sku, policy, cost, log)
    policy.updated_at = now
    await session.flush()
    return log.entries


class _Log:
    def __init__(self, session: AsyncSession, sku: Sku, cost: SupplierCost, now: dt.datetime) -> None:
        self.session, self.sku, self.cost, self.now = session, sku, cost, now
        self.entries: list[SkuPriceChange] = []

    def add(self, action: PriceChangeAction, old: int, new: int, reason: str) -> None:
        entry = SkuPriceChange(sku_id=self.sku.id, action=action, old_price_cents=old, new_price_cents=new,
                               supplier_cost_cents=self.cost.cost_cents,
                               supplier_product_id=self.cost.supplier_product_id, reason=reason[:500],
                               created_at=self.now)
        self.session.add(entry)
        self.entries.append(entry)

    def money(self, cents: int) -> str:
        return format_money(cents, self.sku.currency)


def _floor_text(policy: SkuPricePolicy) -> str:
    parts = [f"{policy.margin_floor_cents} cents"] if policy.margin_floor_cents else []
    if policy.margin_floor_bps:
        parts.append(f"{policy.margin_floor_bps / 100:g}% of price")
    return " and ".join(parts) or "zero (never below cost)"


async def _set_on_sale(session: AsyncSession, sku: Sku, on_sale: bool) -> None:
    await catalog_service.update_sku(session=session, sku_id=sku.id, data=SkuUpdate(on_sale=on_sale))


async def _take_off_sale(session: AsyncSession, sku: Sku, policy: SkuPricePolicy, log: _Log, why: str) -> None:
    if not sku.on_sale:
        policy.off_sale_reason = why[:500]
        return
    await _set_on_sale(session, sku, False)
    policy.off_sale_by_policy, policy.off_sale_reason = True, why[:500]
    log.add(PriceChangeAction.TAKEN_OFF_SALE, sku.price_cents, sku.price_cents, why)


async def _back_on_sale(session: AsyncSession, sku: Sku, policy: SkuPricePolicy, log: _Log) -> None:
    await _set_on_sale(session, sku, True)
    policy.off_sale_by_policy, policy.off_sale_reason = False, None
    log.add(PriceChangeAction.BACK_ON_SALE, sku.price_cents, sku.price_cents,
            f"supplier cost {log.money(log.cost.cost_cents)} ({log.cost.label}) keeps the margin floor "
            f"({_floor_text(policy)}) at {log.money(sku.price_cents)} again")


async def _off_sale_policy(session: AsyncSession, sku: Sku, policy: SkuPricePolicy, cost: SupplierCost,
                           log: _Log) -> None:
    fits = meets_floor(sku.price_cents, cost.cost_cents, policy)
    if not fits:
        await _take_off_sale(session, sku, policy, log,
                             f"supplier cost {log.money(cost.cost_cents)} ({cost.label}) leaves less than the "
                             f"margin floor ({_floor_text(policy)}) at price {log.money(sku.price_cents)}")
    elif policy.off_sale_by_policy:
        await _back_on_sale(session, sku, policy, log)


async def _reprice_policy(session: AsyncSession, sku: Sku, policy: SkuPricePolicy, cost: SupplierCost,
                          log: _Log) -> None:
    target = minimum_price(cost.cost_cents, policy)
    if not meets_floor(sku.price_cents, cost.cost_cents, policy):
        if policy.max_price_cents is not None and target > policy.max_price_cents:
            await _take_off_sale(session, sku, policy, log,
                                 f"supplier cost {log.money(cost.cost_cents)} ({cost.label}) would need price "
                                 f"{log.money(target)}, above the ceiling {log.money(policy.max_price_cents)}")
            return
        old = sku.price_cents
        if policy.base_price_cents is None:
            policy.base_price_cents = old
        await catalog_service.update_sku(session=session, sku_id=sku.id, data=SkuUpdate(price_cents=target))
        policy.auto_price_cents = target
        log.add(PriceChangeAction.REPRICED, old, target,
                f"supplier cost {log.money(cost.cost_cents)} ({cost.label}) rose: price {log.money(old)} → "
                f"{log.money(target)} keeps the margin floor ({_floor_text(policy)})")
        if policy.off_sale_by_policy:
            await _back_on_sale(session, sku, policy, log)
        return
    if policy.off_sale_by_policy:
        await _back_on_sale(session, sku, policy, log)
    # The cost fell: bring a price the policy raised back towards the operator's price.
    if policy.base_price_cents is not None and policy.auto_price_cents == sku.price_cents:
        lowered = max(policy.base_price_cents, target)
        if lowered < sku.price_cents:
            old = sku.price_cents
            await catalog_service.update_sku(session=session, sku_id=sku.id, data=SkuUpdate(price_cents=lowered))
            back_to_base = lowered == policy.base_price_cents
            log.add(PriceChangeAction.PRICE_RESTORED, old, lowered,
                    f"supplier cost fell to {log.money(cost.cost_cents)} ({cost.label}): price {log.money(old)} → "
                    f"{log.money(lowered)}" + (" (the operator's price)" if back_to_base else ""))
            if back_to_base:
                policy.base_price_cents = policy.auto_price_cents = None
            else:
                policy.auto_price_cents = lowered
