"""The dashboard page (经营概览): figures from console.dashboard, charts drawn in the browser by ECharts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.dashboard  # noqa: F401 - registers the texts
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.dashboard import PERIODS, Dashboard, build_dashboard
from quanyi.console.i18n import console_text
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.money import CURRENCIES
from quanyi.shoptime import shop_zone
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/dashboard")
register(MenuItem("dashboard", "/console/dashboard", "console.dashboard", group="overview", order=10, icon="chart"))


def _charts(board: Dashboard, locale: str) -> dict[str, Any]:
    """What the page's script hands to ECharts: labels and integer minor units (formatted in the browser)."""
    name = console_text(locale, "dash.sales")
    exponent, symbol = CURRENCIES.get(board.currency, (2, board.currency + " "))
    money = {"money": True, "exponent": exponent, "symbol": symbol}
    return {
        "by_hour": {"type": "bar", "labels": [f"{h:02d}" for h in range(24)],
                    "series": [{"name": name, "data": board.by_hour}], **money},
        "by_day": {"type": "line", "labels": [day.strftime("%m-%d") for day, _ in board.by_day],
                   "series": [{"name": name, "data": [cents for _, cents in board.by_day]}], **money},
        "by_sku": {"type": "hbar", "labels": [line.title for line in board.by_sku],
                   "series": [{"name": name, "data": [line.cents for line in board.by_sku]}], **money},
    }


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, ctx: ContextDep, user: Annotated[ConsoleUser, needs("console.dashboard")],
                    period: Annotated[str, Query(max_length=8)] = "today") -> HTMLResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    board = await build_dashboard(db=ctx.db, zone=zone, period=period if period in PERIODS else "today",
                                  low_stock_threshold=ctx.settings.low_stock_threshold, scope=user.scope)
    locale = pick_locale(request, ctx.settings.default_locale)
    return render_page(request, "console/dashboard.html", {
        "board": board, "periods": list(PERIODS), "chart_data": _charts(board, locale),
        "zone_name": ctx.settings.shop_timezone,
    }, user=user, active="dashboard")
