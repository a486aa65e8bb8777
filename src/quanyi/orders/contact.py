"""Buyer contact (联系方式): an e-mail address or a phone number, normalized so lookups match."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_contact", "contact_fragment", "mask_contact"]

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_PHONE_PART = re.compile(r"^\+?[\d\s\-()]*\d[\d\s\-()]*$")


def normalize_contact(text: str) -> tuple[str, str]:
    """-> ("email", "a@b.cn") or ("phone", "13800138000" / "+4915112345678"); ValueError otherwise."""
    value = unicodedata.normalize("NFKC", text).strip()
    if not value:
        raise ValueError("enter an e-mail address or a mobile number")
    if "@" in value:
        if len(value) > 254 or not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return "email", value.lower()
    digits = re.sub(r"[\s\-()]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if _CN_MOBILE.match(digits):
        return "phone", digits
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if _E164.match(digits):
        return "phone", digits
    raise ValueError("not a valid e-mail address or mobile number")


def contact_fragment(text: str) -> str:
    """Part of a contact as the stored ones are written (staff searching for "138 0013", "+86 138-0013",
    "Buyer@"): lower case; a phone number's part without its spaces, dashes, brackets and China's +86 / 0086."""
    value = unicodedata.normalize("NFKC", text).strip().lower()
    if _PHONE_PART.match(value):
        value = re.sub(r"[\s\-()]", "", value)
        for prefix in ("+86", "0086"):
            if value.startswith(prefix):
                value = value[len(prefix):]
    return value


def mask_contact(kind: str, value: str) -> str:
    """For pages and logs: b***@example.com, 138****8000."""
    if kind == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    return f"{value[:3]}****{value[-4:]}" if len(value) >= 8 else "****"
