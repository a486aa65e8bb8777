"""Shared steps of the distribution tests: promoters made directly through the service."""

from __future__ import annotations

from quanyi.promoters import service as promoters_service


async def make_promoter(shop, code: str, *, contact: str | None = None, parent: str | None = None,
                        member_id: int | None = None) -> None:
    """An approved promoter with this code (its contact is never the test buyer's)."""
    async with shop.ctx.db.transaction() as session:
        await promoters_service.add_promoter(session=session, name=f"Promoter {code}", code=code, actor="test",
                                             contact=contact or f"promoter-{code.lower()}@example.com",
                                             parent_code=parent, member_id=member_id)


async def set_program(shop, **changes) -> None:
    async with shop.ctx.db.transaction() as session:
        await promoters_service.update_program(session=session, data=promoters_service.ProgramUpdate(**changes),
                                               actor="test")
