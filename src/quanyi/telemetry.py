"""FastAPI's native OpenTelemetry (spans, request metrics, exception log records through the global providers),
decided once when the app is built.

FastAPI (since 0.16x) asks on every request whether any OpenTelemetry provider is configured: three provider
look-ups, ~7 µs a request, in a shop that configured none (docs/PERFORMANCE.md section 25). `QUANYI_OPENTELEMETRY`
decides it at startup instead: true keeps FastAPI's own behaviour (its per-request check, the global providers,
its OTLP export with FASTAPI_OTEL_AUTO_CONFIGURE=true), false turns the three signals off. Unset, it is on only
when something configured OpenTelemetry before the app was built (a provider set globally, e.g. by
`opentelemetry-instrument` or logfire) or asked FastAPI to (FASTAPI_OTEL_AUTO_CONFIGURE=true: FastAPI sets the
providers up at startup), and off otherwise."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["OFF", "configured", "fastapi_arguments"]

# The three signals off: FastAPI's check is then three dict reads and no provider is looked up.
OFF = {"tracing": False, "metrics": False, "logs": False}


def fastapi_arguments(setting: bool | None) -> dict[str, Any]:
    """FastAPI's keyword arguments for the shop's setting: none (FastAPI's default, on) or `telemetry=OFF`."""
    try:
        from fastapi.telemetry._asgi import NativeTelemetry
    except ImportError:  # a FastAPI without native telemetry: nothing to turn off
        return {}
    on = configured(NativeTelemetry) if setting is None else setting
    return {} if on else {"telemetry": dict(OFF)}


def configured(native: Any) -> bool:
    """Whether anything configured OpenTelemetry for this process: FastAPI's own per-request test with its
    default settings (any of the global tracer, meter and logger providers set), or its OTLP export asked for."""
    if os.getenv("FASTAPI_OTEL_AUTO_CONFIGURE", "").lower() == "true":
        return True
    defaults = {"tracer_provider": None, "meter_provider": None, "logger_provider": None,
                "tracing": True, "metrics": True, "logs": True}
    return bool(native(defaults).enabled())
