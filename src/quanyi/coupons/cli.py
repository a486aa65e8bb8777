"""`quanyi coupons`: create coupons, list them with their counts, pause/resume, issue to members, and make batches
of single-use codes written to a CSV file (quanyi/exports.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from quanyi.cli_support import amount_cents, console, err
from quanyi.cli_support import run_job as _run

coupons_app = typer.Typer(help="Coupons (优惠券): create, list, pause, issue to members, single-use code batches.",
                          no_args_is_help=True)


def _cents(text: str | None, what: str) -> int | None:
    return None if text is None else amount_cents(text, what)


@coupons_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The name buyers see, e.g. 满100减20")],
    distribution: Annotated[str, typer.Option(help="code | claim | issued | codes")] = "code",
    code: Annotated[str | None, typer.Option(help="The public code (distribution code)")] = None,
    amount_off: Annotated[str | None, typer.Option(help="满减: amount off, e.g. 20.00")] = None,
    percent_off: Annotated[float | None, typer.Option(help="Percent off, e.g. 15 (= 八五折)")] = None,
    max_discount: Annotated[str | None, typer.Option(help="Cap of a percent-off coupon, e.g. 10.00")] = None,
    fixed_price: Annotated[str | None, typer.Option(help="Fixed unit price of the SKUs in scope, e.g. 9.90")] = None,
    threshold: Annotated[str, typer.Option(help="Minimum the line must cost (门槛), e.g. 100.00")] = "0",
    days: Annotated[int, typer.Option(help="Valid from now for this many days", min=1, max=3650)] = 30,
    total: Annotated[int | None, typer.Option(help="Total quantity (none: no limit)", min=0)] = None,
    per_member: Annotated[int | None, typer.Option(help="Per-member limit", min=1)] = None,
    new_members_only: Annotated[bool, typer.Option(help="For new members only")] = False,
    stackable: Annotated[bool, typer.Option(help="May be combined with other stackable coupons")] = False,
    signup_gift: Annotated[bool, typer.Option(help="Issued to every new member (distribution issued)")] = False,
    sku: Annotated[list[str] | None, typer.Option(help="Restrict to these SKU codes (repeatable)")] = None,
    merchant: Annotated[str | None, typer.Option(help="Owning merchant's code (default: the platform)")] = None,
) -> None:
    """Create a coupon (exactly one of --amount-off, --percent-off, --fixed-price)."""
    from pydantic import ValidationError

    from quanyi.catalog import service as catalog_service
    from quanyi.coupons import service as coupons_service
    from quanyi.coupons.schemas import CouponCreate
    from quanyi.merchants import service as merchants_service

    now = dt.datetime.now(dt.UTC)
    try:
        data = CouponCreate(name=name, distribution=distribution, code=code,  # type: ignore[arg-type]
                            kind="amount_off" if amount_off else "percent_off" if percent_off else "fixed_price",
                            amount_off_cents=_cents(amount_off, "--amount-off"),
                            percent_off_bps=round(percent_off * 100) if percent_off else None,
                            max_discount_cents=_cents(max_discount, "--max-discount"),
                            fixed_price_cents=_cents(fixed_price, "--fixed-price"),
                            threshold_cents=_cents(threshold, "--threshold") or 0, starts_at=now,
                            ends_at=now + dt.timedelta(days=days), total_quantity=total, per_member_limit=per_member,
                            new_members_only=new_members_only, stackable=stackable, signup_gift=signup_gift)
    except ValidationError as exc:
        err.print(f"[red]{exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            scope = await merchants_service.scope_for_code(session=session, code=merchant)
            targets = [("sku", (await catalog_service.get_sku_by_code(session=session, code=c)).id) for c in sku or ()]
            coupon = await coupons_service.create_coupon(session=session, fields=data.fields(), targets=targets,
                                                         owner=scope.owner(), actor="cli")
            return coupon.id

    console.print(f"Coupon {_run(job)} created.")


@coupons_app.command("list")
def list_(merchant: Annotated[str | None, typer.Option(help="Only this merchant's")] = None) -> None:
    """Coupons, newest first, with what they give and how many were taken."""
    from quanyi.coupons import service as coupons_service
    from quanyi.coupons.texts import summary
    from quanyi.merchants import service as merchants_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            scope = await merchants_service.scope_for_code(session=session, code=merchant)
            coupons = await coupons_service.list_coupons(session=session, scope=scope, limit=500)
            return [(c, await coupons_service.usage_counts(session=session, coupon_id=c.id)) for c in coupons]

    table = Table("id", "name", "gives", "distribution", "code", "taken / total", "used", "active", "ends")
    for c, usage in _run(job):
        table.add_row(str(c.id), c.name, summary(c, "zh-CN"), c.distribution, c.code or "",
                      f"{c.taken_count} / {c.total_quantity if c.total_quantity is not None else '∞'}",
                      str(usage.get("used", 0)), "yes" if c.active else "paused", f"{c.ends_at:%Y-%m-%d}")
    console.print(table)


@coupons_app.command("pause")
def pause(coupon_id: int, resume: Annotated[bool, typer.Option(help="Resume instead")] = False) -> None:
    """Pause a coupon (no more claims or uses; placed orders keep theirs), or --resume it."""
    from quanyi.coupons import service as coupons_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id, lock=True)
            await coupons_service.set_active(session=session, coupon=coupon, active=resume)

    _run(job)
    console.print(f"Coupon {coupon_id} {'resumed' if resume else 'paused'}.")


@coupons_app.command("issue")
def issue(coupon_id: int, members: Annotated[list[str], typer.Argument(help="Member e-mails, phones or ids")]) -> None:
    """Hand an issued (or claimable) coupon to members."""
    from quanyi.coupons import service as coupons_service
    from quanyi.members import service as members_service

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            ids = [(await members_service.find_member(session=session, ref=ref)).id for ref in members]
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id)
            return await coupons_service.issue_coupon(session=session, coupon=coupon, member_ids=ids, actor="cli")

    issued, refused = _run(job)
    console.print(f"Issued {issued}.")
    for member_id, why in refused.items():
        err.print(f"member {member_id}: not issued ({why})")


@coupons_app.command("codes")
def codes(coupon_id: int, count: Annotated[int, typer.Option(min=1, max=10_000, help="How many codes")],
          out: Annotated[Path, typer.Option(help="CSV file to write", dir_okay=False)],
          note: Annotated[str, typer.Option(help="Who the batch is for")] = "") -> None:
    """Make a batch of unique single-use codes and write them to a CSV file (UTF-8 with BOM, for Excel)."""
    import asyncio

    from quanyi.coupons import service as coupons_service
    from quanyi.exports import csv_chunks

    async def job(ctx):  # type: ignore[no-untyped-def]
        from quanyi.coupons.routes import CODE_COLUMNS

        async with ctx.db.transaction() as session:
            coupon = await coupons_service.get_coupon(session=session, coupon_id=coupon_id)
            batch = await coupons_service.make_codes(session=session, coupon=coupon, count=count, note=note,
                                                     actor="cli")
            name, batch_id = coupon.name, batch.id

        async def rows():  # type: ignore[no-untyped-def]
            after = 0
            while True:
                async with ctx.db.read_session() as session:
                    page = await coupons_service.batch_codes(session=session, batch_id=batch_id, after_id=after)
                if not page:
                    return
                after = page[-1][0]
                yield [[code, name, status] for _, code, status in page]

        with out.open("wb") as handle:
            async for chunk in csv_chunks(CODE_COLUMNS, rows()):
                await asyncio.to_thread(handle.write, chunk)
        return batch_id

    batch_id = _run(job)
    console.print(f"Batch {batch_id}: {count} codes written to {out}.")


@coupons_app.command("level-gifts")
def level_gifts_list() -> None:
    """Level-up gifts (升级礼券): each membership level with the coupons it gives a member reaching it."""
    from quanyi.coupons import level_gifts

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.read_session() as session:
            return await level_gifts.level_gifts(session=session)

    table = Table("level", "name", "from paid", "gives (coupon ids)")
    for level, coupons in _run(job):
        table.add_row(level.code, level.name, f"{level.min_paid_cents / 100:.2f}",
                      ", ".join(f"{c.id} {c.name}{'' if c.active else ' (paused)'}" for c in coupons) or "-")
    console.print(table)


@coupons_app.command("level-gift")
def level_gift_set(level: Annotated[str, typer.Argument(help="The level's code (quanyi levels list)")],
                   coupon_ids: Annotated[list[int] | None, typer.Argument(
                       help="Issued coupons it gives; none: no gift")] = None) -> None:
    """Set the coupons a level gives a member reaching it (once per member and level); replaces the level's list."""
    from quanyi.coupons import level_gifts

    async def job(ctx):  # type: ignore[no-untyped-def]
        async with ctx.db.transaction() as session:
            found, coupons = await level_gifts.set_level_gifts(session=session, level_code=level,
                                                               coupon_ids=coupon_ids or [], actor="cli")
            return found.code, [c.id for c in coupons]

    code, ids = _run(job)
    console.print(f"Level {code} gives {', '.join(map(str, ids)) if ids else 'no coupons'}.")
