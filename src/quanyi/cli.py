"""The `quanyi` command: init secrets, migrate, load demo data, serve, and manage card-key stock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quanyi.config import ENV_FILE, Settings, generate_secrets_env, get_settings
from quanyi.errors import DomainError

app = typer.Typer(help="quanyi 权益商城: virtual-goods shop.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)
keys_app = typer.Typer(help="Card-key stock (卡密库存): import, void, counts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
gateways_app = typer.Typer(help="Payment gateways (支付渠道): accounts, secrets encrypted at rest.",
                           no_args_is_help=True)
app.add_typer(gateways_app, name="gateways")
notifications_app = typer.Typer(help="Notification outbox (通知): dead letters and retries.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")
refunds_app = typer.Typer(help="Refunds (退款) through the payment gateways.", no_args_is_help=True)
app.add_typer(refunds_app, name="refunds")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        err.print(f"[red]Configuration problem:[/red] {messages}")
        raise typer.Exit(2) from None


def _run(job: Callable[..., Awaitable[T]]) -> T:
    """Run an async job against a fresh shop context, turning domain errors into clean exits."""
    from quanyi.context import build_context

    async def main() -> T:
        ctx = build_context(_settings())
        try:
            return await job(ctx)
        finally:
            await ctx.close()

    try:
        return asyncio.run(main())
    except DomainError as exc:
        err.print(f"[red]Error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(1) from None


@app.command()
def init(force: Annotated[bool, typer.Option(help="Overwrite an existing secrets file")] = False) -> None:
    """Generate secrets (admin token, card-key encryption key, ...) into var/quanyi.env if absent."""
    if ENV_FILE.exists() and not force:
        console.print(f"Secrets already in [bold]{ENV_FILE}[/bold]; keeping them.")
        return
    if ENV_FILE.exists() and force:
        err.print("[yellow]Overwriting secrets: card keys encrypted with the old key become unreadable.[/yellow]")
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_secrets_env())
    console.print(f"Wrote fresh secrets to [bold]{ENV_FILE}[/bold] (mode 600). Back it up: it holds the card-key key.")


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (SQLite file by default, PostgreSQL via QUANYI_DATABASE_URL)."""
    from quanyi.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print("Database schema is up to date.")


@app.command()
def demo() -> None:
    """Load the demo catalog and generated card keys (skipped if already loaded)."""
    from quanyi.demo import load_demo

    loaded = _run(lambda ctx: load_demo(ctx, progress=lambda name: console.print(f"  + {name}")))
    console.print("Demo data loaded." if loaded else "Demo data already present; nothing to do.")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
    with_test_peers: Annotated[bool, typer.Option(
        "--with-test-peers", help="Demo only: also run the Alipay / WeChat Pay / Stripe simulators and point the "
                                  "shop's accounts at them (refused unless QUANYI_SANDBOX_ENABLED=true)")] = False,
) -> None:
    """Serve the shop and its API (docs at /docs). Background jobs run in every worker."""
    import uvicorn

    settings = _settings()
    if with_test_peers:
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding
        with _test_peers(f"http://{local}:{port}"):
            serve(host=host, port=port, workers=workers, with_test_peers=False)
        return
    if not (settings.sandbox_api_url or settings.public_base_url):
        # The sandbox gateway's merchant API (query, refund) is served by this same server.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding
        os.environ["QUANYI_SANDBOX_API_URL"] = f"http://{local}:{port}"
    if settings.sandbox_enabled:
        err.print("[bold yellow]WARNING: the sandbox payment gateway is enabled: anyone can 'pay' without money "
                  "and receive goods. Set QUANYI_SANDBOX_ENABLED=false before taking real orders.[/bold yellow]",
                  soft_wrap=True)
    console.print(f"quanyi serving on [bold]http://{host}:{port}[/bold]  (API docs: /docs, database: "
                  f"{settings.database_url.split('@')[-1]})", soft_wrap=True)
    uvicorn.run("quanyi.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level="info", log_config=_log_config())


@contextlib.contextmanager
def _test_peers(shop_url: str) -> Iterator[None]:
    """Run the payment simulators and point the demo shop at them; disable those accounts afterwards."""
    from quanyi.testpeers.demo import configure_shop, run_demo_peers

    with run_demo_peers(shop_url=shop_url) as peers:
        _run(lambda ctx: configure_shop(ctx, peers.accounts, enabled=True))
        for name, url in peers.urls.items():
            console.print(f"test peer [bold]{name}[/bold] (simulated, no real money) on {url}")
        try:
            yield
        finally:
            _run(lambda ctx: configure_shop(ctx, peers.accounts, enabled=False))
            console.print("test peers stopped; their gateway accounts are disabled again")


@app.command()
def peers(
    shop_url: Annotated[str, typer.Option(help="Where the shop runs (the Stripe simulator sends webhooks there)")]
    = "http://127.0.0.1:8000",
) -> None:
    """Demo only: run the Alipay / WeChat Pay / Stripe simulators (TEST PEERS) and point the shop at them
    until Ctrl-C. Running servers take the accounts up within 30 s. Refused unless the sandbox is on."""
    import time

    with _test_peers(shop_url):
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _log_config() -> dict[str, object]:
    """uvicorn's logging, plus the shop's own `quanyi.*` loggers (payment rejections, sweeps, retries)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["shop"] = {"()": "logging.Formatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["shop"] = {"class": "logging.StreamHandler", "formatter": "shop", "stream": "ext://sys.stderr"}
    config["loggers"]["quanyi"] = {"handlers": ["shop"], "level": "INFO", "propagate": False}
    return config


@app.command()
def sweep() -> None:
    """Release the stock of unpaid orders whose reservation has expired (also runs inside `serve`)."""
    from quanyi.tasks import sweep_once

    count = _run(sweep_once)
    console.print(f"Expired {count} orders.")


@keys_app.command("import")
def import_keys(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Text or CSV file")],
    sku: Annotated[str, typer.Option("--sku", help="SKU code, e.g. STAR-VIP-1M (see `quanyi keys stock`)")],
    source: Annotated[str, typer.Option(help="Where the batch came from (supplier, invoice no.)")] = "",
) -> None:
    """Import card keys for a SKU: dedupe, encrypt, store, and report bad lines."""
    from quanyi.catalog import service as catalog_service
    from quanyi.inventory import service as inventory_service
    from quanyi.inventory.parsing import decode_upload

    try:
        text = decode_upload(file.read_bytes())
    except ValueError as exc:
        err.print(f"[red]Cannot read {file}:[/red] {exc}")
        raise typer.Exit(2) from None

    async def job(ctx):  # type: ignore[no-untyped-def]
        with Progress(TextColumn("[bold]importing[/bold]"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            task = bar.add_task("import", total=None)
            async with ctx.db.transaction() as session:
                target = await catalog_service.get_sku_by_code(session=session, code=sku)
                return await inventory_service.import_card_keys(
                    session=session, cipher=ctx.cipher, sku=target, text=text,
                    source_name=source or file.name, imported_by="cli",
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )

    report = _run(job)
    table = Table(title=f"Import into {sku.upper()}")
    for column in ("batch", "lines", "added", "duplicates", "invalid"):
        table.add_column(column, justify="right")
    table.add_row(str(report.batch_id), str(report.lines_read), f"[green]{report.added}[/green]",
                  str(report.duplicates), f"[red]{report.invalid}[/red]" if report.invalid else "0")
    console.print(table)
    for problem in report.invalid_lines[:20]:
        console.print(f"  line {problem.line}: [red]invalid[/red] {problem.reason}")
    for problem in report.duplicate_lines[:20]:
        console.print(f"  line {problem.line}: [yellow]duplicate[/yellow] {problem.reason}")
    if max(report.invalid, report.duplicates) > 20:
        console.print("  (use the admin API for the full report)")


@keys_app.command("void")
def void_batch(
    batch_id: Annotated[int, typer.Argument(min=1, help="Import batch id")],
    reason: Annotated[str, typer.Option(help="Why the batch is withdrawn (kept on record)")],
) -> None:
    """Withdraw a batch's unsold card keys (sold keys stay with their orders)."""
    from quanyi.inventory import service as inventory_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await inventory_service.void_batch(session=session, batch_id=batch_id, reason=reason)

    batch = _run(job)
    console.print(f"Batch {batch.id} voided: {batch.voided_count} unsold keys withdrawn.")


@keys_app.command("stock")
def stock() -> None:
    """Every SKU with its price and card-key counts."""
    from quanyi.catalog import service as catalog_service
    from quanyi.inventory import service as inventory_service
    from quanyi.money import format_money

    async def job(ctx):  # type: ignore[no-untyped-def]
        rows = []
        async with ctx.db.read_session() as session:
            for product in await catalog_service.list_products(session=session, active_only=False):
                for sku in product.skus:
                    summary = await inventory_service.stock_summary(session=session, sku_id=sku.id)
                    rows.append((sku.code, f"{product.name} {sku.name}", format_money(sku.price_cents, sku.currency),
                                 sku.delivery_type.value, summary))
        return rows

    table = Table(title="Stock")
    for column in ("SKU", "product", "price", "delivery", "available", "reserved", "sold", "voided", "expired"):
        table.add_column(column, justify="right" if column in ("available", "reserved", "sold", "voided", "expired")
                         else "left")
    for code, name, price, delivery, s in _run(job):
        table.add_row(code, name, price, delivery, str(s.available), str(s.reserved), str(s.sold), str(s.voided),
                      str(s.expired))
    console.print(table)


@gateways_app.command("list")
def gateways_list() -> None:
    """Gateways this shop can take payments with, and their stored settings (secrets masked)."""
    from quanyi.payments import configuration
    from quanyi.tasks import refresh_gateways

    async def job(ctx):  # type: ignore[no-untyped-def]
        await refresh_gateways(ctx)
        async with ctx.db.read_session() as session:
            return await configuration.describe_gateway_configs(session=session, cipher=ctx.cipher,
                                                                registry=ctx.gateways)

    table = Table(title="Payment gateways")
    for column in ("gateway", "title", "state", "settings", "updated"):
        table.add_column(column)
    for item in _run(job):
        state = ("active" if item["active"] else "enabled, not starting") if item["enabled"] else (
            "disabled" if item["configured"] else "not configured")
        settings = item["problem"] or ", ".join(f"{k}={v}" for k, v in (item["config"] or {}).items())
        updated = f"{item['updated_at']:%Y-%m-%d %H:%M} by {item['updated_by']}" if item["updated_at"] else ""
        table.add_row(item["name"], item["title"], state, settings, updated)
    console.print(table)


@gateways_app.command("set")
def gateways_set(
    name: Annotated[str, typer.Argument(help="Gateway name, see `quanyi gateways list`")],
    config: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, readable=True,
                                                 help="JSON file with the settings to store (fields left out keep "
                                                      "their stored value)")] = None,
    enable: Annotated[bool, typer.Option("--enable/--disable", help="Take payments with it or not")] = True,
) -> None:
    """Store a gateway's account settings (validated, encrypted) and enable or disable it."""
    import json

    from quanyi.payments import configuration

    values: dict[str, object] = {}
    if config is not None:
        try:
            loaded = json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            err.print(f"[red]{config} is not a JSON file:[/red] {exc}")
            raise typer.Exit(2) from None
        if not isinstance(loaded, dict):
            err.print(f"[red]{config} must hold a JSON object of settings[/red]")
            raise typer.Exit(2)
        values = loaded

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await configuration.save_gateway_config(session=session, cipher=ctx.cipher, name=name, config=values,
                                                    enabled=enable, updated_by="cli")

    _run(job)
    console.print(f"Saved {name} ({'enabled' if enable else 'disabled'}); running servers take it up within a "
                  "minute.")


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Send everything that is due, then exit")] = False,
) -> None:
    """Run the notification outbox worker (also runs inside `serve` unless
    QUANYI_NOTIFICATION_WORKER_IN_SERVE=false). Any number of workers may run at once."""
    import logging

    from quanyi.notifications.worker import OutboxWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def job(ctx):  # type: ignore[no-untyped-def]
        outbox = OutboxWorker(ctx)
        if once:
            return await outbox.drain()
        await outbox.run_forever()
        return 0

    try:
        count = _run(job)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    console.print(f"Processed {count} notification attempts.")


@notifications_app.command("list")
def notifications_list(
    status: Annotated[str | None, typer.Option(help="pending, sending, sent or dead")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Outbox messages, newest first (`--status dead`: the dead-letter list)."""
    from quanyi.notifications import service as notifications_service
    from quanyi.notifications.models import MessageStatus

    try:
        wanted = MessageStatus(status) if status else None
    except ValueError:
        err.print(f"[red]Unknown status {status!r}[/red]: use pending, sending, sent or dead")
        raise typer.Exit(2) from None

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return await notifications_service.list_messages(session=session, status=wanted, limit=limit)

    table = Table(title="Notifications")
    for column in ("id", "channel", "kind", "recipient", "status", "attempts", "last error"):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    for m in _run(job):
        table.add_row(str(m.id), m.channel, m.kind, m.recipient, m.status, str(m.attempts), m.last_error or "")
    console.print(table)


@notifications_app.command("retry")
def notifications_retry(message_id: Annotated[int, typer.Argument(min=1, help="Outbox message id")]) -> None:
    """Queue a dead message again with a fresh set of attempts."""
    from quanyi.notifications import service as notifications_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await notifications_service.retry_message(session=session, message_id=message_id)

    message = _run(job)
    console.print(f"Notification {message.id} is queued again.")


@refunds_app.command("create")
def create_refund(
    order_no: Annotated[str, typer.Argument(help="Order number")],
    reason: Annotated[str, typer.Option(help="Why (kept on record, sent to the gateway)")],
    amount: Annotated[str | None, typer.Option(help="Amount to refund, e.g. 9.90 (undelivered orders)")] = None,
    quantity: Annotated[int | None, typer.Option(min=1, help="Card keys to take back (delivered orders)")] = None,
    payment: Annotated[str | None, typer.Option(help="Refund this payment (a duplicate payment)")] = None,
) -> None:
    """Refund (part of) an order and send it to the gateway now. Without --amount/--quantity: all that is left."""
    from quanyi.money import InvalidAmount, parse_amount
    from quanyi.orders import service as orders_service
    from quanyi.refunds import service as refunds_service
    from quanyi.refunds.policy import InvalidRefund

    if amount is not None and quantity is not None:
        err.print("[red]Give --amount or --quantity, not both.[/red]")
        raise typer.Exit(2)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        err.print("[red]--reason must be 1 to 500 characters.[/red]")
        raise typer.Exit(2)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            order = await orders_service.get_order(session=session, order_no=order_no)
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


@refunds_app.command("list")
def list_refunds(
    status: Annotated[str | None, typer.Option(help="requested | processing | succeeded | failed")] = None,
    order: Annotated[str | None, typer.Option(help="Only this order's refunds")] = None,
) -> None:
    """The latest refunds (200)."""
    from quanyi.orders import service as orders_service
    from quanyi.refunds import service as refunds_service
    from quanyi.refunds.state import RefundStatus

    if status is not None and status not in {s.value for s in RefundStatus}:
        err.print(f"[red]Unknown status {status!r}.[/red]")
        raise typer.Exit(2)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            order_id = (await orders_service.get_order(session=session, order_no=order)).id if order else None
            refunds = await refunds_service.list_refunds(session=session, order_id=order_id, status=status)
            return await refunds_service.describe_refunds(session=session, refunds=refunds)

    table = Table(title="Refunds")
    for column in ("refund", "order", "gateway", "amount", "keys", "status", "attempts", "reason"):
        table.add_column(column, justify="right" if column in ("amount", "keys", "attempts") else "left")
    for r in _run(job):
        table.add_row(r.refund_no, r.order_no, r.gateway, r.amount_display, str(r.quantity), r.status.value,
                      str(r.attempts), r.reason[:40])
    console.print(table)


@app.command()
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
                  f"payments and {report.refunds_checked} refunds checked, {len(report.mismatches)} mismatches.")
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


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="quanyi")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
