"""Merchants (商户): who sells on the platform, seen through the caller's scope.

The platform's own store is merchant PLATFORM_MERCHANT_ID (`platform`, 自营). Merchants are created by the
platform (directly, or by approving an application); their code is permanent and names their storefront
page and ledger accounts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.merchants.commission import OrderTerms, order_terms, order_terms_many
from quanyi.merchants.models import Merchant, MerchantStatus
from quanyi.merchants.schemas import MERCHANT_CODE, MerchantCreate, MerchantUpdate
from quanyi.scope import PLATFORM, PLATFORM_MERCHANT_ID, Scope

__all__ = [
    "MerchantNotFound", "MerchantCodeTaken", "InvalidMerchant", "MERCHANT_CODE", "get_merchant", "get_merchant_by_id",
    "list_merchants", "create_merchant", "update_merchant", "resolve_owner", "merchant_codes", "scope_for_code",
    "OrderTerms", "order_terms", "order_terms_many",
]

class MerchantNotFound(NotFound):
    code = "merchant_not_found"


class MerchantCodeTaken(Conflict):
    code = "merchant_code_taken"


class InvalidMerchant(InvalidInput):
    code = "invalid_merchant"


async def get_merchant_by_id(*, session: AsyncSession, merchant_id: int, scope: Scope = PLATFORM) -> Merchant:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None or not scope.sees(merchant.id):
        raise MerchantNotFound(f"merchant {merchant_id} does not exist")
    return merchant


async def get_merchant(*, session: AsyncSession, code: str, scope: Scope = PLATFORM, lock: bool = False) -> Merchant:
    """A merchant by its code; a merchant's staff find only their own."""
    stmt = select(Merchant).where(Merchant.code == code.strip().lower())
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    merchant = await session.scalar(stmt)
    if merchant is None or not scope.sees(merchant.id):
        raise MerchantNotFound(f"merchant {code!r} does not exist")
    return merchant


async def list_merchants(*, session: AsyncSession, scope: Scope = PLATFORM,
                         status: MerchantStatus | None = None) -> Sequence[Merchant]:
    stmt = select(Merchant).where(scope.where(Merchant.id)).order_by(Merchant.id)
    if status is not None:
        stmt = stmt.where(Merchant.status == status.value)
    return (await session.scalars(stmt)).all()


async def create_merchant(*, session: AsyncSession, data: MerchantCreate) -> Merchant:
    """Admit a merchant (platform only; the route checks). Its code is permanent."""
    if await session.scalar(select(Merchant.id).where(Merchant.code == data.code)) is not None:
        raise MerchantCodeTaken(f"merchant code {data.code!r} is already used")
    merchant = Merchant(**data.model_dump(), status=MerchantStatus.ACTIVE.value, self_operated=False)
    try:
        async with session.begin_nested():  # a concurrent admission of the same code loses here
            session.add(merchant)
            await session.flush()
    except IntegrityError:
        raise MerchantCodeTaken(f"merchant code {data.code!r} is already used") from None
    return merchant


async def update_merchant(*, session: AsyncSession, code: str, data: MerchantUpdate,
                          scope: Scope = PLATFORM) -> Merchant:
    """Change a merchant's terms, profile or status; only fields present change."""
    merchant = await get_merchant(session=session, code=code, scope=scope, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if merchant.id == PLATFORM_MERCHANT_ID and changes.get("status", MerchantStatus.ACTIVE) != MerchantStatus.ACTIVE:
        raise InvalidMerchant("the platform's own store cannot be suspended")
    for field, value in changes.items():
        if value is None and field != "hold_days":
            raise InvalidMerchant(f"{field} cannot be null")
        setattr(merchant, field, value.value if isinstance(value, MerchantStatus) else value)
    merchant.updated_at = utcnow()
    await session.flush()
    return merchant


async def resolve_owner(*, session: AsyncSession, scope: Scope, merchant_code: str | None) -> int:
    """The merchant a new object is created for: the caller's own merchant for a merchant's staff (naming another
    merchant is 'not found'); for the platform the named merchant, else its own store."""
    if merchant_code is None:
        return scope.owner()
    return (await get_merchant(session=session, code=merchant_code, scope=scope)).id


async def scope_for_code(*, session: AsyncSession, code: str | None) -> Scope:
    """The scope `--merchant CODE` asks for on the command line: that merchant's, or the platform's (all) without."""
    if code is None:
        return PLATFORM
    return Scope((await get_merchant(session=session, code=code)).id)


async def merchant_codes(*, session: AsyncSession, merchant_ids: Sequence[int]) -> dict[int, str]:
    """Codes of these merchants (for listings), by id."""
    if not merchant_ids:
        return {}
    rows = await session.execute(select(Merchant.id, Merchant.code).where(Merchant.id.in_(set(merchant_ids))))
    return {int(merchant_id): code for merchant_id, code in rows.all()}
