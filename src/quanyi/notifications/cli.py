"""`quanyi worker` and `quanyi notifications`: the outbox worker, dead letters and retries."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import MerchantOption, console, err, load_settings, merchant_scope, warn_if_connections_short
from quanyi.cli_support import run_job as _run

notifications_app = typer.Typer(help="Notification outbox (通知): dead letters and retries.", no_args_is_help=True)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Send everything that is due, then exit")] = False,
) -> None:
    """Run the notification outbox worker and the supplier fulfilment worker (both also run inside `serve`
    unless QUANYI_NOTIFICATION_WORKER_IN_SERVE / QUANYI_FULFILMENT_WORKER_IN_SERVE=false), and the ledger
    worker (deferred postings of payments; every `serve` runs one too). Any number of workers may run at once."""
    import asyncio
    import gc
    import logging

    from quanyi.ledger import service as ledger_service
    from quanyi.notifications.worker import OutboxWorker
    from quanyi.suppliers.routing import FulfilmentWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not once:
        warn_if_connections_short(load_settings(), processes=1)

    async def job(ctx):  # type: ignore[no-untyped-def]
        outbox, fulfilment = OutboxWorker(ctx), FulfilmentWorker(ctx)
        if once:
            await ledger_service.post_all_deferred(ctx.db)
            await fulfilment.drain()  # deliveries it makes enqueue messages: send them in the same run
            return await outbox.drain()
        # Everything built so far (modules, the context) lives as long as the process: frozen out of the collector's
        # sight as in `quanyi serve`, a full collection then costs ~1 ms instead of ~90 (bench/worker_gc.py).
        gc.collect()
        gc.freeze()
        # The ledger worker too: payments' deferred postings (ledger.deferred).
        await asyncio.gather(outbox.run_forever(), fulfilment.run_forever(), ctx.ledger_worker.run_forever())
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
    merchant: MerchantOption = None,
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
            return await notifications_service.list_messages(session=session, status=wanted, limit=limit,
                                                             scope=await merchant_scope(session, merchant))

    table = Table(title="Notifications")
    for column in ("id", "channel", "kind", "recipient", "status", "attempts", "last error"):
        table.add_column(column, justify="right" if column in ("id", "attempts") else "left")
    for m in _run(job):
        table.add_row(str(m.id), m.channel, m.kind, m.recipient, m.status, str(m.attempts), m.last_error or "")
    console.print(table)


@notifications_app.command("retry")
def notifications_retry(message_id: Annotated[int, typer.Argument(min=1, help="Outbox message id")],
                        merchant: MerchantOption = None) -> None:
    """Queue a dead message again with a fresh set of attempts."""
    from quanyi.notifications import service as notifications_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await notifications_service.retry_message(session=session, message_id=message_id,
                                                             scope=await merchant_scope(session, merchant))

    message = _run(job)
    console.print(f"Notification {message.id} is queued again.")
