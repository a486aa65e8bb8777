"""TEST PEERS — simulated suppliers, one per wire dialect (quanyi, async_recharge, card_platform).

Not production code: each is a real HTTP server playing a supplier, verifying the shop's signatures and
answering in that dialect's exact wire format, with knobs for misbehaviour (latency, error rate, two kinds
of timeout, out of stock, price change, duplicate/late/missing callbacks, failing accounts, stock pushes)
and records for assertions (calls and purchases per idempotency key, total charged, callbacks sent).

    sim = start_supplier_simulator("quanyi", seed=1)
    adapter = build_adapter(SupplierDialect.QUANYI, sim.endpoint(timeout_seconds=0.5), http)
    ...
    sim.stop()
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from quanyi.testpeers.suppliers.core import (
    CallbackRecord,
    Refusal,
    SimCode,
    SimOrder,
    SimProduct,
    SupplierSimulator,
    TimeoutMode,
)
from quanyi.testpeers.suppliers.sink import CallbackSink, ReceivedCallback

__all__ = ["start_supplier_simulator", "make_simulator", "default_products", "default_credentials",
           "SimulatorHandle", "SupplierSimulator", "SimProduct", "SimCode", "SimOrder", "CallbackRecord",
           "Refusal", "TimeoutMode", "CallbackSink", "ReceivedCallback", "DIALECTS", "CARD_PRODUCT",
           "CARD_PRODUCT_UNCOUNTED", "RECHARGE_PRODUCT"]

SimulatorHandle = SupplierSimulator
DIALECTS = ("quanyi", "async_recharge", "card_platform")

# Product codes every simulator knows, so tests can be written once over all dialects.
CARD_PRODUCT, CARD_PRODUCT_UNCOUNTED, RECHARGE_PRODUCT = "GIFT-100", "VIP-MONTH", "MOBILE-50"


def default_products(dialect: str) -> list[SimProduct]:
    """A small catalog matching what the dialect can sell (card keys, direct recharges or both)."""
    cards = [SimProduct(CARD_PRODUCT, "Gift card ¥100", "card_key", 10000, 9500, stock=50),
             SimProduct(CARD_PRODUCT_UNCOUNTED, "Video VIP 1 month", "card_key", 3000, 2200, stock=None)]
    recharges = [SimProduct(RECHARGE_PRODUCT, "Mobile top-up ¥50", "direct_recharge", 5000, 4900),
                 SimProduct("QQ-COIN-10", "Q币 10", "direct_recharge", 1000, 950)]
    return {"quanyi": cards + recharges, "card_platform": cards, "async_recharge": recharges}[dialect]


def default_credentials(dialect: str, seed: int = 0) -> dict[str, str]:
    """Credentials derived from the seed (reproducible demos), in the field names the adapter expects."""
    secret = hashlib.sha256(f"quanyi-sim:{dialect}:{seed}".encode()).hexdigest()[:32]
    ident = {"quanyi": "app_id", "async_recharge": "merchant_id", "card_platform": "customer_id"}[dialect]
    return {ident: f"{dialect[:2].upper()}{10000 + seed}", "secret": secret}


def make_simulator(dialect: str, *, products: Iterable[SimProduct] | None = None,
                   credentials: dict[str, str] | None = None, seed: int = 0,
                   balance_cents: int | None = None) -> SupplierSimulator:
    """A simulator for this dialect, not yet serving (call .start())."""
    if dialect == "quanyi":
        from quanyi.testpeers.suppliers.quanyi_peer import QuanyiSupplierSimulator as cls
    elif dialect == "async_recharge":
        from quanyi.testpeers.suppliers.async_recharge_peer import AsyncRechargeSimulator as cls
    elif dialect == "card_platform":
        from quanyi.testpeers.suppliers.card_platform_peer import CardPlatformSimulator as cls
    else:
        raise ValueError(f"no simulator for dialect {dialect!r}")
    return cls(products=default_products(dialect) if products is None else products,
               credentials=credentials or default_credentials(dialect, seed), seed=seed,
               balance_cents=balance_cents)


def start_supplier_simulator(dialect: str, *, products: Iterable[SimProduct] | None = None,
                             credentials: dict[str, str] | None = None, seed: int = 0,
                             balance_cents: int | None = None, port: int | None = None) -> SimulatorHandle:
    """Start a simulator on a free loopback port (or `port`); `.stop()` it when done."""
    return make_simulator(dialect, products=products, credentials=credentials, seed=seed,
                          balance_cents=balance_cents).start(port=port)
