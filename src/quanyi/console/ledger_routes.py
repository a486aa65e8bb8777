"""Ledger pages (总账): the trial balance (试算平衡) and any account's statement (明细账) for the platform's
finance staff; a supplier's settlement statement (对账单) for whoever manages that supplier's money (a merchant's
staff: their merchant's suppliers). Through the ledger service, after the payments' deferred postings are booked,
as the admin API reads the books."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.ledger  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.ledger import service as ledger_service
from quanyi.orders import search as order_search
from quanyi.shoptime import day_bounds, parse_day, shop_day, shop_zone
from quanyi.suppliers.models import SettlementCycle

__all__ = ["router"]

router = console_router("/console/ledger")
register(MenuItem("ledger", "/console/ledger", "ledger.read", group="finance", order=10, icon="book",
                  platform_only=True))

PlatformReader = Annotated[ConsoleUser, needs("ledger.read", platform_only=True)]
Reader = Annotated[ConsoleUser, needs("ledger.read")]
AccountCode = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
SupplierCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
MAX_DAYS = 366


def _day(text: str, default: dt.date) -> dt.date:
    return parse_day(text) or default


@router.get("", response_class=HTMLResponse)
async def trial_balance(request: Request, ctx: ContextDep, user: PlatformReader) -> HTMLResponse:
    await ledger_service.post_all_deferred(ctx.db)  # the books as of now
    async with ctx.db.read_session() as session:
        trial = await ledger_service.trial_balance(session=session)
        drift = await ledger_service.prepaid_drift(session=session)
        owners = await ledger_service.account_owners(session=session, codes=[a.code for a in trial.accounts])
    return render_page(request, "console/ledger.html", {"trial": trial, "drift": drift, "owners": owners},
                       user=user, active="ledger")


@router.get("/accounts/{account_code}", response_class=HTMLResponse)
async def account_statement(account_code: AccountCode, request: Request, ctx: ContextDep,
                            user: PlatformReader) -> HTMLResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    today = shop_day(dt.datetime.now(dt.UTC), zone)
    last = _day(request.query_params.get("to", ""), today)
    first = _day(request.query_params.get("from", ""), last.replace(day=1))
    first = max(min(first, last), last - dt.timedelta(days=MAX_DAYS - 1))  # a period of at most a year
    start, end = day_bounds(first, zone, days=(last - first).days + 1)
    await ledger_service.post_all_deferred(ctx.db)
    try:
        async with ctx.db.read_session() as session:
            statement = await ledger_service.account_statement(
                session=session, code=account_code, start=start, end=end,
                currency=request.query_params.get("currency", "")[:3] or None)
            owners = await ledger_service.account_owners(session=session, codes=[account_code])
            numbers = {o.id: o.order_no for o in await order_search.orders_by_ids(
                session=session, order_ids=[line.order_id for line in statement.lines if line.order_id])}
    except NotFound:
        return forms.not_found(request, user, active="ledger")
    return render_page(request, "console/ledger_account.html", {
        "s": statement, "numbers": numbers, "first": first, "last": last, "owners": owners,
    }, user=user, active="ledger")


@router.get("/suppliers/{supplier_code}", response_class=HTMLResponse)
async def supplier_statement(supplier_code: SupplierCode, request: Request, ctx: ContextDep,
                             user: Reader) -> HTMLResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    day = _day(request.query_params.get("period", ""), shop_day(dt.datetime.now(dt.UTC), zone))
    raw_cycle = request.query_params.get("cycle", "")
    cycle = SettlementCycle(raw_cycle) if raw_cycle in SettlementCycle.__members__.values() else None
    await ledger_service.post_all_deferred(ctx.db)
    message = None
    try:
        async with ctx.db.read_session() as session:
            statement = await ledger_service.supplier_statement(
                session=session, supplier_code=supplier_code, day=day, cycle=cycle,
                timezone=ctx.settings.shop_timezone, scope=user.scope)
    except NotFound:
        return forms.not_found(request, user, active="suppliers")
    except DomainError as exc:  # a period the books cannot answer for: say so on the page
        return render_page(request, "console/ledger_supplier.html", {
            "st": None, "day": day, "cycle": raw_cycle, "cycles": list(SettlementCycle), "code": supplier_code,
            "message": forms.error(exc)}, user=user, active="suppliers", status_code=forms.status_for(exc))
    return render_page(request, "console/ledger_supplier.html", {
        "st": statement, "day": day, "cycle": raw_cycle, "cycles": list(SettlementCycle),
        "code": statement.supplier_code, "message": message,
    }, user=user, active="suppliers")
