"""What `quanyi serve` runs around the app (quanyi.accesslog.create_served_app): the startup heap frozen out of the
garbage collector's sight, and young collections far less often than Python's default under many requests in flight."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from quanyi import app, config
from quanyi.accesslog import GC_THRESHOLD, AccessLog, create_served_app


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    gc.unfreeze()


def test_the_served_app_collects_young_objects_less_often(gc_state, monkeypatch, settings):
    async def tiny_app(scope, receive, send) -> None:  # stands in for the shop: only the wrapping is tested
        raise AssertionError("not called")

    monkeypatch.setattr(app, "create_app", lambda: tiny_app)
    monkeypatch.setattr(config, "get_settings", lambda: settings)
    gc.set_threshold(700, 10, 10)
    served = create_served_app()
    assert isinstance(served, AccessLog) and served.app is tiny_app
    assert gc.get_threshold() == GC_THRESHOLD and GC_THRESHOLD[0] >= 10 * 700
    assert gc.get_freeze_count() > 0
