"""Handing a coupon out from the console: issue it to members (by member id; platform staff also by e-mail or
phone), make a batch of unique single-use codes and download a batch as CSV. Through the coupons service the admin
API and `quanyi coupons` use; every action (each download too) is written to the audit log. A batch of up to
10,000 codes is made in one transaction of the form's request (one INSERT per 1,000 codes) and its CSV is streamed
in pages of 1,000 (coupons/routes.export_batch, the API's export), so neither holds the page or the memory long."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.responses import StreamingResponse

from quanyi.console import forms
from quanyi.console.auth import console_router
from quanyi.console.catalog_forms import FormErrors, read_form, text
from quanyi.console.coupon_routes import CouponId, Marketer, coupon_page
from quanyi.console.i18n import console_text
from quanyi.coupons import service as coupons_service
from quanyi.coupons.routes import audit_codes, export_batch
from quanyi.coupons.schemas import CodeBatchCreate, IssueRequest
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.members import service as members_service
from quanyi.staff.audit import record_action
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/coupons")
CodeBatchId = Annotated[int, Path(ge=1, le=2_147_483_647)]
_SPLIT = re.compile(r"[\s,，;；]+")
MAX_MEMBERS = 1000


async def _member_ids(session: object, refs: list[str], *, by_contact: bool) -> list[int]:
    """The members the form names; every one must exist (the form is refused naming those that do not)."""
    ids, unknown = [], []
    for ref in refs:
        if not by_contact and not (ref.isdigit() and len(ref) < 10):
            raise FormErrors({"members": f"{ref!r}: a merchant's staff give member ids (contacts are the platform's)"})
        try:
            ids.append((await members_service.find_member(session=session, ref=ref)).id)  # type: ignore[arg-type]
        except NotFound:
            unknown.append(ref)
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" (+{len(unknown) - 10})" if len(unknown) > 10 else "")
        raise FormErrors({"members": f"no such member: {shown}; nothing was issued"})
    return ids


@router.post("/{coupon_id}/issue", response_class=HTMLResponse)
async def issue(coupon_id: CouponId, request: Request, ctx: ContextDep, user: Marketer) -> Response:
    form = await request.form()
    typed = text(form, "members", 60_000)
    try:
        refs = list(dict.fromkeys(w for w in _SPLIT.split(typed) if w))
        if not refs:
            raise FormErrors({"members": "give at least one member"})
        if len(refs) > MAX_MEMBERS:
            raise FormErrors({"members": f"at most {MAX_MEMBERS} members at a time"})
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope)
            ids = await _member_ids(session, refs, by_contact=user.scope.is_platform)
            data = read_form(IssueRequest, {"member_ids": ids})
            issued, refused = await coupons_service.issue_coupon(session=session, coupon=coupon,
                                                                 member_ids=data.member_ids, actor=user.name)
            await record_action(session=session, actor=user.actor, action="coupon_issued", object_type="coupon",
                                object_id=coupon.id, summary=f"{coupon.name}: {issued} issued to members "
                                f"{','.join(map(str, ids[:50]))}{'...' if len(ids) > 50 else ''}"
                                + (f"; refused {refused}" if refused else ""))
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    except FormErrors as exc:
        return await coupon_page(request, ctx, user, coupon_id, errors=exc.errors, status_code=422,
                                 issue_values={"members": typed})
    except DomainError as exc:
        return await coupon_page(request, ctx, user, coupon_id, errors={"members": exc.message},
                                 status_code=forms.status_for(exc), issue_values={"members": typed})
    locale = pick_locale(request, ctx.settings.default_locale)
    why = "; ".join(f"#{member_id} {console_text(locale, 'coupons.refused.' + reason)}"
                    for member_id, reason in list(refused.items())[:20])
    return forms.back(f"/console/coupons/{coupon_id}", "issued_some" if refused else "issued", count=str(issued),
                      detail=why + ("; ..." if len(refused) > 20 else ""))


@router.post("/{coupon_id}/code-batches", response_class=HTMLResponse)
async def make_codes(coupon_id: CouponId, request: Request, ctx: ContextDep, user: Marketer) -> Response:
    form = await request.form()
    try:
        data = read_form(CodeBatchCreate, {"count": text(form, "count", 12), "note": text(form, "note", 400)})
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope)
            batch = await coupons_service.make_codes(session=session, coupon=coupon, count=data.count,
                                                     note=data.note, actor=user.name)
            await audit_codes(session=session, actor=user.actor, action="coupon_codes_made", coupon=coupon,
                              batch=batch)
            batch_id = batch.id
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    except FormErrors as exc:
        return await coupon_page(request, ctx, user, coupon_id, errors={f"batch_{k}": v for k, v in exc.errors.items()},
                                 status_code=422)
    except DomainError as exc:
        return await coupon_page(request, ctx, user, coupon_id, errors={"batch_count": exc.message},
                                 status_code=forms.status_for(exc))
    return forms.back(f"/console/coupons/{coupon_id}", "batch", count=str(batch_id))


@router.get("/{coupon_id}/code-batches/{code_batch_id}/codes.csv", response_model=None)
async def export_codes(coupon_id: CouponId, code_batch_id: CodeBatchId, request: Request, ctx: ContextDep,
                       user: Marketer) -> StreamingResponse | HTMLResponse:
    try:
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, scope=user.scope)
            batches = {b.id: b for b in await coupons_service.code_batches(session=session, coupon_id=coupon.id)}
            if code_batch_id not in batches:
                raise coupons_service.CouponNotFound("no such batch of this coupon")
            await audit_codes(session=session, actor=user.actor, action="coupon_codes_exported", coupon=coupon,
                              batch=batches[code_batch_id])
            session.expunge(coupon)
    except NotFound:
        return forms.not_found(request, user, active="coupons")
    return export_batch(ctx, coupon, code_batch_id)
