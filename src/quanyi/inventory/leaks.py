"""Leak tracing (卡密泄露追查): where did a leaked code come from, who bought it, who saw it.

Each submitted code is normalized exactly as an import does and found by its fingerprint (one indexed
lookup; nothing is decrypted). For each: SKU, import batch or supplier purchase, status, order and buyer,
every reveal. Found keys are marked leaked under a leak report; a leaked key that is still unsold is
withdrawn at once (and `_sellable` never offers a leaked key), so it is never sold afterwards. Optionally
the unsold remainder of every affected batch is voided too.

Limitation: a key imported as card number + password is found only when both are submitted (the
fingerprint covers the pair), as in the import file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.db import utcnow
from quanyi.inventory import service as inventory_service
from quanyi.inventory import shared_codes
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.masking import mask_code, remember_codes
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch, KeyReveal, LeakReport
from quanyi.inventory.parsing import parse_card_keys, split_secret
from quanyi.inventory.schemas import (
    MAX_REPORTED_LINES,
    BatchRead,
    LeakTraceItem,
    LeakTraceReport,
    LineProblem,
    TracedBatch,
    TracedOrder,
    TracedReveal,
)
from quanyi.orders import service as orders_service
from quanyi.scope import PLATFORM, Scope
from quanyi.shoptime import zone_of

__all__ = ["trace_leaked_codes", "SUPPLIER_SOURCE_PREFIX"]

# Batches of keys bought from a supplier are named "supplier:<code>..." by the supplier purchase flow.
SUPPLIER_SOURCE_PREFIX = "supplier:"
_LOOKUP_CHUNK = 500
_UNSOLD = (CardKeyStatus.AVAILABLE, CardKeyStatus.RESERVED)
# Expiry dates in a pasted leak list are irrelevant; parse as if it were long ago so none counts as expired.
_PARSE_AS_OF = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _masked_secret(secret: str) -> str:
    card_no, code = split_secret(secret)
    return f"{mask_code(card_no)} / {mask_code(code)}" if card_no else mask_code(code)


def _batch(batch: ImportBatch) -> TracedBatch:
    supplier = None
    if batch.source_name.startswith(SUPPLIER_SOURCE_PREFIX):
        supplier = batch.source_name[len(SUPPLIER_SOURCE_PREFIX):].strip() or None
    return TracedBatch(id=batch.id, source_name=batch.source_name, supplier=supplier, imported_by=batch.imported_by,
                       created_at=batch.created_at, voided_at=batch.voided_at)


async def trace_leaked_codes(
    *,
    session: AsyncSession,
    cipher: CardKeyCipher,
    text: str,
    actor: str,
    mark_leaked: bool = True,
    void_batches: bool = False,
    now: dt.datetime | None = None,
    scope: Scope = PLATFORM,
) -> LeakTraceReport:
    """Trace leaked codes (text in the import format, one per line) and, by default, mark them leaked.
    A merchant's staff trace only their merchant's keys: a code another merchant holds is "not found" for them.

    Marking locks the found keys (id order, like every key writer), withdraws the unsold ones, and records
    a LeakReport; `void_batches` also voids the unsold remainder of every affected batch. Either stops the sale of
    a found shared code (`stopped_shared_codes`). One transaction."""
    now = now or utcnow()
    parsed = parse_card_keys(text, now=_PARSE_AS_OF, zone=zone_of(session))
    remember_codes(key.secret for key in parsed.keys)
    fingerprints = {key.line_no: cipher.fingerprint(key.secret) for key in parsed.keys}

    found: dict[bytes, CardKey] = {}
    unique = list(dict.fromkeys(fingerprints.values()))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        stmt = select(CardKey).where(CardKey.fingerprint.in_(unique[start:start + _LOOKUP_CHUNK]),
                                     scope.where(CardKey.merchant_id))
        for key in (await session.scalars(stmt)).all():
            found[key.fingerprint] = key
    keys = sorted(found.values(), key=lambda k: k.id)
    key_ids = [key.id for key in keys]
    status_before = {key.id: key.status for key in keys}
    leaked_before = {key.id for key in keys if key.leaked_at is not None}

    report_row: LeakReport | None = None
    withdrawn: set[int] = set()
    voided: list[BatchRead] = []
    if mark_leaked and keys:
        report_row = LeakReport(merchant_id=scope.owner(), created_by=actor[:64], created_at=now,
                                submitted_count=len(parsed.keys), found_count=len(keys))
        session.add(report_row)
        await session.flush()
        # Lock the found keys in id order; an unsold one is withdrawn so no order can get it any more.
        locked = (await session.execute(
            select(CardKey.id, CardKey.status).where(CardKey.id.in_(key_ids)).order_by(CardKey.id).with_for_update()
        )).all()
        withdrawn = {key_pk for key_pk, status in locked if status in _UNSOLD}
        await session.execute(update(CardKey).where(CardKey.id.in_(key_ids), CardKey.leaked_at.is_(None))
                              .values(leaked_at=now, leak_report_id=report_row.id))
        if withdrawn:
            await session.execute(update(CardKey).where(CardKey.id.in_(withdrawn))
                                  .values(status=CardKeyStatus.VOIDED, voided_at=now))
        report_row.withdrawn_count = len(withdrawn)
    stopped: dict[int, int] = {}
    shared_keys = [key.id for key in keys if status_before[key.id] == CardKeyStatus.SHARED]
    if (mark_leaked or void_batches) and shared_keys:
        # A 循环卡密 code has no unsold keys to withdraw and its batch none to void (void_batch refuses it): it
        # stops selling, and an order holding units of it gets another code or its refund (deliver_use).
        stopped = await shared_codes.stop_codes_of_keys(session=session, card_key_ids=shared_keys)
    if void_batches and keys:
        batch_ids = {key.batch_id for key in keys if key.id not in shared_keys}
        for batch_id in sorted(batch_ids):
            batch = await inventory_service.get_batch(session=session, batch_id=batch_id)
            if batch.voided_at is None:
                reason = f"leak report {report_row.id}" if report_row else f"leak trace by {actor}"
                batch = await inventory_service.void_batch(session=session, batch_id=batch_id, reason=reason, now=now)
                voided.append(BatchRead.model_validate(batch))
        if report_row is not None:
            report_row.voided_batch_ids = ",".join(str(b.id) for b in voided)[:500]

    reveals: dict[int, list[TracedReveal]] = {key_pk: [] for key_pk in key_ids}
    for start in range(0, len(key_ids), _LOOKUP_CHUNK):
        rows = (await session.scalars(
            select(KeyReveal).where(KeyReveal.card_key_id.in_(key_ids[start:start + _LOOKUP_CHUNK]))
            .order_by(KeyReveal.revealed_at, KeyReveal.id)
        )).all()
        for reveal in rows:
            reveals[reveal.card_key_id].append(TracedReveal(
                channel=reveal.channel, actor=reveal.actor, reason=reveal.reason, order_id=reveal.order_id,
                revealed_at=reveal.revealed_at, ip=reveal.ip, user_agent=reveal.user_agent))

    batches: dict[int, TracedBatch] = {}
    orders: dict[int, TracedOrder] = {}
    sku_codes: dict[int, str] = {}
    for key in keys:
        if key.batch_id not in batches:
            batches[key.batch_id] = _batch(await inventory_service.get_batch(session=session, batch_id=key.batch_id))
        if key.sku_id not in sku_codes:
            sku_codes[key.sku_id] = (await catalog_service.get_sku(session=session, sku_id=key.sku_id)).code
        if key.order_id is not None and key.order_id not in orders:
            order = await orders_service.get_order_by_id(session=session, order_id=key.order_id)
            orders[key.order_id] = TracedOrder(
                id=order.id, order_no=order.order_no, status=order.status.value, contact_kind=order.contact_kind,
                contact=order.contact, created_at=order.created_at, paid_at=order.paid_at,
                delivered_at=order.delivered_at)

    items = []
    for parsed_key in parsed.keys:
        key = found.get(fingerprints[parsed_key.line_no])
        item = LeakTraceItem(line=parsed_key.line_no, code=_masked_secret(parsed_key.secret), found=key is not None)
        if key is not None:
            item = item.model_copy(update={
                "card_key_id": key.id, "sku_id": key.sku_id, "sku_code": sku_codes[key.sku_id],
                "status": status_before[key.id], "already_leaked": key.id in leaked_before,
                "withdrawn": key.id in withdrawn, "sale_stopped": key.id in stopped.values(),
                "batch": batches[key.batch_id],
                # A key's order_id stays set when it is sold (and after a refund), so this is its buyer.
                "order": orders.get(key.order_id) if key.order_id is not None else None,
                "reveals": reveals[key.id],
            })
        items.append(item)
    return LeakTraceReport(
        report_id=report_row.id if report_row else None, created_by=actor, submitted=len(parsed.keys),
        found=len(keys), withdrawn=len(withdrawn),
        invalid_lines=[LineProblem(line=n, reason=r) for n, r in parsed.invalid[:MAX_REPORTED_LINES]],
        voided_batches=voided, stopped_shared_codes=sorted(stopped), items=items,
    )
