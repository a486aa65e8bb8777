"""A guest's checkout reads its SKU as a plain row (catalog.sku_row): it says what the ORM SKU says, so the checkout's
checks (on sale, product / category / merchant active, quantity bounds, 自选 surcharge) and its snapshot are the
same."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from quanyi.catalog import service as catalog_service
from quanyi.catalog.models import Category, Product, Sku
from quanyi.merchants.models import Merchant


def _facts(sku):
    return (sku.id, sku.product_id, sku.merchant_id, sku.code, sku.name, sku.face_value_cents, sku.price_cents,
            sku.currency, sku.delivery_type, sku.min_quantity, sku.max_quantity, sku.on_sale, sku.pick_surcharge_cents,
            sku.buyers_pick, sku.product.name, sku.product.category_id, sku.product.is_active,
            sku.product.category.is_active, sku.product.merchant.status)


async def _both(shop, sku_id):
    async with shop.ctx.db.transaction() as session:
        orm = await catalog_service.get_sku(session=session, sku_id=sku_id)
        row = await catalog_service.get_sku_row(session=session, sku_id=sku_id)
        assert not isinstance(row, Sku)  # a plain row: nothing for the session to track
        return orm, row


def _refusal(sku, quantity=1):
    try:
        catalog_service.check_orderable(sku, quantity)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is compared
        return type(exc), str(exc)
    return None


async def test_the_row_says_what_the_orm_sku_says_and_refuses_what_it_refuses(shop):
    sku = await shop.make_sku(max_quantity=3)
    orm, row = await _both(shop, sku.id)
    assert _facts(row) == _facts(orm)
    assert _refusal(row) is None and _refusal(row, 4) == _refusal(orm, 4) is not None
    changes = [(Sku, Sku.id == sku.id, {"pick_surcharge_cents": 50}),
               (Sku, Sku.id == sku.id, {"on_sale": False}),
               (Product, Product.id == sku.product_id, {"is_active": False}),
               (Category, Category.id == orm.product.category_id, {"is_active": False}),
               (Merchant, Merchant.id == sku.merchant_id, {"status": "suspended"})]
    for model, where, values in changes:
        async with shop.ctx.db.transaction() as session:
            await session.execute(update(model).where(where).values(**values))
        orm, row = await _both(shop, sku.id)
        assert _facts(row) == _facts(orm), values
        assert _refusal(row) == _refusal(orm), values
    assert _refusal(row) is not None


async def test_an_unknown_sku_is_not_found(shop):
    async with shop.ctx.db.transaction() as session:
        with pytest.raises(catalog_service.SkuNotFound):
            await catalog_service.get_sku_row(session=session, sku_id=999_999)
