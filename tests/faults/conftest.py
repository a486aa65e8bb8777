"""Fixtures for the fault tests: a freezer that holds, from the test's own database connection, a lock the
shop's next write transaction needs, so a `quanyi` process can be killed while it waits inside that work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from faults.support import Freezer


@pytest.fixture
async def freezer(database_url: str) -> AsyncIterator[Freezer]:
    frozen = Freezer(database_url)
    yield frozen
    await frozen.release()
