"""Suppliers as the rest of the shop sees them: which SKUs suppliers can fill, and how many."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.inventory.crypto import CardKeyCipher, EncryptedCode
from quanyi.suppliers.adapter import SupplierAdapter, SupplierEndpoint, build_adapter
from quanyi.suppliers.credentials import open_credentials
from quanyi.suppliers.models import SkuSupplierMapping, Supplier, SupplierProduct, SupplierStatus

__all__ = ["supplier_stock_counts", "UNCOUNTED", "endpoint_for", "adapter_for"]

# Stock a supplier does not count (direct recharge): as good as unlimited for checkout.
UNCOUNTED = 1_000_000


async def supplier_stock_counts(*, session: AsyncSession, sku_ids: Sequence[int]) -> dict[int, int]:
    """Units of each SKU that active suppliers report they can sell us right now (last sync).
    SKUs without an active mapping are absent. Uncounted stock counts as UNCOUNTED."""
    if not sku_ids:
        return {}
    rows = await session.execute(
        select(SkuSupplierMapping.sku_id, SupplierProduct.stock)
        .join(SupplierProduct, SupplierProduct.id == SkuSupplierMapping.supplier_product_id)
        .join(Supplier, Supplier.id == SupplierProduct.supplier_id)
        .where(
            SkuSupplierMapping.sku_id.in_(sku_ids),
            SkuSupplierMapping.enabled.is_(True),
            SupplierProduct.available.is_(True),
            Supplier.status == SupplierStatus.ACTIVE,
        )
    )
    counts: dict[int, int] = {}
    for sku_id, stock in rows.all():
        counts[sku_id] = min(UNCOUNTED, counts.get(sku_id, 0) + (UNCOUNTED if stock is None else stock))
    return counts


def endpoint_for(supplier: Supplier, cipher: CardKeyCipher) -> SupplierEndpoint:
    """How to reach this supplier, credentials decrypted (keep the result out of logs)."""
    credentials = open_credentials(
        cipher, supplier_code=supplier.code,
        sealed=EncryptedCode(key_id=supplier.credentials_key_id, ciphertext=supplier.credentials_ciphertext),
    )
    return SupplierEndpoint(supplier_code=supplier.code, base_url=supplier.base_url, credentials=credentials,
                            timeout_seconds=supplier.timeout_ms / 1000)


def adapter_for(supplier: Supplier, *, cipher: CardKeyCipher, http: httpx.AsyncClient) -> SupplierAdapter:
    """The adapter speaking this supplier's dialect to its endpoint."""
    return build_adapter(supplier.dialect, endpoint_for(supplier, cipher), http)
