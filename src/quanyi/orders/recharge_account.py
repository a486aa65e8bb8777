"""The account a direct recharge (直充) credits: a mobile number or a platform/game account name."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_recharge_account", "mask_recharge_account"]

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# Platform accounts: letters, digits and the punctuation account names and e-mail logins use; no spaces.
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+\-]{2,63}$")


def normalize_recharge_account(text: str) -> str:
    """-> "13800138000" (spaces, dashes and +86 dropped) or the account as typed; ValueError otherwise."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        raise ValueError("enter the phone number or account to recharge")
    digits = re.sub(r"[\s\-()]", "", value)
    if re.fullmatch(r"\+?\d+", digits):
        local = digits.removeprefix("+86") if digits.startswith("+86") else digits.removeprefix("0086")
        if _CN_MOBILE.match(local):
            return local
        if digits.startswith("+") or (len(local) == 11 and local.startswith("1")):
            raise ValueError("not a valid mobile number")
    if not _ACCOUNT.match(value):
        raise ValueError("an account is 3-64 letters, digits or . _ @ + - (no spaces)")
    return value


def mask_recharge_account(value: str) -> str:
    """For pages: 138****8000, pl***er."""
    if _CN_MOBILE.match(value):
        return f"{value[:3]}****{value[-4:]}"
    return f"{value[:2]}***{value[-2:]}" if len(value) > 4 else "***"
