"""The staff audit log (操作日志): every action a staff member takes in the console, written in the same
transaction as the action where there is one (an action that rolls back leaves no entry), with who, what,
which object, when and from where."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.scope import PLATFORM, Scope
from quanyi.staff.models import StaffAuditEntry, StaffUser

__all__ = ["Actor", "record_action", "list_actions"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where."""

    name: str
    staff_id: int | None
    ip: str = ""
    user_agent: str = ""


async def record_action(*, session: AsyncSession, actor: Actor, action: str, object_type: str = "",
                        object_id: str | int = "", summary: str = "", now: dt.datetime | None = None) -> None:
    """Write one audit entry in the caller's transaction."""
    session.add(StaffAuditEntry(
        at=now or utcnow(), actor=actor.name[:64], staff_id=actor.staff_id, action=action[:64],
        object_type=object_type[:32], object_id=str(object_id)[:64], summary=summary[:500], ip=actor.ip[:64],
        user_agent=actor.user_agent[:512]))
    await session.flush()


async def list_actions(*, session: AsyncSession, actor: str | None = None, action: str | None = None,
                       object_id: str | None = None, since: dt.datetime | None = None,
                       until: dt.datetime | None = None, before_id: int | None = None,
                       limit: int = 100, scope: Scope = PLATFORM) -> list[StaffAuditEntry]:
    """Newest first; `before_id` pages back. A merchant's staff see what their merchant's staff did."""
    query = select(StaffAuditEntry).order_by(StaffAuditEntry.id.desc()).limit(limit)
    if not scope.is_platform:
        query = query.join(StaffUser, StaffUser.id == StaffAuditEntry.staff_id).where(
            scope.where(StaffUser.merchant_id))
    if actor:
        query = query.where(StaffAuditEntry.actor == actor.strip().lower())
    if action:
        query = query.where(StaffAuditEntry.action == action)
    if object_id:
        query = query.where(StaffAuditEntry.object_id == object_id.strip())
    if since is not None:
        query = query.where(StaffAuditEntry.at >= since)
    if until is not None:
        query = query.where(StaffAuditEntry.at < until)
    if before_id is not None:
        query = query.where(StaffAuditEntry.id < before_id)
    return list((await session.scalars(query)).all())
