"""Enterprise prices (协议价 / 阶梯价): per enterprise and SKU, tiers by the quantity of one purchase.

`unit_price` is THE price an enterprise pays: bulk purchases, campaign budgets and claims all ask it. It is the
price source of the shop's one price calculation: their orders are placed with it as the account customer's unit
price, and `quanyi.pricing.price_order` (called by `orders.create_order`) prices them as account orders (no
member price, coupons or points: those are retail promotions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Sku
from quanyi.db import utcnow
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import EnterprisePriceTier
from quanyi.errors import InvalidInput
from quanyi.money import MAX_AMOUNT_CENTS

__all__ = ["Tier", "unit_price", "tiers_of", "set_tiers", "remove_tiers", "price_list", "MAX_TIERS"]

MAX_TIERS = 20


@dataclass(frozen=True, slots=True)
class Tier:
    min_quantity: int
    unit_price_cents: int


def _pick(tiers: Sequence[Tier], quantity: int, list_price_cents: int) -> int:
    price = list_price_cents
    for tier in sorted(tiers, key=lambda t: t.min_quantity):
        if tier.min_quantity <= quantity:
            price = tier.unit_price_cents
    return price


async def tiers_of(*, session: AsyncSession, enterprise_id: int, sku_id: int) -> list[Tier]:
    rows = await session.execute(
        select(EnterprisePriceTier.min_quantity, EnterprisePriceTier.unit_price_cents)
        .where(EnterprisePriceTier.enterprise_id == enterprise_id, EnterprisePriceTier.sku_id == sku_id)
        .order_by(EnterprisePriceTier.min_quantity))
    return [Tier(int(q), int(p)) for q, p in rows.all()]


async def unit_price(*, session: AsyncSession, enterprise_id: int, sku: Sku, quantity: int) -> int:
    """What one item of `sku` costs the enterprise when it buys `quantity` in one purchase: the tier with the
    largest min_quantity not above `quantity`, else the SKU's list price."""
    if quantity < 1:
        raise InvalidInput("quantity must be at least 1")
    tiers = await tiers_of(session=session, enterprise_id=enterprise_id, sku_id=sku.id)
    return _pick(tiers, quantity, sku.price_cents)


def _check(tiers: Sequence[Tier]) -> list[Tier]:
    if not tiers:
        raise InvalidInput("give at least one tier (min_quantity 1 for a flat negotiated price)")
    if len(tiers) > MAX_TIERS:
        raise InvalidInput(f"at most {MAX_TIERS} tiers")
    ordered = sorted(tiers, key=lambda t: t.min_quantity)
    for tier in ordered:
        if not isinstance(tier.min_quantity, int) or not 1 <= tier.min_quantity <= 1_000_000:
            raise InvalidInput("min_quantity must be a whole number from 1 to 1000000")
        if not isinstance(tier.unit_price_cents, int) or not 0 < tier.unit_price_cents <= MAX_AMOUNT_CENTS:
            raise InvalidInput("unit_price_cents must be a positive whole number of cents")
    for lower, higher in zip(ordered, ordered[1:], strict=False):
        if lower.min_quantity == higher.min_quantity:
            raise InvalidInput(f"two tiers start at {lower.min_quantity}")
        # More items never cost more each: a rising tier is a typo, not a negotiation.
        if higher.unit_price_cents > lower.unit_price_cents:
            raise InvalidInput(f"the tier from {higher.min_quantity} costs more per item than the tier from "
                               f"{lower.min_quantity}; tiers must not rise with quantity")
    return ordered


async def set_tiers(*, session: AsyncSession, code: str, sku_code: str, tiers: Sequence[Tier], actor: str = "admin",
                    now: dt.datetime | None = None) -> list[Tier]:
    """Replace the enterprise's tiers of a SKU (all of them: the new list is the whole price)."""
    now = now or utcnow()
    ordered = _check(tiers)
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    await session.execute(delete(EnterprisePriceTier).where(EnterprisePriceTier.enterprise_id == enterprise.id,
                                                            EnterprisePriceTier.sku_id == sku.id))
    session.add_all([EnterprisePriceTier(enterprise_id=enterprise.id, sku_id=sku.id, min_quantity=t.min_quantity,
                                         unit_price_cents=t.unit_price_cents, updated_by=actor[:64], updated_at=now)
                     for t in ordered])
    await session.flush()
    return ordered


async def remove_tiers(*, session: AsyncSession, code: str, sku_code: str) -> None:
    """Back to the list price for this SKU."""
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    await session.execute(delete(EnterprisePriceTier).where(EnterprisePriceTier.enterprise_id == enterprise.id,
                                                            EnterprisePriceTier.sku_id == sku.id))


async def price_list(*, session: AsyncSession, code: str) -> list[tuple[Sku, list[Tier]]]:
    """Every SKU with negotiated tiers for this enterprise, with its tiers."""
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    rows = (await session.scalars(select(EnterprisePriceTier).where(
        EnterprisePriceTier.enterprise_id == enterprise.id).order_by(EnterprisePriceTier.sku_id,
                                                                      EnterprisePriceTier.min_quantity))).all()
    by_sku: dict[int, list[Tier]] = {}
    for row in rows:
        by_sku.setdefault(row.sku_id, []).append(Tier(row.min_quantity, int(row.unit_price_cents)))
    listed = []
    for sku_id, tiers in by_sku.items():
        listed.append((await catalog_service.get_sku(session=session, sku_id=sku_id), tiers))
    return sorted(listed, key=lambda item: item[0].code)
