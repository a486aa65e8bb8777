"""The chart of accounts (科目表): codes of the accounts the shop posts to, created on demand.

Per-gateway, per-supplier, per-merchant and per-distributor accounts carry their key after a colon.
"""

from __future__ import annotations

from quanyi.ledger.models import AccountKind

__all__ = [
    "CUSTOMER_LIABILITY", "PLATFORM_REVENUE", "COST_OF_GOODS", "REFUNDS_DUE", "REFUNDS_PAYABLE", "CARD_KEY_STOCK",
    "PLATFORM_CASH", "gateway_clearing", "gateway_fees", "supplier_prepaid", "supplier_payable", "merchant_payable",
    "merchant_supplier_funds", "distributor_commission", "customer_prepaid", "BALANCE_CLEARING", "describe",
    "POINTS_LIABILITY", "POINTS_COST",
]

# Buyers' money for orders not yet delivered (预收): owed back or earned on delivery.
CUSTOMER_LIABILITY = "customer_liability"
PLATFORM_REVENUE = "platform_revenue"
COST_OF_GOODS = "cost_of_goods"
# Paid but could not be delivered: owed to the buyer, no refund requested yet.
REFUNDS_DUE = "refunds_due"
# Refunds requested (and duplicate payments): owed to buyers until the gateway pays them out.
REFUNDS_PAYABLE = "refunds_payable"
# Cost of local card-key stock (from import batches' unit cost), paid outside quanyi: goes negative as it sells.
CARD_KEY_STOCK = "card_key_stock"
# The shop's own bank money: where supplier top-ups (预付充值) come from.
PLATFORM_CASH = "platform_cash"

# Points (积分) members hold, at their value: what the shop owes in discounts (quanyi.loyalty.points).
POINTS_LIABILITY = "points_liability"
# The cost of points issued and not yet spent or expired (the same amount); a spent point's cost is its discount.
POINTS_COST = "points_cost"

# Payments taken from customers' prepaid balances pass through this clearing account like a gateway's.
BALANCE_CLEARING = "gateway_clearing:balance"

_KINDS: dict[str, tuple[AccountKind, str]] = {
    "gateway_clearing": (AccountKind.ASSET, "Gateway clearing"),
    # What a gateway kept of its settlements (手续费), per gateway: booked when its payout is recorded.
    "gateway_fees": (AccountKind.EXPENSE, "Gateway fees"),
    CUSTOMER_LIABILITY: (AccountKind.LIABILITY, "Customer payments not yet delivered"),
    PLATFORM_REVENUE: (AccountKind.REVENUE, "Platform revenue"),
    COST_OF_GOODS: (AccountKind.EXPENSE, "Cost of goods sold"),
    REFUNDS_DUE: (AccountKind.LIABILITY, "Refunds due (undeliverable orders)"),
    REFUNDS_PAYABLE: (AccountKind.LIABILITY, "Refunds payable"),
    CARD_KEY_STOCK: (AccountKind.ASSET, "Local card-key stock at cost"),
    PLATFORM_CASH: (AccountKind.ASSET, "Platform cash"),
    "supplier_prepaid": (AccountKind.ASSET, "Supplier prepaid balance"),
    "supplier_payable": (AccountKind.LIABILITY, "Supplier payable"),
    # What a customer (reseller, enterprise) has paid in and not yet spent: we owe it to them.
    "customer_prepaid": (AccountKind.LIABILITY, "Customer prepaid balance"),
    "merchant_payable": (AccountKind.LIABILITY, "Merchant payable"),
    # A merchant's own money in its supplier accounts: its top-ups in, the cost of its goods out. The platform's
    # cash, revenue and cost of goods never carry a merchant's supply chain.
    "merchant_supplier_funds": (AccountKind.LIABILITY, "Merchant funds in its supplier accounts"),
    "distributor_commission": (AccountKind.LIABILITY, "Distributor commission payable"),
    POINTS_LIABILITY: (AccountKind.LIABILITY, "Members' points (outstanding, at their value)"),
    POINTS_COST: (AccountKind.EXPENSE, "Cost of points issued, not yet spent or expired"),
}


def gateway_clearing(gateway: str) -> str:
    return f"gateway_clearing:{gateway}"


def gateway_fees(gateway: str) -> str:
    return f"gateway_fees:{gateway}"


def supplier_prepaid(supplier_id: int) -> str:
    return f"supplier_prepaid:{supplier_id}"


def supplier_payable(supplier_id: int) -> str:
    return f"supplier_payable:{supplier_id}"


def customer_prepaid(account_id: int) -> str:
    return f"customer_prepaid:{account_id}"


def merchant_payable(merchant_code: str) -> str:
    return f"merchant_payable:{merchant_code}"


def merchant_supplier_funds(merchant_code: str) -> str:
    return f"merchant_supplier_funds:{merchant_code}"


def distributor_commission(distributor_code: str) -> str:
    return f"distributor_commission:{distributor_code}"


def describe(code: str) -> tuple[AccountKind, str]:
    """Kind and human name of an account code; unknown families are refused (a typo must not create accounts)."""
    family, _, key = code.partition(":")
    try:
        kind, name = _KINDS[family]
    except KeyError:
        raise ValueError(f"unknown ledger account {code!r}") from None
    return kind, f"{name} {key}".strip()
