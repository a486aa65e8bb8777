"""The one check every form of a login area (the console, the merchant and enterprise portals) gets before its
handler runs: no posted text field holds a control character (NUL and the like; tab and line breaks are text).

PostgreSQL cannot store NUL (the insert fails: a 500 after part of the work) and SQLite stores it silently; the
rule is the API shapes' own (schema_types.reject_control_chars), so a handler that reads a field by hand is
covered too. Lengths, types and required fields stay with each form's reader (console/forms)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from quanyi.errors import InvalidInput
from quanyi.schema_types import reject_control_chars

__all__ = ["FormTextRefused", "is_form_post", "require_clean_form", "CLEAN_FORM"]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class FormTextRefused(InvalidInput):
    """A posted form field holds a control character; nothing was done (the handler never ran)."""

    code = "form_control_chars"


def is_form_post(request: Request) -> bool:
    """Whether Starlette would parse this request's body as a form: its media type, in any case (Starlette reads
    it lowercased), is one of the two form types."""
    return request.headers.get("content-type", "").strip().lower().startswith(_FORM_TYPES)


async def require_clean_form(request: Request) -> None:
    """Route dependency: a form post whose text fields (names or values) hold a control character is a 422."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not is_form_post(request):
        return
    form = await request.form()  # cached on the request: the handler reads the same form
    for name, value in form.multi_items():
        for text in (name, value) if isinstance(value, str) else (name,):  # an uploaded file is checked by its reader
            try:
                reject_control_chars(text)
            except ValueError:
                raise FormTextRefused(f"{name[:64]}: must not contain control characters", field=name[:64]) from None


CLEAN_FORM: Any = Depends(require_clean_form)
