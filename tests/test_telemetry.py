"""FastAPI's OpenTelemetry is decided once, when the shop is built (quanyi.telemetry, QUANYI_OPENTELEMETRY): a shop
that configured none pays no per-request provider check, and one that did still gets its spans."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from opentelemetry import trace
from opentelemetry.util._once import Once

from quanyi.app import create_app

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no database work: one backend is enough


class _Tracer(trace.NoOpTracer):
    def __init__(self, spans: list[Any]) -> None:
        self.spans = spans

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.spans.append((name, (kwargs.get("attributes") or {}).get("url.path")))
        return super().start_span(name, *args, **kwargs)


class _Recording(trace.TracerProvider):
    """A global tracer provider (as `opentelemetry-instrument` sets one) that notes the spans started."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self.spans)


@pytest.fixture
def global_tracer() -> Iterator[Any]:
    """`install()` sets a recording provider globally; the process's own (none) is put back afterwards."""
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    provider = _Recording()

    def install() -> _Recording:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
        trace.set_tracer_provider(provider)
        return provider

    yield install
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


async def _spans_of_requests(ctx: Any, global_tracer: Any, *, before: bool, **overrides: Any) -> list[Any]:
    """The spans of two requests (a route, a refused checkout answered by a lane) to a shop built on `ctx` with
    these settings, the global provider set before or after the shop was built."""
    ctx.settings = ctx.settings.model_copy(update=overrides)
    provider = global_tracer() if before else None
    app = create_app(ctx=ctx)
    provider = provider or global_tracer()
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.post("/api/orders", json={"sku_id": 999_999, "quantity": 1})).status_code == 422
    return [span for span in provider.spans if span[1] is not None]  # the requests' own (not FastAPI's inner ones)


async def test_a_shop_that_configured_no_opentelemetry_decides_once_and_sends_no_spans(ctx, global_tracer):
    app = create_app(ctx=ctx)
    assert not app._native_telemetry.enabled()
    assert (app._telemetry["tracing"], app._telemetry["metrics"], app._telemetry["logs"]) == (False, False, False)
    assert await _spans_of_requests(ctx, global_tracer, before=False) == []  # a provider set later: still off


async def test_a_provider_configured_before_the_shop_is_built_gets_every_requests_span(ctx, global_tracer):
    spans = await _spans_of_requests(ctx, global_tracer, before=True)
    assert spans == [("GET", "/healthz"), ("POST", "/api/orders")]


async def test_the_setting_turns_it_off_despite_a_provider(ctx, global_tracer):
    assert await _spans_of_requests(ctx, global_tracer, before=True, opentelemetry=False) == []


async def test_the_setting_turns_it_on_for_a_provider_set_after_startup(ctx, global_tracer):
    spans = await _spans_of_requests(ctx, global_tracer, before=False, opentelemetry=True)
    assert spans == [("GET", "/healthz"), ("POST", "/api/orders")]


async def test_fastapis_own_otlp_export_asked_for_keeps_it_on(ctx, monkeypatch):
    monkeypatch.setenv("FASTAPI_OTEL_AUTO_CONFIGURE", "true")
    app = create_app(ctx=ctx)
    assert (app._telemetry["tracing"], app._telemetry["metrics"], app._telemetry["logs"]) == (True, True, True)
