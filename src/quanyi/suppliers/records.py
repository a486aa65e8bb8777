"""Supplier records (供应商档案): contract terms, sealed credentials, health as operators see it.

Credentials are sealed with the card-key keyring the moment they arrive and are never handed back:
operators see which fields are set, nothing more. The prepaid balance is shown, never changed here
(the ledger owns top-ups and debits).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.scope import PLATFORM, PLATFORM_MERCHANT_ID, Scope
from quanyi.suppliers.adapter import SupplierDialect, SupplierEndpoint, SupplierError, build_adapter, known_dialects
from quanyi.suppliers.credentials import CredentialsUnreadable, open_credentials, seal_credentials
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct
from quanyi.suppliers.pricing import apply_price_policies
from quanyi.suppliers.schemas import (
    SupplierCreate,
    SupplierHealth,
    SupplierRead,
    SupplierSyncRead,
    SupplierUpdate,
)
from quanyi.suppliers.sync_models import SupplierSyncState

__all__ = [
    "SupplierNotFound", "SupplierCodeTaken", "UnknownDialect", "create_supplier", "update_supplier",
    "get_supplier", "get_supplier_by_code", "list_suppliers", "describe_supplier", "credential_fields",
    "scrub_secrets", "stock_callback_path",
]


class SupplierNotFound(NotFound):
    code = "supplier_not_found"


class SupplierCodeTaken(Conflict):
    code = "supplier_code_taken"


class UnknownDialect(InvalidInput):
    code = "unknown_dialect"


def stock_callback_path(code: str) -> str:
    """Where a supplier pushes stock and price changes (give it `public base URL + this`)."""
    return f"/api/suppliers/{code}/stock-callback"


def _check_dialect(dialect: SupplierDialect, base_url: str, credentials: Mapping[str, str],
                   http: httpx.AsyncClient) -> None:
    """The dialect must have an adapter, and the adapter must accept these credentials."""
    if dialect not in known_dialects():
        raise UnknownDialect(f"no adapter for dialect {dialect.value!r}; known: "
                             + ", ".join(d.value for d in known_dialects()), dialect=dialect.value)
    probe = SupplierEndpoint(supplier_code="probe", base_url=base_url, credentials=credentials)
    try:
        # Building an adapter sends nothing; a factory rejects missing or malformed credential fields.
        build_adapter(dialect, probe, http)
    except (SupplierError, KeyError, ValueError, TypeError) as exc:
        raise InvalidInput(f"credentials do not fit dialect {dialect.value}: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


async def create_supplier(*, session: AsyncSession, cipher: CardKeyCipher, http: httpx.AsyncClient,
                          data: SupplierCreate, merchant_id: int = PLATFORM_MERCHANT_ID) -> Supplier:
    """Register a supplier account of `merchant_id` with its contract terms; credentials are sealed before they
    touch the database. Codes are unique on the whole platform (they name the supplier's callback URLs)."""
    if await session.scalar(select(Supplier.id).where(Supplier.code == data.code)) is not None:
        raise SupplierCodeTaken(f"supplier code {data.code!r} is already used")
    _check_dialect(data.dialect, data.base_url, data.credentials, http)
    sealed = seal_credentials(cipher, supplier_code=data.code, credentials=data.credentials)
    supplier = Supplier(
        merchant_id=merchant_id, code=data.code, name=data.name, dialect=data.dialect, base_url=data.base_url,
        credentials_key_id=sealed.key_id, credentials_ciphertext=sealed.ciphertext, status=data.status,
        settlement_cycle=data.settlement_cycle, currency=data.currency, balance_cents=0,
        credit_limit_cents=data.credit_limit_cents, timeout_ms=data.timeout_ms,
    )
    try:
        async with session.begin_nested():  # a concurrent registration of the same code loses here
            session.add(supplier)
            await session.flush()
    except IntegrityError:
        raise SupplierCodeTaken(f"supplier code {data.code!r} is already used") from None
    session.add(SupplierSyncState(supplier_id=supplier.id))
    await session.flush()
    return supplier


async def update_supplier(*, session: AsyncSession, cipher: CardKeyCipher, http: httpx.AsyncClient, code: str,
                          data: SupplierUpdate, scope: Scope = PLATFORM) -> Supplier:
    """Change contract terms or endpoint; new credentials replace the old ones entirely."""
    supplier = await get_supplier_by_code(session=session, code=code, for_update=True, scope=scope)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise InvalidInput(f"{field} cannot be null")
    credentials = changes.pop("credentials", None)
    dialect = changes.get("dialect", supplier.dialect)
    base_url = changes.get("base_url", supplier.base_url)
    if credentials is None and ("dialect" in changes or "base_url" in changes):
        try:
            credentials = _open(supplier, cipher)
        except CredentialsUnreadable:
            raise InvalidInput("the stored credentials cannot be read; send new credentials") from None
        _check_dialect(dialect, base_url, credentials, http)
        credentials = None  # unchanged: keep the stored ciphertext
    elif credentials is not None:
        _check_dialect(dialect, base_url, credentials, http)
        sealed = seal_credentials(cipher, supplier_code=supplier.code, credentials=credentials)
        supplier.credentials_key_id = sealed.key_id
        supplier.credentials_ciphertext = sealed.ciphertext
    for field, value in changes.items():
        setattr(supplier, field, value)
    supplier.updated_at = utcnow()
    await session.flush()
    if "status" in changes or "currency" in changes:
        # Pausing or resuming a supplier changes the cheapest usable cost of the SKUs it fills.
        sku_ids = (await session.scalars(
            select(SkuSupplierMapping.sku_id).join(SupplierProduct, SupplierProduct.id ==
                                                   SkuSupplierMapping.supplier_product_id)
            .where(SupplierProduct.supplier_id == supplier.id))).all()
        await apply_price_policies(session=session, sku_ids=sorted(set(sku_ids)))
    return supplier


async def get_supplier(*, session: AsyncSession, supplier_id: int, scope: Scope = PLATFORM) -> Supplier:
    supplier = await session.get(Supplier, supplier_id)
    if supplier is None or not scope.sees(supplier.merchant_id):
        raise SupplierNotFound(f"supplier {supplier_id} does not exist")
    return supplier


async def get_supplier_by_code(*, session: AsyncSession, code: str, for_update: bool = False,
                               scope: Scope = PLATFORM) -> Supplier:
    """A supplier by code; another merchant's supplier is not found."""
    stmt = select(Supplier).where(Supplier.code == code.strip().upper())
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    supplier = await session.scalar(stmt)
    if supplier is None or not scope.sees(supplier.merchant_id):
        raise SupplierNotFound(f"supplier {code!r} does not exist")
    return supplier


async def list_suppliers(*, session: AsyncSession, scope: Scope = PLATFORM) -> Sequence[Supplier]:
    return (await session.scalars(select(Supplier).where(scope.where(Supplier.merchant_id))
                                  .order_by(Supplier.code))).all()


def _open(supplier: Supplier, cipher: CardKeyCipher) -> dict[str, str]:
    return open_credentials(cipher, supplier_code=supplier.code, sealed=EncryptedCode(
        key_id=supplier.credentials_key_id, ciphertext=supplier.credentials_ciphertext))


def credential_fields(supplier: Supplier, cipher: CardKeyCipher) -> list[str] | None:
    """Names of the credential fields that are set, or None if they cannot be decrypted."""
    try:
        return sorted(_open(supplier, cipher))
    except CredentialsUnreadable:
        return None


def scrub_secrets(message: str, supplier: Supplier, cipher: CardKeyCipher) -> str:
    """An error text safe to store and show: any credential value in it is masked."""
    try:
        secrets = _open(supplier, cipher).values()
    except CredentialsUnreadable:
        secrets = []
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            message = message.replace(secret, "***")
    return message[:500]


def _sync_read(state: SupplierSyncState | None, now: dt.datetime) -> SupplierSyncRead:
    if state is None:
        return SupplierSyncRead()
    return SupplierSyncRead(
        last_pull_started_at=state.last_pull_started_at, last_pull_ok_at=state.last_pull_ok_at,
        last_pull_failed_at=state.last_pull_failed_at, last_pull_error=state.last_pull_error,
        last_catalog_at=state.last_catalog_at, last_push_at=state.last_push_at,
        pulling=state.claimed_until is not None and state.claimed_until > now,
    )


async def describe_supplier(*, session: AsyncSession, cipher: CardKeyCipher, supplier: Supplier) -> SupplierRead:
    """A supplier as operators see it: terms, health, sync times, credential field names (never values)."""
    now = utcnow()
    state = await session.get(SupplierSyncState, supplier.id)
    fields = credential_fields(supplier, cipher)
    open_circuit = supplier.circuit_open_until is not None and supplier.circuit_open_until > now
    return SupplierRead(
        id=supplier.id, merchant_id=supplier.merchant_id, code=supplier.code, name=supplier.name,
        dialect=supplier.dialect, base_url=supplier.base_url, status=supplier.status,
        settlement_cycle=supplier.settlement_cycle, currency=supplier.currency, balance_cents=supplier.balance_cents,
        credit_limit_cents=supplier.credit_limit_cents, timeout_ms=supplier.timeout_ms,
        credential_fields=fields or [], credentials_readable=fields is not None,
        stock_callback_path=stock_callback_path(supplier.code),
        health=SupplierHealth(
            circuit="open" if open_circuit else "closed", circuit_open_until=supplier.circuit_open_until,
            consecutive_failures=supplier.consecutive_failures, last_success_at=supplier.last_success_at,
            last_failure_at=supplier.last_failure_at, last_error=supplier.last_error,
        ),
        sync=_sync_read(state, now), created_at=supplier.created_at, updated_at=supplier.updated_at,
    )
