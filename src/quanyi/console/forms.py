"""What every console form page does the same way: read a posted field, say what happened (a message drawn by
the page: after a redirect from its `?m=` code, after a refused form from the domain error), and go back.

A message is `(text key, values, kind)`; kind is ok / warn / err. A refused form is drawn again with the domain
error's own message next to a translated headline, and a 4xx status; nothing was changed (the transaction of the
action rolled back)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from quanyi.console.auth import ConsoleUser
from quanyi.console.i18n import MESSAGES
from quanyi.console.rendering import render_page
from quanyi.errors import DomainError, InvalidInput, NotFound
from quanyi.money import InvalidAmount, parse_amount
from quanyi.schema_types import reject_control_chars
from quanyi.shoptime import parse_day

__all__ = ["Message", "text", "integer", "checkbox", "flash", "error", "status_for", "back", "FormError",
           "not_found", "validated", "amount", "percent_bps", "day"]

Message = tuple[str, dict[str, Any], str]
ModelT = TypeVar("ModelT", bound=BaseModel)


class FormError(InvalidInput):
    """A console form field that does not say what it must (the message names the field)."""

    code = "invalid_form"


def text(form: Any, name: str, *, max_length: int = 200, required: bool = False) -> str:
    value = str(form.get(name, "") or "").strip()
    try:
        reject_control_chars(value)  # as the API's shapes: PostgreSQL cannot store NUL (a 500, not a refusal)
    except ValueError as exc:
        raise FormError(f"{name}: {exc}", field=name) from None
    if len(value) > max_length:
        raise FormError(f"{name} is longer than {max_length} characters", field=name)
    if required and not value:
        raise FormError(f"{name} is required", field=name)
    return value


def integer(form: Any, name: str, *, minimum: int, maximum: int, default: int | None = None) -> int:
    raw = str(form.get(name, "") or "").strip()
    if not raw and default is not None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FormError(f"{name} must be a whole number", field=name) from None
    if not minimum <= value <= maximum:
        raise FormError(f"{name} must be between {minimum} and {maximum}", field=name)
    return value


def validated(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """The form's values checked by the same request shape the admin API uses; a refusal names every field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise FormError(problems, fields=[".".join(str(p) for p in e["loc"]) for e in exc.errors()]) from None


def amount(form: Any, name: str, currency: str, *, allow_zero: bool = False) -> int:
    """A money field typed in yuan (12.34), as integer cents; more decimals than the currency has, signs and
    junk are refused. `allow_zero`: 0 (or the field left blank) is 0 (a credit limit), else it must be more."""
    raw = text(form, name, max_length=20, required=not allow_zero)
    if allow_zero and not raw:
        return 0
    try:
        cents = parse_amount(raw, currency)
    except InvalidAmount as exc:
        if "," in raw:  # the parser's own reason says how commas are read (1,500 yes; 1,50 no)
            raise FormError(f"{name}: {exc}", field=name) from None
        raise FormError(f"{name} must be an amount like 12.34", field=name) from None
    if cents < 0 or (cents == 0 and not allow_zero):
        raise FormError(f"{name} must be more than 0", field=name)
    return cents


def percent_bps(form: Any, name: str) -> int:
    """A rate typed in percent (12.5) as basis points (1250), 0-100 %, at most two decimals."""
    raw = text(form, name, max_length=8, required=True)
    try:
        value = Decimal(raw) * 100
    except InvalidOperation:
        raise FormError(f"{name} must be a percentage like 12.5", field=name) from None
    if not value.is_finite() or value != value.to_integral_value() or not 0 <= value <= 10_000:
        raise FormError(f"{name} must be a percentage between 0 and 100 with at most two decimals", field=name)
    return int(value)


def day(form: Any, name: str) -> dt.date:
    """A required day typed the Chinese way (shoptime.parse_day: 2026-12-31, 2026/12/31, 2026年12月31日)."""
    found = parse_day(text(form, name, max_length=20, required=True))
    if found is None:
        raise FormError(f"{name} must be a date like 2026-12-31", field=name)
    return found


def checkbox(form: Any, name: str) -> bool:
    return str(form.get(name, "")) in ("on", "true", "1", "yes")


def flash(request: Request, section: str, known: Iterable[str], *, warn: Iterable[str] = (),
          values: Iterable[str] = ()) -> Message | None:
    """The message a redirect asked for (`?m=<code>`), if it is one of this page's `known` codes: the text
    `<section>.m.<code>` with the query's `values`."""
    code = request.query_params.get("m", "")
    if code not in set(known):
        return None
    found = {key: request.query_params.get(key, "")[:300] for key in values}
    return f"{section}.m.{code}", found, "warn" if code in set(warn) else "ok"


def error(exc: DomainError) -> Message:
    """A refused action: the section's text for the error code when it has one, else a general headline; the
    service's own message always shown as the detail."""
    key = "err." + exc.code
    return (key if key in MESSAGES["zh-CN"] else "ops.refused"), {"detail": exc.message}, "err"


def status_for(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    return 422 if isinstance(exc, InvalidInput) else 409


def back(url: str, code: str, /, **values: str) -> RedirectResponse:
    """After a form that worked: see the page again (303), with what happened."""
    query = urlencode({"m": code, **{k: v for k, v in values.items() if v}})
    return RedirectResponse(f"{url}?{query}", status_code=303)


def not_found(request: Request, user: ConsoleUser, *, active: str = "") -> HTMLResponse:
    """The page of something that does not exist, or is another merchant's (the same answer: ids are never
    confirmed, and the address typed is not echoed back)."""
    return render_page(request, "console/not_found.html", {"lang_url": "/console?lang="}, user=user, active=active,
                       status_code=404)
