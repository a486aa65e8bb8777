"""Member API (/api/members/...): sign up / log in with a one-time code or a password, the account, its orders
and card keys, sessions. Thin over `members.service`; the storefront pages (members/pages.py) use the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from quanyi.catalog import service as catalog_service
from quanyi.catalog.guide import render_guide
from quanyi.context import ShopContext
from quanyi.deps import ContextDep, client_ip, user_agent
from quanyi.members import service as members_service
from quanyi.members.dependencies import (
    CurrentMemberDep,
    clear_member_cookie,
    request_member_token,
    set_member_cookie,
)
from quanyi.members.schemas import (
    CodeLogin,
    CodeRequest,
    CodeSentRead,
    ContactAdded,
    ContactCodeRequest,
    ContactVerify,
    LoggedOut,
    MemberOrderPage,
    MemberRead,
    PasswordChange,
    PasswordLogin,
    SessionRead,
    SignedInRead,
)
from quanyi.members.sessions import end_all_sessions, end_member_session
from quanyi.orders import service as orders_service
from quanyi.orders.schemas import OrderRead, RevealResponse
from quanyi.risk.checkout import request_device
from quanyi.web.i18n import pick_locale

__all__ = ["router", "SignInRequest", "sign_in_request", "member_read"]

router = APIRouter(prefix="/api/members", tags=["members"])

OrderNoPath = Annotated[str, Path(min_length=1, max_length=64, description="Order number")]
_LIMITED = {429: {"description": "Too many codes or failed attempts (Retry-After)"}}


@dataclass(frozen=True, slots=True)
class SignInRequest:
    """What every sign-in path needs from the request: where it comes from, the limits, the code key."""

    ip: str
    device: str
    user_agent: str
    locale: str
    limits: members_service.SignInLimits
    secret: bytes
    token: str  # the session token the client came with (ended when it logs in again)


def sign_in_request(ctx: ShopContext, request: Request, locale: str | None = None) -> SignInRequest:
    return SignInRequest(ip=client_ip(request), device=request_device(ctx, request).id or "",
                         user_agent=user_agent(request),
                         locale=locale or pick_locale(request, ctx.settings.default_locale),
                         limits=members_service.SignInLimits.from_settings(ctx.settings),
                         secret=ctx.settings.app_secret.get_secret_value().encode(),
                         token=request_member_token(request)[0])


async def member_read(ctx: ShopContext, member_id: int) -> MemberRead:
    async with ctx.db.read_session() as session:
        member = await members_service.get_member(session=session, member_id=member_id)
        orders = await orders_service.count_member_orders(session=session, member_id=member_id)
    return MemberRead(id=member.id, email=member.email, phone=member.phone, has_password=member.password_hash
                      is not None, locale=member.locale, orders=orders)


async def _signed_in(ctx: ShopContext, request: Request, response: Response,
                     signed: members_service.SignedIn) -> SignedInRead:
    set_member_cookie(response, request, signed.token, days=ctx.settings.member_session_days)
    return SignedInRead(member=await member_read(ctx, signed.member_id), token=signed.token, created=signed.created,
                        attached_orders=signed.attached_orders)


@router.post("/codes", response_model=CodeSentRead, status_code=202, summary="Send a sign-in / sign-up code",
             responses={**_LIMITED, 403: {"description": "verification_unavailable: no code can reach this contact"}})
async def request_code(data: CodeRequest, request: Request, ctx: ContextDep) -> CodeSentRead:
    """The answer is the same whether or not the contact has an account: entering the code logs in, or signs up."""
    r = sign_in_request(ctx, request, data.locale)
    sent = await members_service.request_sign_in_code(
        db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, contact=data.contact, locale=r.locale,
        ip=r.ip, device=r.device)
    return CodeSentRead(code_id=sent.code_id, expires_in_seconds=sent.expires_in_seconds,
                        channel="email" if sent.contact_kind == "email" else "sms")


@router.post("/sessions", response_model=SignedInRead, status_code=201, summary="Log in (or sign up) with a code",
             responses={**_LIMITED, 422: {"description": "code_wrong (attempts_left)"},
                        410: {"description": "code_expired: expired, used, or out of attempts"},
                        403: {"description": "member_disabled"}})
async def log_in_with_code(data: CodeLogin, request: Request, response: Response, ctx: ContextDep) -> SignedInRead:
    r = sign_in_request(ctx, request, data.locale)
    signed = await members_service.sign_in_with_code(
        db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, code_id=data.code_id, code=data.code,
        locale=r.locale, ip=r.ip, device=r.device, user_agent=r.user_agent, replaces=r.token or None)
    return await _signed_in(ctx, request, response, signed)


@router.post("/sessions/password", response_model=SignedInRead, status_code=201, summary="Log in with a password",
             responses={**_LIMITED, 401: {"description": "invalid_credentials (the same for an unknown contact)"}})
async def log_in_with_password(data: PasswordLogin, request: Request, response: Response,
                               ctx: ContextDep) -> SignedInRead:
    r = sign_in_request(ctx, request)
    signed = await members_service.sign_in_with_password(
        db=ctx.db, limiter=ctx.limiter, limits=r.limits, contact=data.contact, password=data.password, ip=r.ip,
        device=r.device, user_agent=r.user_agent, replaces=r.token or None)
    return await _signed_in(ctx, request, response, signed)


@router.delete("/sessions/current", response_model=LoggedOut, summary="Log out (this session)")
async def log_out(member: CurrentMemberDep, request: Request, response: Response, ctx: ContextDep) -> LoggedOut:
    async with ctx.db.transaction() as session:
        ended = await end_member_session(session=session, token=request_member_token(request)[0])
    clear_member_cookie(response, request)
    return LoggedOut(sessions_ended=int(ended))


@router.delete("/sessions", response_model=LoggedOut, summary="Log out everywhere (every session of the account)")
async def log_out_everywhere(member: CurrentMemberDep, request: Request, response: Response,
                             ctx: ContextDep) -> LoggedOut:
    async with ctx.db.transaction() as session:
        ended = await end_all_sessions(session=session, member_id=member.member_id)
    clear_member_cookie(response, request)
    return LoggedOut(sessions_ended=ended)


@router.get("/me", response_model=MemberRead, summary="The logged-in member")
async def me(member: CurrentMemberDep, ctx: ContextDep) -> MemberRead:
    return await member_read(ctx, member.member_id)


@router.get("/me/sessions", response_model=list[SessionRead], summary="Open sessions (devices) of the account")
async def sessions(member: CurrentMemberDep, ctx: ContextDep) -> list[SessionRead]:
    async with ctx.db.read_session() as session:
        rows = await members_service.open_sessions(session=session, member_id=member.member_id)
    return [SessionRead(id=s.id, current=s.id == member.session_id, method=s.method.value, created_at=s.created_at,
                        last_seen_at=s.last_seen_at, expires_at=s.expires_at, ip=s.ip, user_agent=s.user_agent)
            for s in rows]


@router.put("/me/password", response_model=LoggedOut, summary="Set or change the password (other sessions end)",
            responses={401: {"description": "invalid_credentials: the current password is wrong"},
                       422: {"description": "password_rejected"}})
async def change_password(data: PasswordChange, member: CurrentMemberDep, ctx: ContextDep) -> LoggedOut:
    ended = await members_service.change_password(db=ctx.db, login=member, new_password=data.password,
                                                  current_password=data.current_password)
    return LoggedOut(sessions_ended=ended)


@router.post("/me/contacts/codes", response_model=CodeSentRead, status_code=202,
             summary="Send a code to a contact to add to the account", responses=_LIMITED)
async def request_contact_code(data: ContactCodeRequest, member: CurrentMemberDep, request: Request,
                               ctx: ContextDep) -> CodeSentRead:
    r = sign_in_request(ctx, request, data.locale)
    sent = await members_service.request_contact_code(
        db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, login=member, contact=data.contact,
        locale=r.locale, ip=r.ip, device=r.device)
    return CodeSentRead(code_id=sent.code_id, expires_in_seconds=sent.expires_in_seconds,
                        channel="email" if sent.contact_kind == "email" else "sms")


@router.post("/me/contacts", response_model=ContactAdded, summary="Add the proved contact; attach its guest orders",
             responses={**_LIMITED, 409: {"description": "contact_taken: another account has it"}})
async def add_contact(data: ContactVerify, member: CurrentMemberDep, request: Request,
                      ctx: ContextDep) -> ContactAdded:
    r = sign_in_request(ctx, request)
    attached = await members_service.add_contact_with_code(
        db=ctx.db, limiter=ctx.limiter, limits=r.limits, secret=r.secret, login=member, code_id=data.code_id,
        code=data.code, ip=r.ip, device=r.device)
    return ContactAdded(member=await member_read(ctx, member.member_id), attached_orders=attached)


@router.get("/me/orders", response_model=MemberOrderPage, summary="My orders, newest first")
async def my_orders(member: CurrentMemberDep, ctx: ContextDep,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20,
                    before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> MemberOrderPage:
    async with ctx.db.read_session() as session:
        orders = await orders_service.member_orders(session=session, member_id=member.member_id, limit=limit + 1,
                                                    before_id=before_id)
        reads = [await orders_service.describe_order(session=session, order=o) for o in orders[:limit]]
    more = len(orders) > limit
    return MemberOrderPage(orders=reads, next_before_id=orders[limit - 1].id if more else None)


@router.get("/me/orders/{order_no}", response_model=OrderRead, summary="One of my orders")
async def my_order(order_no: OrderNoPath, member: CurrentMemberDep, ctx: ContextDep) -> OrderRead:
    async with ctx.db.read_session() as session:
        order = await orders_service.get_member_order(session=session, member_id=member.member_id,
                                                      order_no=order_no)
        return await orders_service.describe_order(session=session, order=order)


@router.post("/me/orders/{order_no}/reveal", response_model=RevealResponse,
             summary="Show the card keys of one of my orders (every call is audited)")
async def reveal_my_order(order_no: OrderNoPath, member: CurrentMemberDep, request: Request,
                          ctx: ContextDep) -> RevealResponse:
    async with ctx.db.transaction() as session:
        order = await orders_service.get_member_order(session=session, member_id=member.member_id,
                                                      order_no=order_no)
        keys = await orders_service.reveal_order_keys(session=session, cipher=ctx.cipher, order=order, channel="api",
                                                      ip=client_ip(request), user_agent=user_agent(request))
        guide = await catalog_service.redemption_guide(session=session, product_id=order.product_id)
    return RevealResponse(order_no=order.order_no, keys=keys, redemption_guide_html=render_guide(guide))
