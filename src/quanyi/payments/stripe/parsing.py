"""Strict reading of what Stripe sends: webhook JSON, amounts in minor units, currencies, ids, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from quanyi.money import CURRENCIES, MAX_AMOUNT_CENTS

__all__ = ["header", "strict_json", "amount", "currency", "stripe_id", "metadata", "error", "STRIPE_ID"]

STRIPE_ID = {prefix: re.compile(rf"^{prefix}_[A-Za-z0-9_]{{1,200}}$") for prefix in ("evt", "cs", "pi", "re")}


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def strict_json(body: bytes) -> Any:
    """JSON with no float (amounts are integers), no NaN, and no repeated keys (an ambiguous document)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            raise ValueError("repeated key")
        return result

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(body, object_pairs_hook=pairs, parse_float=Decimal, parse_constant=constant)


def amount(value: Any, what: str) -> int:
    """Stripe amounts are JSON integers in the currency's smallest unit (JPY: yen; USD: cents)."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = str(value) if isinstance(value, Decimal) else repr(value)
        raise ValueError(f"{what} must be an integer amount in minor units, got {shown}")
    if value < 0 or value > MAX_AMOUNT_CENTS:
        raise ValueError(f"{what} {value} is out of range")
    return value


def currency(value: Any) -> str:
    code = value.upper() if isinstance(value, str) else ""
    if code not in CURRENCIES:
        raise ValueError(f"currency {value!r} is not one the shop sells in")
    return code


def stripe_id(value: Any, prefix: str, what: str) -> str:
    if not isinstance(value, str) or not STRIPE_ID[prefix].match(value):
        raise ValueError(f"{what} is not a Stripe {prefix}_ id")
    return value


def metadata(obj: Mapping[str, Any], key: str) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) else None


def error(answer: Mapping[str, Any]) -> tuple[str, str, str]:
    error = answer.get("error")
    if not isinstance(error, dict):
        return "unknown", "", "Stripe gave no error details"
    return str(error.get("type") or ""), str(error.get("code") or ""), str(error.get("message") or "")
