"""Fixtures of the payment tests."""

from __future__ import annotations

from typing import Any

import pytest

from quanyi.payments import express


@pytest.fixture
def lanes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each notification was delivered by the express lane (payments/express.py; on PostgreSQL its one
    statement), in order: False where it left the notification to the general way."""
    taken: list[bool] = []
    deliver = express.deliver

    async def spy(**kwargs: Any) -> bool:
        delivered = await deliver(**kwargs)
        taken.append(delivered)
        return delivered

    monkeypatch.setattr(express, "deliver", spy)
    return taken
