"""What every portal page does the same way: refuse (the form drawn again with the service's message and a 4xx),
not found (another enterprise's number gets the same 404 as a number that does not exist), go back after a
form that worked, and audit an action with the enterprise user as the actor. The form fields are read by the
console's form helpers (quanyi.console.forms)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.console import forms
from quanyi.enterprises.portal.auth import PortalUser
from quanyi.enterprises.portal.rendering import render_page
from quanyi.staff.audit import record_action

__all__ = ["not_found", "audit", "forms"]


def not_found(request: Request, user: PortalUser) -> HTMLResponse:
    """The answer to a number that is not this enterprise's (or nobody's): never confirms that it exists."""
    return render_page(request, "portal/not_found.html", {}, user=user, status_code=404)


async def audit(session: AsyncSession, user: PortalUser, action: str, summary: str = "", **_: Any) -> None:
    """One audit entry, in the action's own transaction (an action that rolls back leaves none)."""
    await record_action(session=session, actor=user.actor, action=action, object_type="enterprise",
                        object_id=user.code, summary=summary)
