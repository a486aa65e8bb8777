"""The audit log's entries in the page's language (console/texts/audit.py): an action code, an object type and
the English summary an action wrote. Only what the page shows is said anew: the stored rows stay as written (they
are evidence), the export gives them as stored, and an English page shows a summary as recorded."""

from __future__ import annotations

import re
from decimal import Decimal

from quanyi.console.i18n import MESSAGES, console_text
from quanyi.console.texts.audit import SUMMARIES
from quanyi.payments.titles import gateway_title
from quanyi.staff.roles import role_title

__all__ = ["action_text", "object_text", "summary_text"]

_SUMMARIES = {action: tuple((re.compile(pattern, re.S), key, hows) for pattern, key, hows in entries)
              for action, entries in SUMMARIES.items()}


def _known(key: str) -> bool:
    return key in MESSAGES["zh-CN"]


def action_text(action: str, locale: str) -> str:
    """An action code in words; a code the console has no words for as it is."""
    key = f"audit.a.{action}"
    return console_text(locale, key) if _known(key) else action


def object_text(object_type: str, locale: str) -> str:
    key = f"audit.o.{object_type}"
    return console_text(locale, key) if _known(key) else object_type


def _group(value: str | None, how: str, locale: str) -> str:
    if value is None:
        return ""
    if how == "y":  # cents
        return f"{Decimal(int(value)) / 100:.2f}"
    if how == "b":  # basis points
        return f"{Decimal(int(value)) / 100:f}".rstrip("0").rstrip(".") + "%"
    if how == "R":  # staff roles, "a,b" or "-"
        names = [name for name in value.split(",") if name and name != "-"]
        return "、".join(role_title(name, locale) for name in names) if names else console_text(locale, "audit.v.none")
    if how == "g":
        return gateway_title(value, locale) or value
    if how.startswith("@"):
        key = how[1:] + value
        return console_text(locale, key) if _known(key) else value
    return value


def summary_text(action: str, summary: str, locale: str) -> str:
    """What the action recorded, in the page's language when the console knows the action's wording (the first of
    its patterns that matches all of it); anything else (a reason, a name someone typed) as recorded."""
    if locale == "en" or not summary:
        return summary
    for pattern, key, hows in _SUMMARIES.get(action, ()):
        found = pattern.fullmatch(summary)
        if found:
            groups = [_group(g, hows[i] if i < len(hows) else "-", locale) for i, g in enumerate(found.groups())]
            return console_text(locale, f"audit.s.{key}").format(*groups)
    return summary
