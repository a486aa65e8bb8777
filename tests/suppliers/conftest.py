"""Supplier simulators (test peers) and a callback receiver as fixtures; these tests need no database.

`supplier_sim(dialect, **kwargs)` starts a simulator on a free port and stops it after the test;
`callback_sink` is a receiver standing in for the shop's callback route, emptied before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers import CallbackSink, SupplierSimulator, start_supplier_simulator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def supplier_sim() -> Iterator[Callable[..., SupplierSimulator]]:
    started: list[SupplierSimulator] = []

    def start(dialect: str, **kwargs: object) -> SupplierSimulator:
        sim = start_supplier_simulator(dialect, **kwargs)  # type: ignore[arg-type]
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def _sink_server() -> Iterator[CallbackSink]:
    sink = CallbackSink()
    with serve_in_thread(sink.app) as url:
        sink.url = url
        yield sink


@pytest.fixture
def callback_sink(_sink_server: CallbackSink) -> CallbackSink:
    _sink_server.reset()
    _sink_server.answer(b"success")
    return _sink_server
