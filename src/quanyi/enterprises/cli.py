"""`quanyi enterprises`: enterprise customers (企业客户): register, invoice data, contacts, top-ups, tier prices."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import account_status, amount_cents, console, err, money_text, record_top_up
from quanyi.cli_support import run_job as _run

enterprises_app = typer.Typer(help="Enterprise customers (企业福利, B2B): balances, tier prices, bulk purchases, "
                                   "benefit campaigns.", no_args_is_help=True)


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

    credit = amount_cents(credit_limit, "--credit-limit")
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
                      money_text(account.balance_cents, account.currency), money_text(account.credit_limit_cents),
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

    account_status(status)
    credit = amount_cents(credit_limit, "--credit-limit") if credit_limit is not None else None

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

    record_top_up(enterprises_service.top_up, code=code, amount=amount, note=note, reference=reference)


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
            tiers.append(pricing.Tier(int(quantity), amount_cents(price.strip(), f"--set {sku}")))
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
        table.add_row(sku.code, money_text(sku.price_cents, sku.currency),
                      ", ".join(f"{t.min_quantity}+: {money_text(t.unit_price_cents, sku.currency)}" for t in tiers))
    console.print(table)


# ---------------------------------------------------------------- bulk purchases (批量采购)

def _purchase_line(p) -> str:  # type: ignore[no-untyped-def]
    shown = f"{p.purchase_no}: {p.status}, {p.placed_quantity}/{p.quantity} placed"
    return shown + (f" ({p.error_code}: {p.error})" if p.error_code else "")


@enterprises_app.command("purchase")
def purchase(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    sku: Annotated[str, typer.Option(help="SKU code")],
    quantity: Annotated[int, typer.Option(min=1, max=100_000, help="How many codes")],
    reference: Annotated[str | None, typer.Option(help="Idempotency reference: the same one buys once")] = None,
    wait: Annotated[bool, typer.Option(help="Place it now in this process, with a progress bar")] = False,
) -> None:
    """Queue a bulk purchase of N codes at the enterprise's tier price (the server's worker places it, or
    --wait places it here; either resumes the other's work safely)."""
    from rich.progress import Progress

    from quanyi.enterprises import purchases
    from quanyi.leased_worker import worker_owner

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            made, created = await purchases.create_purchase(session=session, code=code, sku_code=sku,
                                                            quantity=quantity, actor="cli", reference=reference)
        console.print(f"{'Queued' if created else 'Already made (same reference)'}: {_purchase_line(made)}, "
                      f"{money_text(made.unit_price_cents, made.currency)} each")
        if not wait:
            return made
        owner = worker_owner()
        with Progress(console=console) as bar:
            task = bar.add_task(made.purchase_no, total=made.quantity, completed=made.placed_quantity)
            if await purchases.claim_purchase(db=ctx.db, owner=owner) is not None:
                while await purchases.place_next_chunk(db=ctx.db, purchase_id=made.id, owner=owner):
                    async with ctx.db.read_session() as session:
                        now = await purchases.get_purchase(session=session, code=code, purchase_no=made.purchase_no)
                    bar.update(task, completed=now.placed_quantity)
        async with ctx.db.read_session() as session:
            return await purchases.get_purchase(session=session, code=code, purchase_no=made.purchase_no)

    console.print(_purchase_line(_run(job)))


@enterprises_app.command("purchases")
def list_purchases(code: Annotated[str, typer.Argument(help="Enterprise code")]) -> None:
    """The enterprise's bulk purchases with their progress."""
    from quanyi.enterprises import purchases

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [await purchases.progress_of(session=session, purchase=p)
                    for p in await purchases.list_purchases(session=session, code=code)]

    table = Table("purchase", "SKU", "status", "placed", "delivered", "quantity", "unit price", "error")
    for progress in _run(job):
        p = progress.purchase
        table.add_row(p.purchase_no, progress.sku_code, p.status, str(p.placed_quantity),
                      str(progress.delivered_quantity), str(p.quantity), money_text(p.unit_price_cents, p.currency),
                      p.error or "")
    console.print(table)


@enterprises_app.command("purchase-control")
def purchase_control(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    purchase_no: Annotated[str, typer.Argument(help="Purchase number (BP...)")],
    action: Annotated[str, typer.Argument(help="resume | cancel")],
) -> None:
    """Resume a paused purchase (after a top-up or restock), or cancel one (placed codes stay bought)."""
    from quanyi.enterprises import purchases

    if action not in ("resume", "cancel"):
        err.print("[red]action must be resume or cancel.[/red]")
        raise typer.Exit(2)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            act = purchases.resume_purchase if action == "resume" else purchases.cancel_purchase
            return await act(session=session, code=code, purchase_no=purchase_no)

    console.print(_purchase_line(_run(job)))


@enterprises_app.command("export")
def export(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    purchase_no: Annotated[str, typer.Argument(help="Purchase number (BP...)")],
    out: Annotated[str, typer.Option(help="File to write: .csv or .xlsx (created mode 600)")],
) -> None:
    """Write a purchase's delivered codes to a file (each code an audited reveal; the download is audited)."""
    import os
    from pathlib import Path

    from quanyi.enterprises import downloads, purchases
    from quanyi.exports import csv_chunks, xlsx_chunks

    path = Path(out)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        err.print("[red]--out must end in .csv or .xlsx.[/red]")
        raise typer.Exit(2)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found = await purchases.get_purchase(session=session, code=code, purchase_no=purchase_no)
            await downloads.audit_direct(session=session, purchase_id=found.id, actor="cli", file_format=fmt)
        rows = downloads.code_rows(db=ctx.db, cipher=ctx.cipher, purchase_id=found.id, ip="", user_agent="cli")
        chunks = csv_chunks(downloads.COLUMNS, rows) if fmt == "csv" else xlsx_chunks(downloads.COLUMNS, rows)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # codes: owner-only
        with os.fdopen(descriptor, "wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)

    _run(job)
    console.print(f"Wrote the codes of {purchase_no} to {path} (keep it safe; delete it when handed over).")


# ---------------------------------------------------------------- benefit campaigns (福利活动)

@enterprises_app.command("campaigns")
def list_campaigns(code: Annotated[str, typer.Argument(help="Enterprise code")]) -> None:
    """The enterprise's benefit campaigns: status, headcount, claims, money funded, claimed and returned."""
    from quanyi.enterprises import campaigns

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [await campaigns.report(session=session, campaign=c)
                    for c in await campaigns.list_campaigns(session=session, code=code)]

    table = Table("campaign", "name", "status", "ends", "employees", "claimed", "funded", "claimed value",
                  "returned", "left")
    for r in _run(job):
        c = r.campaign
        table.add_row(c.campaign_no, c.name, c.status, c.ends_at.strftime("%Y-%m-%d %H:%M"), str(r.employees),
                      str(r.claimed), money_text(c.funded_cents, c.currency), money_text(r.claimed_cents, c.currency),
                      money_text(c.returned_cents, c.currency), money_text(r.balance_cents, c.currency))
    console.print(table)


@enterprises_app.command("campaign-end")
def end_campaign(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    campaign_no: Annotated[str, typer.Argument(help="Campaign number (BC...)")],
) -> None:
    """Close a campaign now; its unclaimed budget goes back to the enterprise's balance (once)."""
    from quanyi.enterprises import campaigns

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            campaign = await campaigns.get_campaign(session=session, code=code, campaign_no=campaign_no)
            moved = await campaigns.end_campaign(session=session, campaign=campaign, actor="cli")
            return moved, campaign.currency

    moved, currency = _run(job)
    console.print(f"Campaign {campaign_no} ended; {money_text(moved, currency)} returned to {code}'s balance.")


@enterprises_app.command("login-app")
def login_app(
    code: Annotated[str, typer.Argument(help="Enterprise code")],
    provider: Annotated[str, typer.Argument(help="wecom | dingtalk")],
    app_id: Annotated[str, typer.Option(help="WeCom corp id (CorpID) or DingTalk client id (AppKey)")],
    agent_id: Annotated[str, typer.Option(help="WeCom AgentId")] = "",
) -> None:
    """Register the enterprise's WeCom / DingTalk app for employees' sign-in on claim pages (the secret is
    asked for, sealed, and never shown again)."""
    from quanyi.enterprises import oauth

    if provider not in oauth.PROVIDERS:
        err.print("[red]provider must be wecom or dingtalk.[/red]")
        raise typer.Exit(2)
    secret = typer.prompt("App secret", hide_input=True)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            row = await oauth.set_login_app(session=session, cipher=ctx.cipher, code=code, provider=provider,
                                            app_id=app_id, agent_id=agent_id, secret=secret, actor="cli")
            return row.hint

    hint = _run(job)
    console.print(f"{provider} app of {code} registered (secret …{hint}).")


@enterprises_app.command("purchases-run")
def purchases_run() -> None:
    """Work every due bulk purchase now (what `quanyi serve` does in the background): queued ones, and running
    ones whose worker died (its lease ran out). Safe beside any number of other workers."""
    from quanyi.enterprises import purchases
    from quanyi.leased_worker import worker_owner

    async def job(ctx):  # type: ignore[no-untyped-def]
        return await purchases.run_due_purchases(db=ctx.db, owner=worker_owner(), max_purchases=1000)

    console.print(f"Worked {_run(job)} bulk purchases.")


from quanyi.enterprises.user_cli import users_app  # noqa: E402 - the users sub-commands, after the main ones

enterprises_app.add_typer(users_app, name="users")

from quanyi.enterprises.top_up_cli import top_ups_app  # noqa: E402 - the top-up request sub-commands

enterprises_app.add_typer(top_ups_app, name="top-ups")
