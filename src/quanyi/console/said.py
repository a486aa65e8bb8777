"""What the console says when a form or an action is refused, in the page's language: the one place that turns
what the request shapes (pydantic), the money parser and the services say (English, for the API and the logs) into
the console's Chinese. The API keeps its English messages and stable codes; a console page never shows them raw.

A refusal reaches a page as a string: a form's own code ("required"), an English message (a service's, the money
parser's, a request shape's custom check), or a `Said` (a request shape's standard check, by pydantic's error type
and its limits). `render_page` passes every form error and every refused action's detail through `say`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from pydantic_core import ErrorDetails

from quanyi.console.i18n import MESSAGES, console_text
from quanyi.console.texts import said as said_texts
from quanyi.console.texts import (
    said_keys,
    said_ledger,
    said_orders,
    said_portal,
    said_reconciliation,
    said_setup,
)
from quanyi.payments.titles import gateway_title

__all__ = ["Said", "from_validation", "say", "say_all", "localize"]


class Said(str):
    """A request shape's refusal: the English message as pydantic put it, with the console text key and values
    (`said.v.<type>`) that say it in the page's language."""

    key: str
    values: dict[str, Any]

    def __new__(cls, english: str, key: str, **values: Any) -> Said:
        said = super().__new__(cls, english)
        said.key, said.values = key, values
        return said


# pydantic error types the console says in its own words; money fields (*_cents) state their limits in yuan.
_TYPES = {"missing": "required", "string_too_short": "too_short", "string_too_long": "too_long",
          "too_long": "too_many", "string_pattern_mismatch": "pattern", "greater_than": "gt",
          "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le", "int_parsing": "whole",
          "int_type": "whole", "int_from_float": "whole", "literal_error": "choice", "enum": "choice",
          "datetime_parsing": "datetime", "datetime_from_date_parsing": "datetime", "datetime_type": "datetime",
          "timezone_aware": "datetime", "bool_parsing": "choice", "decimal_parsing": "number",
          "extra_forbidden": "unknown_field", "string_type": "text", "url_parsing": "url"}

# English messages (services, request shapes' own checks, the money parser, the console's form readers) and the
# text that says each; the groups fill the text's {0}, {1} ... Each area's patterns sit beside its texts
# (console/texts/said*.py) as (pattern, key) or (pattern, key, how its groups are said: see _group); a message is
# said by the first pattern that matches all of it, in this order.
_PATTERNS: tuple[tuple[str, ...], ...] = (
    *said_texts.PATTERNS,  # catalog, coupons and what several pages meet
    *said_orders.PATTERNS,  # orders, manual delivery, refunds, risk review and rules, suppliers
    *said_portal.PATTERNS,  # the enterprise portal's purchases, campaigns and users
    *said_texts.FORM_PATTERNS,  # the console's form readers, the money parser, second-factor enrolment
    *said_setup.PATTERNS,  # pydantic's wording in a summary; enterprises, gateways, supplier credentials, staff
    *said_keys.PATTERNS,  # 循环卡密 shared codes, 自选卡密 labels, a card-key line's reasons
    *said_orders.MOVE_PATTERNS,  # why an order moved
    *said_ledger.PATTERNS,  # gateway settlements, the ledger's posting memos
    *said_reconciliation.PATTERNS,  # why the reconciliation report lists a difference
)
_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(entry[0]), entry[1]) for entry in _PATTERNS)


def _groups_of(patterns: tuple[tuple[str, ...], ...]) -> dict[str, str]:
    """Each text key's way of saying its groups, as its pattern names it; a key named two ways is refused."""
    found: dict[str, str] = {}
    for _pattern, key, *how in patterns:
        if how and found.setdefault(key, how[0]) != how[0]:
            raise ValueError(f"said.m.{key}: its groups are said as {found[key]!r} and as {how[0]!r}")
    return found


# How a message's groups are said, by position (a pattern's third element): "s" an order / refund status, "p" a
# bulk purchase's, "c" a campaign's, "e" what a payment did to its order (effect.*), "y" cents in yuan, "m" a
# message inside the message, "f" a field of a card-key line, "g" a gateway's name (its class's title,
# quanyi.payments.titles), "t" an ISO
# time (on the shop's clock, as the pages show times, when the page gives its zone), "-" as it is (the default).
_GROUPS = _groups_of(_PATTERNS)
_SUMMARY_PART = re.compile(r"([\w.]*): (.+)", re.S)  # "field: reason" of a validation summary
_KINDS = {"category": "said.kind.category", "product": "said.kind.product", "sku": "said.kind.sku",
          "SKU": "said.kind.sku", "merchant": "said.kind.merchant"}


def _yuan(cents: Any) -> str:
    return f"{Decimal(int(cents)) / 100:.2f}"


_STATUS_TEXTS = {"s": "status.", "p": "ent.purchase.", "c": "ent.campaign.", "e": "effect."}


def _time(text: str, zone: tzinfo | None) -> str:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if zone is None or moment.tzinfo is None:
        return text
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")  # the `local_time` filter's format


def _group(locale: str, group: str | None, how: str, zone: tzinfo | None) -> str:
    if group is None:
        return ""
    if how == "y":
        return _yuan(group)
    if how == "t":
        return _time(group, zone)
    if how == "m":
        return str(say(group, locale, zone=zone))
    if how == "f":
        return console_text(locale, "said.line." + group.replace(" ", "_"))
    if how == "g":
        return gateway_title(group, locale) or group
    if how in _STATUS_TEXTS:
        key = _STATUS_TEXTS[how] + group
        return console_text(locale, key) if key in MESSAGES["zh-CN"] else group
    return console_text(locale, _KINDS[group]) if group in _KINDS else group


def _said_parts(summary: str, locale: str, zone: tzinfo | None) -> str | None:
    """A validation summary ("field: reason; field: reason", as the console's forms and the gateway settings put
    them) with each reason said in the page's language; None when the console has words for none of them."""
    parts, said_any = [], False
    for part in summary.split("; "):
        found = _SUMMARY_PART.fullmatch(part)
        field, reason = (found.group(1), found.group(2)) if found else ("", part)
        reason = reason.removeprefix("Value error, ")
        said = say(reason, locale, zone=zone)  # shorter than `summary`: the recursion ends
        said_any = said_any or said != reason
        parts.append(f"{field}：{said}" if field else said)
    return "；".join(parts) if said_any else None


def from_validation(error: ErrorDetails) -> str:
    """One error of a request shape, as a `Said` when the console has its own words for it."""
    english = str(error["msg"]).removeprefix("Value error, ")
    kind = _TYPES.get(error["type"])
    if kind is None:
        return english
    values = dict(error.get("ctx") or {})
    field = str(error["loc"][-1]) if error["loc"] else ""
    if field.endswith("_cents") and kind in ("gt", "ge", "lt", "le"):
        limit = values.get(kind)
        return Said(english, f"said.v.money_{kind}", limit=_yuan(limit if limit is not None else 0))
    return Said(english, f"said.v.{kind}", **{k: v for k, v in values.items() if isinstance(v, int | str)})


def say(said: Any, locale: str, *, zone: tzinfo | None = None) -> Any:
    """`said` in the page's language: a form code, a `Said`, or an English message the console knows; anything
    else as it is (English pages: the English message, which names the details exactly). `zone`: the shop's,
    for the times a message names."""
    if not isinstance(said, str) or not said:
        return said
    if isinstance(said, Said):
        return console_text(locale, said.key, **said.values) if locale != "en" else str(said)
    if f"said.f.{said}" in MESSAGES["zh-CN"]:
        return console_text(locale, f"said.f.{said}")
    if locale == "en":
        return said
    for pattern, key in _MESSAGES:
        found = pattern.fullmatch(said)
        if found:
            hows = _GROUPS.get(key, "")
            groups = [_group(locale, g, hows[i] if i < len(hows) else "-", zone)
                      for i, g in enumerate(found.groups())]
            return console_text(locale, f"said.m.{key}").format(*groups)
    if _SUMMARY_PART.fullmatch(said.split("; ")[0]):  # a validation summary: its reasons said one by one
        return _said_parts(said, locale, zone) or said
    return said


def say_all(errors: Mapping[str, Any] | None, locale: str, *, zone: tzinfo | None = None) -> dict[str, Any]:
    """A form's errors, field by field, in the page's language."""
    return {field: say(message, locale, zone=zone) for field, message in (errors or {}).items()}


def localize(context: dict[str, Any], locale: str, *, zone: tzinfo | None = None) -> dict[str, Any]:
    """The page context with the refusals it carries in the page's language (render_page): form errors
    (`errors`, `*_errors`) and a refused action's `detail`."""
    said = {name: say_all(value, locale, zone=zone) if (name == "errors" or name.endswith("_errors"))
            and isinstance(value, Mapping) else value for name, value in context.items()}
    message = said.get("message")
    if isinstance(message, tuple) and len(message) == 3 and isinstance(message[1], dict) \
            and "detail" in message[1]:
        detail = say(message[1]["detail"], locale, zone=zone)
        said["message"] = (message[0], {**message[1], "detail": detail}, message[2])
    return said
