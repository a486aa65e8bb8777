"""Time-based one-time passwords (TOTP, RFC 6238 over HOTP, RFC 4226): the optional second factor of staff logins.

Pure functions, no I/O. Authenticator apps (Google Authenticator, Microsoft Authenticator, 1Password, ...)
use the defaults: HMAC-SHA1, 6 digits, 30-second steps, a base32 secret given in an `otpauth://` URI.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

__all__ = ["DIGITS", "PERIOD", "new_secret", "hotp", "totp", "time_step", "matching_step", "provisioning_uri",
           "secret_from_base32", "secret_to_base32"]

DIGITS = 6
PERIOD = 30
SECRET_BYTES = 20  # 160 bits, the length RFC 4226 recommends for HMAC-SHA1
_ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_to_base32(secret: bytes) -> str:
    """The secret as authenticator apps take it when typed in (base32, no padding)."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def secret_from_base32(text: str) -> bytes:
    cleaned = text.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 section 5.3: HMAC of the 8-byte big-endian counter, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), _ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def time_step(unix_time: float, *, period: int = PERIOD) -> int:
    """RFC 6238 T = floor((unix time - T0) / X) with T0 = 0."""
    return int(unix_time // period)


def totp(secret: bytes, unix_time: float, *, digits: int = DIGITS, period: int = PERIOD,
         algorithm: str = "SHA1") -> str:
    return hotp(secret, time_step(unix_time, period=period), digits=digits, algorithm=algorithm)


def matching_step(secret: bytes, code: str, unix_time: float, *, window: int = 1, after_step: int | None = None,
                  digits: int = DIGITS, period: int = PERIOD) -> int | None:
    """The time step `code` is valid for, within `window` steps either side of now (clock drift, RFC 6238
    section 6), or None. Steps at or before `after_step` (the last one accepted) are refused: a code
    works once."""
    code = code.strip().replace(" ", "")
    if len(code) != digits or not code.isdigit():
        return None
    now_step = time_step(unix_time, period=period)
    found = None
    for step in range(now_step - window, now_step + window + 1):
        # Compare every candidate in constant time, and do not stop early: the timing says nothing.
        if hmac.compare_digest(hotp(secret, step, digits=digits), code) and found is None:
            found = step
    if found is None or (after_step is not None and found <= after_step):
        return None
    return found


def provisioning_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI the enrolment QR code carries (Key Uri Format of Google Authenticator)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode({"secret": secret_to_base32(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": PERIOD}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"
