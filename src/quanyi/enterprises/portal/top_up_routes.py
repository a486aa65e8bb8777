"""Top-ups in the portal (充值): every user sees the enterprise's requests and what became of them; its admins ask
for a top-up paid by bank transfer (the amount in yuan, the transfer's reference). The shop's operator confirms
it in the console once the money arrived (the balance and the statement show it) or refuses it with a reason.
The enterprises top-ups service keeps every rule; each request is audited with the admin as actor."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from quanyi.deps import ContextDep
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises import top_ups, users
from quanyi.enterprises.portal import auth
from quanyi.enterprises.portal.auth import PortalUser, UserDep, needs
from quanyi.enterprises.portal.pages import audit, forms
from quanyi.enterprises.portal.rendering import render_page
from quanyi.errors import DomainError
from quanyi.money import format_money

__all__ = ["router"]

router = auth.portal_router("/portal/top-ups")
TopUpDep = Annotated[PortalUser, needs(users.TOP_UP)]
MESSAGES = ("top_up_requested", "top_up_repeated")
FIELDS = ("amount", "payment_method", "payer_reference", "note")  # not "method": it would shadow form.method


async def _page(request: Request, ctx: ContextDep, user: PortalUser, *, message: forms.Message | None = None,
                typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
        account = await enterprises_service.account_of(session=session, enterprise=enterprise)
        listed = await top_ups.list_top_ups(session=session, code=user.code)
    return render_page(request, "portal/top_ups.html", {
        "account": account, "requests": listed, "message": message, "typed": typed or {},
        "request_key": secrets.token_urlsafe(16), "payee": ctx.settings.enterprise_top_up_payee,
        "max_pending": top_ups.MAX_PENDING,
    }, user=user, active="top_ups", status_code=status_code)


@router.get("", response_class=HTMLResponse)
async def top_up_list(request: Request, ctx: ContextDep, user: UserDep) -> Response:
    return await _page(request, ctx, user, message=forms.flash(request, "portal", MESSAGES, warn=("top_up_repeated",),
                                                               values=("no", "amount")))


@router.post("", response_class=HTMLResponse)
async def request_top_up(request: Request, ctx: ContextDep, user: TopUpDep) -> Response:
    form = await request.form()
    typed = {name: str(form.get(name, ""))[:500] for name in FIELDS}
    try:
        async with ctx.db.transaction() as session:
            enterprise = await enterprises_service.get_enterprise(session=session, code=user.code)
            account = await enterprises_service.account_of(session=session, enterprise=enterprise)
            made, created = await top_ups.request_top_up(
                session=session, code=user.code, amount_cents=top_ups.parse_yuan(typed["amount"], account.currency),
                method=typed["payment_method"] or "bank_transfer", payer_reference=typed["payer_reference"],
                note=typed["note"],
                actor=user.actor_name, request_key=str(form.get("request_key", ""))[:100])
            if created:
                await audit(session, user, "portal_top_up_requested",
                            f"{made.request_no}: {made.amount_cents} cents {made.currency} by bank transfer "
                            f"{made.payer_reference}")
    except DomainError as exc:
        return await _page(request, ctx, user, message=forms.error(exc), typed=typed,
                           status_code=forms.status_for(exc))
    return forms.back("/portal/top-ups", "top_up_requested" if created else "top_up_repeated", no=made.request_no,
                      amount=format_money(made.amount_cents, made.currency))
