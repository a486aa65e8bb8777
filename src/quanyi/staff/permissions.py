"""Every permission a staff member can hold (权限), by name. "admin" implies all of them."""

from __future__ import annotations

__all__ = ["ADMIN", "PERMISSIONS"]

ADMIN = "admin"
PERMISSIONS: dict[str, str] = {
    ADMIN: "everything, including every admin endpoint",
    "card_keys.reveal": "see the plaintext of a card key (with a reason; audited)",
    "leaks.trace": "trace leaked card keys: orders, buyer contacts, reveals; mark them leaked",
    "risk.review": "approve or reject orders held for review",
    "suppliers.manage": "manage suppliers and their credentials",
    "ledger.read": "read the ledger and settlements",
    # The web console (/console): one permission per kind of work.
    "console.dashboard": "the console dashboard: sales, conversion, refunds, stock alerts, supplier balances",
    "orders.read": "search orders and read their details and timeline (buyer contacts masked)",
    "orders.contact": "see buyers' full contact details, on pages and in exports",
    "orders.fulfil": "补单: ask the gateway about a lost payment, resend delivery notices, deliver manual orders",
    "orders.refund": "refund orders (the refund policy applies)",
    "orders.export": "export order lists as CSV / XLSX",
    "card_keys.manage": "import card keys, void batches, see stock and masked keys",
    "catalog.manage": "edit products, SKUs, prices and redemption guides (categories: platform staff only)",
    "audit.read": "read the staff audit log",
    "members.manage": "buyer accounts (会员, platform-wide): search, see their orders and sessions, disable / enable",
    "notifications.manage": "see the notification outbox; retry or discard undelivered (dead) notifications",
    # Merchants (商户): a merchant's money at the platform.
    "merchant.finance": "see the merchant's balance and statements, ask for withdrawals (提现)",
}
