"""Resellers (下游分销商) as operators manage them: register, signing secrets (shown once, rotatable with an
overlap), status, rate limit, callback URL, price list, prepaid balance top-ups.

Each reseller pays from a ledger customer account (`reseller:<code>`), the same mechanism enterprise
customers use; what it buys through the open API is in ordering.py, request verification in signing.py.
Secrets are sealed with the shop's keyring (AES-256-GCM, the app id bound in), not hashed: verifying an
HMAC needs the secret itself. The plaintext leaves the shop once, in the answer that created it.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.ledger import service as ledger_service
from quanyi.ledger.models import CustomerAccount
from quanyi.orders.contact import normalize_contact
from quanyi.resellers.models import Reseller, ResellerPrice, ResellerSecret, ResellerStatus

__all__ = [
    "ResellerNotFound", "ResellerExists", "IssuedSecret", "create_reseller", "get_reseller", "get_reseller_by_app_id",
    "list_resellers", "update_reseller", "rotate_secret", "live_secrets", "current_secret", "set_price",
    "remove_price", "price_list", "prices_for", "top_up", "account_of", "reseal_secret", "DEFAULT_OVERLAP",
]

DEFAULT_OVERLAP = dt.timedelta(hours=24)
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


class ResellerNotFound(NotFound):
    code = "reseller_not_found"


class ResellerExists(Conflict):
    code = "reseller_exists"


@dataclass(frozen=True, slots=True)
class IssuedSecret:
    """A secret just made: the only time its plaintext is available."""

    reseller: Reseller
    secret: str
    previous_expires_at: dt.datetime | None


def _binding(app_id: str) -> bytes:
    return b"quanyi-reseller-secret:" + app_id.encode()


def _seal(cipher: CardKeyCipher, app_id: str, secret: str) -> EncryptedCode:
    return cipher.encrypt(secret, fingerprint=_binding(app_id))


def reseal_secret(cipher: CardKeyCipher, *, app_id: str, sealed: EncryptedCode) -> EncryptedCode:
    """A stored secret re-encrypted under the active key (keyring rotation), still bound to its app id."""
    return cipher.reencrypt(sealed, fingerprint=_binding(app_id))


async def create_reseller(
    *, session: AsyncSession, cipher: CardKeyCipher, code: str, name: str, contact_email: str,
    rate_limit_per_minute: int = 600, credit_limit_cents: int = 0, callback_url: str | None = None,
    currency: str = "CNY", actor: str = "admin", now: dt.datetime | None = None,
) -> IssuedSecret:
    """Register a reseller with a fresh app id, a prepaid account at zero and its first secret (shown once)."""
    now = now or utcnow()
    if not _CODE.match(code):
        raise InvalidInput("reseller code: 1-48 characters of letters, digits, _ . - (starting alphanumeric)")
    try:
        kind, email = normalize_contact(contact_email)
    except ValueError as exc:
        raise InvalidInput(f"contact_email: {exc}") from None
    if kind != "email":
        raise InvalidInput("contact_email must be an e-mail address")
    if await session.scalar(select(Reseller.id).where(Reseller.code == code)) is not None:
        raise ResellerExists(f"reseller {code} already exists")
    account = await ledger_service.open_customer_account(
        session=session, code=f"reseller:{code}", name=name, currency=currency,
        credit_limit_cents=credit_limit_cents, now=now)
    reseller = Reseller(code=code, name=name[:200], contact_email=email, app_id="qy" + secrets.token_hex(10),
                        status=ResellerStatus.ACTIVE.value, account_id=account.id,
                        rate_limit_per_minute=rate_limit_per_minute, callback_url=callback_url, created_at=now,
                        updated_at=now)
    try:
        async with session.begin_nested():  # a concurrent registration of the same code loses here
            session.add(reseller)
            await session.flush()
    except IntegrityError:
        raise ResellerExists(f"reseller {code} already exists") from None
    return await rotate_secret(session=session, cipher=cipher, reseller=reseller, overlap=dt.timedelta(0),
                               actor=actor, now=now)


async def get_reseller(*, session: AsyncSession, code: str) -> Reseller:
    reseller = await session.scalar(select(Reseller).where(Reseller.code == code))
    if reseller is None:
        raise ResellerNotFound(f"no reseller {code!r}")
    return reseller


async def get_reseller_by_app_id(*, session: AsyncSession, app_id: str) -> Reseller | None:
    return await session.scalar(select(Reseller).where(Reseller.app_id == app_id))


async def list_resellers(*, session: AsyncSession) -> Sequence[Reseller]:
    return (await session.scalars(select(Reseller).order_by(Reseller.code))).all()


async def account_of(*, session: AsyncSession, reseller: Reseller) -> CustomerAccount:
    return await ledger_service.get_customer_account(session=session, account_id=reseller.account_id)


async def update_reseller(
    *, session: AsyncSession, code: str, name: str | None = None, status: ResellerStatus | None = None,
    rate_limit_per_minute: int | None = None, callback_url: str | None = None, clear_callback_url: bool = False,
    credit_limit_cents: int | None = None, now: dt.datetime | None = None,
) -> Reseller:
    """Change what an operator may change; a suspended reseller's requests are refused from then on."""
    now = now or utcnow()
    reseller = await get_reseller(session=session, code=code)
    if name is not None:
        reseller.name = name[:200]
    if status is not None:
        reseller.status = status.value
    if rate_limit_per_minute is not None:
        reseller.rate_limit_per_minute = rate_limit_per_minute
    if callback_url is not None or clear_callback_url:
        reseller.callback_url = callback_url
    if credit_limit_cents is not None:
        await ledger_service.set_customer_account(session=session, account_id=reseller.account_id,
                                                  credit_limit_cents=credit_limit_cents, now=now)
    reseller.updated_at = now
    return reseller


async def rotate_secret(
    *, session: AsyncSession, cipher: CardKeyCipher, reseller: Reseller, overlap: dt.timedelta = DEFAULT_OVERLAP,
    actor: str = "admin", now: dt.datetime | None = None,
) -> IssuedSecret:
    """Issue a new secret; the ones still valid keep working for `overlap` (0: stop at once), so the reseller
    can switch without a failed request. Returns the plaintext, which is not kept anywhere readable."""
    now = now or utcnow()
    if overlap < dt.timedelta(0) or overlap > dt.timedelta(days=30):
        raise InvalidInput("overlap must be between 0 and 30 days")
    # The reseller row lock queues concurrent rotations: each sees the other's secret as the previous one.
    await session.scalar(select(Reseller.id).where(Reseller.id == reseller.id).with_for_update())
    until = now + overlap
    previous_expires_at = None
    for old in await live_secrets(session=session, reseller_id=reseller.id, now=now):
        old.expires_at = min(old.expires_at, until) if old.expires_at else until
        previous_expires_at = old.expires_at
    plaintext = secrets.token_urlsafe(30)  # 40 characters, 240 random bits
    sealed = _seal(cipher, reseller.app_id, plaintext)
    session.add(ResellerSecret(reseller_id=reseller.id, key_id=sealed.key_id, ciphertext=sealed.ciphertext,
                               hint=plaintext[-4:], created_at=now, expires_at=None, created_by=actor[:64]))
    reseller.updated_at = now
    await session.flush()
    return IssuedSecret(reseller=reseller, secret=plaintext, previous_expires_at=previous_expires_at)


async def live_secrets(*, session: AsyncSession, reseller_id: int, now: dt.datetime | None = None
                       ) -> list[ResellerSecret]:
    """Secrets that still verify requests, newest first."""
    now = now or utcnow()
    rows = await session.scalars(select(ResellerSecret).where(ResellerSecret.reseller_id == reseller_id)
                                 .order_by(ResellerSecret.id.desc()))
    return [row for row in rows.all() if row.expires_at is None or row.expires_at > now]


def open_secret(cipher: CardKeyCipher, reseller: Reseller, row: ResellerSecret) -> str | None:
    """The plaintext of a stored secret, or None if the keyring cannot open it (a retired key)."""
    try:
        return cipher.decrypt(EncryptedCode(row.key_id, row.ciphertext), fingerprint=_binding(reseller.app_id))
    except CardKeyDecryptionError:
        return None


async def current_secret(*, session: AsyncSession, cipher: CardKeyCipher, reseller: Reseller) -> str | None:
    """The newest secret (callbacks are signed with it)."""
    for row in await live_secrets(session=session, reseller_id=reseller.id):
        plain = open_secret(cipher, reseller, row)
        if plain is not None:
            return plain
    return None


# ---------------------------------------------------------------- price list (价格表)

async def set_price(*, session: AsyncSession, code: str, sku_code: str, price_cents: int, actor: str = "admin",
                    now: dt.datetime | None = None) -> ResellerPrice:
    """Set the reseller's own price of a SKU (replacing an earlier one)."""
    now = now or utcnow()
    if not isinstance(price_cents, int) or isinstance(price_cents, bool) or price_cents <= 0:
        raise InvalidInput("price_cents must be a positive whole number of cents")
    reseller = await get_reseller(session=session, code=code)
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    row = await session.scalar(select(ResellerPrice).where(ResellerPrice.reseller_id == reseller.id,
                                                           ResellerPrice.sku_id == sku.id).with_for_update())
    if row is None:
        row = ResellerPrice(reseller_id=reseller.id, sku_id=sku.id)
        session.add(row)
    row.price_cents, row.updated_by, row.updated_at = price_cents, actor[:64], now
    await session.flush()
    return row


async def remove_price(*, session: AsyncSession, code: str, sku_code: str) -> None:
    reseller = await get_reseller(session=session, code=code)
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    await session.execute(delete(ResellerPrice).where(ResellerPrice.reseller_id == reseller.id,
                                                      ResellerPrice.sku_id == sku.id))


async def prices_for(*, session: AsyncSession, reseller_id: int) -> dict[int, int]:
    """The reseller's own prices by SKU id."""
    rows = await session.execute(select(ResellerPrice.sku_id, ResellerPrice.price_cents)
                                 .where(ResellerPrice.reseller_id == reseller_id))
    return {int(sku_id): int(price) for sku_id, price in rows.all()}


async def price_list(*, session: AsyncSession, code: str) -> list[tuple[str, int, int | None]]:
    """(SKU code, list price, the reseller's price or None) for every SKU."""
    reseller = await get_reseller(session=session, code=code)
    own = await prices_for(session=session, reseller_id=reseller.id)
    listed = []
    for product in await catalog_service.list_products(session=session, active_only=False):
        for sku in product.skus:
            listed.append((sku.code, sku.price_cents, own.get(sku.id)))
    return listed


async def top_up(*, session: AsyncSession, code: str, amount_cents: int, note: str, actor: str,
                 reference: str | None = None) -> tuple[CustomerAccount, bool]:
    """Record money the reseller paid in (预存款充值); a repeated reference credits once."""
    reseller = await get_reseller(session=session, code=code)
    _, created = await ledger_service.top_up_customer(session=session, account_id=reseller.account_id,
                                                      amount_cents=amount_cents, note=note, actor=actor,
                                                      reference=reference)
    account = await ledger_service.get_customer_account(session=session, account_id=reseller.account_id)
    return account, created
