"""Checkout (下单): price the order with the one pricing function, reserve its stock until it expires.

A sold-out checkout writes nothing: the keys are locked before the order row exists. Re-exported by
`orders.service`, which holds the rest of the order's life (payment, delivery, expiry, refunds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import Insert, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi import sqlite_trip
from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType, Sku
from quanyi.catalog.sku_row import SkuRow
from quanyi.db import utcnow
from quanyi.errors import DomainError, InvalidInput
from quanyi.inventory import picking, shared_codes
from quanyi.inventory import service as inventory_service
from quanyi.notifications import service as notifications_service
from quanyi.orders import one_statement
from quanyi.orders.contact import normalize_contact
from quanyi.orders.models import Order, OrderEvent
from quanyi.orders.numbers import core_connection, insert_order, insert_order_in_one_trip, new_order_row
from quanyi.orders.one_statement import Rider
from quanyi.orders.recharge_account import normalize_recharge_account
from quanyi.orders.state import OrderStatus
from quanyi.pricing import service as pricing_service
from quanyi.suppliers import service as suppliers_service

__all__ = ["RechargeAccountInvalid", "PickNotOffered", "create_order"]


_FIRST_EVENT = insert(OrderEvent.__table__)


class RechargeAccountInvalid(InvalidInput):
    code = "recharge_account_invalid"


class PickNotOffered(InvalidInput):
    code = "pick_not_offered"


async def create_order(
    *,
    session: AsyncSession,
    sku_id: int,
    quantity: int,
    contact: str,
    query_password_hash: str | None = None,
    locale: str = "zh-CN",
    ip: str = "",
    reservation_ttl: dt.timedelta,
    recharge_account: str | None = None,
    now: dt.datetime | None = None,
    distributor_code: str | None = None,
    sku: Sku | SkuRow | None = None,
    unit_price_cents: int | None = None,
    customer_account_id: int | None = None,
    member_id: int | None = None,
    points: int = 0,
    coupon_codes: Sequence[str] = (),
    member_coupon_ids: Sequence[int] = (),
    picked_card_key_id: int | None = None,
    before_insert: Callable[[], None] | None = None,
    riders: Sequence[Rider] = (),
) -> Order:
    """Place an order: snapshot the price, reserve stock until expiry. Raises OutOfStock holding nothing.
    Hash a query password with `hash_query_password` before opening the transaction (it is slow on purpose).
    Direct-recharge SKUs need `recharge_account` (the number/account to credit); card-key SKUs refuse one.
    `sku`: the SKU (with its product) as the caller read it a moment ago, to snapshot without reading it again
    (a guest's list-price checkout may pass it as a plain row, catalog.sku_row).
    `unit_price_cents`: an account customer's own price (reseller price list) instead of the list price;
    `customer_account_id`: the account customer the order is placed for (paid from its balance).
    The price is computed here by `pricing.price_order` (never taken from the client): `member_id` is the
    signed-in buyer (会员, set on the order; member price, coupons, points), `points` the points they asked to
    spend, `coupon_codes` and `member_coupon_ids` the coupons they asked for (one that does not apply refuses the
    order: coupons.service).
    `picked_card_key_id`: 自选卡密, the one key the buyer picked (quantity 1, the SKU's surcharge added); raises
    CardKeyTaken if another buyer got it first.
    `before_insert`: called once stock is found and the order priced, before anything is written (the risk gate's
    held-stock refusal, which must not come before a sold-out answer). `riders`: rows written with the order
    (orders.one_statement; a plain card-key checkout on PostgreSQL writes everything in one statement)."""
    now = now or utcnow()
    if sku is None or sku.id != sku_id:
        sku = await catalog_service.get_sku(session=session, sku_id=sku_id)
    supplied = False
    if sku.delivery_type is DeliveryType.DIRECT_RECHARGE:
        supplied = sku.id in await suppliers_service.supplier_stock_counts(session=session, sku_ids=[sku.id])
    catalog_service.check_orderable(sku, quantity, supplied=supplied)
    account = _recharge_account_for(sku.delivery_type, recharge_account)
    contact_kind, contact_value = normalize_contact(contact)

    surcharge = _check_pick(sku, quantity, picked_card_key_id)
    source = (pricing_service.LIST_PRICE if unit_price_cents is None and customer_account_id is None
              else pricing_service.PriceSource("account", unit_price_cents))

    def new_order(breakdown: pricing_service.PriceBreakdown) -> Order:
        order = new_order_row(
            status=OrderStatus.PENDING_PAYMENT, sku_id=sku.id, merchant_id=sku.merchant_id,
            product_id=sku.product_id, product_name=sku.product.name, sku_name=sku.name, sku_code=sku.code,
            delivery_type=sku.delivery_type.value,
            contact_kind=contact_kind, contact=contact_value, query_password_hash=query_password_hash,
            locale=locale, created_ip=ip[:64], created_at=now, updated_at=now, expires_at=now + reservation_ttl,
            recharge_account=account,
            distributor_code=distributor_code, refunded_cents=0, customer_account_id=customer_account_id,
            member_id=member_id,
            picked_card_key_id=picked_card_key_id, **pricing_service.breakdown_columns(breakdown),
        )
        return order

    if (session.bind.dialect.name == "postgresql" and sku.delivery_type is DeliveryType.CARD_KEY
            and picked_card_key_id is None and source is pricing_service.LIST_PRICE and before_insert is None):
        # A retail card-key checkout: one statement locks the keys, inserts the order and its event, reserves the
        # keys and writes the riders. Priced first (a guest's list price reads nothing; a member's price, coupons
        # and points read without locking): a refusal of the price is answered below, after the stock, so a
        # sold-out checkout still answers sold out first.
        try:
            breakdown = await pricing_service.price_order(
                session=session, sku=sku, quantity=quantity, member_id=member_id, points=points,
                coupon_codes=coupon_codes, member_coupon_ids=member_coupon_ids, source=source, now=now,
                surcharge_cents=0)
        except DomainError:
            breakdown = None  # below: sold out, else the same refusal again
        if breakdown is not None:
            order = new_order(breakdown)
            # Its coupons and points taken in the same statement where they can be (answered in _placed).
            taken = await pricing_service.takes_with_order(session=session, breakdown=breakdown, member_id=member_id,
                                                           now=now)
            if await one_statement.place_with_keys(session, order, sku_id=sku.id, quantity=quantity, now=now,
                                                   riders=riders, takes=taken.takes):
                await _placed(session, order, breakdown, sku, quantity, member_id, now, taken)
                return order
        # Too few keys of our own (nothing was written): as below, where suppliers may fill it in.

    # Lock the keys before the order row exists: a sold-out checkout (most of a flash sale) writes nothing.
    # 手动发货 holds no stock: the operator delivers it by hand once it is paid (orders/manual.py).
    if picked_card_key_id is not None:  # 自选卡密: exactly the key picked, or CardKeyTaken
        key_ids = [await picking.lock_picked_key(session=session, sku_id=sku.id, card_key_id=picked_card_key_id,
                                                 now=now)]
    elif sku.delivery_type is DeliveryType.MANUAL:
        key_ids = []
    elif sku.delivery_type is DeliveryType.SHARED_CODE:  # 循环卡密: units of one code, within its sale limit
        shared_code_id = await shared_codes.claim(session=session, sku_id=sku.id, quantity=quantity, now=now)
        if shared_code_id is None:
            left = (await shared_codes.capacity(session=session, sku_ids=[sku.id], now=now)).get(sku.id, 0)
            raise inventory_service.OutOfStock("sold out", available=left, requested=quantity)
        key_ids = []
    else:
        key_ids = await inventory_service.lock_card_keys_for_sale(session=session, sku_id=sku.id, quantity=quantity,
                                                                  now=now)
    if len(key_ids) < quantity and sku.delivery_type not in (DeliveryType.MANUAL, DeliveryType.SHARED_CODE):
        # Not enough keys of our own: suppliers that report stock fill it in real time once it is paid.
        counts = await suppliers_service.supplier_stock_counts(session=session, sku_ids=[sku.id])
        from_suppliers = counts.get(sku.id, 0)
        if 0 < from_suppliers < suppliers_service.UNCOUNTED:
            # Counted stock: what earlier orders count on is not there for this one (no 无货空挂 by overbooking).
            promised = await suppliers_service.promised_supplier_units(session=session, sku_ids=[sku.id], now=now,
                                                                       lock=True)
            from_suppliers = suppliers_service.free_supplier_units(from_suppliers, promised.get(sku.id, 0))
        if from_suppliers < quantity:
            raise inventory_service.OutOfStock("sold out", available=len(key_ids), requested=quantity)
        key_ids = []
    breakdown = await pricing_service.price_order(session=session, sku=sku, quantity=quantity, member_id=member_id,
                                                  points=points, coupon_codes=coupon_codes,
                                                  member_coupon_ids=member_coupon_ids, source=source, now=now,
                                                  surcharge_cents=surcharge)
    if before_insert is not None:
        before_insert()
    order = new_order(breakdown)
    taken = pricing_service.NOTHING_WITH_ORDER
    if session.bind.dialect.name == "sqlite":
        taken = await _insert_in_one_trip(session, order, riders, key_ids, now, breakdown, member_id)
    else:
        await insert_order(session, order, now)
        if riders:
            await one_statement.write_riders(session, order.id, riders)
        await (await core_connection(session)).execute(_FIRST_EVENT, _first_event(order.id, order, now))
        if key_ids:
            await inventory_service.reserve_card_keys(session=session, key_ids=key_ids, order_id=order.id, now=now)
    if sku.delivery_type is DeliveryType.SHARED_CODE:
        await shared_codes.record_use(session=session, shared_code_id=shared_code_id, order_id=order.id,
                                      quantity=quantity, now=now)
    await _placed(session, order, breakdown, sku, quantity, member_id, now, taken)
    return order


def _first_event(order_id: object, order: Order, now: dt.datetime) -> dict[str, object]:
    # A Core INSERT built once: no ORM unit of work for it.
    return {"order_id": order_id, "from_status": None, "to_status": order.status.value, "reason": "order placed",
            "created_at": now}


async def _insert_in_one_trip(session: AsyncSession, order: Order, riders: Sequence[Rider], key_ids: list[int],
                              now: dt.datetime, breakdown: pricing_service.PriceBreakdown,
                              member_id: int | None) -> pricing_service.TakenWithOrder:
    """SQLite: the order, its riders, its first event and its keys' reservation, the same statements in the same
    order as above, then its coupons and points taken where they can be (`pricing.trip_takes_with_order`, answered
    in _placed), in one trip to aiosqlite's thread (quanyi.sqlite_trip) under the writer lock BEGIN IMMEDIATE
    took; each takes the order's id from the INSERT's RETURNING."""
    new_id = sqlite_trip.Returned(0)
    then = [sqlite_trip.Step(_rider_insert(table), rows)
            for table, rows in one_statement.rider_rows(riders, new_id).items()]
    then.append(sqlite_trip.Step(_FIRST_EVENT, _first_event(new_id, order, now)))
    if key_ids:
        then.append(inventory_service.reserve_step(key_ids=key_ids, order_id=new_id, now=now))
    taken = pricing_service.NOTHING_WITH_ORDER
    if breakdown.coupons or breakdown.points_used:
        taken = await pricing_service.trip_takes_with_order(session=session, breakdown=breakdown,
                                                            member_id=member_id, now=now, at=1 + len(then))
    start = 1 + len(then)
    for take in taken.takes:
        then.extend(take.steps)
    done = await insert_order_in_one_trip(session, order, now, then)
    for take in taken.takes:
        take.results, start = done[start:start + len(take.steps)], start + len(take.steps)
    if key_ids:
        inventory_service.keys_reserved(session=session, key_ids=key_ids)
    return taken


_RIDER_INSERTS: dict[Table, Insert] = {}


def _rider_insert(table: Table) -> Insert:
    """A rider table's INSERT, built once (a trip's statements are prepared once per statement object)."""
    statement = _RIDER_INSERTS.get(table)
    if statement is None:
        statement = _RIDER_INSERTS[table] = insert(table)
    return statement


async def _placed(session: AsyncSession, order: Order, breakdown: pricing_service.PriceBreakdown, sku: Sku | SkuRow,
                  quantity: int, member_id: int | None, now: dt.datetime,
                  taken: pricing_service.TakenWithOrder = pricing_service.NOTHING_WITH_ORDER) -> None:
    """What follows a placed order in its transaction: its coupons / points taken (`taken`: by its statement), the
    low-stock alert."""
    await pricing_service.commit_order_pricing(session=session, order=order, breakdown=breakdown,
                                               member_id=member_id, now=now, taken=taken)
    await notifications_service.on_stock_taken(session=session, sku=sku, quantity=quantity, now=now)


def _check_pick(sku: Sku | SkuRow, quantity: int, picked_card_key_id: int | None) -> int:
    """The surcharge per unit of a 自选卡密 pick (0 without one); refuses a pick the SKU does not offer."""
    if picked_card_key_id is None:
        return 0
    if not sku.buyers_pick:
        raise PickNotOffered("this product does not let buyers pick a card key", field="card_key_id")
    if quantity != 1:
        raise PickNotOffered("a picked card key is bought one at a time: quantity must be 1", field="quantity")
    return sku.pick_surcharge_cents or 0


def _recharge_account_for(delivery_type: DeliveryType, given: str | None) -> str | None:
    given = given.strip() if given else None
    if delivery_type is DeliveryType.DIRECT_RECHARGE:
        if not given:
            raise RechargeAccountInvalid("this is a direct recharge: give the phone number or account to credit",
                                         field="recharge_account")
        try:
            return normalize_recharge_account(given)
        except ValueError as exc:
            raise RechargeAccountInvalid(str(exc), field="recharge_account") from None
    if given:
        raise RechargeAccountInvalid("this product is delivered as card keys: it takes no recharge account",
                                     field="recharge_account")
    return None
