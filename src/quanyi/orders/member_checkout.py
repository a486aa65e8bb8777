"""A member's checkout reads what it needs before pricing in ONE statement (会员下单的一次读取).

`POST /api/orders` with a member session used to read, one statement each: the SKU (catalog.sku_row), the member's
session, loyalty's facts (level, its own price of the SKU, points balance and points due, the points rules), the
coupon typed (with its scope targets naming the line and the member's tally) and the distribution programme with the
member's binding. `member_checkout_read` reads all of them at once, in place of the SKU's own read in the checkout
gate's count statement (risk.gate.Beside: the SKU's row, the rest joined onto it; a member's checkout sends the
statements of a guest's, no more), the member found from the session token inside the statement, and
hands each part to the feature that owns it for this checkout (`remember_*`): pricing, the coupon quote and
attribution then find what they would have read (the same rows, the same `now`) and read nothing. Each feature
keeps its own statement for every other caller, built from the same parts, so the rules are one code
(`remember_member_checkout` hands them their parts); anything this read does not cover (coupon codes of a batch, a
member's own coupons, several codes) is read as before.

Reads only, no locks, in the checkout's transaction before anything is written: the refusals come where they
always came (pricing raises them from what it finds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import logins
from quanyi.catalog import sku_row
from quanyi.catalog.sku_row import SkuRow
from quanyi.coupons import redemption as coupon_redemption
from quanyi.coupons.service import normalize_code
from quanyi.db import UTCDateTime
from quanyi.loyalty import facts as loyalty_facts
from quanyi.members import sessions as member_sessions
from quanyi.members.sessions import MemberLogin
from quanyi.promoters import attribution as promoters_attribution
from quanyi.risk.gate import Beside

__all__ = ["may_be_member", "member_checkout_read", "remember_member_checkout"]


def _subquery() -> Any:
    """Built once: the SKU's row (catalog.sku_row), the member's login joined onto it (NULLs for no open session),
    then each feature's part joined onto that, for the SKU's own ids."""
    now = bindparam("b_now", type_=UTCDateTime())
    login = member_sessions.login_select(bindparam("b_token_hash"), now).subquery("login")
    member_id = login.c.member_id
    sku = sku_row.SKU_ROW_SUBQUERY
    sku_id, product_id, category_id = sku.c.id, sku.c.product_id, sku.c.category_id
    facts, with_facts = loyalty_facts.facts_parts(member_id, sku_id, now)
    coupon, with_coupon = coupon_redemption.code_read_parts(bindparam("b_code"), sku_id, product_id, category_id,
                                                            member_id)
    programme, with_programme = promoters_attribution.program_binding_parts(member_id, now)
    return (select(*sku.c, *login.c, *facts, *coupon, *programme)
            .select_from(with_programme(with_coupon(with_facts(sku.outerjoin(login, true())))))
            .subquery("member_checkout"))


_READ = _subquery()
_SKU, _LOGIN, _FACTS = len(sku_row.SKU_ROW_SUBQUERY.c), 9, 10  # how many columns the first parts have, in order
_COUPON = len(coupon_redemption.code_read_parts(None, None, None, None, None)[0])


def may_be_member(token: str) -> bool:
    """Whether `token` can be a member session's (others are not looked up: a guest's checkout)."""
    return member_sessions.SESSIONS.may_be_ours(token)


def member_checkout_read(*, token: str, sku_id: int, coupon_codes: Sequence[str], member_coupon_ids: Sequence[int],
                         now: dt.datetime) -> Beside:
    """The read of a checkout of SKU `sku_id` at `now` by the member of session `token` (`may_be_member`), riding
    in the checkout gate's count statement (risk.gate.Beside, in place of the SKU's own read): the SKU's row, the
    member, their loyalty facts, the coupon code typed (when it is the only coupon asked for) and the programme with
    their binding. `remember_member_checkout` takes the row it finds."""
    one_code = normalize_code(coupon_codes[0]) if len(coupon_codes) == 1 and not member_coupon_ids else ""
    return Beside(_READ, {"b_token_hash": logins.hash_token(token), "b_now": now, "b_sku_id": sku_id,
                          "b_code": one_code})


async def remember_member_checkout(*, session: AsyncSession, read: Beside, row: Sequence[Any],
                                   now: dt.datetime) -> tuple[SkuRow, MemberLogin | None]:
    """The SKU and the member (None: a guest's checkout, nothing remembered) of the row `read` found, each part
    remembered on `session` for this checkout by the feature that owns it. Records the session's use when due."""
    sku = sku_row.sku_row_of(row[:_SKU])
    if row[_SKU] is None:
        return sku, None
    at = _SKU + _LOGIN
    login = member_sessions.login_from_row(row[_SKU:at])
    loyalty_facts.remember_facts(session, login.member_id, sku.id, now, row[at:at + _FACTS])
    at += _FACTS
    one_code = read.params["b_code"]
    if one_code:
        coupon_redemption.remember_code_read(
            session, code=one_code, member_id=login.member_id,
            line_ids=(sku.id, sku.product_id, sku.product.category_id), row=row[at:at + _COUPON])
    promoters_attribution.remember_program_and_binding(session, login.member_id, now, row[at + _COUPON:])
    if member_sessions.due_for_touch(login):
        await member_sessions.touch(session=session, login=login)
    return sku, login
