"""`quanyi suppliers ...`: register suppliers, set their credentials, map products, sync, see status.

Secrets are never taken from the command line (shell history, `ps`): credentials come as a JSON object
on stdin (`--stdin`), from the environment variable QUANYI_SUPPLIER_CREDENTIALS, or from hidden prompts
(`--field NAME`, once per field). No command prints them back.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, merchant_scope
from quanyi.cli_support import run_job as _run

__all__ = ["suppliers_app"]

suppliers_app = typer.Typer(help="Suppliers (供应商): contracts, credentials, product mapping, sync.",
                            no_args_is_help=True)

CREDENTIALS_ENV = "QUANYI_SUPPLIER_CREDENTIALS"
StdinOpt = Annotated[bool, typer.Option("--stdin", help="Read the credentials as a JSON object from stdin")]
FieldOpt = Annotated[list[str] | None, typer.Option("--field", help="Prompt (hidden) for this credential field; "
                                                                   "repeat for each field")]


def _read_credentials(stdin: bool, fields: list[str] | None, *, required: bool) -> dict[str, str] | None:
    raw = None
    if stdin:
        raw = sys.stdin.read()
    elif os.environ.get(CREDENTIALS_ENV):
        raw = os.environ[CREDENTIALS_ENV]
    if raw is not None:
        try:
            data = json.loads(raw)
        except ValueError:
            err.print("[red]The credentials must be a JSON object, e.g. {\"app_id\": \"...\", \"secret\": \"...\"}"
                      "[/red]")
            raise typer.Exit(2) from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            err.print("[red]The credentials must be a JSON object of strings.[/red]")
            raise typer.Exit(2)
        return {str(k): v for k, v in data.items()}
    if fields:
        return {name: typer.prompt(f"{name}", hide_input=True) for name in fields}
    if required:
        err.print(f"[red]Give the credentials with --stdin (JSON), {CREDENTIALS_ENV} (JSON) or --field NAME "
                  "(prompted, hidden).[/red]")
        raise typer.Exit(2)
    return None


def _validated(model, **values):  # type: ignore[no-untyped-def]
    try:
        return model(**values)
    except ValidationError as exc:
        # Show where and why, never the input (it may hold a secret).
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]Invalid input:[/red] {problems}")
        raise typer.Exit(2) from None


def _print_supplier(s) -> None:  # type: ignore[no-untyped-def]
    from quanyi.money import format_money

    table = Table(title=f"Supplier {s.code}", show_header=False)
    rows = [("name", s.name), ("dialect", s.dialect.value), ("base url", s.base_url), ("status", s.status.value),
            ("settlement", s.settlement_cycle.value), ("currency", s.currency),
            ("prepaid balance", format_money(s.balance_cents, s.currency)),
            ("credit limit", format_money(s.credit_limit_cents, s.currency)), ("timeout", f"{s.timeout_ms} ms"),
            ("credentials", (", ".join(f"{f}=***" for f in s.credential_fields) if s.credentials_readable
                             else "[red]unreadable[/red]")),
            ("stock push URL", f"<public base URL>{s.stock_callback_path}"),
            ("circuit", f"{s.health.circuit} ({s.health.consecutive_failures} consecutive failures)"),
            ("last success", str(s.health.last_success_at or "-")),
            ("last failure", str(s.health.last_failure_at or "-")),
            ("last error", s.health.last_error or "-"), ("last pull", str(s.sync.last_pull_ok_at or "-")),
            ("last pull error", s.sync.last_pull_error or "-"), ("last push", str(s.sync.last_push_at or "-"))]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)


@suppliers_app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. ACME (used in the push URL)")],
    name: Annotated[str, typer.Option(help="Display name")],
    dialect: Annotated[str, typer.Option(help="quanyi | card_platform | async_recharge")],
    base_url: Annotated[str, typer.Option(help="The supplier API's base URL (http/https)")],
    settlement: Annotated[str, typer.Option(help="per_order | daily | weekly")] = "daily",
    credit_limit: Annotated[int, typer.Option(min=0, help="Credit limit in cents (0: prepaid only)")] = 0,
    currency: Annotated[str, typer.Option(help="Currency of its prices")] = "CNY",
    timeout_ms: Annotated[int, typer.Option(help="Request timeout in milliseconds")] = 5000,
    status: Annotated[str, typer.Option(help="active | paused | disabled")] = "active",
    stdin: StdinOpt = False,
    field: FieldOpt = None,
    merchant: MerchantOption = None,
) -> None:
    """Register a supplier account (of a merchant with --merchant); its credentials are encrypted before they are
    stored."""
    from quanyi.suppliers import records
    from quanyi.suppliers.schemas import SupplierCreate

    credentials = _read_credentials(stdin, field, required=True)
    data = _validated(SupplierCreate, code=code, name=name, dialect=dialect, base_url=base_url,
                      settlement_cycle=settlement, credit_limit_cents=credit_limit, currency=currency,
                      timeout_ms=timeout_ms, status=status, credentials=credentials)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            supplier = await records.create_supplier(session=session, cipher=ctx.cipher, http=ctx.http, data=data,
                                                     merchant_id=scope.owner())
            return await records.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)

    _print_supplier(_run(job))


@suppliers_app.command("set-credentials")
def set_credentials(code: Annotated[str, typer.Argument(help="Supplier code")], stdin: StdinOpt = False,
                    field: FieldOpt = None, merchant: MerchantOption = None) -> None:
    """Replace a supplier's credentials (all fields at once)."""
    from quanyi.suppliers import records
    from quanyi.suppliers.schemas import SupplierUpdate

    data = _validated(SupplierUpdate, credentials=_read_credentials(stdin, field, required=True))

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            supplier = await records.update_supplier(session=session, cipher=ctx.cipher, http=ctx.http, code=code,
                                                     data=data, scope=await merchant_scope(session, merchant))
            return await records.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)

    supplier = _run(job)
    console.print(f"Credentials of {supplier.code} replaced: {', '.join(supplier.credential_fields)} (encrypted).")


@suppliers_app.command("list")
def list_(merchant: MerchantOption = None) -> None:
    """Every supplier (--merchant: that merchant's) with status, health and last sync."""
    from quanyi.money import format_money
    from quanyi.suppliers import records

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [await records.describe_supplier(session=session, cipher=ctx.cipher, supplier=s)
                    for s in await records.list_suppliers(session=session,
                                                          scope=await merchant_scope(session, merchant))]

    table = Table(title="Suppliers")
    for column in ("code", "name", "dialect", "status", "settlement", "balance", "circuit", "last pull", "last push",
                   "last error"):
        table.add_column(column)
    for s in _run(job):
        table.add_row(s.code, s.name, s.dialect.value, s.status.value, s.settlement_cycle.value,
                      format_money(s.balance_cents, s.currency), s.health.circuit,
                      f"{s.sync.last_pull_ok_at:%m-%d %H:%M:%S}" if s.sync.last_pull_ok_at else "-",
                      f"{s.sync.last_push_at:%m-%d %H:%M:%S}" if s.sync.last_push_at else "-",
                      (s.sync.last_pull_error or s.health.last_error or "")[:60])
    console.print(table)


@suppliers_app.command("show")
def show(code: Annotated[str, typer.Argument(help="Supplier code")], merchant: MerchantOption = None) -> None:
    """One supplier: terms, which credential fields are set (never their values), health, sync times."""
    from quanyi.suppliers import records

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            supplier = await records.get_supplier_by_code(session=session, code=code,
                                                          scope=await merchant_scope(session, merchant))
            return await records.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)

    _print_supplier(_run(job))


@suppliers_app.command("map")
def map_(
    sku: Annotated[str, typer.Argument(help="Platform SKU code")],
    supplier: Annotated[str, typer.Argument(help="Supplier code")],
    product: Annotated[str, typer.Argument(help="The supplier's product code")],
    priority: Annotated[int, typer.Option(min=0, max=10_000, help="Lower is preferred on a cost tie")] = 100,
    merchant: MerchantOption = None,
) -> None:
    """Let a supplier product fill a SKU (card key ↔ card key, direct recharge ↔ direct recharge)."""
    from quanyi.catalog import service as catalog_service
    from quanyi.suppliers import mapping
    from quanyi.suppliers.schemas import MappingCreate

    data = _validated(MappingCreate, supplier_code=supplier, product_code=product, priority=priority)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            target = await catalog_service.get_sku_by_code(session=session, code=sku, scope=scope)
            return await mapping.create_mapping(session=session, sku_id=target.id, data=data, scope=scope)

    created = _run(job)
    console.print(f"Mapped {sku.upper()} ← {data.supplier_code}/{data.product_code} (mapping {created.id}, "
                  f"priority {created.priority}).")


@suppliers_app.command("unmap")
def unmap(
    sku: Annotated[str, typer.Argument(help="Platform SKU code")],
    supplier: Annotated[str, typer.Argument(help="Supplier code")],
    product: Annotated[str, typer.Argument(help="The supplier's product code")],
    merchant: MerchantOption = None,
) -> None:
    """Remove a mapping."""
    from quanyi.catalog import service as catalog_service
    from quanyi.suppliers import mapping

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            target = await catalog_service.get_sku_by_code(session=session, code=sku, scope=scope)
            mapping_id = await mapping.find_mapping_id(session=session, sku_id=target.id, supplier_code=supplier,
                                                       product_code=product, scope=scope)
            await mapping.delete_mapping(session=session, mapping_id=mapping_id, scope=scope)

    _run(job)
    console.print(f"Unmapped {sku.upper()} from {supplier.upper()}/{product}.")


@suppliers_app.command("sync")
def sync(
    code: Annotated[str | None, typer.Argument(help="Supplier code (default: every active or paused one)")] = None,
    quotes_only: Annotated[bool, typer.Option("--quotes", help="Only stock/cost of mapped products")] = False,
    merchant: MerchantOption = None,
) -> None:
    """Pull now, with a progress bar; exits 1 if any supplier failed."""
    from quanyi.suppliers import records
    from quanyi.suppliers import sync as sync_service
    from quanyi.suppliers.models import SupplierStatus

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            scope = await merchant_scope(session, merchant)
            if code:
                targets = [await records.get_supplier_by_code(session=session, code=code, scope=scope)]
            else:
                targets = [s for s in await records.list_suppliers(session=session, scope=scope)
                           if s.status is not SupplierStatus.DISABLED]
        results = []
        with Progress(TextColumn("[bold]syncing[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("", total=len(targets))
            for supplier in targets:
                bar.update(task, description=supplier.code)
                try:
                    results.append(await sync_service.pull_supplier(
                        db=ctx.db, cipher=ctx.cipher, http=ctx.http, supplier_id=supplier.id, full=not quotes_only))
                except sync_service.SyncInProgress as exc:
                    if code:
                        raise
                    err.print(f"[yellow]{exc.message}[/yellow]")
                bar.advance(task)
        return results

    results = _run(job)
    table = Table(title="Supplier sync")
    for column in ("supplier", "mode", "result", "seen", "new", "updated", "vanished", "stale", "price changes"):
        table.add_column(column)
    for r in results:
        table.add_row(r.supplier_code, r.mode, "[green]ok[/green]" if r.ok else f"[red]failed[/red] {r.error}",
                      str(r.products_seen), str(r.new_products), str(r.updated), str(r.vanished),
                      str(r.stale_ignored), str(len(r.price_changes)))
    console.print(table)
    for r in results:
        for change in r.price_changes:
            console.print(f"  SKU {change.sku_id}: {change.action.value}: {change.reason}")
    if any(not r.ok for r in results):
        raise typer.Exit(1)


@suppliers_app.command("status")
def status(code: Annotated[str, typer.Argument(help="Supplier code")], merchant: MerchantOption = None) -> None:
    """A supplier's products: cost, stock, availability, mapped SKUs, last synced and how (pull/push)."""
    from quanyi.money import format_money
    from quanyi.suppliers import mapping, records

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            scope = await merchant_scope(session, merchant)
            supplier = await records.get_supplier_by_code(session=session, code=code, scope=scope)
            described = await records.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)
            return described, await mapping.list_supplier_products(session=session, code=code, scope=scope)

    supplier, products = _run(job)
    console.print(f"{supplier.code}: {supplier.status.value}; last pull {supplier.sync.last_pull_ok_at or '-'}; "
                  f"last push {supplier.sync.last_push_at or '-'}"
                  + (f"; last pull error: {supplier.sync.last_pull_error}" if supplier.sync.last_pull_error else ""))
    table = Table(title=f"Products of {supplier.code}")
    for column in ("product", "name", "kind", "cost", "stock", "available", "mapped SKUs", "last synced", "via"):
        table.add_column(column)
    for p in products:
        table.add_row(p.product_code, p.name, p.kind.value, format_money(p.cost_cents, p.currency),
                      "uncounted" if p.stock is None else str(p.stock), "yes" if p.available else "[red]no[/red]",
                      ", ".join(str(i) for i in p.mapped_skus) or "-", f"{p.last_synced_at:%Y-%m-%d %H:%M:%S}",
                      p.last_sync_source)
    console.print(table)
