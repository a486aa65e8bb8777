"""The employee's session on a campaign's claim page: a cookie holding the campaign, the employee and how they
signed in (claim code, WeCom, DingTalk), signed with a key derived from QUANYI_APP_SECRET and expiring after
two hours. It names no one to anyone without the key, and works only on its own campaign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from quanyi.web.csrf import register_session_cookie

__all__ = ["COOKIE", "TTL_SECONDS", "ClaimSession", "sign_session", "read_session"]

COOKIE = "qy_claim"
TTL_SECONDS = 2 * 3600
register_session_cookie(COOKIE)  # signing in changes the page's CSRF token


@dataclass(frozen=True, slots=True)
class ClaimSession:
    campaign_no: str
    employee_id: int
    via: str


def _key(app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), b"quanyi claim session", hashlib.sha256).digest()


def sign_session(app_secret: str, session: ClaimSession, *, now: float | None = None) -> str:
    expires = int((now or time.time()) + TTL_SECONDS)
    body = f"{session.campaign_no}|{session.employee_id}|{session.via}|{expires}"
    mac = hmac.new(_key(app_secret), body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=") + "." + \
        base64.urlsafe_b64encode(mac).decode().rstrip("=")


def read_session(app_secret: str, value: str | None, campaign_no: str, *,
                 now: float | None = None) -> ClaimSession | None:
    """The session in a cookie value, if it is genuine, unexpired and for this campaign."""
    if not value or len(value) > 400 or "." not in value:
        return None
    body_b64, _, mac_b64 = value.partition(".")
    try:
        body = base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4))
        mac = base64.urlsafe_b64decode(mac_b64 + "=" * (-len(mac_b64) % 4))
    except ValueError:
        return None
    if not hmac.compare_digest(mac, hmac.new(_key(app_secret), body, hashlib.sha256).digest()):
        return None
    try:
        no, employee_id, via, expires = body.decode().split("|")
        if no != campaign_no or int(expires) < (now or time.time()):
            return None
        return ClaimSession(no, int(employee_id), via)
    except ValueError:
        return None
