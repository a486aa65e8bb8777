"""The points and level card (积分与会员等级) of the member's account page."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.loyalty import points
from quanyi.loyalty import service as loyalty_service
from quanyi.loyalty import texts as _texts  # noqa: F401 - registers the card's texts
from quanyi.members.extensions import AccountSection, register_account_section
from quanyi.members.sessions import MemberLogin

__all__: list[str] = []


async def _card(*, session: AsyncSession, member: MemberLogin) -> dict[str, Any] | None:
    summary = await loyalty_service.summary(session=session, member_id=member.member_id)
    progress = 100
    if summary.next_level is not None:
        start = summary.level.min_paid_cents if summary.level else 0
        span = max(1, summary.next_level.min_paid_cents - start)
        progress = max(0, min(100, (summary.paid_total_cents - start) * 100 // span))
    return {"summary": summary, "progress": progress,
            "movements": list(await points.movements(session=session, member_id=member.member_id, limit=10))}


register_account_section(AccountSection(
    key="loyalty", title={"zh-CN": "积分与会员等级", "en": "Points and level"}, load=_card,
    template="loyalty_card.html", order=20))
