"""The shop's own address for everything it sends elsewhere: gateway notify and return URLs, supplier callbacks,
links in e-mails and SMS, redirects to cashiers. From configuration only, never from a request's Host header
(a client chooses that header, and would choose where signed notifications and buyers go).

`QUANYI_PUBLIC_BASE_URL` is the address. Without it (a shop on one machine: the demo, tests) the shop uses the
local address `quanyi serve` listens on (it puts it in QUANYI_SANDBOX_API_URL), else http://127.0.0.1:8000: good
for the sandbox gateway and a browser on the same machine, useless to a real gateway, so Alipay, WeChat Pay and
Stripe refuse to be enabled or started without the setting (`require_public_base_url`).
"""

from __future__ import annotations

import logging

from quanyi.config import Settings
from quanyi.errors import Conflict

__all__ = ["LOCAL_BASE_URL", "PublicBaseUrlMissing", "shop_base_url", "require_public_base_url"]

LOCAL_BASE_URL = "http://127.0.0.1:8000"
logger = logging.getLogger(__name__)
_warned = False


class PublicBaseUrlMissing(Conflict):
    """Something that must be reachable from the internet was asked for without QUANYI_PUBLIC_BASE_URL."""

    code = "public_base_url_missing"


def shop_base_url(settings: Settings) -> str:
    """QUANYI_PUBLIC_BASE_URL, else the local address this shop serves on (see the module docstring)."""
    global _warned
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if not _warned:
        _warned = True
        logger.warning("QUANYI_PUBLIC_BASE_URL is not set: links and callbacks point to %s, which only this "
                       "machine can reach", (settings.sandbox_api_url or LOCAL_BASE_URL).rstrip("/"))
    return (settings.sandbox_api_url or LOCAL_BASE_URL).rstrip("/")


def require_public_base_url(settings: Settings, *, needed_by: str) -> str:
    """QUANYI_PUBLIC_BASE_URL, or PublicBaseUrlMissing naming what needs it and why."""
    if not settings.public_base_url:
        raise PublicBaseUrlMissing(
            f"{needed_by} needs QUANYI_PUBLIC_BASE_URL (the shop's public https address, e.g. "
            "https://shop.example.com): it sends payment notifications and buyers back there. Set it and restart",
            setting="QUANYI_PUBLIC_BASE_URL")
    return settings.public_base_url.rstrip("/")
