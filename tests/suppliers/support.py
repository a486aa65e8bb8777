"""Helpers for the supplier adapter tests."""

from __future__ import annotations

import httpx

from quanyi.suppliers.adapter import SupplierAdapter, SupplierDialect, build_adapter
from quanyi.testpeers.suppliers import SupplierSimulator

# Short client timeout and a longer hang: a hanging simulator always outlasts the adapter's patience.
CLIENT_TIMEOUT, HANG_SECONDS = 0.4, 1.5


def adapter_for_sim(sim: SupplierSimulator, http: httpx.AsyncClient, *,
                    timeout_seconds: float = CLIENT_TIMEOUT) -> SupplierAdapter:
    return build_adapter(SupplierDialect(sim.dialect), sim.endpoint(timeout_seconds=timeout_seconds), http)
