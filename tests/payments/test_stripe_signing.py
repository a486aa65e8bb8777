"""Stripe webhook signatures and request encoding, against a vector computed independently with
`openssl dgst -sha256 -hmac` (Stripe publishes the algorithm, not a fixed vector)."""

from __future__ import annotations

import datetime as dt

import pytest

from quanyi.payments.stripe.form import FormError, decode_form, encode_form
from quanyi.payments.stripe.gateway import SESSION_MAX_SECONDS, SESSION_MIN_SECONDS, StripeGateway
from quanyi.payments.stripe.signing import SignatureError, compute_signature, verify_signature_header

SECRET = "whsec_test_secret"
PAYLOAD = b'{"id": "evt_test_webhook", "object": "event"}'
T = 1492774577
# printf '%s' '1492774577.{"id": "evt_test_webhook", "object": "event"}' | openssl dgst -sha256 -hmac whsec_test_secret
VECTOR = "c137b1b62277d523cf8fed4dfbd0170a9a5b8a380e00cc3711d4bf0652f2ce7a"


def verify(header: str | None, *, now: float = T, secrets: list[str] | None = None, payload: bytes = PAYLOAD) -> int:
    return verify_signature_header(header, payload, secrets=secrets or [SECRET], now=now, tolerance=300)


def test_signature_matches_the_independent_vector():
    assert compute_signature(SECRET, T, PAYLOAD) == VECTOR
    assert verify(f"t={T},v1={VECTOR}") == T


def test_any_v1_may_match_and_other_schemes_are_ignored():
    assert verify(f"t={T},v1={'0' * 64},v1={VECTOR},v0=whatever") == T
    assert verify(f"t={T}, v1={VECTOR}") == T  # spaces after commas are tolerated


def test_a_rolled_secret_still_verifies_during_the_overlap():
    assert verify(f"t={T},v1={VECTOR}", secrets=["whsec_new_one", SECRET]) == T


@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing"),
    ("", "missing"),
    (f"t={T},v0={VECTOR}", "no v1"),
    (f"v1={VECTOR}", "timestamp"),
    (f"t={T},t={T},v1={VECTOR}", "timestamp"),
    (f"t=abc,v1={VECTOR}", "timestamp"),
    (f"t={T}v1={VECTOR}", "timestamp"),
    (f"t={T},v1", "malformed"),
    (f"t={T},v1={'0' * 64}", "matches"),
    (f"t={T + 1},v1={VECTOR}", "matches"),  # the timestamp is signed: changing it breaks the signature
    (f"t={T},v1={VECTOR.upper()}", "matches"),
    (f"t={T},v1=\u00e9{VECTOR[1:]}", "matches"),
])
def test_bad_headers_are_refused_with_a_reason(header, reason):
    with pytest.raises(SignatureError, match=reason):
        verify(header)


def test_a_changed_body_does_not_verify():
    with pytest.raises(SignatureError, match="matches"):
        verify(f"t={T},v1={VECTOR}", payload=PAYLOAD.replace(b"evt_test", b"evt_TEST"))


def test_timestamps_outside_the_tolerance_are_refused_both_ways():
    header = f"t={T},v1={VECTOR}"
    assert verify(header, now=T + 300) == T
    assert verify(header, now=T - 300) == T
    with pytest.raises(SignatureError, match="tolerance"):
        verify(header, now=T + 301)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(header, now=T - 301)


def test_nested_form_encoding_round_trips():
    params = {"mode": "payment", "line_items": [{"price_data": {"currency": "jpy", "unit_amount": 500,
              "product_data": {"name": "VIP 月卡 & more"}}, "quantity": 1}], "metadata": {"payment_no": "PY1"},
              "skip": None, "flag": True}
    pairs = encode_form(params)
    assert ("line_items[0][price_data][unit_amount]", "500") in pairs
    assert ("line_items[0][price_data][product_data][name]", "VIP 月卡 & more") in pairs
    assert ("flag", "true") in pairs and all(key != "skip" for key, _ in pairs)
    decoded = decode_form(pairs)
    assert decoded["line_items"]["0"]["price_data"]["unit_amount"] == "500"
    assert decoded["metadata"] == {"payment_no": "PY1"}


@pytest.mark.parametrize("pairs", [
    [("a[b", "1")], [("a[]", "1")], [("a", "1"), ("a", "2")], [("a", "1"), ("a[b]", "2")],
    [("a" + "[x]" * 6, "1")], [("<script>", "1")],
])
def test_malformed_form_keys_are_refused(pairs):
    with pytest.raises(FormError):
        decode_form(pairs)


def test_session_expiry_is_clamped_into_stripes_window_and_stable():
    now = 1_700_000_123.0
    soon = StripeGateway.session_expiry(dt.datetime.fromtimestamp(now + 900, dt.UTC), now)
    assert now + SESSION_MIN_SECONDS <= soon <= now + SESSION_MIN_SECONDS + 600 and soon % 600 == 0
    # Asked again a minute later for the same payment: the same parameters, so Stripe replays the same session.
    assert StripeGateway.session_expiry(dt.datetime.fromtimestamp(now + 900, dt.UTC), now + 60) == soon
    assert StripeGateway.session_expiry(None, now) == soon
    two_hours = dt.datetime.fromtimestamp(now + 7200, dt.UTC)
    assert StripeGateway.session_expiry(two_hours, now) == int(now) + 7200
    far = dt.datetime.fromtimestamp(now + 30 * 3600, dt.UTC)
    assert StripeGateway.session_expiry(far, now) == int(now) + SESSION_MAX_SECONDS
