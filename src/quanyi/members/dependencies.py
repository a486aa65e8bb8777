"""Who the buyer is: `CurrentMemberDep` (logged in, else 401 `member_login_required`) and `OptionalMemberDep`
(a member or None), for storefront pages and the API alike.

The session token comes from the `X-Member-Token` header (apps) or the `qy_member` cookie (browsers). A cookie is
sent by the browser whatever page made the request, so on an unsafe method (POST, PUT, PATCH, DELETE) a session
from the cookie counts only with the CSRF check passed: `CurrentMemberDep` answers 403 `csrf_failed` otherwise,
and `OptionalMemberDep` treats the request as a guest's (e.g. `POST /api/orders` from a script: a guest order).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from quanyi.deps import ContextDep, NotAuthorized
from quanyi.members.sessions import MemberLogin, due_for_touch, member_login, touch
from quanyi.web.csrf import CsrfFailed, register_session_cookie, require_csrf

__all__ = ["MEMBER_COOKIE", "MEMBER_HEADER", "CurrentMemberDep", "OptionalMemberDep", "MemberLoginRequired",
           "request_member_token", "set_member_cookie", "clear_member_cookie", "resolve_member"]

MEMBER_COOKIE = "qy_member"
MEMBER_HEADER = "X-Member-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

register_session_cookie(MEMBER_COOKIE)  # CSRF tokens change when a member logs in or out


class MemberLoginRequired(NotAuthorized):
    code = "member_login_required"


def request_member_token(request: Request) -> tuple[str, bool]:
    """(token, came from the cookie); ("", False) when the request carries none."""
    header = request.headers.get(MEMBER_HEADER.lower(), "").strip()
    if header:
        return header, False
    cookie = request.cookies.get(MEMBER_COOKIE, "")
    return cookie, bool(cookie)


def set_member_cookie(response: Response, request: Request, token: str, *, days: float) -> None:
    response.set_cookie(MEMBER_COOKIE, token, max_age=int(days * 86400), httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


def clear_member_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(MEMBER_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


async def resolve_member(request: Request, ctx: ContextDep, *, strict: bool) -> MemberLogin | None:
    """The request's member. `strict`: a cookie session on an unsafe request without a valid CSRF token raises
    CsrfFailed (else it counts as no session)."""
    token, from_cookie = request_member_token(request)
    if not token:
        return None
    if from_cookie and request.method not in _SAFE_METHODS:
        try:
            await require_csrf(request)
        except CsrfFailed:
            if strict:
                raise
            return None
    async with ctx.db.read_session() as session:
        login = await member_login(session=session, token=token)
    if login is not None and due_for_touch(login):
        async with ctx.db.transaction() as session:
            await touch(session=session, login=login)
    return login


async def _optional_member(request: Request, ctx: ContextDep) -> MemberLogin | None:
    return await resolve_member(request, ctx, strict=False)


async def _current_member(request: Request, ctx: ContextDep) -> MemberLogin:
    login = await resolve_member(request, ctx, strict=True)
    if login is None:
        raise MemberLoginRequired("log in to your account first (the qy_member cookie or the X-Member-Token header)")
    return login


OptionalMemberDep = Annotated[MemberLogin | None, Depends(_optional_member)]
CurrentMemberDep = Annotated[MemberLogin, Depends(_current_member)]
