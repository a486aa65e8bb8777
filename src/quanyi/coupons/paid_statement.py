"""The coupons' part of the payment notification's one statement on PostgreSQL (payments/express.py): an order
with coupons is delivered by the same statement as a plain one, its reserved coupons used with it.

Two SQL fragments for `express._PG_LOCK_AND_DELIVER`, written against its CTEs (`found`: the locked order and
payment; `go`: the row when it plainly takes the express lane, with `coupons`: whether the order has any;
`delivered`: the order, once its keys are sold):

- `NO_NEW_MEMBER_COUPON_TO_COUNT`, a condition of `go`: an order with a coupon for new members only is left to
  the general way when the per-payer limit is on (coupons.abuse.hold_reason_at_payment counts its payer and may
  hold it), as `express.takes_express_lane` asks; the coupon tables are read only for an order with coupons (the
  condition's first term is true for every other);
- `used_ctes`: the order's reserved redemptions used, and a member's own coupons (grants) they took, as
  coupons.redemption.confirm_coupons does on payment; only for a delivered order with coupons (a one-time filter:
  a plain order's statement executes no scan of a coupon table, tests/payments/test_marketing_notification.py).

What the coupons' take at checkout counted (the coupon's taken count, the member's tally) does not change on
payment: nothing else to write. Points spent were taken at checkout, points earned and the level are the ledger
worker's (ledger.deferred), the member price is in the order's total: none of them writes at payment.
"""

from __future__ import annotations

__all__ = ["NO_NEW_MEMBER_COUPON_TO_COUNT", "USED_WHEN_DELIVERED", "used_ctes", "PARTS"]

# Bind parameter `new_member_limit`: coupons.abuse's per-payer limit is on (`RiskRuntime.coupon_new_members_per_payer`).
NO_NEW_MEMBER_COUPON_TO_COUNT = """(COALESCE(coupon_discount_cents, 0) = 0 OR NOT CAST(:new_member_limit AS boolean)
            OR NOT EXISTS (SELECT 1 FROM coupons_redemption JOIN coupons_coupon
                               ON coupons_coupon.id = coupons_redemption.coupon_id
                           WHERE coupons_redemption.order_id = found.order_id
                               AND coupons_coupon.new_members_only IS true))"""


def used_ctes(only_if: str) -> str:
    """The CTEs `used` (redemptions) and `grants` (the member's own coupons), each also conditioned on `only_if`
    (an uncorrelated SQL condition: PostgreSQL evaluates it once, before scanning). Bind parameters: `ts`,
    `redemption_reserved`, `redemption_used`, `grant_used`."""
    return """,
used AS (
    UPDATE coupons_redemption SET status = :redemption_used, updated_at = CAST(:ts AS timestamptz)
    WHERE order_id = (SELECT id FROM delivered) AND status = :redemption_reserved AND ONLY_IF
    RETURNING grant_id),
grants AS (
    UPDATE coupons_grant SET status = :grant_used, updated_at = CAST(:ts AS timestamptz)
    WHERE id IN (SELECT grant_id FROM used) AND ONLY_IF)""".replace("ONLY_IF", only_if)


# In the one statement: only for an order with coupons (`go.coupons`).
USED_WHEN_DELIVERED = used_ctes("EXISTS (SELECT 1 FROM go WHERE go.coupons)")

# The fragments above as they appear in the one statement: each names a coupon table but runs only for an order with
# coupons (tests/orders/test_statement_counts.py's rule, a plain purchase reads no marketing table, leaves them out).
PARTS = (NO_NEW_MEMBER_COUPON_TO_COUNT, USED_WHEN_DELIVERED)
