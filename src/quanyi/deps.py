"""Typed request dependencies shared by every feature's routes."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.context import ShopContext
from quanyi.errors import DomainError
from quanyi.scope import Scope
from quanyi.staff import service as staff_service
from quanyi.staff.service import ADMIN, PERMISSIONS, PermissionDenied, Principal

__all__ = ["ContextDep", "SessionDep", "ReadSessionDep", "AdminDep", "PrincipalDep", "BearerDep",
           "ScopeDep", "PlatformAdminDep", "PlatformOnly",
           "require_permission", "client_ip", "user_agent", "NotAuthorized", "NO_STORE", "NO_STORE_HEADERS", "no_store"]


class NotAuthorized(DomainError):
    code = "not_authorized"


async def get_context(request: Request) -> ShopContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


# The dependencies here are `async def` although none awaits anything: FastAPI runs a plain `def` dependency in
# a worker thread, a hand-off that cost more than the whole refused checkout (docs/PERFORMANCE.md, issue 15).
ContextDep = Annotated[ShopContext, Depends(get_context)]


async def _write_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    async with ctx.db.transaction() as session:
        yield session


async def _read_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    async with ctx.db.read_session() as session:
        yield session


# scope="function": the unit of work commits before the response is sent, so a 2xx means "committed".
SessionDep = Annotated[AsyncSession, Depends(_write_session, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]

_bearer = HTTPBearer(auto_error=False,
                     description="Admin API token (QUANYI_ADMIN_TOKEN) or a staff session token from /api/staff/login")


async def _principal(
    ctx: ContextDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Who calls: the admin token acts as "admin" with every permission; else an open staff session."""
    given = credentials.credentials if credentials else ""
    expected = ctx.settings.admin_token.get_secret_value()
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return Principal(name="admin", permissions=frozenset({ADMIN}))
    if given:
        async with ctx.db.read_session() as session:
            principal = await staff_service.principal_for_token(session=session, token=given)
        if principal is not None:
            return principal
    raise NotAuthorized("a valid admin token or staff session is required (Authorization: Bearer <token>)")


PrincipalDep = Annotated[Principal, Depends(_principal)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _require_admin(principal: PrincipalDep) -> str:
    # Staff reach the general admin endpoints only with the "admin" permission; narrower permissions
    # open only the endpoints that ask for them through require_permission().
    if not principal.can(ADMIN):
        raise PermissionDenied("this needs the admin permission", permission=ADMIN)
    return principal.name


def require_permission(permission: str) -> Any:
    """Dependency for `Annotated[str, require_permission("card_keys.reveal")]`: the caller's name, or 401/403."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def check(principal: PrincipalDep) -> str:
        if not principal.can(permission):
            raise PermissionDenied(f"this needs the {permission} permission", permission=permission)
        return principal.name

    return Depends(check)


AdminDep = Annotated[str, Depends(_require_admin)]


async def _scope(principal: PrincipalDep) -> Scope:
    return Scope(principal.merchant_id)


# THE tenant scope of an admin request (see quanyi.scope): platform staff and the admin token see every merchant,
# a merchant's staff only theirs. Every admin route that reads or changes owned objects takes it and hands it to
# the service, which filters by it (another merchant's object is "not found", never "forbidden"). It does not
# authorize anything by itself: combine it with AdminDep / require_permission(...) as before.
ScopeDep = Annotated[Scope, Depends(_scope)]


class PlatformOnly(PermissionDenied):
    code = "platform_only"


async def _require_platform_admin(principal: PrincipalDep) -> str:
    # Platform configuration (payment gateways, risk rules, categories, the platform's books, merchants):
    # platform staff with the admin permission, never a merchant's staff, whatever their permissions.
    if principal.merchant_id is not None:
        raise PlatformOnly("only platform staff can do this")
    return await _require_admin(principal)


PlatformAdminDep = Annotated[str, Depends(_require_platform_admin)]


NO_STORE_HEADERS = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))  # Pragma: HTTP/1.0 caches


def no_store(response: Response) -> None:
    for name, value in NO_STORE_HEADERS:
        response.headers[name.decode()] = value.decode()


async def _no_store(response: Response) -> None:
    no_store(response)


# On routes whose answer carries a secret (card keys, access tokens): no browser, proxy or CDN keeps a copy.
# Rendered pages get the same header from web.templating.render.
NO_STORE = Depends(_no_store)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:512]

