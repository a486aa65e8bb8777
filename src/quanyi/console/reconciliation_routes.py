"""The reconciliation report (对账): every payment and refund of a shop day checked against its gateway, the
differences listed; a payment the gateway has and the shop missed is booked on the way (as the admin API's
`GET /api/admin/reconciliation` and `quanyi reconcile` do). Run by a form (it can book payments), audited;
platform staff only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Request
from fastapi.responses import HTMLResponse

import quanyi.console.texts.ledger  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.console.texts.reconciliation import shown_records
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.payments import reconciliation
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/reconciliation")
register(MenuItem("reconciliation", "/console/reconciliation", ADMIN, group="finance", order=20, icon="scale",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]


def _yesterday(ctx: ContextDep) -> dt.date:
    return shop_day(dt.datetime.now(dt.UTC), shop_zone(ctx.settings.shop_timezone)) - dt.timedelta(days=1)


def _page(request: Request, ctx: ContextDep, user: ConsoleUser, *, day: dt.date, gateway: str, report: object = None,
          message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    locale = pick_locale(request, ctx.settings.default_locale)
    return render_page(request, "console/reconciliation.html", {
        "day": day, "gateway": gateway, "gateways": sorted(ctx.gateways.names()), "report": report,
        "message": message, "records": lambda mismatch: shown_records(mismatch, locale),
    }, user=user, active="reconciliation", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def reconciliation_form(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return _page(request, ctx, user, day=_yesterday(ctx), gateway="")


@router.post("", response_class=HTMLResponse)
async def run_reconciliation(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    form = await request.form()
    gateway = forms.text(form, "gateway", max_length=32)
    day = _yesterday(ctx)
    try:
        day = forms.day(form, "date")
        if gateway and gateway not in ctx.gateways.names():
            raise forms.FormError(f"no gateway {gateway!r} takes payments in this shop", field="gateway")
        report = await reconciliation.reconcile_day(db=ctx.db, gateways=ctx.gateways, day=day,
                                                    timezone=ctx.settings.shop_timezone,
                                                    gateway_name=gateway or None)
    except DomainError as exc:
        return _page(request, ctx, user, day=day, gateway=gateway, message=forms.error(exc),
                     status_code=forms.status_for(exc))
    repaired = sum(1 for m in report.mismatches if m.repaired)
    async with ctx.db.transaction() as session:
        await record_action(session=session, actor=user.actor, action="reconciliation_run", object_type="day",
                            object_id=day.isoformat(), summary=f"gateways={','.join(report.gateways) or '-'} "
                            f"payments={report.payments_checked} refunds={report.refunds_checked} "
                            f"top_ups={report.top_ups_checked} mismatches={len(report.mismatches)} "
                            f"repaired={repaired}")
    return _page(request, ctx, user, day=day, gateway=gateway, report=report)
