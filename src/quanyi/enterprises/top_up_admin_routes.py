"""Admin API for the top-up requests enterprises send from the portal (充值申请): list them, confirm a bank
transfer that arrived (credited once) or refuse it with a reason; the same enterprises.top_ups services as the
console. Mounted under the enterprises admin router (routes.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path, Query

from quanyi.deps import PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.enterprises import top_ups
from quanyi.enterprises.models import TopUpRequest
from quanyi.enterprises.schemas import TopUpRefuse, TopUpRequestRead

__all__ = ["router"]

logger = logging.getLogger("quanyi.enterprises.admin")
router = APIRouter(prefix="/{code}/top-up-requests")
CodePath = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
RequestNo = Annotated[str, Path(min_length=4, max_length=24, pattern=r"^[A-Z0-9]+$")]


def _read(found: TopUpRequest, changed: bool = False) -> TopUpRequestRead:
    return TopUpRequestRead.model_validate({**{name: getattr(found, name) for name in TopUpRequestRead.model_fields
                                               if name != "changed"}, "changed": changed})


@router.get("", response_model=list[TopUpRequestRead], summary="The enterprise's top-up requests, newest first")
async def list_requests(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[TopUpRequestRead]:
    return [_read(found) for found in await top_ups.list_top_ups(session=session, code=code, limit=limit)]


@router.post("/{request_no}/confirm", response_model=TopUpRequestRead,
             summary="The bank transfer arrived: credit the request's amount (once; a repeat credits nothing)")
async def confirm(code: CodePath, request_no: RequestNo, session: SessionDep,
                  admin: PlatformAdminDep) -> TopUpRequestRead:
    found, credited = await top_ups.confirm_top_up(session=session, code=code, request_no=request_no, actor=admin)
    logger.info("enterprise %s top-up request %s confirmed by %s (credited now: %s)", code, request_no, admin,
                credited)
    return _read(found, credited)


@router.post("/{request_no}/refuse", response_model=TopUpRequestRead,
             summary="No such transfer arrived: refuse the request with a reason the enterprise sees")
async def refuse(code: CodePath, request_no: RequestNo, data: TopUpRefuse, session: SessionDep,
                 admin: PlatformAdminDep) -> TopUpRequestRead:
    found, refused = await top_ups.refuse_top_up(session=session, code=code, request_no=request_no,
                                                 reason=data.reason, actor=admin)
    logger.info("enterprise %s top-up request %s refused by %s (now: %s)", code, request_no, admin, refused)
    return _read(found, refused)
