"""A member's checkout reads what it needs before pricing in ONE statement (会员下单的一次读取).

`POST /api/orders` with a member session used to read, one statement each: the member's session, loyalty's facts
(level, its own price of the SKU, points balance and points due, the points rules), the coupon typed (with its
scope targets naming the line and the member's tally) and the distribution programme with the member's binding.
`read_member_checkout` reads all of them at once, the member found from the session token inside the statement, and
hands each part to the feature that owns it for this checkout (`remember_*`): pricing, the coupon quote and
attribution then find what they would have read (the same rows, the same `now`) and read nothing. Each feature
keeps its own statement for every other caller, built from the same parts, so the rules are one code; anything
this read does not cover (coupon codes of a batch, a member's own coupons, several codes) is read as before.

Reads only, no locks, in the checkout's transaction before anything is written: the refusals come where they
always came (pricing raises them from what it finds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, bindparam, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct, logins
from quanyi.catalog.models import Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.coupons import redemption as coupon_redemption
from quanyi.coupons.service import normalize_code
from quanyi.db import UTCDateTime
from quanyi.loyalty import facts as loyalty_facts
from quanyi.members import sessions as member_sessions
from quanyi.members.sessions import MemberLogin
from quanyi.promoters import attribution as promoters_attribution

__all__ = ["read_member_checkout"]


def _statement() -> Any:
    """Built once: the member's login (NULLs for no open session), then each feature's part joined onto it."""
    now = bindparam("b_now", type_=UTCDateTime())
    login = member_sessions.login_select(bindparam("b_token_hash"), now).subquery("login")
    member_id = login.c.member_id
    source = select(literal(1).label("one")).subquery("one").outerjoin(login, true())
    sku_id = bindparam("b_sku_id", type_=Integer())
    facts, with_facts = loyalty_facts.facts_parts(member_id, sku_id, now)
    coupon, with_coupon = coupon_redemption.code_read_parts(
        bindparam("b_code"), sku_id, bindparam("b_product_id", type_=Integer()),
        bindparam("b_category_id", type_=Integer()), member_id)
    programme, with_programme = promoters_attribution.program_binding_parts(member_id, now)
    return (select(*login.c, *facts, *coupon, *programme)
            .select_from(with_programme(with_coupon(with_facts(source)))))


_READ = db_direct.Direct(_statement())  # PostgreSQL: straight to the transaction's asyncpg connection
_LOGIN, _FACTS = 9, 10  # how many columns the first parts have, in the statement's order
_COUPON = len(coupon_redemption.code_read_parts(None, None, None, None, None)[0])


async def read_member_checkout(*, session: AsyncSession, token: str, sku: Sku | SkuRow, coupon_codes: Sequence[str],
                               member_coupon_ids: Sequence[int], now: dt.datetime) -> MemberLogin | None:
    """The member of session `token` (None: a guest's checkout, nothing remembered), having read in one statement
    and remembered on `session` for a checkout of `sku` at `now` their loyalty facts, the coupon code typed (when
    it is the only coupon asked for) and the programme with their binding. Records the session's use when due."""
    if not member_sessions.SESSIONS.may_be_ours(token):
        return None
    one_code = normalize_code(coupon_codes[0]) if len(coupon_codes) == 1 and not member_coupon_ids else ""
    row = await db_direct.fetch_one(session, _READ, {
        "b_token_hash": logins.hash_token(token), "b_now": now, "b_sku_id": sku.id, "b_code": one_code,
        "b_product_id": sku.product_id, "b_category_id": sku.product.category_id})
    assert row is not None  # FROM (SELECT 1) LEFT JOIN ...: always one row
    if row[0] is None:
        return None
    login = member_sessions.login_from_row(row[:_LOGIN])
    loyalty_facts.remember_facts(session, login.member_id, sku.id, now, row[_LOGIN:_LOGIN + _FACTS])
    if one_code:
        coupon_redemption.remember_code_read(
            session, code=one_code, member_id=login.member_id,
            line_ids=(sku.id, sku.product_id, sku.product.category_id),
            row=row[_LOGIN + _FACTS:_LOGIN + _FACTS + _COUPON])
    promoters_attribution.remember_program_and_binding(session, login.member_id, now,
                                                   row[_LOGIN + _FACTS + _COUPON:])
    if member_sessions.due_for_touch(login):
        await member_sessions.touch(session=session, login=login)
    return login
