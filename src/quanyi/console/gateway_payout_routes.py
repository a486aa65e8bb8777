"""Gateway settlements (渠道结算): what each gateway still owes the shop (its clearing account), the settlements it
paid into the bank, and a form to record one from the gateway's statement (net, fee, refunds netted), booked by
`ledger.record_gateway_payout` as the admin API's `POST /api/admin/ledger/gateway-payouts` and `quanyi ledger
gateway-payout` do, once per settlement number, audited. Platform staff: finance reads, the owner records."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.ledger  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError
from quanyi.ledger import service as ledger_service
from quanyi.money import CURRENCIES, format_money
from quanyi.payments.configuration import gateway_kinds, known_gateway_names
from quanyi.payments.titles import gateway_title, title_of
from quanyi.shoptime import shop_day, shop_zone
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

PAGE = "/console/gateway-payouts"
router = console_router(PAGE)
register(MenuItem("gateway_payouts", PAGE, "ledger.read", group="finance", order=25, icon="download",
                  platform_only=True))

Reader = Annotated[ConsoleUser, needs("ledger.read", platform_only=True)]
Recorder = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
FIELDS = ("gateway", "settlement_no", "period_from", "period_to", "net", "fee", "refunds", "currency", "note")


def _today(ctx: ContextDep) -> dt.date:
    return shop_day(dt.datetime.now(dt.UTC), shop_zone(ctx.settings.shop_timezone))


async def _page(request: Request, ctx: ContextDep, user: ConsoleUser, *, values: dict[str, str] | None = None,
                message: forms.Message | None = None, field: str | None = None,
                status_code: int = 200) -> HTMLResponse:
    await ledger_service.post_all_deferred(ctx.db)  # the clearing balances as of now
    async with ctx.db.read_session() as session:
        owed = await ledger_service.gateway_clearing_balances(session, configured=ctx.gateways.names())
        payouts = await ledger_service.list_gateway_payouts(session, timezone=ctx.settings.shop_timezone)
    yesterday = (_today(ctx) - dt.timedelta(days=1)).isoformat()
    gateways = sorted({row.gateway for row in owed} | set(ctx.gateways.names())) or ["sandbox"]
    shown = {"period_from": yesterday, "period_to": yesterday, "fee": "0", "refunds": "0", "currency": "CNY",
             "gateway": gateways[0], **(values or {})}
    field = {"net_cents": "net", "fee_cents": "fee", "refunds_cents": "refunds"}.get(field or "", field)
    return render_page(request, "console/gateway_payouts.html", {
        "owed": owed, "payouts": payouts, "gateways": gateways, "currencies": list(CURRENCIES),
        "titles": _titles(ctx, pick_locale(request, ctx.settings.default_locale)),
        "values": shown,
        "message": message or forms.flash(request, "gp", ("recorded",), values=("amount", "gateway", "no")),
        "errors": {field: "gp.check_field"} if field else {},
    }, user=user, active="gateway_payouts", status_code=status_code)


def _titles(ctx: ContextDep, locale: str) -> dict[str, str]:
    """Each gateway's own title in the page's language (支付宝, 微信支付 ...), running or only configurable, by name."""
    titles = {name: gateway_title(name, locale) or kind.title for name, kind in gateway_kinds().items()}
    titles.update({gateway.name: title_of(gateway, locale) for gateway in ctx.gateways.all()})
    return titles


@router.get("", response_class=HTMLResponse)
async def gateway_payouts(request: Request, ctx: ContextDep, user: Reader) -> HTMLResponse:
    return await _page(request, ctx, user)


def _amount(form: Any, name: str, currency: str, *, allow_zero: bool) -> int:
    if currency not in CURRENCIES:
        raise forms.FormError(f"currency must be one of {', '.join(CURRENCIES)}", field="currency")
    return forms.amount(form, name, currency, allow_zero=allow_zero)


@router.post("", response_class=HTMLResponse)
async def record_payout(request: Request, ctx: ContextDep, user: Recorder) -> Response:
    form = await request.form()
    values = {name: str(form.get(name, "") or "").strip()[:500] for name in FIELDS}
    try:
        currency = forms.text(form, "currency", max_length=3) or "CNY"
        gateway = forms.text(form, "gateway", max_length=32, required=True)
        settlement_no = forms.text(form, "settlement_no", max_length=64, required=True)
        first, last = forms.day(form, "period_from"), forms.day(form, "period_to")
        net = _amount(form, "net", currency, allow_zero=False)
        fee = _amount(form, "fee", currency, allow_zero=True)
        refunds = _amount(form, "refunds", currency, allow_zero=True)
        note = forms.text(form, "note", max_length=500)
        await ledger_service.post_all_deferred(ctx.db)  # every payment in clearing before its balance is read
        async with ctx.db.transaction() as session:
            payout = await ledger_service.record_gateway_payout(
                session, gateway=gateway, settlement_no=settlement_no, period_from=first, period_to=last,
                net_cents=net, fee_cents=fee, refunds_cents=refunds, currency=currency, note=note, actor=user.name,
                configured=known_gateway_names(ctx.gateways), today=_today(ctx))
            await record_action(session=session, actor=user.actor, action="gateway_payout_recorded",
                                object_type="gateway_payout", object_id=f"{gateway}:{payout.settlement_no}",
                                summary=f"{first.isoformat()}..{last.isoformat()} net={net} fee={fee} "
                                        f"refunds={refunds} {currency}")
    except DomainError as exc:
        return await _page(request, ctx, user, values=values, message=forms.error(exc),
                           field=str(exc.context.get("field", "")) or None, status_code=forms.status_for(exc))
    return forms.back(PAGE, "recorded", amount=format_money(net, currency), gateway=gateway,
                      no=payout.settlement_no)
