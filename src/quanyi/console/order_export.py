"""The order export (订单导出): the orders a search finds, as CSV or XLSX through quanyi.exports, streamed.
Buyer contacts are masked unless the staff member may see them (orders.contact)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence

from starlette.responses import StreamingResponse

from quanyi.console.auth import ConsoleUser
from quanyi.context import ShopContext
from quanyi.exports import Cell, Column, ExportFormat, export_response
from quanyi.money import to_decimal
from quanyi.orders import search as order_search
from quanyi.orders.contact import mask_contact
from quanyi.shoptime import shop_time, shop_zone

__all__ = ["ORDER_COLUMNS", "export_orders"]

ORDER_COLUMNS = [Column("order_no", 18), Column("created_at", 20), Column("status", 15), Column("product", 28),
                 Column("sku_code", 16), Column("sku", 16), Column("quantity", 9), Column("unit_price", 11),
                 Column("total", 11), Column("refunded", 11), Column("currency", 9), Column("contact", 26),
                 Column("delivery_type", 15), Column("paid_at", 20), Column("delivered_at", 20)]


def export_orders(*, ctx: ShopContext, user: ConsoleUser, filters: order_search.OrderFilters,
                  fmt: ExportFormat) -> StreamingResponse:
    zone = shop_zone(ctx.settings.shop_timezone)
    full_contacts = user.can("orders.contact")

    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return shop_time(moment, zone).replace(tzinfo=None) if moment else None

    async def rows() -> AsyncIterator[Sequence[Sequence[Cell]]]:
        async for chunk in order_search.iter_orders(db=ctx.db, filters=filters, zone=zone, scope=user.scope):
            yield [[o.order_no, local(o.created_at), o.status.value, o.product_name, o.sku_code, o.sku_name,
                    o.quantity, to_decimal(o.unit_price_cents, o.currency), to_decimal(o.total_cents, o.currency),
                    to_decimal(o.refunded_cents, o.currency), o.currency,
                    o.contact if full_contacts else mask_contact(o.contact_kind, o.contact), o.delivery_type,
                    local(o.paid_at), local(o.delivered_at)] for o in chunk]

    stamp = dt.datetime.now(zone).strftime("%Y%m%d-%H%M")
    return export_response(fmt, filename=f"orders-{stamp}", columns=ORDER_COLUMNS, rows=rows(), sheet_name="orders")
