"""`quanyi enterprises`: enterprise customers (企业客户): register, invoice data, contacts, top-ups, tier prices."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console, err
from quanyi.cli_support import run_job as _run

enterprises_app = typer.Typer(help="Enterprise customers (企业福利, B2B): balances, tier prices, bulk purchases, "
                                   "benefit campaigns.", no_args_is_help=True)


def _money(cents: int | None, currency: str = "CNY") -> str:
    from quanyi.money import format_money

    return "-" if cents is None else format_money(cents, currency)


def _cents(text: str, what: str) -> int:
    from quanyi.money import InvalidAmount, parse_amount

    try:
        return parse_amount(text, "CNY")
    except InvalidAmount as exc:
        err.print(f"[red]{what}: {exc}[/red]")
        raise typer.Exit(2) from None


@enterprises_app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. ACME")],
    name: Annotated[str, typer.Option(help="Company name")],
    credit_limit: Annotated[str, typer.Option(help="Credit allowed below zero, e.g. 1000.00")] = "0",
    invoice_title: Annotated[str, typer.Option(help="Invoice title (发票抬头)")] = "",
    tax_number: Annotated[str, typer.Option(help="Taxpayer id (纳税人识别号)")] = "",
    invoice_email: Annotated[str, typer.Option(help="Where invoices go")] = "",
) -> None:
    """Register an enterprise customer with a prepaid account at zero."""
    from quanyi.enterprises import service as enterprises_service

    credit = _cents(credit_limit, "--credit-limit")
    invoice = enterprises_service.InvoiceData(invoice_title=invoice_title, tax_number=tax_number,
                                              invoice_email=invoice_email)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await enterprises_service.create_enterprise(session=session, code=code, name=name, invoice=invoice,
                                                        credit_limit_cents=credit)

    _run(job)
    console.print(f"Enterprise {code} registered.")


@enterprises_app.command("list")
def list_() -> None:
    """Every enterprise customer with status, balance and credit."""
    from quanyi.enterprises import service as enterprises_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(e, await enterprises_service.account_of(session=session, enterprise=e))
                    for e in await enterprises_service.list_enterprises(session=session)]

    table = Table("code", "name", "status", "balance", "credit limit", "invoice title", "tax number")
    for enterprise, account in _run(job):
        table.add_row(enterprise.code, enterprise.name, enterprise.status,
                      _money(account.balance_cents, account.currency), _money(account.credit_limit_cents),
                      enterprise.invoice_title or "-", enterprise.tax_number or "-")
    console.print(table)


@enterprises_app.command("set")
def set_(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    status: Annotated[str | None, typer.Option(help="active | suspended")] = None,
    credit_limit: Annotated[str | None, typer.Option(help="Credit allowed below zero, e.g. 1000.00")] = None,
) -> None:
    """Suspend or reactivate an enterprise (suspended: its account is frozen), or change its credit limit."""
    from quanyi.enterprises import service as enterprises_service
    from quanyi.enterprises.models import EnterpriseStatus

    if status is not None and status not in ("active", "suspended"):
        err.print("[red]--status must be active or suspended.[/red]")
        raise typer.Exit(2)
    credit = _cents(credit_limit, "--credit-limit") if credit_limit is not None else None

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await enterprises_service.update_enterprise(
                session=session, code=code, status=EnterpriseStatus(status) if status else None,
                credit_limit_cents=credit)

    _run(job)
    console.print(f"Enterprise {code} updated.")


@enterprises_app.command("top-up")
def top_up(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    amount: Annotated[str, typer.Option(help="Amount paid in, e.g. 50000.00")],
    note: Annotated[str, typer.Option(help="Bank reference or why")] = "bank transfer",
    reference: Annotated[str | None, typer.Option(help="Idempotency reference: the same one credits once")] = None,
) -> None:
    """Record money the enterprise paid into its prepaid balance (预存款), booked in the ledger."""
    from quanyi.enterprises import service as enterprises_service

    cents = _cents(amount, "--amount")

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await enterprises_service.top_up(session=session, code=code, amount_cents=cents, note=note,
                                                    actor="cli", reference=reference)

    account, created = _run(job)
    verb = "Topped up" if created else "Already recorded (same reference):"
    console.print(f"{verb} {code} {_money(cents)}; balance {_money(account.balance_cents, account.currency)}")


@enterprises_app.command("prices")
def prices(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    set_tiers: Annotated[list[str] | None, typer.Option(
        "--set", help="SKU=QTY:PRICE,QTY:PRICE, e.g. GIFT-100=1:98.00,100:95.00 (repeatable)")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="SKU back to its list price")] = None,
) -> None:
    """Show the enterprise's tier prices (阶梯价); --set / --remove change them first."""
    from quanyi.enterprises import pricing

    changes = []
    for item in set_tiers or []:
        sku, sep, spec = item.partition("=")
        tiers = []
        for part in spec.split(","):
            quantity, colon, price = part.partition(":")
            if not sep or not colon or not quantity.strip().isdigit():
                err.print(f"[red]--set wants SKU=QTY:PRICE[,QTY:PRICE...], not {item!r}.[/red]")
                raise typer.Exit(2)
            tiers.append(pricing.Tier(int(quantity), _cents(price.strip(), f"--set {sku}")))
        changes.append((sku.strip(), tiers))

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            for sku, tiers in changes:
                await pricing.set_tiers(session=session, code=code, sku_code=sku, tiers=tiers, actor="cli")
            for sku in remove or []:
                await pricing.remove_tiers(session=session, code=code, sku_code=sku)
            return await pricing.price_list(session=session, code=code)

    table = Table("SKU", "list price", "tiers (from quantity: unit price)")
    for sku, tiers in _run(job):
        table.add_row(sku.code, _money(sku.price_cents, sku.currency),
                      ", ".join(f"{t.min_quantity}+: {_money(t.unit_price_cents, sku.currency)}" for t in tiers))
    console.print(table)
