"""Message texts from the Jinja2 templates in `templates/` (zh-CN and en): e-mail, SMS parameters, robot alerts.

E-mail HTML is autoescaped and embeds the redemption guide through the catalog's sanitizing Markdown
renderer; text parts and robot Markdown are not HTML and are rendered without escaping. StrictUndefined:
a payload missing a field fails loudly (the message goes to the dead-letter list) instead of sending blanks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from quanyi.catalog.guide import render_guide
from quanyi.inventory.schemas import RevealedKey
from quanyi.money import format_money
from quanyi.shoptime import valid_through

__all__ = ["EmailContent", "RobotContent", "LOCALES", "pick_locale", "render_email", "render_robot",
           "sms_template_text", "TEMPLATE_DIR"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
LOCALES = ("zh-CN", "en")


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class RobotContent:
    title: str
    markdown: str


def pick_locale(locale: str | None) -> str:
    return locale if locale in LOCALES else "zh-CN"


@pass_context
def _valid_through(context: Context, value: dt.datetime | str | None) -> str:
    """The last day a code can be used, on the shop's calendar (QUANYI_SHOP_TIMEZONE)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return valid_through(value, context["shop_zone"]).isoformat() if value else ""


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
    )
    env.filters["valid_through"] = _valid_through
    return env


def _render(name: str, context: dict[str, Any]) -> str:
    return _env().get_template(name).render(**context)


def _money(payload: dict[str, Any]) -> str:
    return format_money(int(payload["total_cents"]), str(payload["currency"]))


def render_email(
    kind: str, locale: str, payload: dict[str, Any], *, shop_name: str, order_url: str,
    keys: Sequence[RevealedKey] | None, zone: ZoneInfo,
) -> EmailContent:
    """Subject, plain text and HTML of a buyer e-mail."""
    locale = pick_locale(locale)
    guide = str(payload.get("guide_markdown") or "")
    context = {
        **payload, "shop_name": shop_name, "order_url": order_url, "keys": list(keys or []), "shop_zone": zone,
        "total": _money(payload) if "total_cents" in payload else "", "guide_markdown": guide,
        "guide_html": Markup(render_guide(guide)) if guide.strip() else "",  # noqa: S704 - sanitized by nh3
    }
    subject = _render(f"email/{kind}.subject.{locale}.txt", context).strip()
    # Header injection guard: a subject is one line whatever the product name holds.
    subject = re.sub(r"[\r\n]+", " ", subject)
    return EmailContent(
        subject=subject,
        text=_render(f"email/{kind}.text.{locale}.txt", context).strip() + "\n",
        html=_render(f"email/{kind}.html.{locale}.html", context),
    )


def render_robot(kind: str, locale: str, payload: dict[str, Any]) -> RobotContent:
    """A merchant alert as Markdown for WeCom / DingTalk; the first heading is its title."""
    locale = pick_locale(locale)
    context = dict(payload)
    if "total_cents" in payload:
        context["total"] = _money(payload)
    markdown = _render(f"robot/{kind}.{locale}.md", context).strip()
    first = markdown.splitlines()[0] if markdown else kind
    return RobotContent(title=first.lstrip("#").strip()[:64], markdown=markdown)


def sms_template_text(kind: str, locale: str) -> str:
    """The SMS text to register at the provider (its ${name} variables are what the shop sends)."""
    return (TEMPLATE_DIR / "sms" / f"{kind}.{pick_locale(locale)}.txt").read_text(encoding="utf-8").strip()
