"""`quanyi refunds` and `quanyi reconcile`: refunds through the gateways, daily reconciliation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, merchant_scope
from quanyi.cli_support import run_job as _run

refunds_app = typer.Typer(help="Refunds (退款) through the payment gateways.", no_args_is_help=True)


def _reason(reason: str) -> str:
    """--reason as kept on record, or exit 2."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        err.print("[red]--reason must be 1 to 500 characters.[/red]")
        raise typer.Exit(2)
    return reason


@refunds_app.command("create")
def create_refund(
    order_no: Annotated[str, typer.Argument(help="Order number")],
    reason: Annotated[str, typer.Option(help="Why (kept on record, sent to the gateway)")],
    amount: Annotated[str | None, typer.Option(help="Amount to refund, e.g. 9.90 (undelivered orders)")] = None,
    quantity: Annotated[int | None, typer.Option(min=1, help="Card keys to take back (delivered orders)")] = None,
    payment: Annotated[str | None, typer.Option(help="Refund this payment (a duplicate payment)")] = None,
    merchant: MerchantOption = None,
) -> None:
    """Refund (part of) an order and send it to the gateway now. Without --amount/--quantity: all that is left."""
    from quanyi.money import InvalidAmount, parse_amount
    from quanyi.orders import service as orders_service
    from quanyi.refunds import service as refunds_service
    from quanyi.refunds.policy import InvalidRefund

    if amount is not None and quantity is not None:
        err.print("[red]Give --amount or --quantity, not both.[/red]")
        raise typer.Exit(2)
    reason = _reason(reason)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no,
                                                   scope=await merchant_scope(session, merchant))
            try:
                cents = parse_amount(amount, order.currency) if amount is not None else None
            except InvalidAmount as exc:
                raise InvalidRefund(f"--amount: {exc}") from None
            refund, _ = await refunds_service.request_refund(
                session=session, order_id=order.id, reason=reason, requested_by="cli", amount_cents=cents,
                quantity=quantity, payment_no=payment, refund_revealed_keys=ctx.settings.refund_revealed_keys)
            refund_id = refund.id
        await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
        async with ctx.db.read_session() as session:
            refund = await refunds_service.get_refund_by_id(session=session, refund_id=refund_id)
            return (await refunds_service.describe_refunds(session=session, refunds=[refund]))[0]

    refund = _run(job)
    colour = {"succeeded": "green", "failed": "red"}.get(refund.status.value, "yellow")
    note = f" ({refund.last_error})" if refund.last_error else ""
    console.print(f"Refund {refund.refund_no}: {refund.amount_display}, {refund.quantity} keys withdrawn, "
                  f"[{colour}]{refund.status.value}[/{colour}]{note}")


@refunds_app.command("retry")
def retry_refund(
    refund_no: Annotated[str, typer.Argument(help="Refund number (RF...): a refused or stalled refund")],
    merchant: MerchantOption = None,
) -> None:
    """Send a refused or stalled refund again, with the same refund number (the gateway pays it once)."""
    from quanyi.refunds import recovery
    from quanyi.refunds import service as refunds_service
    from quanyi.staff.audit import Actor, record_action

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            refund = await recovery.retry_refund(session=session, refund_no=refund_no, actor="cli",
                                                 reason="retried by an operator",
                                                 scope=await merchant_scope(session, merchant))
            refund_id = refund.id
            await record_action(session=session, actor=Actor(name="cli", staff_id=None), action="refund_retried",
                                object_type="refund", object_id=refund.refund_no, summary="retried by an operator")
        await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
        async with ctx.db.read_session() as session:
            return await refunds_service.get_refund_by_id(session=session, refund_id=refund_id)

    refund = _run(job)
    note = f" ({refund.last_error})" if refund.last_error else ""
    console.print(f"Refund {refund.refund_no}: {refund.status}{note}")


@refunds_app.command("withdraw")
def withdraw_refund(
    refund_no: Annotated[str, typer.Argument(help="Refund number (RF...): a refund the gateway refused")],
    reason: Annotated[str, typer.Option(help="Why (kept on record)")],
    merchant: MerchantOption = None,
) -> None:
    """Withdraw a refused refund: the buyer keeps the goods (keys taken back are returned, delivery resumes)."""
    from quanyi.refunds import recovery
    from quanyi.staff.audit import Actor, record_action

    reason = _reason(reason)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            done = await recovery.withdraw_refund(session=session, refund_no=refund_no, actor="cli", reason=reason,
                                                  scope=await merchant_scope(session, merchant))
            await record_action(session=session, actor=Actor(name="cli", staff_id=None), action="refund_withdrawn",
                                object_type="refund", object_id=done.refund.refund_no,
                                summary=recovery.withdrawal_summary(done, reason))
            return done.keys_returned, done.delivery_resumed

    keys, resumed = _run(job)
    console.print(f"Refund {refund_no} withdrawn: {keys} card keys back to the buyer"
                  + ("; delivery of the order resumed." if resumed else "."))


@refunds_app.command("list")
def list_refunds(
    status: Annotated[str | None, typer.Option(help="requested | processing | succeeded | failed | withdrawn")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order's refunds")] = None,
    merchant: MerchantOption = None,
) -> None:
    """The latest refunds (200)."""
    from quanyi.orders import service as orders_service
    from quanyi.refunds import service as refunds_service
    from quanyi.refunds.state import RefundStatus

    if status is not None and status not in {s.value for s in RefundStatus}:
        err.print(f"[red]Unknown status {status!r}[/red]: use {', '.join(s.value for s in RefundStatus)}")
        raise typer.Exit(2)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            scope = await merchant_scope(session, merchant)
            order_id = (await orders_service.get_order(session=session, order_no=order, scope=scope)).id \
                if order else None
            refunds = await refunds_service.list_refunds(session=session, order_id=order_id, status=status, scope=scope)
            return await refunds_service.describe_refunds(session=session, refunds=refunds)

    table = Table(title="Refunds")
    for column in ("refund", "order", "gateway", "amount", "keys", "status", "attempts", "reason"):
        table.add_column(column, justify="right" if column in ("amount", "keys", "attempts") else "left")
    for r in _run(job):
        table.add_row(r.refund_no, r.order_no, r.gateway, r.amount_display, str(r.quantity), r.status.value,
                      str(r.attempts), r.reason[:40])
    console.print(table)


def reconcile(
    date: Annotated[str, typer.Option(help="Shop-local day to reconcile, YYYY-MM-DD")],
    gateway: Annotated[str | None, typer.Option(help="Only this gateway")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", dir_okay=False,
                                                  help="Also write the mismatches to this CSV file")] = None,
) -> None:
    """Daily reconciliation (对账): check a day's payments and refunds against the gateways."""
    import csv
    import datetime as dt

    from quanyi.payments.reconciliation import reconcile_day

    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        err.print(f"[red]--date must be YYYY-MM-DD, not {date!r}.[/red]")
        raise typer.Exit(2) from None

    async def job(ctx):  # type: ignore[no-untyped-def]
        with Progress(TextColumn("[bold]reconciling[/bold]"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("reconcile", total=None)
            return await reconcile_day(db=ctx.db, gateways=ctx.gateways, day=day, timezone=ctx.settings.shop_timezone,
                                       gateway_name=gateway,
                                       progress=lambda done, total: bar.update(task, completed=done, total=total))

    report = _run(job)
    console.print(f"{report.date} ({report.timezone}), {', '.join(report.gateways)}: {report.payments_checked} "
                  f"payments and {report.refunds_checked} refunds checked, {report.top_ups_checked} enterprise "
                  f"online top-ups, {len(report.mismatches)} mismatches.")
    if report.mismatches:
        table = Table(title="Mismatches")
        for column in ("kind", "gateway", "payment", "order", "refund", "ours", "theirs", "detail"):
            table.add_column(column)
        for m in report.mismatches:
            table.add_row(m.kind, m.gateway, m.payment_no, m.order_no, m.refund_no or "", m.ours, m.theirs, m.detail)
        console.print(table)
    if csv_file is not None:
        fields = ["kind", "gateway", "payment_no", "order_no", "refund_no", "ours", "theirs", "repaired", "detail"]
        with csv_file.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for m in report.mismatches:
                writer.writerow(m.model_dump(include=set(fields)))
        console.print(f"Wrote {len(report.mismatches)} lines to {csv_file}.")
    if any(not m.repaired for m in report.mismatches):
        raise typer.Exit(1)
