"""`quanyi keys rotate | key-status | trace-leak | list`: card-key security commands for the operator."""

from __future__ import annotations

import csv
import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, load_settings, merchant_scope
from quanyi.cli_support import run_job as _run
from quanyi.shoptime import shop_zone, valid_through

__all__ = ["register_key_security_commands"]

_LABELS = {"card_keys": "card keys", "supplier_credentials": "supplier credentials",
           "gateway_configs": "gateway configs", "staff_second_factors": "staff second factors",
           "reseller_secrets": "reseller API secrets", "enterprise_login_apps": "enterprise WeCom/DingTalk secrets",
           "enterprise_user_second_factors": "enterprise portal second factors"}


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no login name in some containers
        return "cli"


def rotate(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Card keys per transaction")] = 500,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be re-encrypted")] = False,
    max_batches: Annotated[int | None, typer.Option(min=1, help="Stop after this many batches (rerun continues)")]
    = None,
) -> None:
    """Re-encrypt every card key, supplier credential and gateway config under the active key (resumable)."""
    from quanyi.inventory.rotation import rotate_keys

    async def job(ctx):  # type: ignore[no-untyped-def]
        with Progress(TextColumn("[bold]re-encrypting card keys[/bold]"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False, disable=dry_run) as bar:
            task = bar.add_task("rotate", total=None)
            return await rotate_keys(
                db=ctx.db, cipher=ctx.cipher, batch_size=batch_size, dry_run=dry_run, max_batches=max_batches,
                progress=lambda done, total: bar.update(task, completed=done, total=total))

    report = _run(job)
    table = Table(title=f"Key rotation to {report.active_key_id}" + (" (dry run)" if dry_run else ""))
    for column in ("what", "under an old key", "re-encrypted", "remaining"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for label, name in _LABELS.items():
        table.add_row(name, str(report.to_rotate.get(label, 0)), str(report.rotated.get(label, 0)),
                      str(report.remaining.get(label, 0)))
    console.print(table)
    if dry_run:
        console.print("Dry run: nothing was changed.")
    elif report.complete:
        console.print(f"Done: everything is encrypted with [bold]{report.active_key_id}[/bold]. Old keys can now be "
                      "removed from QUANYI_CARD_KEYS (check with `quanyi keys status`).")
    else:
        console.print("[yellow]Some rows are still under an old key (stopped early or held by orders); run "
                      "`quanyi keys rotate` again to continue.[/yellow]")


def key_status() -> None:
    """How many rows each encryption key id protects, and which keys of the ring are unused."""
    from quanyi.inventory.rotation import key_usage

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return await key_usage(session=session), ctx.cipher.active_key_id, ctx.cipher.key_ids

    usage, active, ring = _run(job)
    table = Table(title="Encryption keys in use")
    table.add_column("key id")
    for name in _LABELS.values():
        table.add_column(name, justify="right")
    key_ids = sorted(set(ring) | {k for ids in usage.values() for k in ids})
    for key_id in key_ids:
        label = key_id + (" (active)" if key_id == active else "") + ("" if key_id in ring else " [red]MISSING[/red]")
        table.add_row(label, *(str(usage[part].get(key_id, 0)) for part in _LABELS))
    console.print(table)
    unused = [k for k in sorted(ring) if k != active and not any(usage[part].get(k) for part in _LABELS)]
    if unused:
        console.print(f"Unused keys that can be removed from QUANYI_CARD_KEYS: {', '.join(unused)}")
    if any(k != active for ids in usage.values() for k in ids):
        console.print("Rows under an old key remain: run `quanyi keys rotate`.")


def trace_leak(
    file: Annotated[Path | None, typer.Option("--file", "-f", exists=True, dir_okay=False, readable=True,
                                              help="Leaked codes, one per line (default: read stdin)")] = None,
    void_batches: Annotated[bool, typer.Option("--void-batches", help="Also void the unsold rest of each "
                                                                      "affected batch")] = False,
    mark: Annotated[bool, typer.Option("--mark/--no-mark", help="Mark found keys leaked and withdraw unsold "
                                                                "ones")] = True,
    show_contact: Annotated[bool, typer.Option("--show-contact", help="Print buyer contacts in full")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", dir_okay=False, help="Also write the report as CSV")]
    = None,
    merchant: MerchantOption = None,
) -> None:
    """Trace leaked card keys: SKU, batch or supplier, order, buyer, every reveal; mark them leaked."""
    from quanyi.inventory import leaks
    from quanyi.inventory.masking import mask_contact
    from quanyi.inventory.parsing import decode_upload

    try:
        text = decode_upload(file.read_bytes()) if file is not None else sys.stdin.read()
    except ValueError as exc:
        err.print(f"[red]Cannot read {file}:[/red] {exc}")
        raise typer.Exit(2) from None
    actor = _operator()

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchant_scope(session, merchant)
            return await leaks.trace_leaked_codes(session=session, cipher=ctx.cipher, text=text, actor=actor,
                                                  mark_leaked=mark, void_batches=void_batches, scope=scope)

    report = _run(job)

    def contact(value: str) -> str:
        return value if show_contact else mask_contact(value)

    table = Table(title=f"Leak trace{f' (report {report.report_id})' if report.report_id else ''}")
    for column in ("line", "code", "found", "SKU", "batch / supplier", "status", "order", "buyer", "reveals"):
        table.add_column(column)
    for item in report.items:
        if not item.found:
            table.add_row(str(item.line), item.code, "[yellow]no[/yellow]", "", "", "", "", "", "")
            continue
        batch = item.batch
        source = ""
        if batch is not None:
            source = (f"supplier {batch.supplier}" if batch.supplier else f"#{batch.id} {batch.source_name}") + \
                f" by {batch.imported_by or '?'} {batch.created_at:%Y-%m-%d}"
        order = ""
        if item.order is not None:
            order = f"{item.order.order_no} {item.order.status}"
            if item.order.delivered_at:
                order += f" delivered {item.order.delivered_at:%Y-%m-%d %H:%M}"
        status = (item.status or "") + (" → withdrawn" if item.withdrawn else "") + \
            (" → sale stopped" if item.sale_stopped else "")
        reveals = "\n".join(f"{r.revealed_at:%Y-%m-%d %H:%M} {r.channel} {r.actor or ''} {r.ip}".replace("  ", " ")
                            for r in item.reveals)
        table.add_row(str(item.line), item.code, "[red]yes[/red]", item.sku_code or "", source, status, order,
                      contact(item.order.contact) if item.order else "", reveals or "-")
    console.print(table)
    console.print(f"{report.found} of {report.submitted} codes found; {report.withdrawn} unsold keys withdrawn"
                  + (f"; batches voided: {', '.join(str(b.id) for b in report.voided_batches)}"
                     if report.voided_batches else "")
                  + (f"; shared codes stopped: {', '.join(map(str, report.stopped_shared_codes))}"
                     if report.stopped_shared_codes else "") + ".")
    for problem in report.invalid_lines[:20]:
        console.print(f"  line {problem.line}: [red]not a code[/red] {problem.reason}")
    if csv_path is not None:
        _write_csv(csv_path, report, contact)
        console.print(f"Report written to {csv_path}")


def _write_csv(path: Path, report, contact) -> None:  # type: ignore[no-untyped-def]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "code", "found", "card_key_id", "sku", "status", "withdrawn", "batch_id", "source",
                         "supplier", "imported_by", "imported_at", "order_no", "order_status", "paid_at",
                         "delivered_at", "buyer", "reveals"])
        for item in report.items:
            b, o = item.batch, item.order
            writer.writerow([
                item.line, item.code, "yes" if item.found else "no", item.card_key_id or "", item.sku_code or "",
                item.status or "", "yes" if item.withdrawn else "sale stopped" if item.sale_stopped else "",
                b.id if b else "", b.source_name if b else "",
                (b.supplier or "") if b else "", b.imported_by if b else "", b.created_at.isoformat() if b else "",
                o.order_no if o else "", o.status if o else "", o.paid_at.isoformat() if o and o.paid_at else "",
                o.delivered_at.isoformat() if o and o.delivered_at else "", contact(o.contact) if o else "",
                "; ".join(f"{r.revealed_at.isoformat()} {r.channel} {r.actor or ''} {r.ip} {r.user_agent}".strip()
                          for r in item.reveals),
            ])


def list_keys(
    batch: Annotated[int, typer.Option("--batch", min=1, help="Import batch id (see the admin API or import output)")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    merchant: MerchantOption = None,
) -> None:
    """A batch's card keys with their codes masked (first 2 + last 2 characters)."""
    from quanyi.inventory import service as inventory_service
    from quanyi.inventory import staff_access

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            await inventory_service.get_batch(session=session, batch_id=batch,
                                              scope=await merchant_scope(session, merchant))
            return await staff_access.list_masked_keys(session=session, cipher=ctx.cipher, batch_id=batch,
                                                       limit=limit)

    zone = shop_zone(load_settings().shop_timezone)
    table = Table(title=f"Card keys of batch {batch} (masked)")
    for column in ("id", "card no", "code", "status", "order", "valid through", "leaked"):
        table.add_column(column)
    for key in _run(job):
        table.add_row(str(key.id), key.card_no or "", key.code, key.status, str(key.order_id or ""),
                      valid_through(key.expires_at, zone).isoformat() if key.expires_at else "",
                      f"{key.leaked_at:%Y-%m-%d}" if key.leaked_at else "")
    console.print(table)


def register_key_security_commands(keys_app: typer.Typer) -> None:
    """Add the security commands to `quanyi keys`."""
    keys_app.command("rotate")(rotate)
    keys_app.command("status")(key_status)
    keys_app.command("trace-leak")(trace_leak)
    keys_app.command("list")(list_keys)
