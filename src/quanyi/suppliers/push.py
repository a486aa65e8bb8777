"""Supplier push (库存推送): a supplier calls `POST /api/suppliers/{code}/stock-callback` when stock or cost
changes. The dialect's adapter verifies the signature and decodes the body; anything it rejects is
answered 4xx and changes nothing. Recharge results pushed here are not handled (they have their own route).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import DomainError
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.suppliers import service as suppliers_service
from quanyi.suppliers.adapter import CallbackAck, CallbackRejected, StockEvent
from quanyi.suppliers.credentials import CredentialsUnreadable
from quanyi.suppliers.models import SupplierStatus
from quanyi.suppliers.pricing import apply_price_policies
from quanyi.suppliers.records import get_supplier_by_code
from quanyi.suppliers.schemas import SyncResultRead
from quanyi.suppliers.sync import SupplierDisabled, ensure_sync_state, result_from
from quanyi.suppliers.sync_apply import apply_stock_events, mapped_sku_ids

__all__ = ["StockCallbackRejected", "PushOutcome", "receive_stock_callback"]

logger = logging.getLogger(__name__)


class StockCallbackRejected(DomainError):
    """Not authentic or not understood: answered 400, nothing changed."""

    code = "callback_rejected"


@dataclass(frozen=True)
class PushOutcome:
    ack: CallbackAck
    result: SyncResultRead


async def receive_stock_callback(*, session: AsyncSession, cipher: CardKeyCipher, http: httpx.AsyncClient,
                                 code: str, headers: Mapping[str, str], body: bytes) -> PushOutcome:
    """Verify a supplier's stock push and apply its stock events (newest observation wins)."""
    supplier = await get_supplier_by_code(session=session, code=code)
    if supplier.status is SupplierStatus.DISABLED:
        raise SupplierDisabled(f"supplier {supplier.code} is disabled; its pushes are not taken")
    try:
        adapter = suppliers_service.adapter_for(supplier, cipher=cipher, http=http)
        events = adapter.parse_callback(headers=headers, body=body)
    except CredentialsUnreadable:
        logger.error("supplier %s: cannot verify its push, credentials unreadable", supplier.code)
        raise StockCallbackRejected("this supplier's credentials cannot be read; the push cannot be verified") from None
    except CallbackRejected as exc:
        logger.warning("supplier %s: stock push rejected: %s", supplier.code, exc)
        raise StockCallbackRejected(f"callback rejected: {exc}") from None
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:  # a dialect choking on garbage
        logger.warning("supplier %s: unreadable stock push: %r", supplier.code, exc)
        raise StockCallbackRejected("callback body not understood") from None
    arrived_at = utcnow()
    stock_events = [event for event in events if isinstance(event, StockEvent)]
    applied = await apply_stock_events(session=session, supplier=supplier, events=stock_events,
                                       arrived_at=arrived_at)
    changes = await apply_price_policies(
        session=session, sku_ids=await mapped_sku_ids(session=session,
                                                      product_ids=sorted(applied.changed_product_ids)))
    state = await ensure_sync_state(session, supplier.id)
    state.last_push_at = arrived_at
    await session.flush()
    return PushOutcome(ack=adapter.callback_ack(), result=result_from(supplier, "push", applied, changes))
