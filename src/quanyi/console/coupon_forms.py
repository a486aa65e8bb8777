"""Reading the console's coupon forms into the coupon API's request shapes (CouponCreate, CouponUpdate), so a form
is held to exactly the rules of the admin API; what is wrong comes back per field for the page to show.

Money is typed in yuan (20.00), percentages in percent (15 = 15 % off), times on the shop's wall clock (typed
2026-12-31 14:30, 24-hour: shoptime.parse_minute); the form reads only the amount of the kind chosen, and the code
only of a public-code coupon."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Product
from quanyi.console.catalog_forms import FormErrors, checkbox, money_field, read_form, text
from quanyi.coupons.schemas import CouponCreate, CouponUpdate
from quanyi.errors import NotFound
from quanyi.scope import Scope
from quanyi.shoptime import MINUTE_FORMAT, parse_minute

__all__ = ["create_values", "read_create", "read_update", "update_values", "resolve_targets",
           "local_input", "FIELD_OF"]

# The API's field names as the form calls them (pydantic's errors name the API's).
FIELD_OF = {"amount_off_cents": "amount_off", "percent_off_bps": "percent_off", "max_discount_cents": "max_discount",
            "fixed_price_cents": "fixed_price", "threshold_cents": "threshold", "targets": "scope"}
# The form's own refusals are codes ("required", "percent_range" ...), said in the page's language like the request
# shapes' and the service's messages (console/said.py).
_LIST_SPLIT = re.compile(r"[\s,，;；]+")
MAX_TARGETS = 200


def local_input(moment: dt.datetime | None, zone: ZoneInfo) -> str:
    """An instant as its form field shows it: the shop's wall clock, to the minute, 24-hour (2026-12-31 14:30)."""
    return moment.astimezone(zone).strftime(MINUTE_FORMAT) if moment else ""


def _moment(form: FormData, name: str, zone: ZoneInfo, errors: dict[str, str]) -> dt.datetime | None:
    raw = text(form, name, 40)
    if not raw:
        errors[name] = "required"
        return None
    moment = parse_minute(raw)
    if moment is None:
        errors[name] = "datetime"
        return None
    return moment.replace(tzinfo=zone)


def _whole(form: FormData, name: str, errors: dict[str, str]) -> int | str | None:
    """A whole number, blank as None (no limit); anything else is left to the request shape to refuse."""
    raw = text(form, name, 20)
    if not raw:
        return None
    if not re.fullmatch(r"\d{1,12}", raw):
        errors[name] = "whole"
        return None
    return int(raw)


def _percent_bps(form: FormData, errors: dict[str, str]) -> int | None:
    raw = text(form, "percent_off", 12)
    try:
        value = Decimal(raw) * 100
    except InvalidOperation:
        errors["percent_off"] = "percent" if raw else "required"
        return None
    if not value.is_finite() or value != value.to_integral_value() or not 1 <= value <= 9999:
        errors["percent_off"] = "percent_range"
        return None
    return int(value)


def _words(form: FormData, name: str) -> list[str]:
    return [w for w in _LIST_SPLIT.split(text(form, name, 20_000)) if w]


def create_values(form: FormData) -> dict[str, Any]:
    """The create form as typed, to draw it again after a refusal."""
    names = ("merchant_code", "name", "description", "kind", "amount_off", "percent_off", "max_discount",
             "fixed_price", "threshold", "currency", "starts_at", "ends_at", "total_quantity", "per_member_limit",
             "distribution", "code", "scope", "products", "skus")
    values: dict[str, Any] = {name: text(form, name, 20_000) for name in names}
    values.update({flag: checkbox(form, flag) for flag in ("new_members_only", "stackable", "signup_gift")})
    values["categories"] = [str(c)[:12] for c in form.getlist("categories")][:MAX_TARGETS]
    return values


def read_create(form: FormData, zone: ZoneInfo) -> tuple[CouponCreate, dict[str, list[str]]]:
    """The coupon the form asks for, and the scope it names (category ids, product slugs, SKU codes), still to be
    resolved in the owner's catalog (resolve_targets). Raises FormErrors."""
    errors: dict[str, str] = {}
    kind = text(form, "kind", 20)
    currency = text(form, "currency", 3) or "CNY"
    values: dict[str, Any] = {
        "name": text(form, "name", 200), "description": str(form.get("description", ""))[:600],
        "kind": kind, "currency": currency, "distribution": text(form, "distribution", 20),
        "threshold_cents": money_field(form, "threshold", currency, errors, required=False) or 0,
        "starts_at": _moment(form, "starts_at", zone, errors), "ends_at": _moment(form, "ends_at", zone, errors),
        "total_quantity": _whole(form, "total_quantity", errors),
        "per_member_limit": _whole(form, "per_member_limit", errors),
        "new_members_only": checkbox(form, "new_members_only"), "stackable": checkbox(form, "stackable"),
        "signup_gift": checkbox(form, "signup_gift"),
        "merchant_code": text(form, "merchant_code", 60) or None,
    }
    if kind == "amount_off":
        values["amount_off_cents"] = money_field(form, "amount_off", currency, errors)
    elif kind == "percent_off":
        values["percent_off_bps"] = _percent_bps(form, errors)
        values["max_discount_cents"] = money_field(form, "max_discount", currency, errors, required=False)
    elif kind == "fixed_price":
        values["fixed_price_cents"] = money_field(form, "fixed_price", currency, errors)
    if values["distribution"] == "code":
        values["code"] = text(form, "code", 60) or None
        if values["code"] is None:
            errors["code"] = "code_required"
    scope = {"category": [str(c).strip() for c in form.getlist("categories")],
             "product": _words(form, "products"), "sku": _words(form, "skus")}
    if text(form, "scope", 10) == "some":
        if not any(scope.values()):
            errors["scope"] = "scope_empty"
        elif sum(len(v) for v in scope.values()) > MAX_TARGETS:
            errors["scope"] = f"at most {MAX_TARGETS} categories, products and SKUs"
        bad = [c for c in scope["category"] if not c.isdigit() or len(c) > 10]
        if bad:
            errors["scope"] = "unknown_category"
    else:
        scope = {"category": [], "product": [], "sku": []}
    if values["starts_at"] and values["ends_at"] and values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "after_start"
    try:
        data = read_form(CouponCreate, values, errors)
    except FormErrors as exc:
        named = {FIELD_OF.get(k, k): v for k, v in exc.errors.items()}
        if named.keys() & {"amount_off", "percent_off", "fixed_price"}:
            named.pop("form", None)  # the request shape's "needs its amount", already said next to the amount
        raise FormErrors(named) from None
    return data, scope


async def resolve_targets(session: Any, scope: dict[str, list[str]], owner: int) -> list[tuple[str, int]]:
    """The scope as (kind, id): categories by id, products by slug, SKUs by code, products and SKUs only among the
    owner's own goods (another merchant's read as unknown). Raises FormErrors on the scope field."""
    targets = [("category", int(c)) for c in dict.fromkeys(scope["category"])]
    for slug in dict.fromkeys(scope["product"]):
        try:
            product: Product = await catalog_service.get_product_by_slug(session=session, slug=slug)
        except NotFound:
            product = None  # type: ignore[assignment]
        if product is None or product.merchant_id != owner:
            raise FormErrors({"scope": f"no product {slug!r} among this shop's goods"})
        targets.append(("product", product.id))
    for code in dict.fromkeys(scope["sku"]):
        try:
            sku = await catalog_service.get_sku_by_code(session=session, code=code, scope=Scope(owner))
        except NotFound:
            raise FormErrors({"scope": f"no SKU {code!r} among this shop's goods"}) from None
        targets.append(("sku", sku.id))
    return targets


def update_values(form: FormData) -> dict[str, Any]:
    names = ("name", "description", "starts_at", "ends_at", "total_quantity", "per_member_limit")
    values: dict[str, Any] = {name: text(form, name, 600) for name in names}
    values.update({flag: checkbox(form, flag) for flag in ("new_members_only", "stackable", "signup_gift")})
    return values


def read_update(form: FormData, zone: ZoneInfo, *, issued: bool) -> CouponUpdate:
    """The edit form as a CouponUpdate of every editable field (blank quantities: no limit). Raises FormErrors."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {
        "name": text(form, "name", 200), "description": str(form.get("description", ""))[:600],
        "starts_at": _moment(form, "starts_at", zone, errors), "ends_at": _moment(form, "ends_at", zone, errors),
        "total_quantity": _whole(form, "total_quantity", errors),
        "per_member_limit": _whole(form, "per_member_limit", errors),
        "new_members_only": checkbox(form, "new_members_only"), "stackable": checkbox(form, "stackable"),
    }
    if issued:
        values["signup_gift"] = checkbox(form, "signup_gift")
    if values["starts_at"] and values["ends_at"] and values["ends_at"] <= values["starts_at"]:
        errors["ends_at"] = "after_start"
    return read_form(CouponUpdate, values, errors, keep_none=("total_quantity", "per_member_limit"))  # type: ignore[no-any-return]
