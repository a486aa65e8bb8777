"""Who the buyer is: `CurrentMemberDep` (logged in, else 401 `member_login_required`) and `OptionalMemberDep`
(a member or None), for storefront pages and the API alike.

The session token comes from the `X-Member-Token` header (apps) or the `qy_member` cookie (browsers). A cookie is
sent by the browser whatever page made the request, so on an unsafe method (POST, PUT, PATCH, DELETE) a session
from the cookie counts only with the CSRF check passed: `CurrentMemberDep` answers 403 `csrf_failed` otherwise,
and `OptionalMemberDep` treats the request as a guest's (e.g. `POST /api/orders` from a script: a guest order).
`OptionalMemberTokenDep` is `OptionalMemberDep` for a route with a write transaction of its own (the checkout):
the member is looked up in that transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.deps import ContextDep, NotAuthorized
from quanyi.members.sessions import MemberLogin, due_for_touch, member_login, touch
from quanyi.web.csrf import CsrfFailed, register_session_cookie, require_csrf

__all__ = ["MEMBER_COOKIE", "MEMBER_HEADER", "CurrentMemberDep", "OptionalMemberDep", "OptionalMemberTokenDep",
           "MemberToken", "MemberLoginRequired",
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


async def _usable_token(request: Request, *, strict: bool) -> str:
    """The request's member session token, "" without one; a cookie session on an unsafe request without a valid
    CSRF token raises CsrfFailed (`strict`) or counts as none."""
    token, from_cookie = request_member_token(request)
    if token and from_cookie and request.method not in _SAFE_METHODS:
        try:
            await require_csrf(request)
        except CsrfFailed:
            if strict:
                raise
            return ""
    return token


async def resolve_member(request: Request, ctx: ContextDep, *, strict: bool) -> MemberLogin | None:
    """The request's member. `strict`: a cookie session on an unsafe request without a valid CSRF token raises
    CsrfFailed (else it counts as no session)."""
    token = await _usable_token(request, strict=strict)
    if not token:
        return None
    async with ctx.db.read_session() as session:
        login = await member_login(session=session, token=token)
    if login is not None and due_for_touch(login):
        async with ctx.db.transaction() as session:
            await touch(session=session, login=login)
    return login


@dataclass(frozen=True, slots=True)
class MemberToken:
    """A request's member session token, not looked up yet: a checkout looks it up in its own transaction
    (`login`) instead of a read transaction of its own before it. The CSRF rule of OptionalMemberDep applies."""

    token: str

    async def login(self, session: AsyncSession) -> MemberLogin | None:
        """The logged-in member (None: a guest), in the caller's write transaction (which records the use)."""
        if not self.token:
            return None
        login = await member_login(session=session, token=self.token)
        if login is not None and due_for_touch(login):
            await touch(session=session, login=login)
        return login


async def _member_token(request: Request) -> MemberToken:
    return MemberToken(await _usable_token(request, strict=False))


async def _optional_member(request: Request, ctx: ContextDep) -> MemberLogin | None:
    return await resolve_member(request, ctx, strict=False)


async def _current_member(request: Request, ctx: ContextDep) -> MemberLogin:
    login = await resolve_member(request, ctx, strict=True)
    if login is None:
        raise MemberLoginRequired("log in to your account first (the qy_member cookie or the X-Member-Token header)")
    return login


OptionalMemberDep = Annotated[MemberLogin | None, Depends(_optional_member)]
OptionalMemberTokenDep = Annotated[MemberToken, Depends(_member_token)]
CurrentMemberDep = Annotated[MemberLogin, Depends(_current_member)]
