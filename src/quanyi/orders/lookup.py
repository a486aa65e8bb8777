"""Order lookup without an account (免登录查单): order number plus the contact or the query password.

Failures are counted against the guesser before the answer is checked, so guessing cannot win, not even with
many requests in parallel: per client address and per device (across all orders), and per address / device on
one order. A stranger's failures therefore never lock the buyer out: the right contact from another client is
still checked. All guessers together get a larger budget per order (a backstop against guessing from many
addresses at once); only past that is the order refused to everyone for the window. A wrong contact and an
unknown order number get the same answer. Re-exported by `orders.service`, which callers use.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from sqlalchemy import select

from quanyi.config import Settings
from quanyi.db import Database
from quanyi.errors import DomainError, NotFound
from quanyi.orders.contact import normalize_contact
from quanyi.orders.models import Order
from quanyi.orders.numbers import normalize_order_no
from quanyi.passwords import hash_password, password_matches
from quanyi.risk.service import RateLimiter, reserve_attempt

__all__ = ["LookupFailed", "LookupRateLimited", "LookupLimits", "hash_query_password", "lookup_order"]

logger = logging.getLogger(__name__)


class LookupFailed(NotFound):
    code = "order_lookup_failed"


class LookupRateLimited(DomainError):
    code = "too_many_attempts"


@dataclass(frozen=True)
class LookupLimits:
    window_seconds: int
    max_failures_per_ip: int  # one address, all orders
    max_failures_per_order: int  # all guessers together on one order (the distributed-guessing backstop)
    max_failures_per_device: int = 20  # one device, all orders
    max_failures_per_guesser_per_order: int = 5  # one address or device on one order

    @classmethod
    def from_settings(cls, settings: Settings) -> LookupLimits:
        return cls(settings.lookup_window_seconds, settings.lookup_max_failures_per_ip,
                   settings.lookup_max_failures_per_order, settings.lookup_max_failures_per_device,
                   settings.lookup_max_failures_per_guesser_per_order)


async def hash_query_password(password: str) -> str:
    """Argon2 hash of a buyer's lookup password."""
    return await hash_password(password)


async def lookup_order(
    *,
    db: Database,
    limiter: RateLimiter,
    limits: LookupLimits,
    order_no: str,
    contact: str | None,
    query_password: str | None,
    ip: str,
    device: str = "",
) -> Order:
    """Find an order by its number plus the contact or query password. Failures are counted per guesser (IP,
    device; on this order and overall) and per order; past a limit even a correct answer is refused, so
    guessing cannot win, while the buyer on a clean client is not locked out by someone else's guesses.

    Runs its own short read: no connection is held while the password is checked or the counters are
    written, so a burst of lookups cannot starve the pool waiting for a second connection each."""
    canonical = normalize_order_no(order_no) or order_no.strip().upper()[:32]
    per_guesser = limits.max_failures_per_guesser_per_order
    keys = [(f"lookup:ip:{ip}", limits.max_failures_per_ip), (f"lookup:order-ip:{canonical}:{ip}", per_guesser)]
    if device:
        keys += [(f"lookup:device:{device}", limits.max_failures_per_device),
                 (f"lookup:order-device:{canonical}:{device}", per_guesser)]
    keys.append((f"lookup:order:{canonical}", limits.max_failures_per_order))
    # Counted before the answer is checked, so parallel guesses cannot all pass the limit at once.
    slot = await reserve_attempt(limiter, keys, window_seconds=limits.window_seconds)
    if slot is None:
        raise LookupRateLimited("too many failed lookups; try again later", retry_after=limits.window_seconds)

    async with db.read_session() as session:
        order = await session.scalar(select(Order).where(Order.order_no == canonical))
    matched = False
    if contact:
        try:
            _, wanted = normalize_contact(contact)
        except ValueError:
            wanted = ""
        matched = order is not None and hmac.compare_digest(order.contact.encode(), wanted.encode())
    if not matched and query_password:
        stored = order.query_password_hash if order is not None else None
        matched = await password_matches(stored, query_password) and order is not None
    if not matched or order is None:
        logger.info("order lookup failed: order_no=%s ip=%s", canonical, ip)
        raise LookupFailed("no order matches this order number and contact or password")  # its slot stays taken
    await slot.give_back()
    return order
