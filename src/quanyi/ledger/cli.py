"""`quanyi ledger`: trial balance, supplier top-ups, settlement statements and reconciliation, gateway payouts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, merchant_scope
from quanyi.cli_support import run_job as _run

ledger_app = typer.Typer(help="Double-entry ledger (总账) and supplier settlement (结算).", no_args_is_help=True)

_CYCLES = ("per_order", "daily", "weekly")


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]--period must be a date like 2026-12-01, not {value!r}.[/red]")
        raise typer.Exit(2) from None


def _cycle(value: str | None):  # type: ignore[no-untyped-def]
    from quanyi.suppliers.models import SettlementCycle

    if value is None:
        return None
    if value not in _CYCLES:
        err.print(f"[red]--cycle must be one of {', '.join(_CYCLES)}.[/red]")
        raise typer.Exit(2)
    return SettlementCycle(value)


@ledger_app.command("trial-balance")
def trial_balance() -> None:
    """Every account's balance; exits 1 unless the books balance (total 0 per currency)."""
    from quanyi.ledger import service as ledger_service
    from quanyi.money import format_money

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)  # payments' deferred postings first
        async with ctx.db.read_session() as session:
            return (await ledger_service.trial_balance(session=session),
                    await ledger_service.prepaid_drift(session=session))

    trial, drift = _run(job)
    table = Table("account", "kind", "currency", "balance (debit +)")
    for account in trial.accounts:
        table.add_row(account.code, account.kind, account.currency,
                      format_money(account.balance_cents, account.currency))
    console.print(table)
    totals = ", ".join(f"{c} {t}" for c, t in sorted(trial.totals.items())) or "no entries"
    for code, cents in sorted(drift.items()):
        who = "customer" if ":" in code else "supplier"
        console.print(f"[yellow]{who} {code}: balance differs from its ledger account by {cents} cents "
                      "(changed outside the ledger; record opening balances as top-ups)[/yellow]")
    if not trial.balanced:
        err.print(f"[red]The books do not balance: {totals}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]Balanced[/green] ({trial.postings} postings; totals: {totals})")


@ledger_app.command("top-up")
def top_up(
    supplier: Annotated[str, typer.Option("--supplier", help="Supplier code")],
    amount: Annotated[str, typer.Option(help="Amount paid into the prepaid balance, e.g. 5000.00")],
    note: Annotated[str, typer.Option(help="Bank reference or why")] = "",
    reference: Annotated[str | None, typer.Option(help="Idempotency reference: the same one tops up once")] = None,
    merchant: MerchantOption = None,
) -> None:
    """Record money paid into a supplier's prepaid balance (预付充值)."""
    from quanyi.ledger import service as ledger_service
    from quanyi.money import InvalidAmount, format_money, parse_amount

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found = await ledger_service.get_supplier(session=session, code=supplier,
                                                      scope=await merchant_scope(session, merchant))
            try:
                cents = parse_amount(amount, found.currency)
            except InvalidAmount as exc:
                raise ledger_service.InvalidLedgerAmount(f"--amount: {exc}") from None
            await ledger_service.top_up_supplier(session=session, supplier_id=found.id, amount_cents=cents,
                                                 note=note, actor="cli", reference=reference)
            await session.refresh(found)
            return found.code, cents, found.balance_cents, found.currency

    code, cents, balance, currency = _run(job)
    console.print(f"Topped up {code} by {format_money(cents, currency)}; balance {format_money(balance, currency)}")


@ledger_app.command("statement")
def statement(
    supplier: Annotated[str, typer.Option("--supplier", help="Supplier code")],
    period: Annotated[str, typer.Option(help="A day of the period, e.g. 2026-12-01")],
    cycle: Annotated[str | None, typer.Option(help="per_order | daily | weekly (default: the supplier's)")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the statement to this CSV file")] = None,
    merchant: MerchantOption = None,
) -> None:
    """A supplier's settlement statement (对账单) for one period, in the shop's timezone."""
    from quanyi.ledger import service as ledger_service
    from quanyi.money import format_money

    day, chosen = _day(period), _cycle(cycle)

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)  # payments' deferred postings first
        async with ctx.db.read_session() as session:
            return await ledger_service.supplier_statement(session=session, supplier_code=supplier, day=day,
                                                           cycle=chosen, timezone=ctx.settings.shop_timezone,
                                                           scope=await merchant_scope(session, merchant))

    found = _run(job)

    def money(cents: int) -> str:
        return format_money(cents, found.currency)

    console.print(f"[bold]{found.supplier_name}[/bold] ({found.supplier_code}) {found.period.cycle.value} "
                  f"statement {found.period.label} ({found.timezone})")
    table = Table("time", "kind", "reference", "order", "amount", "balance")
    for line in found.lines:
        table.add_row(line.at.isoformat(timespec="seconds"), line.kind, line.reference, line.order_no or "",
                      money(line.amount_cents), money(line.balance_after_cents))
    console.print(table)
    console.print(f"opening {money(found.opening_cents)}  purchases {money(found.purchases_cents)}  "
                  f"releases {money(found.releases_cents)}  top-ups {money(found.top_ups_cents)}  "
                  f"closing {money(found.closing_cents)}")
    if csv_path is not None:
        csv_path.write_text(ledger_service.statement_csv(found), encoding="utf-8-sig")
        console.print(f"Written to {csv_path}")


@ledger_app.command("reconcile")
def reconcile(
    supplier: Annotated[str, typer.Option("--supplier", help="Supplier code")],
    period: Annotated[str, typer.Option(help="A day of the period, e.g. 2026-12-01")],
    cycle: Annotated[str | None, typer.Option(help="per_order | daily | weekly (default: the supplier's)")] = None,
    merchant: MerchantOption = None,
) -> None:
    """Ask the supplier about every charge of the period; exits 1 when something does not match."""
    from quanyi.ledger import service as ledger_service

    day, chosen = _day(period), _cycle(cycle)

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)  # payments' deferred postings first
        async with ctx.db.read_session() as session:
            return await ledger_service.reconcile_supplier(session=session, cipher=ctx.cipher, http=ctx.http,
                                                           supplier_code=supplier, day=day, cycle=chosen,
                                                           timezone=ctx.settings.shop_timezone,
                                                           scope=await merchant_scope(session, merchant))

    result = _run(job)
    table = Table("reference", "order", "ours", "amount", "supplier", "supplier amount", "problem")
    for item in result.items:
        theirs = "" if item.supplier_amount_cents is None else str(item.supplier_amount_cents)
        table.add_row(item.reference, item.order_no or "", item.our_status, str(item.amount_cents),
                      item.supplier_state, theirs, item.problem or "")
    console.print(table)
    console.print(f"{result.checked} charges checked, {len(result.mismatches)} mismatches")
    if result.mismatches:
        raise typer.Exit(1)


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{option} must be a date like 2026-12-01, not {value!r}.[/red]")
        raise typer.Exit(2) from None


def _cents(value: str, option: str, currency: str) -> int:
    from quanyi.money import InvalidAmount, parse_amount

    try:
        return parse_amount(value, currency)
    except InvalidAmount as exc:
        err.print(f"[red]{option}: {exc}[/red]")
        raise typer.Exit(2) from None


@ledger_app.command("gateway-payout")
def gateway_payout(
    gateway: Annotated[str, typer.Option(help="The gateway that paid out: alipay, wechat, stripe ...")],
    settlement: Annotated[str, typer.Option(help="The gateway's settlement id / statement reference (once per "
                                                 "gateway)")],
    period_from: Annotated[str, typer.Option("--from", help="First day the settlement covers, e.g. 2026-12-01")],
    period_to: Annotated[str, typer.Option("--to", help="Last day it covers (included)")],
    net: Annotated[str, typer.Option(help="Paid into the bank, e.g. 9840.00")],
    fee: Annotated[str, typer.Option(help="Kept by the gateway (手续费), e.g. 59.40; 0 if none")],
    refunds: Annotated[str, typer.Option(help="Refunds the statement netted out (already booked as paid)")] = "0",
    currency: Annotated[str, typer.Option(help="Currency of the settlement")] = "CNY",
    note: Annotated[str, typer.Option(help="Bank reference or remark")] = "",
) -> None:
    """Record a gateway's settlement paid into the bank (渠道结算/打款): net to platform_cash, the fee to
    gateway_fees:<gateway>, net + fee out of gateway_clearing:<gateway>. A settlement already recorded is refused."""
    from quanyi.ledger import service as ledger_service
    from quanyi.money import CURRENCIES, format_money
    from quanyi.payments.configuration import known_gateway_names
    from quanyi.shoptime import shop_day, shop_zone

    if currency not in CURRENCIES:
        err.print(f"[red]--currency must be one of {', '.join(CURRENCIES)}.[/red]")
        raise typer.Exit(2)
    first, last = _date(period_from, "--from"), _date(period_to, "--to")
    net_cents, fee_cents = _cents(net, "--net", currency), _cents(fee, "--fee", currency)
    refunds_cents = _cents(refunds, "--refunds", currency)

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)  # payments' deferred postings first: the balance is current
        zone = ctx.settings.shop_timezone
        async with ctx.db.transaction() as session:
            payout = await ledger_service.record_gateway_payout(
                session, gateway=gateway, settlement_no=settlement, period_from=first, period_to=last,
                net_cents=net_cents, fee_cents=fee_cents, refunds_cents=refunds_cents, currency=currency, note=note,
                actor="cli", configured=known_gateway_names(ctx.gateways),
                today=shop_day(dt.datetime.now(dt.UTC), shop_zone(zone)))
            view = await ledger_service.period_movements(session, payout, zone)
            owed = [row for row in await ledger_service.gateway_clearing_balances(session)
                    if row.gateway == gateway and row.currency == currency]
        return view, owed[0].balance_cents if owed else 0

    view, owed = _run(job)

    def money(cents: int) -> str:
        return format_money(cents, currency)

    console.print(f"Recorded {gateway} settlement {view.payout.settlement_no} "
                  f"({first.isoformat()}..{last.isoformat()}): net {money(net_cents)}, fee {money(fee_cents)}, "
                  f"refunds {money(refunds_cents)}; "
                  f"{gateway} still owes {money(owed)}")
    if view.difference_cents:
        console.print(f"[yellow]The books took in {money(view.book_receipts_cents)} and refunded "
                      f"{money(view.book_refunds_cents)} in this period: net + fee differ by "
                      f"{money(view.difference_cents)}; check the statement.[/yellow]")


@ledger_app.command("gateway-clearing")
def gateway_clearing(
    gateway: Annotated[str | None, typer.Option(help="Only this gateway's payouts")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many recent payouts to list")] = 20,
) -> None:
    """What each gateway still owes the shop (its clearing balance) and the latest recorded payouts."""
    from quanyi.ledger import service as ledger_service
    from quanyi.money import format_money

    async def job(ctx):  # type: ignore[no-untyped-def]
        await ledger_service.post_all_deferred(ctx.db)
        async with ctx.db.read_session() as session:
            return (await ledger_service.gateway_clearing_balances(session, configured=ctx.gateways.names()),
                    await ledger_service.list_gateway_payouts(session, timezone=ctx.settings.shop_timezone,
                                                              gateway=gateway, limit=limit))

    owed, payouts = _run(job)
    if owed:
        table = Table("gateway", "currency", "still owed", "paid out", "fees", "payouts", "last period ends")
        for row in owed:
            table.add_row(row.gateway, row.currency, format_money(row.balance_cents, row.currency),
                          format_money(row.paid_out_cents, row.currency), format_money(row.fees_cents, row.currency),
                          str(row.payouts), row.last_period_to.isoformat() if row.last_period_to else "")
        console.print(table)
    else:
        console.print("No gateway is configured or has taken a payment yet: no gateway owes the shop anything.")
    if not payouts:
        console.print(f"No {gateway or 'gateway'} payouts recorded yet.")
        return
    listed = Table("recorded", "gateway", "settlement", "period", "net", "fee", "refunds", "books differ")
    for view in payouts:
        p = view.payout
        listed.add_row(p.recorded_at.isoformat(timespec="seconds"), p.gateway, p.settlement_no,
                       f"{p.period_from.isoformat()}..{p.period_to.isoformat()}", format_money(p.net_cents, p.currency),
                       format_money(p.fee_cents, p.currency), format_money(p.refunds_cents, p.currency),
                       format_money(view.difference_cents, p.currency) if view.difference_cents else "")
    console.print(listed)
