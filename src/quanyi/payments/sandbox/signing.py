"""Signatures of the sandbox gateway, in the style of Chinese payment APIs.

Canonical string: every parameter except `sign` with a non-empty value, sorted by name, joined as
`k1=v1&k2=v2`; signature = lowercase hex HMAC-SHA256(secret, canonical string). `timestamp` (unix
seconds) and `nonce` are ordinary signed parameters, so a notification cannot be re-dated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

__all__ = ["canonical_string", "sign_params", "signature_matches", "seal_token", "open_token"]


def canonical_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")


def sign_params(params: Mapping[str, str], secret: str) -> str:
    return hmac.new(secret.encode(), canonical_string(params).encode(), hashlib.sha256).hexdigest()


def signature_matches(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("sign", "")
    return hmac.compare_digest(sign_params(params, secret), given)


def seal_token(payload: dict[str, object], secret: str) -> str:
    """Compact signed token (used for the cashier URL, which carries the order the buyer pays)."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    mac = hmac.new(secret.encode(), b"cashier:" + body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def open_token(token: str, secret: str) -> dict[str, object] | None:
    body, _, mac = token.partition(".")
    expected = hmac.new(secret.encode(), b"cashier:" + body.encode(), hashlib.sha256).hexdigest()[:32]
    if not mac or not hmac.compare_digest(expected, mac):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None
