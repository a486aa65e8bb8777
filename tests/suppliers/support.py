"""Helpers for the supplier adapter tests."""

from __future__ import annotations

import httpx

from quanyi.suppliers.adapter import SupplierAdapter, SupplierDialect, build_adapter
from quanyi.testpeers.suppliers import SupplierSimulator

# A client timeout that survives a loaded CI machine (GC pauses, 2 shared cores) and a hang that outlasts it.
CLIENT_TIMEOUT, HANG_SECONDS = 1.5, 4.0


def adapter_for_sim(sim: SupplierSimulator, http: httpx.AsyncClient, *,
                    timeout_seconds: float = CLIENT_TIMEOUT) -> SupplierAdapter:
    return build_adapter(SupplierDialect(sim.dialect), sim.endpoint(timeout_seconds=timeout_seconds), http)
