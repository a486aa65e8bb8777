"""Extension points of buyer accounts for other features (coupons, points, tiers, promoters):

- `on_member_created(handler)`: run `async def handler(*, session, member_id, contact_kind, contact, now)` in the
  transaction that makes a new account (a sign-up gift coupon, binding a referral). It raising rolls the sign-up back.
- `register_account_section(AccountSection(...))`: a card on the member's account page (/account), drawn from the
  feature's own template with what its `load` returns (None hides it for this member).

Register at import time of the feature's module; registering the same key again replaces the earlier one (a
reloaded module), so nothing is shown twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["MemberCreatedHandler", "AccountSection", "on_member_created", "member_created_handlers",
           "register_account_section", "account_sections"]


class MemberCreatedHandler(Protocol):
    async def __call__(self, *, session: AsyncSession, member_id: int, contact_kind: str, contact: str,
                       now: dt.datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class AccountSection:
    """One card of the account page. `title`: per locale ("zh-CN", "en"). `order`: lower first (orders are 10).
    `load(session=, member=)` -> the template's `section` context, or None to leave the card out.
    `template`: a template path under the storefront's template directory (web/templates)."""

    key: str
    title: dict[str, str]
    load: Callable[..., Awaitable[dict[str, Any] | None]]
    template: str
    order: int = 50
    href: str | None = None  # the section's own page, linked from the card title


_created_handlers: dict[str, MemberCreatedHandler] = {}
_sections: dict[str, AccountSection] = {}


def on_member_created(handler: MemberCreatedHandler) -> MemberCreatedHandler:
    """Register a sign-up handler (usable as a decorator)."""
    _created_handlers[f"{handler.__module__}.{getattr(handler, '__qualname__', repr(handler))}"] = handler
    return handler


def member_created_handlers() -> list[MemberCreatedHandler]:
    return list(_created_handlers.values())


def register_account_section(section: AccountSection) -> None:
    _sections[section.key] = section


def account_sections() -> list[AccountSection]:
    return sorted(_sections.values(), key=lambda s: (s.order, s.key))
