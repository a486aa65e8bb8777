"""The shop's local time (店铺时间): one IANA zone, `QUANYI_SHOP_TIMEZONE` (default Asia/Shanghai).

Everything that speaks of the shop's days or clock goes through here: the date in order numbers, times on
pages and in e-mails, import expiry dates, risk rules' time windows and daily counters, gateway
reconciliation days and supplier statements. Protocol times that a gateway or supplier fixes (Alipay's and
WeChat Pay's Beijing time) are not shop time and stay where their protocol is.

Services reach the zone through their session (`install_shop_zone` puts it into every session's `info`,
like the notification policy), everything holding the Settings through `shop_timezone`.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # the settings import this module: keep it free of the database layer
    from sqlalchemy.ext.asyncio import AsyncSession

    from quanyi.db import Database

__all__ = ["DEFAULT_TIMEZONE", "shop_zone", "install_shop_zone", "zone_of", "shop_time", "shop_day",
           "shop_midnight", "day_bounds", "valid_through", "parse_day", "parse_minute", "parse_month", "DAY_PATTERN",
           "MINUTE_PATTERN", "MONTH_PATTERN", "MINUTE_FORMAT"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
_ZONE_KEY = "quanyi.shop_zone"


@lru_cache(maxsize=16)
def shop_zone(name: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """The zone of an IANA name; ValueError for an unknown one (the Settings check theirs at startup)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Asia/Shanghai or UTC") from None


def install_shop_zone(db: Database, name: str) -> ZoneInfo:
    """Make every session of this database carry the shop's zone."""
    zone = shop_zone(name)
    db.session_info[_ZONE_KEY] = zone
    return zone


def zone_of(session: AsyncSession) -> ZoneInfo:
    """The shop's zone for a service holding only a session (the default on a bare Database, e.g. a bench)."""
    zone = session.info.get(_ZONE_KEY)
    return zone if isinstance(zone, ZoneInfo) else shop_zone()


def shop_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """An aware instant on the shop's wall clock."""
    return moment.astimezone(zone)


def shop_day(moment: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The shop's calendar day an instant falls on."""
    return moment.astimezone(zone).date()


def shop_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant a shop-local calendar day begins."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def day_bounds(day: dt.date, zone: ZoneInfo, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants `days` shop-local days from `day` start and end (end exclusive)."""
    return shop_midnight(day, zone), shop_midnight(day + dt.timedelta(days=days), zone)


def valid_through(expires_at: dt.datetime, zone: ZoneInfo) -> dt.date:
    """The last shop-local day a code that expires at `expires_at` can be used. Expiry is exclusive: an import's
    "2027-06-30" is stored as the midnight that ends that day, which must still read 2027-06-30, not 07-01."""
    return shop_day(expires_at - dt.timedelta(microseconds=1), zone)


# Days and times on forms are typed the Chinese way (2026-12-31, 2026/12/31, 2026年12月31日; 24-hour 14:30) in text
# fields: a browser's own date widget shows its locale's format (12/31/2026, 02:30 PM) whatever the page's language.
# The patterns are the fields' `pattern` attribute (templates: a hint the browser checks); parse_day /
# parse_minute decide. MINUTE_FORMAT is how a form shows a time it fills in.
MINUTE_FORMAT = "%Y-%m-%d %H:%M"
DAY_PATTERN = r"\s*\d{4}\s*[\-\/.年]\s*\d{1,2}\s*[\-\/.月]\s*\d{1,2}\s*日?\s*"
MINUTE_PATTERN = DAY_PATTERN + r"(?:[T\s]\s*\d{1,2}\s*[:：]\s*\d{2}\s*)?"
MONTH_PATTERN = r"\s*\d{4}\s*[\-\/.年]\s*\d{1,2}\s*月?\s*"
_MONTH = re.compile(r"(\d{4})\s*[\-\/.年]\s*(\d{1,2})\s*月?")
_DAY = re.compile(r"(\d{4})\s*[\-\/.年]\s*(\d{1,2})\s*[\-\/.月]\s*(\d{1,2})\s*日?")
_MINUTE = re.compile(_DAY.pattern + r"(?:\s*[T\s]\s*(\d{1,2})\s*[:：]\s*(\d{2})(?::\d{2})?)?")


def parse_day(raw: str) -> dt.date | None:
    """A day as people type it (2026-12-31, 2026/12/31, 2026.12.31, 2026年12月31日); None if it is not one."""
    found = _DAY.fullmatch(raw.strip())
    try:
        return dt.date(int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None
    except ValueError:
        return None


def parse_month(raw: str) -> dt.date | None:
    """A month as people type it (2026-12, 2026/12, 2026.12, 2026年12月) as its first day; None if it is not one."""
    found = _MONTH.fullmatch(raw.strip())
    if not found or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1:
        return None
    return dt.date(int(found.group(1)), int(found.group(2)), 1)


def parse_minute(raw: str) -> dt.datetime | None:
    """A wall-clock time to the minute (2026-12-31 14:30, 2026-12-31T14:30; a day alone is its midnight), naive;
    None if it is not one."""
    found = _MINUTE.fullmatch(raw.strip())
    if not found:
        return None
    day = parse_day(raw.strip()[:found.end(3)])
    hour, minute = int(found.group(4) or 0), int(found.group(5) or 0)
    if day is None or hour > 23 or minute > 59:
        return None
    return dt.datetime.combine(day, dt.time(hour, minute))
