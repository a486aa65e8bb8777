"""`quanyi merchants ...`: merchants on the platform (商户): admit, list, change terms and status."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import console
from quanyi.cli_support import run_job as _run

__all__ = ["merchants_app"]

merchants_app = typer.Typer(help="Merchants (商户): admission, commission, status.", no_args_is_help=True)


@merchants_app.command("add")
def add(
    code: Annotated[str, typer.Argument(help="Permanent code: 2-32 lowercase letters, digits, '-' (/m/<code>)")],
    name: Annotated[str, typer.Option(help="Shop name shown to buyers")],
    commission_bps: Annotated[int, typer.Option(min=0, max=10_000, help="Platform commission, basis points")] = 0,
    hold_days: Annotated[int | None, typer.Option(min=0, max=365, help="Refund-window hold (default: setting)")]
    = None,
    contact_email: Annotated[str, typer.Option(help="Who the platform writes to")] = "",
) -> None:
    """Admit a merchant directly (applications: `quanyi merchants applications`, `approve`, `reject`)."""
    from quanyi.merchants import service as merchants_service
    from quanyi.merchants.schemas import MerchantCreate

    data = _validated(MerchantCreate, code=code, name=name, commission_bps=commission_bps, hold_days=hold_days,
                      contact_email=contact_email)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.create_merchant(session=session, data=data)
            return merchant.id, merchant.code

    merchant_id, merchant_code = _run(job)
    console.print(f"Merchant [bold]{merchant_code}[/bold] (id {merchant_id}) admitted. Add its staff with "
                  f"`quanyi staff add USERNAME --merchant {merchant_code} --grant admin`.")


@merchants_app.command("list")
def list_cmd() -> None:
    """Every merchant with its terms and status."""
    from quanyi.merchants import service as merchants_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(m.id, m.code, m.name, m.status, m.self_operated, m.commission_bps, m.hold_days)
                    for m in await merchants_service.list_merchants(session=session)]

    table = Table(title="Merchants")
    for column in ("id", "code", "name", "status", "commission", "hold days"):
        table.add_column(column)
    for merchant_id, code, name, status, own, bps, hold in _run(job):
        table.add_row(str(merchant_id), code + (" (自营)" if own else ""), name,
                      status if status == "active" else f"[red]{status}[/red]", f"{bps / 100:.2f}%",
                      "default" if hold is None else str(hold))
    console.print(table)


@merchants_app.command("set")
def set_cmd(
    code: str,
    name: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option(help="active or suspended")] = None,
    commission_bps: Annotated[int | None, typer.Option(min=0, max=10_000)] = None,
    hold_days: Annotated[int | None, typer.Option(min=0, max=365)] = None,
) -> None:
    """Change a merchant's name, status, commission or hold period."""
    from quanyi.merchants import service as merchants_service
    from quanyi.merchants.schemas import MerchantUpdate

    given = {k: v for k, v in {"name": name, "status": status, "commission_bps": commission_bps,
                               "hold_days": hold_days}.items() if v is not None}
    data = _validated(MerchantUpdate, **given)

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            merchant = await merchants_service.update_merchant(session=session, code=code, data=data)
            return merchant.code, merchant.status, merchant.commission_bps

    merchant_code, merchant_status, bps = _run(job)
    console.print(f"Merchant {merchant_code}: {merchant_status}, commission {bps / 100:.2f}%.")


@merchants_app.command("applications")
def applications_cmd(status: Annotated[str | None, typer.Option(help="pending | approved | rejected")] = "pending",
                     ) -> None:
    """Applications to sell on the platform (入驻申请), newest first."""
    from quanyi.merchants import applications

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return [(a.application_no, a.status, a.code, a.name, a.contact_email, a.owner_username, a.created_at,
                     a.review_reason or "") for a in await applications.list_applications(session=session,
                                                                                        status=status or None)]

    table = Table(title="Merchant applications")
    for column in ("application", "status", "code", "name", "contact", "owner login", "sent", "reason"):
        table.add_column(column)
    for no, state, code, name, email, owner, sent, reason in _run(job):
        table.add_row(no, state, code, name, email, owner, f"{sent:%Y-%m-%d %H:%M}", reason)
    console.print(table)


@merchants_app.command("approve")
def approve_cmd(
    application_no: str,
    reason: Annotated[str, typer.Option(help="Why (kept on the application)")],
    commission_bps: Annotated[int, typer.Option(min=0, max=10_000, help="Platform commission, basis points")],
    hold_days: Annotated[int | None, typer.Option(min=0, max=365)] = None,
) -> None:
    """Admit an applicant: the merchant and its owner's login (role merchant_owner) are created."""
    from quanyi.merchants import applications

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            _, merchant = await applications.approve_application(
                session=session, application_no=application_no, actor="cli", reason=reason,
                commission_bps=commission_bps, hold_days=hold_days)
            return merchant.code

    console.print(f"Approved: merchant [bold]{_run(job)}[/bold] is open for business.")


@merchants_app.command("reject")
def reject_cmd(application_no: str,
               reason: Annotated[str, typer.Option(help="Why (the applicant is shown it)")]) -> None:
    """Refuse an application with a reason."""
    from quanyi.merchants import applications

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            await applications.reject_application(session=session, application_no=application_no, actor="cli",
                                                  reason=reason)

    _run(job)
    console.print(f"Application {application_no.upper()} rejected.")


@merchants_app.command("balance")
def balance_cmd(code: str) -> None:
    """What the platform owes a merchant: held for the refund window, reserved by withdrawals, available."""
    from quanyi.merchants import service as merchants_service
    from quanyi.merchants import settlement
    from quanyi.money import format_money

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            merchant = await merchants_service.get_merchant(session=session, code=code)
            return list((await settlement.balances(session=session, merchant=merchant,
                                                   default_hold_days=ctx.settings.merchant_hold_days)).values())

    table = Table(title=f"Balance of {code.lower()}")
    for column in ("currency", "owed", "held", "reserved", "available"):
        table.add_column(column, justify="right")
    for b in _run(job):
        table.add_row(b.currency, *(format_money(v, b.currency) for v in (b.balance_cents, b.held_cents,
                                                                           b.reserved_cents, b.available_cents)))
    console.print(table)


def _validated(model, **values):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    from quanyi.cli_support import err

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        for problem in exc.errors():
            err.print(f"[red]{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}[/red]")
        raise typer.Exit(2) from None
