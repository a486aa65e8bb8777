"""Buyer accounts (会员): search members by contact, a member's file (orders, open sessions, points and level,
coupons), disable / enable. Through the members service the CLI uses (`quanyi members ...`); disabling ends every
session of the member at once. Members are platform-wide (one account buys from every merchant's shop), so these
pages are for platform staff only; contacts are masked without `orders.contact`."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.members  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.coupons import service as coupons_service
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.loyalty import service as loyalty_service
from quanyi.members import service as members_service
from quanyi.members.models import Member, MemberStatus
from quanyi.orders import service as orders_service
from quanyi.orders.contact import mask_contact
from quanyi.staff.audit import record_action

__all__ = ["router"]

PERMISSION = "members.manage"
router = console_router("/console/members")
register(MenuItem("members", "/console/members", PERMISSION, group="sales", order=60, icon="users",
                  platform_only=True))

Staff = Annotated[ConsoleUser, needs(PERMISSION, platform_only=True)]
MemberId = Annotated[int, Path(ge=1, le=2_147_483_647)]
PAGE = 50
LATEST_ORDERS = 20


def _contacts(user: ConsoleUser, member: Member) -> dict[str, str | None]:
    """The member's e-mail and phone as this staff member may see them: whole with orders.contact, masked otherwise."""
    def shown(kind: str, value: str | None) -> str | None:
        if value is None:
            return None
        return value if user.can("orders.contact") else mask_contact(kind, value)
    return {"email": shown("email", member.email), "phone": shown("phone", member.phone)}


@router.get("", response_class=HTMLResponse)
async def member_list(request: Request, ctx: ContextDep, user: Staff,
                      q: Annotated[str, Query(max_length=254)] = "",
                      status: Annotated[str, Query(pattern="^(|active|disabled)$")] = "",
                      page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> HTMLResponse:
    query = q.strip() or None
    wanted = MemberStatus(status) if status else None
    async with ctx.db.read_session() as session:
        members = await members_service.list_members(session=session, query=query, status=wanted, limit=PAGE + 1,
                                                     offset=(page - 1) * PAGE)
        total = await members_service.count_members(session=session, query=query, status=wanted)
        shown = list(members[:PAGE])
        orders = {m.id: await orders_service.count_member_orders(session=session, member_id=m.id) for m in shown}
    kept = {k: v for k, v in (("q", q.strip()), ("status", status)) if v}
    return render_page(request, "console/members.html", {
        "members": shown, "orders": orders, "total": total, "form": {"q": q.strip(), "status": status},
        "statuses": list(MemberStatus), "contacts": lambda m: _contacts(user, m),
        "next_url": f"/console/members?{urlencode({**kept, 'page': page + 1})}" if len(members) > PAGE else None,
        "prev_url": f"/console/members?{urlencode({**kept, 'page': page - 1})}" if page > 1 else None,
    }, user=user, active="members")


async def _detail(request: Request, ctx: ContextDep, user: ConsoleUser, member_id: int, *,
                  message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            member = await members_service.get_member(session=session, member_id=member_id)
            sessions = await members_service.open_sessions(session=session, member_id=member.id)
            orders = await orders_service.member_orders(session=session, member_id=member.id, limit=LATEST_ORDERS)
            order_count = await orders_service.count_member_orders(session=session, member_id=member.id)
            loyalty = await loyalty_service.summary(session=session, member_id=member.id)
            coupons = await coupons_service.member_coupons(session=session, member_id=member.id)
    except NotFound:
        return forms.not_found(request, user, active="members")
    context: dict[str, Any] = {
        "m": member, "contacts": _contacts(user, member), "sessions": sessions, "orders": orders,
        "order_count": order_count, "loyalty": loyalty, "coupons": coupons, "message": message,
    }
    return render_page(request, "console/member.html", context, user=user, active="members", status_code=status_code)


@router.get("/{member_id}", response_class=HTMLResponse)
async def member_detail(member_id: MemberId, request: Request, ctx: ContextDep, user: Staff) -> HTMLResponse:
    message = forms.flash(request, "mb", ("disabled", "enabled"), values=("sessions",))
    return await _detail(request, ctx, user, member_id, message=message)


@router.post("/{member_id}/disable", response_class=HTMLResponse)
async def disable_member(member_id: MemberId, request: Request, ctx: ContextDep, user: Staff) -> Response:
    try:
        reason = forms.text(await request.form(), "reason", max_length=500, required=True)
        async with ctx.db.transaction() as session:
            member = await members_service.get_member(session=session, member_id=member_id)
            ended = await members_service.disable_member(session=session, member=member, reason=reason)
            await record_action(session=session, actor=user.actor, action="member_disabled", object_type="member",
                                object_id=str(member.id), summary=f"{ended} sessions ended; reason: {reason}")
    except NotFound:
        return forms.not_found(request, user, active="members")
    except DomainError as exc:
        return await _detail(request, ctx, user, member_id, message=forms.error(exc),
                             status_code=forms.status_for(exc))
    return forms.back(f"/console/members/{member_id}", "disabled", sessions=str(ended))


@router.post("/{member_id}/enable", response_class=HTMLResponse)
async def enable_member(member_id: MemberId, request: Request, ctx: ContextDep, user: Staff) -> Response:
    try:
        async with ctx.db.transaction() as session:
            member = await members_service.get_member(session=session, member_id=member_id)
            await members_service.enable_member(session=session, member=member)
            await record_action(session=session, actor=user.actor, action="member_enabled", object_type="member",
                                object_id=str(member.id))
    except NotFound:
        return forms.not_found(request, user, active="members")
    return forms.back(f"/console/members/{member_id}", "enabled")
