"""Device ids (设备标识) for risk counting, and the shop-issued device cookie that carries one.

The shop gives each browser (and each API client with a cookie jar) a random device id in the `qy_did`
cookie, signed: `d<random>.<mac>`, the mac a truncated HMAC-SHA256 of the id under a key derived from the
app secret for this purpose alone. Only a cookie that verifies is a device the shop issued; anything else
in it (forged, tampered, the old unsigned format) counts as no cookie. The `X-Device-Id` header is the
client's own claim: still counted per device, but it never makes a checkout "with a device".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

__all__ = ["DEVICE_COOKIE", "DEVICE_COOKIE_MAX_AGE", "CheckoutDevice", "device_cookie_key", "sign_device_id",
           "new_device_cookie", "verified_device_id", "checkout_device"]

DEVICE_COOKIE = "qy_did"
DEVICE_COOKIE_MAX_AGE = 365 * 86_400
_KEY_LABEL = b"quanyi risk device-cookie v1"
_MAC_BYTES = 16  # 128 bits: no one guesses a mac, and the cookie stays short
_ISSUED_ID = re.compile(r"d[A-Za-z0-9_-]{16,64}")
_HEADER_ID = re.compile(r"[A-Za-z0-9_.:-]{8,128}")


@dataclass(frozen=True)
class CheckoutDevice:
    """The device of one checkout: `id` ("" when none) and whether it is a shop-issued (verified) cookie."""
    id: str = ""
    verified: bool = False


def device_cookie_key(app_secret: bytes) -> bytes:
    """The signing key of device cookies: derived from the app secret, used for nothing else."""
    return hmac.new(app_secret, _KEY_LABEL, hashlib.sha256).digest()


def _mac(key: bytes, device_id: str) -> bytes:
    digest = hmac.new(key, device_id.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


def sign_device_id(key: bytes, device_id: str) -> str:
    """The cookie value for `device_id`."""
    return f"{device_id}.{_mac(key, device_id).decode()}"


def new_device_cookie(key: bytes) -> str:
    """A cookie value for a device the shop has never seen: a fresh random id, signed."""
    return sign_device_id(key, "d" + secrets.token_urlsafe(16))


def verified_device_id(key: bytes, value: str | None) -> str:
    """The device id in a shop-issued cookie value, or "" when the value is not one."""
    device_id, dot, mac = (value or "").strip().rpartition(".")
    if not dot or not _ISSUED_ID.fullmatch(device_id):
        return ""
    return device_id if hmac.compare_digest(_mac(key, device_id), mac.encode()) else ""


def checkout_device(key: bytes, *, header: str | None, cookie: str | None) -> CheckoutDevice:
    """A verified device cookie is the device (it wins over the header: only it is shop-issued); else the
    `X-Device-Id` header when it looks like an id, counted per device but not verified; else none."""
    if issued := verified_device_id(key, cookie):
        return CheckoutDevice(issued, verified=True)
    claimed = (header or "").strip()
    return CheckoutDevice(claimed if _HEADER_ID.fullmatch(claimed) else "")
