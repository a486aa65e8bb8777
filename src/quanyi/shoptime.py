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
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # the settings import this module: keep it free of the database layer
    from sqlalchemy.ext.asyncio import AsyncSession

    from quanyi.db import Database

__all__ = ["DEFAULT_TIMEZONE", "shop_zone", "install_shop_zone", "zone_of", "shop_time", "shop_day",
           "shop_midnight", "day_bounds", "valid_through"]

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
