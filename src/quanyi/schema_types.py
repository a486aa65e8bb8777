"""Constrained input types shared by every feature's schemas.

Every string that reaches the database is length-bounded and free of control characters
(PostgreSQL rejects NUL in text, which would otherwise surface as a 500), and every integer
that reaches a 32/64-bit column is range-bounded.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

__all__ = [
    "DbId",
    "Name",
    "LongText",
    "Slug",
    "Code",
    "Cents",
    "reject_control_chars",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reject_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return unicodedata.normalize("NFC", value)


def _single_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


DbId = Annotated[int, Field(ge=1, le=2_147_483_647)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(reject_control_chars),
    AfterValidator(_single_line),
]
LongText = Annotated[
    str, StringConstraints(max_length=20_000), AfterValidator(reject_control_chars)
]
_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]*$")


def _slug(value: str) -> str:
    value = value.lower()
    if not _SLUG.match(value):
        raise ValueError("use lowercase letters, digits and single hyphens, e.g. video-vip")
    return value


def _code(value: str) -> str:
    value = value.upper()
    if not _CODE.match(value):
        raise ValueError("use letters, digits, '-', '_' and '.', starting with a letter or digit")
    return value


# Normalize first, then check: pydantic applies `pattern` before case conversion.
Slug = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80), AfterValidator(_slug)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_code)]
Cents = Annotated[int, Field(ge=0, le=10_000_000_000)]
