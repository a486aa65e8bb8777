"""Helpers for the supplier adapter tests."""

from __future__ import annotations

import httpx

from quanyi.suppliers.adapter import SupplierAdapter, SupplierDialect, build_adapter
from quanyi.testpeers.suppliers import SupplierSimulator

# A client timeout that survives a loaded CI machine (2 shared cores, 20x slower for a moment), a short one for
# calls a test makes hang (given up on at once), and a hang that outlasts both (stopping the simulator ends it).
CLIENT_TIMEOUT, IMPATIENT_TIMEOUT, HANG_SECONDS = 30.0, 1.5, 60.0


def adapter_for_sim(sim: SupplierSimulator, http: httpx.AsyncClient, *,
                    timeout_seconds: float = CLIENT_TIMEOUT) -> SupplierAdapter:
    return build_adapter(SupplierDialect(sim.dialect), sim.endpoint(timeout_seconds=timeout_seconds), http)
