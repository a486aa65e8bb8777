"""Ledger (总账) and settlement: the public surface other features call.

- Supplier prepaid balances: `charge_supplier`, `release_supplier_charge`, `top_up_supplier` (prepaid.py).
- Automatic postings (分润) from order and refund events (order_events.py).
- Reading: balances, trial balance, an order's postings (reports.py); statements and reconciliation
  (settlement.py).
"""

from __future__ import annotations

from quanyi.ledger.postings import UnbalancedPosting, post
from quanyi.ledger.prepaid import (
    InvalidLedgerAmount,
    SupplierBalanceInsufficient,
    SupplierChargeConflict,
    SupplierChargeNotFound,
    UnknownSupplier,
    charge_supplier,
    get_charge,
    release_supplier_charge,
    top_up_supplier,
)

__all__ = [
    "UnbalancedPosting", "post", "InvalidLedgerAmount", "SupplierBalanceInsufficient", "SupplierChargeConflict",
    "SupplierChargeNotFound", "UnknownSupplier", "charge_supplier", "get_charge", "release_supplier_charge",
    "top_up_supplier",
]
