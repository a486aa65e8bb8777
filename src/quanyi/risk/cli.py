"""`quanyi risk`: install the default rules, list the rule set."""

from __future__ import annotations

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run

risk_app = typer.Typer(help="Risk control (风控): rules and the default rule set.", no_args_is_help=True)


@risk_app.command("defaults")
def install_defaults() -> None:
    """Add the default rules that are missing (by name) and the default score thresholds."""
    from quanyi.risk import ruleset

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await ruleset.install_default_rules(session=session)

    added = _run(job)
    console.print(f"{added} default rule(s) added")


@risk_app.command("rules")
def list_rules() -> None:
    """Show the rule set."""
    from quanyi.risk import ruleset

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(r.id, r.name, r.kind, r.action, r.score, ",".join(r.stages), r.enabled)
                    for r in await ruleset.list_rules(session=session)]

    table = Table("id", "name", "kind", "action", "score", "stages", "enabled")
    for row in _run(job):
        table.add_row(*(str(v) for v in row))
    console.print(table)
