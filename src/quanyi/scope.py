"""Tenant scope (商户范围): whose objects a caller may see and change.

The platform (平台) hosts merchants (商户); its own store is the merchant row PLATFORM_MERCHANT_ID (code
`platform`, 自营), so a single-shop install is simply a platform with one merchant. Every owned row carries
`merchant_id` (see README "Merchants"). A `Scope` is what a caller may act on:

- `Scope(None)` (PLATFORM): platform staff and the admin token, who see every merchant's objects;
- `Scope(merchant_id)`: a merchant's staff, who see only their merchant's objects.

Services take `scope` and filter with it; an object outside the scope raises the same NotFound as an
object that does not exist (never 403), so a merchant cannot learn another merchant's ids. Routes get the
caller's scope from `quanyi.deps.ScopeDep`, the one dependency for it; CLI commands from `--merchant`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Integer, true
from sqlalchemy.orm import mapped_column

__all__ = ["PLATFORM_MERCHANT_ID", "PLATFORM_MERCHANT_CODE", "Scope", "PLATFORM", "owner_column"]

# The platform's own store (自营), created by the merchants migration. Rows made without naming a
# merchant belong to it, which is what keeps a single-shop install working unchanged.
PLATFORM_MERCHANT_ID = 1
PLATFORM_MERCHANT_CODE = "platform"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose objects a caller may see: every merchant's (`merchant_id` None) or one merchant's."""

    merchant_id: int | None = None

    @property
    def is_platform(self) -> bool:
        return self.merchant_id is None

    def sees(self, merchant_id: int | None) -> bool:
        """May this scope see an object owned by `merchant_id`? (None: an object of no merchant.)"""
        return self.merchant_id is None or merchant_id == self.merchant_id

    def where(self, column: Any) -> ColumnElement[bool]:
        """SQL condition restricting `column` (a merchant_id column) to this scope."""
        return true() if self.merchant_id is None else column == self.merchant_id

    def owner(self, requested: int | None = None) -> int:
        """The merchant a new object belongs to: a merchant's staff create for their own merchant only;
        the platform for the merchant it names, else its own store. The caller has checked that a
        requested merchant is visible (see merchants.service.resolve_owner)."""
        if self.merchant_id is not None:
            return self.merchant_id
        return requested if requested is not None else PLATFORM_MERCHANT_ID


PLATFORM = Scope(None)


def owner_column(*, index: bool = True) -> Any:
    """The `merchant_id` column of an owned table: NOT NULL, the platform's own store unless set."""
    return mapped_column(Integer, ForeignKey("merchants_merchant.id"), index=index, default=PLATFORM_MERCHANT_ID,
                         server_default=str(PLATFORM_MERCHANT_ID))
