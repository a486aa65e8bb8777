"""The pure arithmetic of a price (no database): every step in integer cents.

Rounding rules (one place, tested with Hypothesis in tests/pricing/):
- A percentage (basis points, 1 bp = 0.01 %) of an amount rounds half-up to the cent, once per order line
  (`percent_of`): 15 % of 333 cents is 49.95 -> 50 cents.
- A discount never takes the payable below `MIN_PAYABLE_CENTS` (one cent): gateways refuse to charge nothing,
  and a coupon or points never make a paid order free. A line that costs 0 at its list price stays 0.
- A member price is never above the price source's unit price; each discount is capped by what is left,
  so the steps always add up: payable = list total − member − coupons − points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quanyi.money import MAX_AMOUNT_CENTS, line_total

__all__ = ["MIN_PAYABLE_CENTS", "percent_of", "payable_floor", "capped_discount", "CouponDiscount", "PriceBreakdown",
           "build_breakdown"]

MIN_PAYABLE_CENTS = 1
BPS = 10_000


def percent_of(amount_cents: int, bps: int) -> int:
    """`bps` basis points of `amount_cents`, rounded half-up to the cent (amounts are never negative)."""
    if amount_cents < 0 or bps < 0:
        raise ValueError("amount and rate must not be negative")
    return (amount_cents * bps + BPS // 2) // BPS


def payable_floor(list_total_cents: int) -> int:
    """The least an order line may cost after discounts: one cent, or nothing if it was free to begin with."""
    return min(MIN_PAYABLE_CENTS, list_total_cents)


def capped_discount(wanted_cents: int, remaining_cents: int, floor_cents: int) -> int:
    """What a discount may really take off `remaining_cents` without going below the floor (never negative)."""
    return max(0, min(wanted_cents, remaining_cents - floor_cents))


@dataclass(frozen=True, slots=True)
class CouponDiscount:
    """One coupon taken off the order: which, how (grant = the member's own coupon or a single-use code)."""

    coupon_id: int
    name: str
    kind: str
    amount_cents: int
    code: str | None = None
    grant_id: int | None = None


@dataclass(frozen=True, slots=True)
class PriceBreakdown:
    """What an order costs, step by step, in integer cents. Stored on the order (its discount columns)."""

    currency: str
    quantity: int
    price_source: str  # list | reseller | enterprise: where the unit price came from
    unit_price_cents: int  # the price source's unit price
    member_unit_price_cents: int  # after the member price step (== unit_price_cents without one)
    member_label: str | None = None  # e.g. the member level that gave the member price
    coupons: tuple[CouponDiscount, ...] = ()
    points_used: int = 0
    points_discount_cents: int = 0
    notes: tuple[str, ...] = field(default=())  # why a requested coupon/points did not apply (shown in previews)

    @property
    def list_total_cents(self) -> int:
        return line_total(self.unit_price_cents, self.quantity)

    @property
    def member_discount_cents(self) -> int:
        return (self.unit_price_cents - self.member_unit_price_cents) * self.quantity

    @property
    def subtotal_cents(self) -> int:
        """After the member price, before coupons and points."""
        return self.member_unit_price_cents * self.quantity

    @property
    def coupon_discount_cents(self) -> int:
        return sum(c.amount_cents for c in self.coupons)

    @property
    def payable_cents(self) -> int:
        return self.subtotal_cents - self.coupon_discount_cents - self.points_discount_cents

    def as_dict(self) -> dict[str, object]:
        return {
            "currency": self.currency, "quantity": self.quantity, "price_source": self.price_source,
            "unit_price_cents": self.unit_price_cents, "list_total_cents": self.list_total_cents,
            "member_unit_price_cents": self.member_unit_price_cents, "member_label": self.member_label,
            "member_discount_cents": self.member_discount_cents, "subtotal_cents": self.subtotal_cents,
            "coupons": [{"coupon_id": c.coupon_id, "name": c.name, "kind": c.kind, "code": c.code,
                         "amount_cents": c.amount_cents} for c in self.coupons],
            "coupon_discount_cents": self.coupon_discount_cents, "points_used": self.points_used,
            "points_discount_cents": self.points_discount_cents, "payable_cents": self.payable_cents,
            "notes": list(self.notes),
        }


def build_breakdown(*, currency: str, quantity: int, price_source: str, unit_price_cents: int,
                    member_unit_price_cents: int | None = None, member_label: str | None = None,
                    coupons: tuple[CouponDiscount, ...] = (), points_used: int = 0,
                    points_discount_cents: int = 0, notes: tuple[str, ...] = ()) -> PriceBreakdown:
    """Assemble a breakdown, enforcing the rules above; raises ValueError if a step breaks them
    (the service's steps cap themselves, so this only fires on a programming error)."""
    if quantity < 1 or unit_price_cents < 0 or line_total(unit_price_cents, quantity) > MAX_AMOUNT_CENTS:
        raise ValueError("quantity must be >= 1 and the unit price not negative")
    member = unit_price_cents if member_unit_price_cents is None else member_unit_price_cents
    if not 0 <= member <= unit_price_cents:
        raise ValueError("a member price must be between 0 and the unit price")
    breakdown = PriceBreakdown(currency=currency, quantity=quantity, price_source=price_source,
                               unit_price_cents=unit_price_cents, member_unit_price_cents=member,
                               member_label=member_label, coupons=coupons, points_used=points_used,
                               points_discount_cents=points_discount_cents, notes=notes)
    if any(c.amount_cents < 0 for c in coupons) or points_discount_cents < 0 or points_used < 0:
        raise ValueError("discounts must not be negative")
    discounted = breakdown.member_discount_cents + breakdown.coupon_discount_cents + points_discount_cents
    if discounted and breakdown.payable_cents < payable_floor(breakdown.list_total_cents):
        raise ValueError("discounts take the payable below the floor")
    return breakdown
