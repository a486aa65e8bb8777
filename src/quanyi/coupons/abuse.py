"""Coupon abuse (薅羊毛): one person farming coupons with many accounts is refused or held for review.

Counted with the risk control's sliding-window counters (risk.counters: Redis or the database), keyed per client
address, device (risk.device) and payer account (hashed, risk.rules.payer_hash):
- claims per address / device per day: past the limit, 429 `coupon_claims_limited` (Retry-After);
- distinct members using new-member coupons (新人券) per address / device in a week: past the limit the checkout is
  refused (403 `coupon_refused_by_risk`; counted in the checkout's transaction, so only orders placed count),
  and the claim of a new-member coupon too;
- distinct members whose new-member-coupon orders one payer account paid in a week: past the limit the paid order
  is held for review (风控审核) instead of delivered.
Limits: Settings.coupon_* (0 turns one off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.coupons.models import Coupon, CouponRedemption
from quanyi.coupons.redemption import quoted_coupons
from quanyi.errors import DomainError
from quanyi.orders.models import Order
from quanyi.risk import engine as risk_engine
from quanyi.risk.rules import payer_hash

if TYPE_CHECKING:
    from quanyi.context import ShopContext

__all__ = ["CouponClaimsLimited", "CouponRefusedByRisk", "check_claim", "check_use", "hold_reason_at_payment"]

DAY, WEEK = 86_400, 7 * 86_400


class CouponClaimsLimited(DomainError):
    code = "coupon_claims_limited"  # 429 with Retry-After (app.py)


class CouponRefusedByRisk(DomainError):
    code = "coupon_refused_by_risk"  # 403 (app.py)


def _counters(ctx: ShopContext) -> Any:
    return ctx.risk.counters


async def _new_members_over(ctx: ShopContext, member_id: int, ip: str, device: str, now: float,
                            session: AsyncSession | None = None) -> bool:
    """Record this member against the address and device; True if either has seen too many members. With a
    session: in its transaction (rolled back with it)."""
    limits = {f"coupon_new_member:ip:{ip}": ctx.settings.coupon_new_members_per_ip,
              f"coupon_new_member:device:{device}": ctx.settings.coupon_new_members_per_device}
    limits = {key: limit for key, limit in limits.items() if limit and not key.endswith(":")}
    if not limits:
        return False
    counters = _counters(ctx)
    await counters.record([(key, str(member_id)) for key in limits], at=now, session=session)
    counts = [await counters.count(key, window_seconds=WEEK, at=now, session=session) for key in limits]
    return any(n > limit for n, limit in zip(counts, limits.values(), strict=True))


async def check_claim(ctx: ShopContext, *, member_id: int, ip: str, device: str, new_members_only: bool = False,
                      now: float | None = None) -> None:
    """Count a claim; raise CouponClaimsLimited past the per-address / per-device limits, CouponRefusedByRisk when
    a new-member coupon is claimed where too many members were seen."""
    at = now if now is not None else ctx.risk.now().timestamp()
    limits = {f"coupon_claim:ip:{ip}": ctx.settings.coupon_claims_per_ip_per_day,
              f"coupon_claim:device:{device}": ctx.settings.coupon_claims_per_device_per_day}
    limits = {key: limit for key, limit in limits.items() if limit and not key.endswith(":")}
    if limits:
        counts = await _counters(ctx).hit_many(list(limits), window_seconds=DAY, at=at)
        if any(n > limit for n, limit in zip(counts, limits.values(), strict=True)):
            raise CouponClaimsLimited("too many coupons claimed from here today; try again tomorrow",
                                      retry_after=DAY)
    if new_members_only and await _new_members_over(ctx, member_id, ip, device, at):
        raise CouponRefusedByRisk("this new-member coupon cannot be claimed from this device or network")


async def check_use(ctx: ShopContext, *, session: AsyncSession, order: Order, ip: str, device: str) -> None:
    """In the checkout's transaction, once `order` is placed: a new-member coupon on it, used where too many
    members were seen, refuses the checkout (raises CouponRefusedByRisk: the transaction rolls back, nothing
    is placed or counted). Answered from the coupons the order was priced with (`redemption.quoted_coupons`):
    no statement unless one of them is for new members."""
    if order.member_id is None or not order.coupon_discount_cents:
        return  # guests cannot use new-member coupons (pricing says member_required)
    if not any(coupon.new_members_only for coupon in quoted_coupons(session)):
        return
    if await _new_members_over(ctx, order.member_id, ip, device, ctx.risk.now().timestamp(), session=session):
        raise CouponRefusedByRisk("new-member coupons cannot be used from this device or network any more")


async def hold_reason_at_payment(*, session: AsyncSession, order: Order, payer_account: str | None) -> str | None:
    """A paid order with a new-member coupon: count its member against the payer account; past the limit, the
    reason to hold it for review (the caller holds the order lock)."""
    runtime = risk_engine.runtime_of(session)
    if runtime is None or not payer_account or order.member_id is None or not order.coupon_discount_cents:
        return None
    limit = runtime.coupon_new_members_per_payer
    new_member = await session.scalar(select(Coupon.id).join(CouponRedemption, CouponRedemption.coupon_id == Coupon.id)
                                      .where(CouponRedemption.order_id == order.id,
                                             Coupon.new_members_only.is_(True)))
    if not limit or new_member is None:
        return None
    key, at = f"coupon_new_member:payer:{payer_hash(runtime.secret, payer_account)}", runtime.now().timestamp()
    await runtime.counters.record([(key, str(order.member_id))], at=at, session=session)
    if await runtime.counters.count(key, window_seconds=WEEK, at=at, session=session) > limit:
        return "coupon_farming_payer: one payer account paid new-member coupons of too many members"
    return None
