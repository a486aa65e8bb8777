"""Card-key security admin API: audited staff reveal, masked key listings, leak tracing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from quanyi.deps import (
    NO_STORE,
    AdminDep,
    ContextDep,
    ReadSessionDep,
    ScopeDep,
    SessionDep,
    client_ip,
    require_permission,
    user_agent,
)
from quanyi.inventory import leaks, staff_access
from quanyi.inventory import service as inventory_service
from quanyi.inventory.schemas import LeakTraceReport, LeakTraceRequest, MaskedKey, StaffRevealedKey, StaffRevealRequest

router = APIRouter(prefix="/api/admin", tags=["admin: card-key security"])

IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]  # card keys have 64-bit ids
BatchIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]  # batches have 32-bit ids


@router.post(
    "/card-keys/{card_key_id}/reveal",
    response_model=StaffRevealedKey,
    summary="Show one card key's plaintext to a staff member (permission card_keys.reveal; audited)",
    dependencies=[NO_STORE],
)
async def reveal_card_key(
    card_key_id: IdPath,
    data: StaffRevealRequest,
    request: Request,
    session: SessionDep,
    ctx: ContextDep,
    actor: Annotated[str, require_permission("card_keys.reveal")],
    scope: ScopeDep,
) -> StaffRevealedKey:
    return await staff_access.staff_reveal_card_key(
        session=session, cipher=ctx.cipher, card_key_id=card_key_id, actor=actor, reason=data.reason,
        ip=client_ip(request), user_agent=user_agent(request),
        min_reason_length=ctx.settings.staff_reveal_reason_min_length, scope=scope,
    )


@router.get("/batches/{batch_id}/card-keys", response_model=list[MaskedKey],
            summary="A page of a batch's card keys, codes masked")
async def batch_keys(
    batch_id: BatchIdPath,
    session: ReadSessionDep,
    ctx: ContextDep,
    _: AdminDep,
    scope: ScopeDep,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MaskedKey]:
    await inventory_service.get_batch(session=session, batch_id=batch_id, scope=scope)
    return await staff_access.list_masked_keys(session=session, cipher=ctx.cipher, batch_id=batch_id,
                                               after_id=after_id, limit=limit)


@router.post(
    "/leaks/trace",
    response_model=LeakTraceReport,
    summary="Trace leaked card keys and mark them leaked (permission leaks.trace)",
    description=(
        "Send `codes` (a JSON list) and/or `text` (pasted, one per line, like an import file). Each code is "
        "found by fingerprint; the answer gives SKU, batch or supplier, order, buyer contact and every reveal. "
        "With `mark_leaked` (default) found keys are marked leaked and unsold ones withdrawn; `void_batches` "
        "also voids the unsold remainder of every affected batch. Either stops the sale of a found 循环卡密 shared "
        "code (`stopped_shared_codes`, `sale_stopped`): its orders not yet delivered get another code or a refund."
    ),
)
async def trace_leaks(
    data: LeakTraceRequest,
    session: SessionDep,
    ctx: ContextDep,
    actor: Annotated[str, require_permission("leaks.trace")],
    scope: ScopeDep,
) -> LeakTraceReport:
    # One code per line; a code containing a line break would be two codes anyway.
    text = "\n".join([*data.codes, data.text])
    return await leaks.trace_leaked_codes(session=session, cipher=ctx.cipher, text=text, actor=actor,
                                          mark_leaked=data.mark_leaked, void_batches=data.void_batches, scope=scope)
