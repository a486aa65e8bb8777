"""The `quanyi` command: init secrets, migrate, load demo data, serve, and manage card-key stock."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, merchant_scope, warn_if_connections_short
from quanyi.cli_support import load_settings as _settings
from quanyi.cli_support import run_job as _run
from quanyi.config import ENV_FILE, generate_secrets_env, get_settings
from quanyi.coupons.cli import coupons_app
from quanyi.enterprises.cli import enterprises_app
from quanyi.inventory.cli import register_key_security_commands
from quanyi.ledger.cli import ledger_app
from quanyi.loyalty.cli import levels_app, points_app
from quanyi.members.cli import members_app
from quanyi.merchants.cli import merchants_app
from quanyi.notifications.cli import notifications_app, worker
from quanyi.promoters.cli import promoters_app
from quanyi.refunds.cli import reconcile, refunds_app
from quanyi.resellers.cli import resellers_app
from quanyi.risk.cli import risk_app
from quanyi.staff.cli import staff_app
from quanyi.suppliers.cli import suppliers_app

app = typer.Typer(help="quanyi 权益商城: virtual-goods shop.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False)
keys_app = typer.Typer(help="Card-key stock (卡密库存): import, void, counts.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
gateways_app = typer.Typer(help="Payment gateways (支付渠道): accounts, secrets encrypted at rest.",
                           no_args_is_help=True)
app.add_typer(gateways_app, name="gateways")
app.add_typer(risk_app, name="risk")

@app.command()
def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing secrets file")] = False,
    public_base_url: Annotated[str, typer.Option(
        help="Where buyers, gateways and suppliers reach the shop (QUANYI_PUBLIC_BASE_URL)")] = "http://127.0.0.1:8000",
) -> None:
    """Generate secrets (admin token, card-key encryption key, ...) and the shop's address into var/quanyi.env
    if absent."""
    if ENV_FILE.exists() and not force:
        console.print(f"Secrets already in [bold]{ENV_FILE}[/bold]; keeping them.")
        return
    if ENV_FILE.exists() and force:
        err.print("[yellow]Overwriting secrets: card keys encrypted with the old key become unreadable.[/yellow]")
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(ENV_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_secrets_env(public_base_url.rstrip("/")))
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
    from quanyi.demo import ensure_demo_owner, load_demo

    loaded = _run(lambda ctx: load_demo(ctx, progress=lambda name: console.print(f"  + {name}")))
    console.print("Demo data loaded." if loaded else "Demo data already present; nothing to do.")
    login_file = ENV_FILE.parent / "console-login.txt"
    username, password = _run(lambda ctx: ensure_demo_owner(ctx, login_file))
    # Where the shop says it is (init --public-base-url), else where `quanyi serve` listens by default.
    url = (_settings().public_base_url or "http://127.0.0.1:8000").rstrip("/") + "/console"
    console.print(f"Console: {url}  user [bold]{username}[/bold]  password [bold]{password}[/bold]  (kept in "
                  f"{login_file})" if password else f"Console: {url}  (the demo login is in {login_file})",
                  soft_wrap=True)


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
        if not settings.public_base_url:
            # Demo only (the peers refuse a shop with the sandbox off): the simulated gateways reach it locally.
            os.environ["QUANYI_PUBLIC_BASE_URL"] = f"http://{local}:{port}"
            get_settings.cache_clear()
        with _test_peers(f"http://{local}:{port}"):
            serve(host=host, port=port, workers=workers, with_test_peers=False)
        return
    if not (settings.sandbox_api_url or settings.public_base_url):
        # The sandbox gateway's merchant API (query, refund) is served by this same server.
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - comparing, not binding
        os.environ["QUANYI_SANDBOX_API_URL"] = f"http://{local}:{port}"
        get_settings.cache_clear()  # a single worker builds its app in this process: let it see the URL
    if not settings.public_base_url:
        err.print("[bold yellow]WARNING: QUANYI_PUBLIC_BASE_URL is not set: Alipay, WeChat Pay and Stripe stay off, "
                  "and links in e-mails point to this machine. Set it to the shop's public address.[/bold yellow]",
                  soft_wrap=True)
    if settings.sandbox_enabled:
        err.print("[bold yellow]WARNING: the sandbox payment gateway is enabled: anyone can 'pay' without money "
                  "and receive goods. Set QUANYI_SANDBOX_ENABLED=false before taking real orders.[/bold yellow]",
                  soft_wrap=True)
    warn_if_connections_short(settings, processes=workers)
    console.print(f"quanyi serving on [bold]http://{host}:{port}[/bold]  (API docs: /docs, database: "
                  f"{settings.database_url.split('@')[-1]})", soft_wrap=True)
    # The access log line is the shop's own (quanyi.accesslog.AccessLog, on unless QUANYI_ACCESS_LOG=false).
    uvicorn.run("quanyi.accesslog:create_served_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level="info", log_config=_log_config(), access_log=False)


@contextlib.contextmanager
def _test_peers(shop_url: str) -> Iterator[None]:
    """Run the payment simulators and point the demo shop at them; disable those accounts afterwards."""
    from quanyi.testpeers.demo import configure_shop, run_demo_peers
    from quanyi.testpeers.demo_suppliers import configure_demo_suppliers

    with run_demo_peers(shop_url=shop_url, with_suppliers=True) as peers:
        _run(lambda ctx: configure_shop(ctx, peers.accounts, enabled=True))
        _run(lambda ctx: configure_demo_suppliers(ctx, peers.suppliers, enabled=True))
        for name, url in peers.urls.items():
            console.print(f"test peer [bold]{name}[/bold] (simulated, no real money) on {url}")
        try:
            yield
        finally:
            _run(lambda ctx: configure_shop(ctx, peers.accounts, enabled=False))
            _run(lambda ctx: configure_demo_suppliers(ctx, peers.suppliers, enabled=False))
            console.print("test peers stopped; their gateway accounts are disabled and demo suppliers paused")


@app.command()
def peers(
    shop_url: Annotated[str, typer.Option(help="Where the shop runs (the Stripe simulator sends webhooks there)")]
    = "http://127.0.0.1:8000",
) -> None:
    """Demo only: run the Alipay / WeChat Pay / Stripe simulators (TEST PEERS) and point the shop at them
    until Ctrl-C. Running servers take the accounts up within 30 s. Refused unless the sandbox is on."""
    import time

    if not _settings().public_base_url:
        os.environ["QUANYI_PUBLIC_BASE_URL"] = shop_url.rstrip("/")  # demo only: the peers refuse a real shop
        get_settings.cache_clear()
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
    unit_cost: Annotated[int | None, typer.Option("--unit-cost-cents", min=0, help="Cost of one key in cents")] = None,
    merchant: MerchantOption = None,
) -> None:
    """Import card keys for a SKU: streamed in chunks (any file size), deduped, encrypted, with a report."""
    from quanyi.inventory.import_cli import import_file

    import_file(file=file, sku=sku, source=source, unit_cost=unit_cost, merchant=merchant)


@keys_app.command("resume-import")
def resume_import(job_id: Annotated[int, typer.Argument(min=1, help="Import job id")]) -> None:
    """Continue an import job whose process stopped, after its last committed chunk."""
    from quanyi.inventory.import_cli import resume_import as resume

    resume(job_id)


@keys_app.command("void")
def void_batch(
    batch_id: Annotated[int, typer.Argument(min=1, help="Import batch id")],
    reason: Annotated[str, typer.Option(help="Why the batch is withdrawn (kept on record)")],
    merchant: MerchantOption = None,
) -> None:
    """Withdraw a batch's unsold card keys (sold keys stay with their orders)."""
    from quanyi.inventory import service as inventory_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            return await inventory_service.void_batch(session=session, batch_id=batch_id, reason=reason, scope=scope)

    batch = _run(job)
    console.print(f"Batch {batch.id} voided: {batch.voided_count} unsold keys withdrawn.")


@keys_app.command("stock")
def stock(merchant: MerchantOption = None) -> None:
    """Every SKU with its price and card-key counts (--merchant: that merchant's only)."""
    from quanyi.catalog import service as catalog_service
    from quanyi.inventory import service as inventory_service
    from quanyi.money import format_money

    async def job(ctx):  # type: ignore[no-untyped-def]
        rows = []
        async with ctx.db.read_session() as session:
            scope = await merchant_scope(session, merchant)
            for product in await catalog_service.list_products(session=session, active_only=False, scope=scope):
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
                                                    enabled=enable, updated_by="cli",
                                                    public_base_url=ctx.settings.public_base_url)

    _run(job)
    console.print(f"Saved {name} ({'enabled' if enable else 'disabled'}); running servers take it up within a "
                  "minute.")


app.command()(worker)
app.add_typer(notifications_app, name="notifications")
app.add_typer(refunds_app, name="refunds")
app.add_typer(ledger_app, name="ledger")
app.add_typer(resellers_app, name="resellers")
app.add_typer(enterprises_app, name="enterprises")
app.add_typer(coupons_app, name="coupons")
app.command()(reconcile)
app.add_typer(suppliers_app, name="suppliers")

# key security: staff accounts; key rotation, leak tracing and masked listings under `quanyi keys`
app.add_typer(staff_app, name="staff")
app.add_typer(merchants_app, name="merchants")
app.add_typer(members_app, name="members")
app.add_typer(promoters_app, name="promoters")
app.add_typer(points_app, name="points")
app.add_typer(levels_app, name="levels")
register_key_security_commands(keys_app)


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="quanyi")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
