"""What a reseller does through the open API: see products with its prices and stock, buy card keys or a
direct recharge under its own order number (paid from its prepaid balance), look an order up, see its balance.

An order is one transaction: the reseller's order number is written first (its unique key makes a concurrent
retry wait and then find this order), the shop order is placed at the reseller's price, and it is paid with
`payments.balance.pay_order_from_balance` — the normal payment path, so card keys are delivered in the same
transaction (or bought from suppliers, or held by risk control) exactly as for any buyer. Any refusal rolls it
all back: an error answer means nothing was taken.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import DeliveryType, Sku
from quanyi.db import Database, utcnow
from quanyi.errors import Conflict, DomainError, NotFound
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.ledger import service as ledger_service
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.payments.balance import pay_order_from_balance
from quanyi.resellers import service as resellers_service
from quanyi.resellers.models import ResellerOrder
from quanyi.resellers.schemas import CardOrderRequest, RechargeOrderRequest
from quanyi.resellers.signing import Caller

__all__ = ["ProtocolError", "catalog", "quotes", "place_order", "find_order", "balance", "wire_state",
           "RESERVATION"]

RESERVATION = dt.timedelta(minutes=15)  # never used up: the order is paid in the transaction that places it


class ProtocolError(DomainError):
    """A refusal with one of the protocol's error codes (docs/supplier-protocol.md §5)."""

    def __init__(self, code: str, message: str, **context: object) -> None:
        super().__init__(message, **context)
        self.code = code


def wire_state(order: Order) -> str:
    """The protocol's order state for one of our orders."""
    if order.status is OrderStatus.DELIVERED or (order.status is OrderStatus.REFUNDED and order.delivered_at):
        return "succeeded"
    if order.status in (OrderStatus.REFUND_PENDING, OrderStatus.REFUNDED, OrderStatus.CANCELLED):
        return "failed"
    return "processing"  # paid: being bought from suppliers, recharged, or held for review


def _kind(sku: Sku) -> str:
    return "direct_recharge" if sku.delivery_type is DeliveryType.DIRECT_RECHARGE else "card_key"


async def _offer(session: AsyncSession, caller: Caller, codes: list[str] | None, *, full: bool) -> list[dict[str, Any]]:
    own = await resellers_service.prices_for(session=session, reseller_id=caller.reseller_id)
    wanted = {c.strip().upper() for c in codes} if codes is not None else None
    offered = []
    for product in await catalog_service.list_products(session=session):
        skus = [sku for sku in product.skus if wanted is None or sku.code in wanted]
        if not skus:
            continue
        described = {sku.id: sku for sku in (await catalog_service.describe_product(session=session,
                                                                                     product=product)).skus}
        for sku in skus:
            state = described[sku.id].stock
            if state.status == "off_sale" and wanted is None:
                continue
            counted = sku.delivery_type is DeliveryType.CARD_KEY
            item: dict[str, Any] = {"product_code": sku.code, "cost_cents": own.get(sku.id, sku.price_cents),
                                    "stock": state.available if counted else None,
                                    "available": state.purchasable}
            if full:
                item.update(name=f"{product.name} {sku.name}", kind=_kind(sku), face_value_cents=sku.face_value_cents,
                            currency=sku.currency, min_quantity=sku.min_quantity, max_quantity=sku.max_quantity)
            offered.append(item)
    return offered


async def catalog(*, session: AsyncSession, caller: Caller) -> dict[str, Any]:
    """Every product on sale, at the reseller's price, with live stock (§3.1)."""
    return {"products": await _offer(session, caller, None, full=True)}


async def quotes(*, session: AsyncSession, caller: Caller, product_codes: list[str]) -> dict[str, Any]:
    """Price and stock of these products; unknown codes are left out (§3.2)."""
    return {"quotes": await _offer(session, caller, product_codes, full=False)}


async def balance(*, session: AsyncSession, caller: Caller) -> dict[str, Any]:
    account = await ledger_service.get_customer_account(session=session, account_id=caller.account_id)
    return {"balance_cents": account.balance_cents, "credit_limit_cents": account.credit_limit_cents,
            "available_cents": account.balance_cents + account.credit_limit_cents, "currency": account.currency,
            "status": account.status}


async def _describe(session: AsyncSession, cipher: CardKeyCipher, caller: Caller, row: ResellerOrder, *,
                    ip: str, user_agent: str) -> dict[str, Any]:
    order = await orders_service.get_order_by_id(session=session, order_id=row.order_id)  # type: ignore[arg-type]
    codes: list[dict[str, Any]] = []
    if row.kind == "card_key" and order.status is OrderStatus.DELIVERED:
        # Handing the codes over is a reveal like any other: audited per key, channel "openapi".
        try:
            revealed = await orders_service.reveal_order_keys(
                session=session, cipher=cipher, order=order, channel="openapi", ip=ip,
                user_agent=f"reseller {caller.code}: {user_agent}"[:512])
        except orders_service.OrderNotDelivered:
            # Refunded while the reveal waited for its order row (a refund held it): described as it is now, no keys.
            await session.refresh(order)
            revealed = []
        codes = [{"code": f"{key.card_no} {key.code}" if key.card_no else key.code, "card_no": key.card_no,
                  "password": key.code, "expires_at": key.expires_at.isoformat() if key.expires_at else None}
                 for key in revealed]
    state = wire_state(order)
    return {
        "order_no": order.order_no, "idempotency_key": row.idempotency_key, "kind": row.kind,
        "product_code": row.product_code, "state": state, "quantity": order.quantity,
        "unit_cost_cents": order.unit_price_cents, "total_cents": order.total_cents,
        "refunded_cents": order.refunded_cents, "account": row.account,
        "message": (order.status_reason or "") if state == "failed" else "",
        "created_at": order.created_at.isoformat(), "codes": codes,
    }


def _same_terms(row: ResellerOrder, kind: str, product_code: str, quantity: int, account: str | None) -> bool:
    return (row.kind, row.product_code, row.quantity, row.account) == (kind, product_code, quantity, account)


async def _existing(session: AsyncSession, caller: Caller, key: str) -> ResellerOrder | None:
    return await session.scalar(select(ResellerOrder).where(ResellerOrder.reseller_id == caller.reseller_id,
                                                            ResellerOrder.idempotency_key == key))


async def place_order(
    *, db: Database, cipher: CardKeyCipher, caller: Caller, request: CardOrderRequest | RechargeOrderRequest,
    ip: str, user_agent: str, now: dt.datetime | None = None,
) -> tuple[int, dict[str, Any]]:
    """Buy under the reseller's order number; returns (HTTP status, the order as the protocol shows it)."""
    now = now or utcnow()
    kind = "direct_recharge" if isinstance(request, RechargeOrderRequest) else "card_key"
    account = request.account.strip() if isinstance(request, RechargeOrderRequest) else None
    for _ in range(2):
        try:
            async with db.transaction() as session:
                row = await _existing(session, caller, request.idempotency_key)
                if row is None:
                    row = await _place(session, caller, request, kind, account, ip, now)
                elif not _same_terms(row, kind, request.product_code.strip().upper(), request.quantity, account):
                    raise ProtocolError("idempotency_conflict", f"order number {request.idempotency_key} was "
                                        "already used for a different order", order_no=row.idempotency_key)
                described = await _describe(session, cipher, caller, row, ip=ip, user_agent=user_agent)
        except IntegrityError:
            continue  # a concurrent request with this number committed first: answer with its order
        status = 202 if kind == "direct_recharge" or described["state"] == "processing" else 200
        return status, described
    raise Conflict("this order number is being placed right now; retry")


async def _place(session: AsyncSession, caller: Caller, request: CardOrderRequest | RechargeOrderRequest, kind: str,
                 account: str | None, ip: str, now: dt.datetime) -> ResellerOrder:
    try:
        sku = await catalog_service.get_sku_by_code(session=session, code=request.product_code)
    except NotFound:
        raise ProtocolError("unknown_product", f"no product {request.product_code!r}") from None
    if _kind(sku) != kind:
        raise ProtocolError("wrong_product_kind", f"{sku.code} is a {_kind(sku)} product")
    # The number first: a concurrent request with it waits here (unique key) and then finds this order.
    row = ResellerOrder(reseller_id=caller.reseller_id, idempotency_key=request.idempotency_key, kind=kind,
                        product_code=sku.code, quantity=request.quantity, account=account,
                        callback_url=request.callback_url, created_at=now)
    session.add(row)
    await session.flush()
    price = (await resellers_service.prices_for(session=session, reseller_id=caller.reseller_id)).get(
        sku.id, sku.price_cents)
    if price > request.max_unit_cost_cents:
        raise ProtocolError("price_changed", f"your price of {sku.code} is {price}, above max_unit_cost_cents",
                            unit_cost_cents=price)
    order = await orders_service.create_order(
        session=session, sku_id=sku.id, quantity=request.quantity, contact=caller.contact_email, ip=ip,
        reservation_ttl=RESERVATION, recharge_account=account, unit_price_cents=price,
        customer_account_id=caller.account_id, now=now)
    row.order_id = order.id
    await session.flush()
    await pay_order_from_balance(session=session, order_id=order.id, account_id=caller.account_id, now=now)
    return row


async def find_order(*, db: Database, cipher: CardKeyCipher, caller: Caller, key: str, ip: str,
                     user_agent: str) -> dict[str, Any]:
    """An order by the reseller's number (§3.5), card keys included (an audited reveal)."""
    async with db.transaction() as session:
        row = await _existing(session, caller, key)
        if row is None or row.order_id is None:
            raise ProtocolError("order_not_found", f"no order under number {key}")
        return await _describe(session, cipher, caller, row, ip=ip, user_agent=user_agent)
