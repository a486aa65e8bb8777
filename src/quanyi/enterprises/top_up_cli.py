"""`quanyi enterprises top-ups ...`: the top-up requests enterprises send from the portal (充值申请), over the same
services as the console: list them (with second payments to refund), confirm a bank transfer that arrived
(credited once), refuse one with a reason, and record that a second payment was refunded at the gateway. Each
decision is audited with the CLI as the actor."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console, money_text
from quanyi.cli_support import run_job as _run

__all__ = ["top_ups_app"]

top_ups_app = typer.Typer(help="Top-up requests from the enterprise portal: list, confirm, refuse, refunded.",
                          no_args_is_help=True)
Code = Annotated[str, typer.Argument(help="The enterprise's code, e.g. ACME")]
RequestNo = Annotated[str, typer.Argument(help="The request's number (TU...)")]
_CLI_ACTOR = "cli"


async def _audit(session, code: str, action: str, summary: str) -> None:  # type: ignore[no-untyped-def]
    from quanyi.staff.audit import Actor, record_action

    await record_action(session=session, actor=Actor(name=_CLI_ACTOR, staff_id=None), action=action,
                        object_type="enterprise", object_id=code, summary=summary)


@top_ups_app.command("list")
def list_(code: Code) -> None:
    """The enterprise's requests, newest first, with second payments still to refund."""
    from quanyi.enterprises import top_up_alerts, top_ups

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            listed = await top_ups.list_top_ups(session=session, code=code, limit=200)
            return listed, await top_up_alerts.extra_payments_of(session=session, request_ids=[r.id for r in listed])

    listed, extra = _run(job)
    table = Table("request", "amount", "paid by", "status", "requested", "decided", "to refund")
    for r in listed:
        paid_by = f"online {r.gateway} {r.gateway_trade_no or ''}".rstrip() if r.method == "online" else \
            f"bank transfer {r.payer_reference}"
        status = "unpaid" if r.method == "online" and r.status == "pending" else r.status
        refund = ", ".join(f"{x.gateway_trade_no} {money_text(x.amount_cents, x.currency)}"
                           for x in extra.get(r.id, []) if x.refunded_at is None)
        table.add_row(r.request_no, money_text(r.amount_cents, r.currency), paid_by,
                      status + (f": {r.refusal_reason}" if r.refusal_reason else ""),
                      f"{r.requested_at:%Y-%m-%d %H:%M} {r.requested_by}",
                      f"{r.decided_at:%Y-%m-%d %H:%M} {r.decided_by}" if r.decided_at else "-", refund or "-")
    console.print(table)


@top_ups_app.command("confirm")
def confirm(code: Code, request_no: RequestNo) -> None:
    """The bank transfer arrived: credit the request's amount (once; a repeat credits nothing)."""
    from quanyi.enterprises import top_ups

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found, credited = await top_ups.confirm_top_up(session=session, code=code, request_no=request_no,
                                                           actor=_CLI_ACTOR)
            if credited:
                await _audit(session, code, "enterprise_top_up_credited", f"{request_no}: {found.amount_cents} "
                             f"cents {found.currency}, transfer {found.payer_reference}")
            return found, credited

    found, credited = _run(job)
    amount = money_text(found.amount_cents, found.currency)
    console.print(f"{request_no}: {amount} credited." if credited else
                  f"{request_no} was credited before; nothing was credited again.")


@top_ups_app.command("refuse")
def refuse(code: Code, request_no: RequestNo,
           reason: Annotated[str, typer.Option(help="Why (the enterprise sees it), e.g. 未收到这笔转账")]) -> None:
    """No such transfer arrived (or not this amount): refuse the request; nothing is credited."""
    from quanyi.enterprises import top_ups

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found, refused = await top_ups.refuse_top_up(session=session, code=code, request_no=request_no,
                                                         reason=reason, actor=_CLI_ACTOR)
            if refused:
                await _audit(session, code, "enterprise_top_up_refused", f"{request_no}: {found.amount_cents} "
                             f"cents {found.currency}, transfer {found.payer_reference}; {found.refusal_reason}")
            return refused

    console.print(f"{request_no} refused." if _run(job) else f"{request_no} was refused before.")


@top_ups_app.command("refunded")
def refunded(code: Code, trade_no: Annotated[str, typer.Argument(help="The second payment's gateway trade number")]
             ) -> None:
    """A second payment of a credited online top-up was refunded at the gateway: its flag goes away."""
    from quanyi.enterprises import top_up_alerts

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found, changed = await top_up_alerts.mark_refunded(session=session, code=code, trade_no=trade_no,
                                                               actor=_CLI_ACTOR)
            if changed:
                await _audit(session, code, "enterprise_top_up_extra_refunded", f"{found.gateway} trade {trade_no}: "
                             f"{found.amount_cents} cents {found.currency} refunded at the gateway")
            return changed

    console.print(f"Second payment {trade_no} marked refunded." if _run(job) else
                  f"Second payment {trade_no} was marked refunded before.")
