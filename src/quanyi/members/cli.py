"""`quanyi members ...`: buyer accounts (会员) for operators: list, show, disable, enable."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run

__all__ = ["members_app"]

members_app = typer.Typer(help="Buyer accounts (会员): list, show, disable.", no_args_is_help=True)

MemberRef = Annotated[str, typer.Argument(help="Member id, e-mail address or phone number")]


def _when(value) -> str:  # type: ignore[no-untyped-def]
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@members_app.command("list")
def list_members(
    query: Annotated[str | None, typer.Option("--query", "-q", help="Part of the e-mail or phone")] = None,
    status: Annotated[str | None, typer.Option(help="active or disabled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Members, newest first, with their order counts."""
    from quanyi.members import service as members_service
    from quanyi.members.models import MemberStatus
    from quanyi.orders import service as orders_service

    if status is not None and status not in {s.value for s in MemberStatus}:
        raise typer.BadParameter("status is active or disabled", param_hint="--status")

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            wanted = MemberStatus(status) if status else None
            members = await members_service.list_members(session=session, query=query, status=wanted, limit=limit)
            total = await members_service.count_members(session=session, query=query, status=wanted)
            rows = [(m, await orders_service.count_member_orders(session=session, member_id=m.id)) for m in members]
            return rows, total

    rows, total = _run(job)
    table = Table("id", "e-mail", "phone", "status", "password", "orders", "signed up", "last login")
    for member, orders in rows:
        table.add_row(str(member.id), member.email or "-", member.phone or "-", member.status.value,
                      "yes" if member.password_hash else "no", str(orders), _when(member.created_at),
                      _when(member.last_login_at))
    console.print(table)
    console.print(f"{len(rows)} of {total} members")


@members_app.command("show")
def show(ref: MemberRef) -> None:
    """One member: contacts, status, sessions, latest orders."""
    from quanyi.members import service as members_service
    from quanyi.money import format_money
    from quanyi.orders import service as orders_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            member = await members_service.find_member(session=session, ref=ref)
            sessions = await members_service.open_sessions(session=session, member_id=member.id)
            orders = await orders_service.member_orders(session=session, member_id=member.id, limit=10)
            count = await orders_service.count_member_orders(session=session, member_id=member.id)
            return member, sessions, orders, count

    member, sessions, orders, count = _run(job)
    console.print(f"[bold]Member {member.id}[/bold]  e-mail: {member.email or '-'}  phone: {member.phone or '-'}")
    console.print(f"status: {member.status.value}"
                  + (f" ({member.disabled_reason}, {_when(member.disabled_at)})" if member.disabled_reason else "")
                  + f"  password: {'set' if member.password_hash else 'none'}  signed up: {_when(member.created_at)}"
                  + f"  last login: {_when(member.last_login_at)}  open sessions: {len(sessions)}")
    table = Table("order", "status", "product", "total", "placed")
    for order in orders:
        table.add_row(order.order_no, order.status.value, f"{order.product_name} · {order.sku_name}",
                      format_money(order.total_cents, order.currency), _when(order.created_at))
    console.print(table)
    console.print(f"{count} orders in all")


@members_app.command("disable")
def disable(ref: MemberRef, reason: Annotated[str, typer.Option(help="Why (kept with the account)")]) -> None:
    """Stop a member logging in; every session of theirs ends at once. Their orders stay theirs."""
    from quanyi.members import service as members_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            member = await members_service.find_member(session=session, ref=ref)
            ended = await members_service.disable_member(session=session, member=member, reason=reason)
            return member.id, ended

    member_id, ended = _run(job)
    console.print(f"Member {member_id} disabled; {ended} sessions ended.")


@members_app.command("enable")
def enable(ref: MemberRef) -> None:
    """Let a disabled member log in again."""
    from quanyi.members import service as members_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            member = await members_service.find_member(session=session, ref=ref)
            await members_service.enable_member(session=session, member=member)
            return member.id

    console.print(f"Member {_run(job)} enabled.")
