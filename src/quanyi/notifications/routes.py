"""Admin HTTP for the notification outbox: the dead-letter list and retrying a dead message."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from quanyi.deps import AdminDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import MessageStatus
from quanyi.notifications.schemas import NotificationRead

admin_router = APIRouter(prefix="/api/admin/notifications", tags=["admin: notifications"])

IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


@admin_router.get("", response_model=list[NotificationRead],
                  summary="Outbox messages, newest first; status=dead is the dead-letter list")
async def list_notifications(
    session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
    status: Annotated[MessageStatus | None, Query(description="pending, sending, sent or dead")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationRead]:
    messages = await notifications_service.list_messages(session=session, status=status, limit=limit, scope=scope)
    return [NotificationRead.model_validate(m) for m in messages]


@admin_router.post("/{message_id}/retry", response_model=NotificationRead,
                   summary="Send a dead message again (fresh attempts)",
                   responses={409: {"description": "The message is not dead"}})
async def retry_notification(message_id: IdPath, session: SessionDep, _: AdminDep,
                             scope: ScopeDep) -> NotificationRead:
    message = await notifications_service.retry_message(session=session, message_id=message_id, scope=scope)
    return NotificationRead.model_validate(message)
