"""Ledger (总账) and settlement: the public surface other features call.

- A gateway's settlement paid into the bank (渠道结算): `record_gateway_payout`, `list_gateway_payouts`,
  `gateway_clearing_balances` (what each gateway still owes; gateway_payouts.py).
- Money a gateway took that is owed back (an enterprise's top-up paid twice): `record_duplicate_receipt`,
  `record_duplicate_refunded` (gateway_receipts.py).
- Customer prepaid balances (resellers, enterprises): `open_customer_account`, `top_up_customer`,
  `charge_customer` (taken by the `balance` payment method, payments/balance.py), `refund_customer_charge`
  (customer_accounts.py).
- Supplier prepaid balances: `charge_supplier`, `release_supplier_charge`, `top_up_supplier` (prepaid.py).
- Automatic postings (分润) from order and refund events (order_events.py).
- Reading: balances, trial balance, an order's postings (reports.py); statements and reconciliation
  (settlement.py).

Supplier fulfilment (routing) uses it like this, each step in the transaction that records it:
1. `charge_supplier(reference=<attempt idempotency key>, order_id=...)` before calling the supplier
   (SupplierBalanceInsufficient: try the next supplier; the failed charge left nothing behind);
2. `release_supplier_charge(reference=...)` once the purchase definitely failed (idempotent);
3. after the order is delivered or moved to refund_pending outside `orders.apply_payment`,
   `record_order_status(order=...)` posts revenue and the charged cost (or the refund due).
"""

from __future__ import annotations

from quanyi.ledger.customer_accounts import (
    CustomerAccountExists,
    CustomerAccountFrozen,
    CustomerAccountNotFound,
    CustomerBalanceInsufficient,
    CustomerChargeNotFound,
    charge_customer,
    charge_for_payment,
    customer_account_by_code,
    customer_balance_drift,
    customer_refund_posted,
    get_customer_account,
    open_customer_account,
    refund_customer_charge,
    set_customer_account,
    top_up_customer,
    transfer_between_customers,
)
from quanyi.ledger.deferred import (
    LedgerWorker,
    defer_payment_postings,
    deferred_row_written,
    install_ledger_worker,
    post_all_deferred,
    post_deferred,
)
from quanyi.ledger.gateway_payouts import (
    GatewayClearing,
    GatewayPayoutExists,
    InvalidGatewayPayout,
    PayoutExceedsClearing,
    PayoutView,
    UnknownPayoutGateway,
    gateway_clearing_balances,
    list_gateway_payouts,
    period_movements,
    record_gateway_payout,
)
from quanyi.ledger.gateway_receipts import record_duplicate_receipt, record_duplicate_refunded
from quanyi.ledger.merchant_accounts import (
    PayableMovement,
    balances_of,
    held_earnings,
    held_of,
    movements_of,
    payable_balances,
    payable_movements,
    record_commission_paid,
    record_withdrawal_paid,
)
from quanyi.ledger.order_events import (
    record_order_delivered,
    record_order_status,
    record_payment_received,
    record_refund_due,
    record_refund_failed,
    record_refund_paid,
    record_refund_requested,
    share_rule_for,
)
from quanyi.ledger.postings import UnbalancedPosting, install_account_cache, post
from quanyi.ledger.prepaid import (
    InvalidLedgerAmount,
    SupplierBalanceInsufficient,
    SupplierChargeConflict,
    SupplierChargeNotFound,
    UnknownSupplier,
    book_late_supplier_goods,
    charge_supplier,
    get_charge,
    release_supplier_charge,
    settle_supplier_charge,
    top_up_supplier,
)
from quanyi.ledger.reports import (
    AccountStatement,
    InvalidShareRule,
    ShareRuleNotFound,
    UnknownAccount,
    account_owners,
    account_statement,
    customer_account_statement,
    delete_share_rule,
    list_share_rules,
    order_postings,
    prepaid_drift,
    set_share_rule,
    trial_balance,
)
from quanyi.ledger.settlement import (
    InvalidPeriod,
    SupplierNotQueryable,
    UnknownSupplierCode,
    get_supplier,
    period_for,
    reconcile_supplier,
    statement_csv,
    supplier_statement,
)

__all__ = [
    "install_account_cache", "LedgerWorker", "defer_payment_postings", "deferred_row_written",
    "install_ledger_worker", "post_all_deferred",
    "post_deferred",
    "CustomerAccountExists", "CustomerAccountFrozen", "CustomerAccountNotFound", "CustomerBalanceInsufficient",
    "CustomerChargeNotFound", "charge_customer", "charge_for_payment", "customer_account_by_code",
    "customer_balance_drift", "customer_refund_posted", "get_customer_account", "open_customer_account",
    "refund_customer_charge", "set_customer_account", "top_up_customer", "transfer_between_customers",
    "UnbalancedPosting", "post", "InvalidLedgerAmount", "SupplierBalanceInsufficient", "SupplierChargeConflict",
    "SupplierChargeNotFound", "UnknownSupplier", "charge_supplier", "get_charge", "release_supplier_charge",
    "settle_supplier_charge", "book_late_supplier_goods", "top_up_supplier", "record_order_delivered",
    "record_order_status", "record_payment_received",
    "record_refund_due", "record_refund_failed", "record_refund_paid", "record_refund_requested", "share_rule_for",
    "InvalidShareRule", "ShareRuleNotFound", "delete_share_rule", "list_share_rules", "order_postings",
    "prepaid_drift", "set_share_rule", "trial_balance", "AccountStatement", "UnknownAccount", "account_statement",
    "customer_account_statement", "account_owners",
    "InvalidPeriod", "SupplierNotQueryable",
    "UnknownSupplierCode", "get_supplier",
    "period_for", "reconcile_supplier", "statement_csv", "supplier_statement",
    "PayableMovement", "held_earnings", "payable_balances", "payable_movements", "record_withdrawal_paid",
    "balances_of", "held_of", "movements_of", "record_commission_paid",
    "record_duplicate_receipt", "record_duplicate_refunded",
    "GatewayClearing", "GatewayPayoutExists", "InvalidGatewayPayout", "PayoutExceedsClearing", "PayoutView",
    "UnknownPayoutGateway", "gateway_clearing_balances", "list_gateway_payouts", "period_movements",
    "record_gateway_payout",
]
