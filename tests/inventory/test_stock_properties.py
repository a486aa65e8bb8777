"""Stock arithmetic under any sequence of operations (Hypothesis): keys are conserved, a sold key
belongs to exactly one delivered order, reserved keys only to unpaid orders, nothing goes negative."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections import Counter

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select, update

from helpers import make_settings, random_code
from quanyi.catalog import service as catalog_service
from quanyi.context import build_context
from quanyi.errors import DomainError
from quanyi.inventory import service as inventory_service
from quanyi.inventory.models import CardKey, CardKeyStatus, ImportBatch
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.orders.state import OrderStatus
from quanyi.tasks import sweep_once

TTL = dt.timedelta(minutes=15)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("import"), st.integers(1, 5)),
        st.tuples(st.just("order"), st.integers(1, 4)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("pay"), st.integers(0, 30)),
        st.tuples(st.just("expire"), st.integers(0, 30)),
        st.tuples(st.just("void"), st.integers(0, 8)),
    ),
    min_size=1,
    max_size=25,
)


async def _check_invariants(ctx, imported: int) -> None:
    async with ctx.db.read_session() as session:
        keys = (await session.execute(select(CardKey.id, CardKey.status, CardKey.order_id))).all()
        orders = {o.id: o for o in (await session.scalars(select(Order))).all()}
    by_status = Counter(status for _, status, _ in keys)
    assert sum(by_status.values()) == imported  # conservation: no key created or lost
    sold_per_order = Counter(order_id for _, status, order_id in keys if status == CardKeyStatus.SOLD)
    reserved_per_order = Counter(order_id for _, status, order_id in keys if status == CardKeyStatus.RESERVED)
    for _, status, order_id in keys:
        if status == CardKeyStatus.AVAILABLE:
            assert order_id is None
        if status in (CardKeyStatus.SOLD, CardKeyStatus.RESERVED):
            assert order_id in orders
    for order_id, order in orders.items():
        if order.status is OrderStatus.DELIVERED:
            assert sold_per_order[order_id] == order.quantity
        else:
            assert sold_per_order[order_id] == 0
        if order.status is OrderStatus.PENDING_PAYMENT:
            assert reserved_per_order[order_id] <= order.quantity  # fewer only if a batch was voided
        else:
            assert reserved_per_order[order_id] == 0


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_any_sequence_of_stock_operations_keeps_the_books_straight(sqlite_template, tmp_path, steps):
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(sqlite_template, path)
    ctx = build_context(make_settings(f"sqlite:///{path}"))
    imported = 0
    order_ids: list[int] = []
    try:
        from helpers import Shop

        sku = await Shop(ctx=ctx, client=None).make_sku(max_quantity=4)  # type: ignore[arg-type]
        for op, arg in steps:
            try:
                async with ctx.db.transaction() as session:
                    if op == "import":
                        fresh = await catalog_service.get_sku(session=session, sku_id=sku.id)
                        report = await inventory_service.import_card_keys(
                            session=session, cipher=ctx.cipher, sku=fresh,
                            text="\n".join(random_code() for _ in range(arg)))
                        imported += report.added
                    elif op == "order":
                        order = await orders_service.create_order(
                            session=session, sku_id=sku.id, quantity=arg, contact="p@example.com",
                            reservation_ttl=TTL)
                        order_ids.append(order.id)
                    elif op in ("cancel", "pay", "expire") and order_ids:
                        order_id = order_ids[arg % len(order_ids)]
                        if op == "cancel":
                            await orders_service.cancel_order(session=session, order_id=order_id, reason="t")
                        elif op == "pay":
                            order = await orders_service.lock_order(session=session, order_id=order_id)
                            await orders_service.apply_payment(session=session, order=order)
                        else:
                            await session.execute(update(Order).where(Order.id == order_id).values(
                                expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
                    elif op == "void":
                        batch_ids = (await session.scalars(select(ImportBatch.id).order_by(ImportBatch.id))).all()
                        if batch_ids:
                            await inventory_service.void_batch(
                                session=session, batch_id=batch_ids[arg % len(batch_ids)], reason="t")
            except DomainError:
                pass  # refused operations (sold out, illegal transition, already voided) change nothing
            if op == "expire":
                await sweep_once(ctx)
            await _check_invariants(ctx, imported)
    finally:
        await ctx.close()
