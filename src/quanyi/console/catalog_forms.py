"""Reading the catalog pages' forms into the catalog's request shapes (the same ones the admin API takes), so a
form is checked by exactly the rules an API request is; what is wrong comes back per field for the page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from quanyi.console.said import from_validation
from quanyi.money import CURRENCIES, InvalidAmount, parse_amount

__all__ = ["FormErrors", "read_form", "text", "checkbox", "money_field"]


class FormErrors(Exception):
    """Fields of a form that are not valid: {field: message} (the page says them in its language: console/said.py)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def text(form: FormData, name: str, limit: int = 20_000) -> str:
    return str(form.get(name, "")).strip()[:limit]


def checkbox(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1")


def money_field(form: FormData, name: str, currency: str, errors: dict[str, str], *,
                required: bool = True) -> int | None:
    """A price typed in the currency's units ("9.90") as integer cents; a message into `errors` if it is not one."""
    value = text(form, name, 32)
    if not value:
        if required:
            errors[name] = "required"
        return None
    try:
        return parse_amount(value, currency if currency in CURRENCIES else "CNY")
    except InvalidAmount as exc:
        errors[name] = str(exc)
        return None


def read_form(model: type[BaseModel], values: dict[str, Any], errors: dict[str, str] | None = None, *,
              keep_none: tuple[str, ...] = ()) -> Any:
    """`model` built from `values` (None omitted, except the fields in `keep_none`, which a form clears by
    leaving them empty); raises FormErrors with every bad field."""
    errors = dict(errors or {})
    try:
        data = model.model_validate({k: v for k, v in values.items() if v is not None or k in keep_none})
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "form"
            errors.setdefault(field, from_validation(error))
        raise FormErrors(errors) from None
    if errors:
        raise FormErrors(errors)
    return data
