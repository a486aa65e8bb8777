"""What every dialect shares: sending a request and turning transport failures into outcome-aware errors,
and yuan strings <-> integer cents for the dialects that speak in yuan.

The rule that matters (see adapter.py): a failure before the request left us (connect refused, connect or
pool timeout) means the supplier cannot have taken the order -> SupplierUnavailable. A failure after it was
sent (read/write timeout, connection dropped, garbled answer) on a call that places an order means it may
exist -> SupplierOutcomeUnknown. Calls that only read (catalog, quotes, queries) are safe to repeat, so their
failures are all SupplierUnavailable.
"""

from __future__ import annotations

from typing import Any

import httpx

from quanyi.money import InvalidAmount, parse_amount, to_decimal
from quanyi.suppliers.adapter import SupplierEndpoint, SupplierOutcomeUnknown, SupplierRejected, SupplierUnavailable

__all__ = ["send", "json_answer", "cents_to_yuan", "yuan_to_cents", "outcome_error"]

# Failures where the request provably never reached the supplier.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def outcome_error(placing: bool, message: str, **context: object) -> Exception:
    """The error for an answer we cannot trust: unknown outcome when placing, unavailable otherwise."""
    if placing:
        return SupplierOutcomeUnknown(message, **context)
    return SupplierUnavailable(message, **context)


async def send(http: httpx.AsyncClient, endpoint: SupplierEndpoint, method: str, path: str, *,
               placing: bool, **kwargs: Any) -> httpx.Response:
    """One request to the supplier with the endpoint's timeout; transport failures become SupplierErrors."""
    url = endpoint.base_url.rstrip("/") + path
    try:
        return await http.request(method, url, timeout=endpoint.timeout_seconds, **kwargs)
    except _NOT_SENT as exc:
        raise SupplierUnavailable(f"{endpoint.supplier_code}: cannot reach supplier ({type(exc).__name__})",
                                  supplier=endpoint.supplier_code) from None
    except httpx.TransportError as exc:
        raise outcome_error(placing, f"{endpoint.supplier_code}: no answer after sending ({type(exc).__name__})",
                            supplier=endpoint.supplier_code) from None


def json_answer(response: httpx.Response, endpoint: SupplierEndpoint, *, placing: bool) -> dict[str, Any]:
    """The JSON object of an answer from a platform that reports errors in the body (HTTP 200).
    429/503: not forwarded. Other 5xx and non-JSON bodies: maybe taken. Other 4xx: refused."""
    supplier = endpoint.supplier_code
    if response.status_code in (429, 503):
        raise SupplierUnavailable(f"{supplier}: HTTP {response.status_code}", supplier=supplier)
    if response.status_code >= 500:
        raise outcome_error(placing, f"{supplier}: HTTP {response.status_code}", supplier=supplier)
    if not response.is_success:
        raise SupplierRejected(f"{supplier}: HTTP {response.status_code}", supplier=supplier)
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise outcome_error(placing, f"{supplier}: answer is not a JSON object", supplier=supplier)
    return data


def cents_to_yuan(cents: int) -> str:
    """1234 -> '12.34' (what yuan-speaking dialects put on the wire)."""
    return f"{to_decimal(cents, 'CNY'):.2f}"


def yuan_to_cents(value: Any) -> int:
    """'12.34' or 12.34 from the wire -> 1234; ValueError when it is not an exact amount."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not an amount: {value!r}")
    try:
        return parse_amount(str(value), "CNY")
    except InvalidAmount as exc:
        raise ValueError(str(exc)) from None
