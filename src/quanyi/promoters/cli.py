"""`quanyi promoters ...`: distribution (分销): the programme, promoters, commission, withdrawals."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run
from quanyi.money import format_money

__all__ = ["promoters_app"]

promoters_app = typer.Typer(help="Distribution (分销): promoters, commission, withdrawals.", no_args_is_help=True)
ACTOR = "cli"


@promoters_app.command("program")
def program_cmd(
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    auto_approve: Annotated[bool | None, typer.Option("--auto-approve/--review")] = None,
    levels: Annotated[int | None, typer.Option(min=1, max=2, help="1 or 2 commission levels")] = None,
    attribution_days: Annotated[int | None, typer.Option(min=1, max=365)] = None,
    hold_days: Annotated[int | None, typer.Option(min=0, max=365, help="Refund window before withdrawable")]
    = None,
    max_margin_share_bps: Annotated[int | None, typer.Option(min=0, max=10_000, help="Margin rule")] = None,
    min_withdrawal_cents: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Show the programme's rules; change those given."""
    from quanyi.promoters import service

    data = service.ProgramUpdate(enabled=enabled, auto_approve=auto_approve, levels=levels,
                                 attribution_days=attribution_days, hold_days=hold_days,
                                 max_margin_share_bps=max_margin_share_bps, min_withdrawal_cents=min_withdrawal_cents)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            if any(value is not None for value in dataclasses.astuple(data)):
                program = await service.update_program(session=session, data=data, actor=ACTOR)
            else:
                program = await service.get_program(session)
            return (program.enabled, program.auto_approve, program.levels, program.attribution_days,
                    program.hold_days, program.max_margin_share_bps, program.min_withdrawal_cents)

    on, auto, lv, days, hold, margin, minimum = _run(job)
    console.print(f"Programme {'open' if on else 'closed'}; applications {'auto-approved' if auto else 'reviewed'}; "
                  f"{lv} level(s); attribution {days} days; hold {hold} days; commission at most "
                  f"{margin / 100:.2f}% of the seller's margin; smallest withdrawal {minimum / 100:.2f}.")


@promoters_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Who it is (shown to operators)")],
    contact: Annotated[str, typer.Option(help="E-mail or mobile (its own orders earn it nothing)")],
    code: Annotated[str | None, typer.Option(help="Its code (/r/CODE); generated when absent")] = None,
    parent: Annotated[str | None, typer.Option(help="Code of the promoter who recruited it (level 2)")] = None,
) -> None:
    """Add a promoter (a partner), approved at once."""
    from quanyi.promoters import service
    from quanyi.urls import shop_base_url

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            promoter = await service.add_promoter(session=session, name=name, contact=contact, code=code,
                                                  parent_code=parent, actor=ACTOR)
            return promoter.code, service.promotion_link(shop_base_url(ctx.settings), promoter.code)

    promoter_code, link = _run(job)
    console.print(f"Promoter [bold]{promoter_code}[/bold] added: {link}")


@promoters_app.command("list")
def list_cmd(status: Annotated[str | None, typer.Option(help="pending | approved | rejected | suspended")] = None,
             ) -> None:
    """Promoters, newest first."""
    from quanyi.promoters import service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(p.code, p.name, p.status, p.applied_at, p.review_reason or "")
                    for p in await service.list_promoters(session=session, status=status)]

    table = Table(title="Promoters (推广员)")
    for column in ("code", "name", "status", "applied", "review"):
        table.add_column(column)
    for code, name, state, applied, reason in _run(job):
        table.add_row(code, name, state, applied.strftime("%Y-%m-%d %H:%M"), reason)
    console.print(table)


def _decide(action: str, code: str, reason: str) -> None:
    from quanyi.promoters import service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            promoter = await getattr(service, action)(session=session, code=code, actor=ACTOR, reason=reason)
            return promoter.code, promoter.status

    promoter_code, state = _run(job)
    console.print(f"Promoter {promoter_code} is now {state}.")


@promoters_app.command("approve")
def approve(code: str, reason: Annotated[str, typer.Option()] = "approved") -> None:
    """Approve an application."""
    _decide("approve", code, reason)


@promoters_app.command("reject")
def reject(code: str, reason: Annotated[str, typer.Option(help="The applicant sees it")]) -> None:
    """Reject an application."""
    _decide("reject", code, reason)


@promoters_app.command("suspend")
def suspend(code: str, reason: Annotated[str, typer.Option()]) -> None:
    """Stop a promoter: no new attributions, no commission on orders delivered from now."""
    _decide("suspend", code, reason)


@promoters_app.command("reinstate")
def reinstate(code: str, reason: Annotated[str, typer.Option()]) -> None:
    """Let a suspended promoter earn again."""
    _decide("reinstate", code, reason)


@promoters_app.command("balance")
def balance(code: str) -> None:
    """A promoter's commission: balance, held for the refund window, reserved by withdrawals, available."""
    from quanyi.ledger import service as ledger_service
    from quanyi.promoters import service, settlement

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)
        async with ctx.db.read_session() as session:
            promoter = await service.get_promoter(session=session, code=code)
            return promoter.code, list((await settlement.balances(session=session, promoter=promoter)).values())

    promoter_code, found = _run(job)
    table = Table(title=f"Commission of {promoter_code}")
    for column in ("currency", "balance", "held", "reserved", "available", "paid out"):
        table.add_column(column, justify="right")
    for b in found:
        table.add_row(b.currency, *(format_money(v, b.currency) for v in (
            b.balance_cents, b.held_cents, b.reserved_cents, b.available_cents, b.paid_out_cents)))
    console.print(table)


@promoters_app.command("statement")
def statement_cmd(code: str, start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (UTC)")],
                  end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD (UTC), inclusive")],
                  currency: Annotated[str, typer.Option()] = "CNY") -> None:
    """A promoter's commission statement (佣金明细)."""
    from quanyi.ledger import service as ledger_service
    from quanyi.promoters import service, settlement

    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter("dates are YYYY-MM-DD") from None

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)
        async with ctx.db.read_session() as session:
            promoter = await service.get_promoter(session=session, code=code)
            return await settlement.statement(
                session=session, promoter=promoter, currency=currency,
                start=dt.datetime.combine(first, dt.time(), dt.UTC),
                end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC))

    opening, lines = _run(job)
    table = Table(title=f"Commission statement {code.upper()} {first}..{last}")
    for column in ("at", "what", "order", "order paid", "amount", "balance"):
        table.add_column(column)
    table.add_row("", "opening balance", "", "", "", format_money(opening, currency))
    for line in lines:
        table.add_row(line.at.strftime("%Y-%m-%d %H:%M"), line.kind, line.order_no or "",
                      format_money(line.order_paid_cents, currency) if line.order_paid_cents else "",
                      format_money(line.amount_cents, currency), format_money(line.balance_after_cents, currency))
    console.print(table)


@promoters_app.command("withdrawals")
def withdrawals_cmd(status: Annotated[str | None, typer.Option(help="requested | approved | paid | rejected")]
                    = "requested") -> None:
    """Commission withdrawals, newest first."""
    from quanyi.promoters import settlement

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(w.withdrawal_no, code, w.amount_cents, w.currency, w.payout_account, w.status, w.requested_at)
                    for w, code in await settlement.list_withdrawals(session=session, status=status or None)]

    table = Table(title="Commission withdrawals")
    for column in ("withdrawal", "promoter", "amount", "pay to", "status", "requested"):
        table.add_column(column)
    for no, code, amount, currency, account, state, at in _run(job):
        table.add_row(no, code, format_money(amount, currency), account, state, at.strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@promoters_app.command("withdraw")
def withdraw(code: str, amount_cents: Annotated[int, typer.Option(min=1)],
             pay_to: Annotated[str, typer.Option(help="Where to pay it, e.g. an Alipay account")],
             currency: Annotated[str, typer.Option()] = "CNY") -> None:
    """Record a promoter's withdrawal request (on its behalf)."""
    from quanyi.ledger import service as ledger_service
    from quanyi.promoters import settlement

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)
        async with ctx.db.transaction() as session:
            withdrawal, _ = await settlement.request_withdrawal(
                session=session, promoter_code=code, amount_cents=amount_cents, currency=currency,
                payout_account=pay_to, actor=ACTOR)
            return withdrawal.withdrawal_no

    console.print(f"Withdrawal {_run(job)} requested.")


def _withdrawal_step(action: str, withdrawal_no: str, **kwargs: str) -> None:
    from quanyi.promoters import settlement

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            withdrawal = await getattr(settlement, action)(session=session, withdrawal_no=withdrawal_no,
                                                           actor=ACTOR, **kwargs)
            return withdrawal.status

    console.print(f"Withdrawal {withdrawal_no} is now {_run(job)}.")


@promoters_app.command("approve-withdrawal")
def approve_withdrawal(withdrawal_no: str, reason: Annotated[str, typer.Option()] = "approved") -> None:
    """Approve a commission withdrawal."""
    _withdrawal_step("approve_withdrawal", withdrawal_no, reason=reason)


@promoters_app.command("reject-withdrawal")
def reject_withdrawal(withdrawal_no: str, reason: Annotated[str, typer.Option()]) -> None:
    """Reject a commission withdrawal (the amount is available again)."""
    _withdrawal_step("reject_withdrawal", withdrawal_no, reason=reason)


@promoters_app.command("pay-withdrawal")
def pay_withdrawal(withdrawal_no: str, reference: Annotated[str, typer.Option(help="Transfer number")]) -> None:
    """Record the payout of an approved withdrawal (posts it to the ledger)."""
    _withdrawal_step("pay_withdrawal", withdrawal_no, payout_reference=reference)
