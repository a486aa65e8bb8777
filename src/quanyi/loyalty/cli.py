"""`quanyi points ...` and `quanyi levels ...`: the points rules, members' points, membership levels."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run
from quanyi.money import format_money

__all__ = ["points_app", "levels_app"]

points_app = typer.Typer(help="Points (积分): rules, a member's points, corrections, expiry.", no_args_is_help=True)
levels_app = typer.Typer(help="Membership levels (会员等级) and member prices.", no_args_is_help=True)
ACTOR = "cli"


@points_app.command("program")
def program_cmd(
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    points_per_yuan: Annotated[int | None, typer.Option(min=0, max=10_000, help="Earned per ¥1 paid")] = None,
    point_value_cents: Annotated[int | None, typer.Option(min=1, max=10_000, help="Cents a point takes off")]
    = None,
    max_share_bps: Annotated[int | None, typer.Option(min=0, max=10_000, help="Most of an order points pay")]
    = None,
    expiry_years: Annotated[int | None, typer.Option(min=1, max=10)] = None,
) -> None:
    """Show the points rules; change those given."""
    from quanyi.loyalty import points

    data = points.ProgramUpdate(points_enabled=enabled, points_per_yuan=points_per_yuan,
                                point_value_cents=point_value_cents, max_points_share_bps=max_share_bps,
                                expiry_years=expiry_years)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            if any(value is not None for value in dataclasses.astuple(data)):
                program = await points.update_program(session=session, data=data, actor=ACTOR)
            else:
                program = await points.get_program(session)
            return (program.points_enabled, program.points_per_yuan, program.point_value_cents,
                    program.max_points_share_bps, program.expiry_years)

    on, per_yuan, value, share, years = _run(job)
    console.print(f"Points {'on' if on else 'off'}: {per_yuan} per ¥1 paid; 1 point = {value / 100:.2f} yuan; "
                  f"at most {share / 100:.2f}% of an order; expire at the end of year +{years}.")


@points_app.command("show")
def show(member: Annotated[str, typer.Argument(help="Member id, e-mail or phone")]) -> None:
    """A member's points, level and recent movements."""
    from quanyi.loyalty import points
    from quanyi.loyalty import service as loyalty_service
    from quanyi.members import service as members_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            found = await members_service.find_member(session=session, ref=member)
            summary = await loyalty_service.summary(session=session, member_id=found.id)
            moves = [(m.created_at, m.kind, m.points, m.balance_after, m.note)
                     for m in await points.movements(session=session, member_id=found.id, limit=20)]
            return found.id, summary, moves

    member_id, summary, moves = _run(job)
    level = summary.level.name if summary.level else "-"
    console.print(f"Member {member_id}: {summary.points_balance} points, level {level}, paid "
                  f"{format_money(summary.paid_total_cents, 'CNY')}")
    table = Table(title="Points (newest first)")
    for column in ("at", "kind", "points", "balance", "note"):
        table.add_column(column)
    for at, kind, n, after, note in moves:
        table.add_row(at.strftime("%Y-%m-%d %H:%M"), kind, f"{n:+d}", str(after), note)
    console.print(table)


@points_app.command("adjust")
def adjust(member: Annotated[str, typer.Argument(help="Member id, e-mail or phone")],
           points_delta: Annotated[int, typer.Option("--points", help="+ gift, - deduction")],
           reason: Annotated[str, typer.Option()]) -> None:
    """Correct a member's points, with a reason (posted to the ledger)."""
    from quanyi.loyalty import points
    from quanyi.members import service as members_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found = await members_service.find_member(session=session, ref=member)
            account = await points.adjust(session=session, member_id=found.id, points=points_delta, reason=reason,
                                          actor=ACTOR)
            return found.id, account.points_balance

    member_id, balance = _run(job)
    console.print(f"Member {member_id} now has {balance} points.")


@points_app.command("expire")
def expire() -> None:
    """Expire every point that is due (also done lazily when a member's points are used)."""
    from quanyi.loyalty import points

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await points.expire_all_due(session=session)

    console.print(f"{_run(job)} points expired.")


@levels_app.command("list")
def list_levels() -> None:
    """Levels, lowest threshold first."""
    from quanyi.loyalty import levels

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(lv.code, lv.name, lv.min_paid_cents, lv.discount_bps, lv.points_multiplier_bps)
                    for lv in await levels.list_levels(session)]

    table = Table(title="Membership levels (会员等级)")
    for column in ("code", "name", "from (paid)", "discount", "points ×"):
        table.add_column(column)
    for code, name, threshold, discount, multiplier in _run(job):
        table.add_row(code, name, format_money(threshold, "CNY"), f"{discount / 100:.2f}%", f"{multiplier / 10_000:g}")
    console.print(table)


@levels_app.command("set")
def set_level(code: str, name: Annotated[str, typer.Option()],
              min_paid_cents: Annotated[int, typer.Option(min=0, help="Cumulative paid amount that reaches it")],
              discount_bps: Annotated[int, typer.Option(min=0, max=9999)] = 0,
              points_multiplier_bps: Annotated[int, typer.Option(min=0, max=100_000)] = 10_000) -> None:
    """Create or change a level."""
    from quanyi.loyalty import levels

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            level = await levels.set_level(session=session, code=code, name=name, min_paid_cents=min_paid_cents,
                                           discount_bps=discount_bps, points_multiplier_bps=points_multiplier_bps)
            return level.code

    console.print(f"Level {_run(job)} saved.")


@levels_app.command("price")
def price(code: str, sku_id: Annotated[int, typer.Option(min=1)], price_cents: Annotated[int, typer.Option(min=0)],
          ) -> None:
    """A level's own price of one SKU (会员价)."""
    from quanyi.loyalty import levels

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await levels.set_level_price(session=session, code=code, sku_id=sku_id, price_cents=price_cents)

    _run(job)
    console.print(f"Level {code.upper()} pays {format_money(price_cents, 'CNY')} for SKU {sku_id}.")


@levels_app.command("reevaluate")
def reevaluate() -> None:
    """Yearly re-evaluation: every member to the level its paid amount reaches now (up or down)."""
    from quanyi.loyalty import levels

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            return await levels.reevaluate(session=session)

    console.print(f"{_run(job)} members changed level.")
