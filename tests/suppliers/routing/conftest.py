"""Fixtures for routing and direct-recharge tests: the shop on a real port too (suppliers call it back),
short timeouts, and simulated suppliers (real HTTP test peers from quanyi.testpeers.suppliers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from helpers import make_settings
from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.testpeers.runner import free_port, serve_in_thread
from quanyi.testpeers.suppliers import SupplierSimulator, start_supplier_simulator


@pytest.fixture
def shop_port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, shop_port: int) -> Settings:
    return make_settings(database_url, public_base_url=f"http://127.0.0.1:{shop_port}",
                         circuit_failure_threshold=2, circuit_open_seconds=1.0, fulfilment_lease_seconds=2.0,
                         fulfilment_query_seconds=1.0, fulfilment_not_found_grace_seconds=0.0)


@pytest.fixture
def served_shop(settings: Settings, shop_port: int) -> Iterator[str]:
    """A second server process of the same shop (same database) on a real port: where suppliers' callbacks land."""
    with serve_in_thread(create_app(settings), port=shop_port) as url:
        yield url


@pytest.fixture
def sims() -> Iterator[Callable[..., SupplierSimulator]]:
    started: list[SupplierSimulator] = []

    def start(dialect: str = "quanyi", **kwargs: object) -> SupplierSimulator:
        sim = start_supplier_simulator(dialect, **kwargs)  # type: ignore[arg-type]
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()
