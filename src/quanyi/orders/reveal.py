"""The buyer's reveal of a delivered order (`POST /api/orders/{order_no}/reveal`) in one round trip.

It used to be four statements: the order by number, its sold keys, the audit rows, the product's redemption guide.
On PostgreSQL it is one: the order, its guide and its sold keys are read and the audit rows (one per key shown,
inventory's rule) inserted by the same statement, only when the order is delivered. SQLite has no data-modifying
CTEs: the read and the audit insert are two statements there. The keys are decrypted by inventory's
`decrypt_for_buyer`. The buyer's reveal runs it in `Database.driver_single_statements` (orders.routes.revealed_keys): on
PostgreSQL in autocommit, one round trip, the audit rows committed before any key is decrypted or answered (a
decryption failure, a server fault, leaves the audit rows of a reveal that showed nothing); on SQLite in a
transaction, rolled back with its audit rows on any failure.

An order that has no card keys of its own (循环卡密: it reveals its shared code) takes the general way,
`orders.service.reveal_order_keys`; so does every other caller (the storefront page, members, enterprises).
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from dataclasses import dataclass

from sqlalchemy import String, bindparam, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import db_direct
from quanyi.catalog.models import Product
from quanyi.db import utcnow
from quanyi.inventory import service as inventory_service
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.models import CardKey, CardKeyStatus, KeyReveal
from quanyi.inventory.schemas import RevealedKey
from quanyi.orders.models import Order
from quanyi.orders.numbers import normalize_order_no
from quanyi.orders.state import OrderStatus

__all__ = ["Revealed", "reveal_by_order_no"]

_orders, _keys, _products, _reveals = Order.__table__, CardKey.__table__, Product.__table__, KeyReveal.__table__

# FOR KEY SHARE on the order, then on its keys, in the order every writer takes them (the order row, then its keys):
# a refund holding the order (FOR UPDATE) makes us wait, and the keys' lock then re-reads each key as committed,
# so a key it took back is neither shown nor audited; a refund after us waits for our audit rows and sees them.
_order = (select(_orders.c.id, _orders.c.order_no, _orders.c.status, _orders.c.product_id)
          .where(_orders.c.order_no == bindparam("order_no")).with_for_update(read=True, key_share=True)
          .cte("revealed_order"))
_sold = (select(_keys.c.id, _keys.c.key_id, _keys.c.ciphertext, _keys.c.fingerprint, _keys.c.expires_at)
         .select_from(_keys.join(_order, _keys.c.order_id == _order.c.id))
         .where(_keys.c.status == CardKeyStatus.SOLD.value, _order.c.status == OrderStatus.DELIVERED.value)
         .with_for_update(read=True, key_share=True, of=_keys)
         .cte("revealed_keys"))
_READ = (
    select(_order.c.id.label("order_id"), _order.c.order_no, _order.c.status,
           select(_products.c.redemption_guide).where(_products.c.id == _order.c.product_id)
           .scalar_subquery().label("guide"),
           _sold.c.id, _sold.c.key_id, _sold.c.ciphertext, _sold.c.fingerprint, _sold.c.expires_at)
    .select_from(_order.outerjoin(_sold, true()))
    .order_by(_sold.c.id)
)
# PostgreSQL: the audit rows in the same statement, one per key read.
_AUDIT = insert(_reveals).from_select(
    ["card_key_id", "order_id", "revealed_at", "channel", "ip", "user_agent"],
    select(_sold.c.id, _order.c.id, bindparam("revealed_at", type_=_reveals.c.revealed_at.type),
           bindparam("channel", type_=String()), bindparam("ip", type_=String()),
           bindparam("user_agent", type_=String())).select_from(_sold.join(_order, true())),
).cte("revealed_audit")
_READ_AND_AUDIT = _READ.add_cte(_AUDIT)
_READ_AND_AUDIT_DIRECT = db_direct.Direct(_READ_AND_AUDIT)  # on the driver (quanyi.db_direct)
_Row = namedtuple("_Row", list(_READ.selected_columns.keys()))  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class Revealed:
    order_no: str
    keys: list[RevealedKey]
    guide: str  # the product's redemption guide (Markdown), "" when it has none


async def reveal_by_order_no(*, session: AsyncSession, cipher: CardKeyCipher, order_no: str, channel: str,
                             ip: str, user_agent: str, now: dt.datetime | None = None) -> Revealed | None:
    """Show a delivered order's card keys to its buyer, audited. Raises OrderNotFound / OrderNotDelivered like
    `orders.service`; None when the order has no card keys of its own (the caller takes the general way)."""
    from quanyi.orders.service import OrderNotDelivered, OrderNotFound

    canonical = normalize_order_no(order_no)
    if canonical is None:
        raise OrderNotFound("order not found")
    now = now or utcnow()
    postgresql = session.bind.dialect.name == "postgresql"
    params = {"order_no": canonical, "revealed_at": now, "channel": channel[:16], "ip": ip[:64],
              "user_agent": user_agent[:512]}
    if postgresql:
        rows = [_Row._make(row) for row in await db_direct.fetch_all(session, _READ_AND_AUDIT_DIRECT, params)]
    else:
        connection = await session.connection()
        rows = (await connection.execute(_READ, params)).all()
    if not rows:
        raise OrderNotFound("order not found")
    first = rows[0]
    if first.status != OrderStatus.DELIVERED.value:
        raise OrderNotDelivered("this order has not been delivered", order_status=OrderStatus(first.status).value)
    if first.id is None:
        return None  # no card keys of its own (the audit insert above inserted nothing)
    if not postgresql:
        await (await session.connection()).execute(insert(_reveals), inventory_service.reveal_audit_rows(
            [row.id for row in rows], order_id=first.order_id, now=now, channel=channel, ip=ip,
            user_agent=user_agent))
    return Revealed(first.order_no, inventory_service.decrypt_for_buyer(cipher, rows), first.guide or "")
