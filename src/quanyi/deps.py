"""Typed request dependencies shared by every feature's routes."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.context import ShopContext
from quanyi.errors import DomainError

__all__ = ["ContextDep", "SessionDep", "ReadSessionDep", "AdminDep", "client_ip", "user_agent", "base_url",
           "NotAuthorized"]


class NotAuthorized(DomainError):
    code = "not_authorized"


def get_context(request: Request) -> ShopContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


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

_bearer = HTTPBearer(auto_error=False, description="Admin API token (QUANYI_ADMIN_TOKEN)")


def _require_admin(
    ctx: ContextDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    expected = ctx.settings.admin_token.get_secret_value()
    given = credentials.credentials if credentials else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorized("a valid admin token is required (Authorization: Bearer <token>)")
    return "admin"


AdminDep = Annotated[str, Depends(_require_admin)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:512]


def base_url(request: Request, ctx: ShopContext) -> str:
    """Where the outside world reaches us: configured, else the URL this request came in on."""
    return (ctx.settings.public_base_url or str(request.base_url)).rstrip("/")
