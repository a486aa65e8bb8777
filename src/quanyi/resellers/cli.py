"""`quanyi resellers`: register resellers (下游), rotate their secrets, price lists, prepaid top-ups."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import account_status, amount_cents, console, err, money_text, record_top_up
from quanyi.cli_support import run_job as _run

resellers_app = typer.Typer(help="Resellers of the open API (下游对接): app ids, secrets, prices, balances.",
                            no_args_is_help=True)


def _show_secret(app_id: str, secret: str) -> None:
    console.print(f"app id:  [bold]{app_id}[/bold]")
    console.print(f"secret:  [bold]{secret}[/bold]")
    console.print("[yellow]The secret is shown this once; the shop keeps it sealed. Hand it over securely.[/yellow]")


@resellers_app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. R001")],
    name: Annotated[str, typer.Option(help="Company or shop name")],
    email: Annotated[str, typer.Option(help="Contact e-mail")],
    rate_limit: Annotated[int, typer.Option(min=0, help="Requests per minute (0: unlimited)")] = 600,
    credit_limit: Annotated[str, typer.Option(help="Credit allowed below zero, e.g. 1000.00")] = "0",
    callback_url: Annotated[str | None, typer.Option(help="Default URL for order callbacks")] = None,
) -> None:
    """Register a reseller: app id, prepaid account, and its secret (printed once)."""
    from quanyi.resellers import service as resellers_service

    credit = amount_cents(credit_limit, "--credit-limit")

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            issued = await resellers_service.create_reseller(
                session=session, cipher=ctx.cipher, code=code, name=name, contact_email=email,
                rate_limit_per_minute=rate_limit, credit_limit_cents=credit, callback_url=callback_url, actor="cli")
            return issued.reseller.app_id, issued.secret

    app_id, secret = _run(job)
    console.print(f"Reseller {code} registered.")
    _show_secret(app_id, secret)


@resellers_app.command("list")
def list_() -> None:
    """Every reseller with status, balance and credit."""
    from quanyi.resellers import service as resellers_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            rows = []
            for reseller in await resellers_service.list_resellers(session=session):
                account = await resellers_service.account_of(session=session, reseller=reseller)
                rows.append((reseller, account))
            return rows

    table = Table("code", "name", "app id", "status", "balance", "credit limit", "rate/min", "callback URL")
    for reseller, account in _run(job):
        table.add_row(reseller.code, reseller.name, reseller.app_id, reseller.status,
                      money_text(account.balance_cents, account.currency), money_text(account.credit_limit_cents),
                      str(reseller.rate_limit_per_minute), reseller.callback_url or "-")
    console.print(table)


@resellers_app.command("rotate-secret")
def rotate_secret(
    code: Annotated[str, typer.Argument(help="Reseller code")],
    overlap_hours: Annotated[float, typer.Option(min=0, max=720, help="How long the old secret keeps working")] = 24,
) -> None:
    """Issue a new secret (printed once); the old one keeps working for the overlap."""
    from quanyi.resellers import service as resellers_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            reseller = await resellers_service.get_reseller(session=session, code=code)
            issued = await resellers_service.rotate_secret(
                session=session, cipher=ctx.cipher, reseller=reseller, overlap=dt.timedelta(hours=overlap_hours),
                actor="cli")
            return reseller.app_id, issued.secret, issued.previous_expires_at

    app_id, secret, until = _run(job)
    _show_secret(app_id, secret)
    if until is not None:
        console.print(f"The previous secret works until {until.isoformat(timespec='seconds')}.")


@resellers_app.command("set")
def set_(
    code: Annotated[str, typer.Argument(help="Reseller code")],
    status: Annotated[str | None, typer.Option(help="active | suspended")] = None,
    rate_limit: Annotated[int | None, typer.Option(min=0, help="Requests per minute (0: unlimited)")] = None,
    credit_limit: Annotated[str | None, typer.Option(help="Credit allowed below zero, e.g. 1000.00")] = None,
    callback_url: Annotated[str | None, typer.Option(help="Default callback URL ('' removes it)")] = None,
) -> None:
    """Suspend or reactivate a reseller, change its rate limit, credit limit or callback URL."""
    from quanyi.resellers import service as resellers_service
    from quanyi.resellers.models import ResellerStatus

    account_status(status)
    credit = amount_cents(credit_limit, "--credit-limit") if credit_limit is not None else None

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await resellers_service.update_reseller(
                session=session, code=code, status=ResellerStatus(status) if status else None,
                rate_limit_per_minute=rate_limit, credit_limit_cents=credit, callback_url=callback_url or None,
                clear_callback_url=callback_url == "")

    _run(job)
    console.print(f"Reseller {code} updated.")


@resellers_app.command("top-up")
def top_up(
    code: Annotated[str, typer.Argument(help="Reseller code")],
    amount: Annotated[str, typer.Option(help="Amount paid in, e.g. 5000.00")],
    note: Annotated[str, typer.Option(help="Bank reference or why")] = "",
    reference: Annotated[str | None, typer.Option(help="Idempotency reference: the same one credits once")] = None,
) -> None:
    """Record money the reseller paid into its prepaid balance (预存款)."""
    from quanyi.resellers import service as resellers_service

    record_top_up(resellers_service.top_up, code=code, amount=amount, note=note, reference=reference)


@resellers_app.command("prices")
def prices(
    code: Annotated[str, typer.Argument(help="Reseller code")],
    set_price: Annotated[list[str] | None, typer.Option(
        "--set", help="SKU=PRICE, e.g. GIFT-100=95.00 (repeatable)")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="SKU back to its list price")] = None,
) -> None:
    """Show the reseller's price list; --set / --remove change it first."""
    from quanyi.resellers import service as resellers_service

    changes = []
    for item in set_price or []:
        sku, sep, price = item.partition("=")
        if not sep:
            err.print(f"[red]--set wants SKU=PRICE, not {item!r}.[/red]")
            raise typer.Exit(2)
        changes.append((sku.strip(), amount_cents(price.strip(), f"--set {sku}")))

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            for sku, cents in changes:
                await resellers_service.set_price(session=session, code=code, sku_code=sku, price_cents=cents,
                                                  actor="cli")
            for sku in remove or []:
                await resellers_service.remove_price(session=session, code=code, sku_code=sku)
            return await resellers_service.price_list(session=session, code=code)

    table = Table("SKU", "list price", "reseller price")
    for sku, listed, own in _run(job):
        table.add_row(sku, money_text(listed), money_text(own))
    console.print(table)
