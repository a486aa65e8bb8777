"""A shop running the sandbox payment gateway says so in its log at startup, not only on `quanyi serve`'s stderr:
shops whose log collection misses stderr (a logging handler to a file, syslog, a log service) see it too."""

from __future__ import annotations

import logging

import pytest

from quanyi.app import create_app
from quanyi.context import ShopContext

_SAID = "the sandbox payment gateway is enabled"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "quanyi.app" and _SAID in r.getMessage()]


async def test_a_server_with_the_sandbox_on_warns_in_its_log_once_at_startup(ctx: ShopContext, caplog):
    assert ctx.settings.sandbox_enabled
    app = create_app(ctx=ctx)
    with caplog.at_level(logging.WARNING, logger="quanyi.app"):
        async with app.router.lifespan_context(app):
            said = _warnings(caplog)
            assert len(said) == 1 and said[0].levelno == logging.WARNING
            assert "QUANYI_SANDBOX_ENABLED=false" in said[0].getMessage()
    assert len(_warnings(caplog)) == 1  # at startup only, not again on shutdown


async def test_a_server_without_the_sandbox_says_nothing_of_it(ctx: ShopContext, caplog):
    ctx.settings.sandbox_enabled = False
    app = create_app(ctx=ctx)
    with caplog.at_level(logging.WARNING, logger="quanyi.app"):
        async with app.router.lifespan_context(app):
            pass
    assert _warnings(caplog) == []
