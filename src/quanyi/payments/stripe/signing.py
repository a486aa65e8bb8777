"""Stripe webhook signatures (the only signed part of the Stripe protocol).

Spec: https://docs.stripe.com/webhooks#verify-manually ("Verify signatures manually": "Step 1: Extract the
timestamp and signatures from the header", "Step 2: Prepare the signed_payload string", "Step 3: Determine
the expected signature", "Step 4: Compare the signatures") and https://docs.stripe.com/webhooks#replay-attacks.

    Stripe-Signature: t=1492774577,v1=5257a869...,v1=...,v0=...
    v1 = hex(HMAC-SHA256(key=endpoint secret "whsec_...", msg=f"{t}.{raw request body}"))

Any one v1 may match (several while a secret is being rolled); other schemes (v0 is a test-mode dummy)
are ignored. The timestamp is inside the signed message, so a replay outside the tolerance is refused.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SignatureError", "compute_signature", "signature_header", "verify_signature_header",
           "DEFAULT_TOLERANCE_SECONDS"]

DEFAULT_TOLERANCE_SECONDS = 300
_MAX_HEADER = 4096


class SignatureError(ValueError):
    """The Stripe-Signature header is missing, malformed, stale, or matches no signature."""


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """hex HMAC-SHA256 of `{timestamp}.{payload}` keyed with the whole endpoint secret (whsec_ included)."""
    message = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, payload: bytes) -> str:
    """What Stripe sends: `t=...,v1=...` (used by the test peer)."""
    return f"t={timestamp},v1={compute_signature(secret, timestamp, payload)}"


def verify_signature_header(
    header: str | None, payload: bytes, *, secrets: list[str], now: float, tolerance: int
) -> int:
    """Check a Stripe-Signature header against the raw body; returns its timestamp or raises SignatureError.

    `secrets` may hold several endpoint secrets (old and new while rolling)."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    if len(header) > _MAX_HEADER:
        raise SignatureError("Stripe-Signature header too long")
    timestamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed Stripe-Signature header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise SignatureError("Stripe-Signature header needs exactly one numeric timestamp t=")
    if not candidates:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    timestamp = int(timestamps[0])
    expected = [compute_signature(secret, timestamp, payload) for secret in secrets]
    # Compare every pair in constant time; no early exit that would tell which part matched.
    matched = False
    for candidate in candidates:
        for signature in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), signature.encode("ascii"))
    if not matched:
        raise SignatureError("no signature in Stripe-Signature matches the payload")
    # Stripe's own libraries only refuse old timestamps; we also refuse ones far in the future (a clock off
    # by more than the tolerance is an operations problem worth seeing, not something to accept silently).
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"timestamp {timestamp} outside the {tolerance}s tolerance (stale or replayed)")
    return timestamp
