"""What every `quanyi` command shares: consoles, settings with a clear message, running a job on a shop context."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from quanyi.config import Settings, get_settings
from quanyi.errors import DomainError
from quanyi.scope import Scope

__all__ = ["console", "err", "load_settings", "run_job", "warn_if_connections_short", "MerchantOption",
           "merchant_scope", "money_text", "amount_cents", "account_status", "record_top_up"]

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

# Every command that touches a merchant's objects takes this: it then sees and changes only that merchant's, like
# the merchant's own staff would (another merchant's object is "not found"). Without it: the whole platform.
MerchantOption = Annotated[str | None, typer.Option(
    "--merchant", "-m", help="Act within this merchant's scope (merchant code); default: the whole platform")]


async def merchant_scope(session: Any, code: str | None) -> Scope:
    """The scope of `--merchant CODE` (an unknown code stops the command with merchant_not_found)."""
    from quanyi.merchants import service as merchants_service

    return await merchants_service.scope_for_code(session=session, code=code)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[red]Configuration problem:[/red] {messages}")
        raise typer.Exit(2) from None


def run_job(job: Callable[..., Awaitable[T]]) -> T:
    """Run an async job against a fresh shop context, turning domain errors into clean exits."""
    from quanyi.context import build_context
    from quanyi.inventory.masking import install_log_redaction

    install_log_redaction()  # a command's log lines never carry a plaintext card key

    async def main() -> T:
        ctx = build_context(load_settings())
        try:
            return await job(ctx)
        finally:
            await ctx.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        err.print(f"[red]Error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(1) from None


def money_text(cents: int | None, currency: str = "CNY") -> str:
    """An amount for a table cell ("-" when there is none)."""
    from quanyi.money import format_money

    return "-" if cents is None else format_money(cents, currency)


def amount_cents(text: str, what: str) -> int:
    """A yuan amount typed on the command line (e.g. 50000.00) in cents; a bad one stops the command (exit 2)."""
    from quanyi.money import InvalidAmount, parse_amount

    try:
        return parse_amount(text, "CNY")
    except InvalidAmount as exc:
        err.print(f"[red]{what}: {exc}[/red]")
        raise typer.Exit(2) from None


def account_status(status: str | None) -> str | None:
    """--status of a prepaid customer (enterprise, reseller): active or suspended; anything else stops (exit 2)."""
    if status is not None and status not in ("active", "suspended"):
        err.print("[red]--status must be active or suspended.[/red]")
        raise typer.Exit(2)
    return status


def record_top_up(top_up: Callable[..., Awaitable[tuple[Any, bool]]], *, code: str, amount: str, note: str,
                  reference: str | None) -> None:
    """`quanyi enterprises|resellers top-up`: book money a prepaid customer paid in, through its feature's
    `top_up` service (the same reference credits once), and print the balance."""
    cents = amount_cents(amount, "--amount")

    async def job(ctx: Any) -> tuple[Any, bool]:
        async with ctx.db.transaction() as session:
            return await top_up(session=session, code=code, amount_cents=cents, note=note, actor="cli",
                                reference=reference)

    account, created = run_job(job)
    verb = "Topped up" if created else "Already recorded (same reference):"
    console.print(f"{verb} {code} {money_text(cents)}; balance {money_text(account.balance_cents, account.currency)}")


def warn_if_connections_short(settings: Settings, *, processes: int) -> None:
    """Before starting `processes` shop processes on PostgreSQL: warn when their pools (2 × pool size each)
    could ask for more connections than the server has left. Under a burst the pools would then fail with
    "too many clients" instead of queueing. Skipped on SQLite, and silent if the server cannot be asked."""
    from quanyi.db import connection_budget

    try:
        budget = asyncio.run(connection_budget(settings.database_url, processes=processes,
                                               pool_size=settings.database_pool_size))
    except Exception as exc:  # the command itself will report an unreachable database clearly
        err.print(f"[yellow]Could not check PostgreSQL's connection limit: {type(exc).__name__}[/yellow]")
        return
    if budget is None or budget.fits:
        return
    err.print(
        f"[bold yellow]WARNING: {processes} process(es) × 2 × QUANYI_DATABASE_POOL_SIZE={budget.pool_size} may open "
        f"{budget.needed} PostgreSQL connections, but the server has {budget.available} left "
        f"(max_connections {budget.max_connections} − {budget.reserved} reserved − {budget.in_use} in use). "
        f"Lower QUANYI_DATABASE_POOL_SIZE to {max(budget.available // (2 * processes), 1)} or less, or raise "
        f"max_connections (see docs/deploy.md, PostgreSQL).[/bold yellow]", soft_wrap=True)
