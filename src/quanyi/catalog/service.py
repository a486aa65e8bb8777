"""Catalog rules: what exists, what is on sale, and whether a SKU can be bought right now."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from quanyi.catalog.guide import render_guide
from quanyi.catalog.models import Category, DeliveryType, Product, Sku
from quanyi.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    PickableKeyRead,
    ProductCreate,
    ProductRead,
    ProductSummary,
    ProductUpdate,
    SkuCreate,
    SkuRead,
    SkuUpdate,
    StockState,
)
from quanyi.catalog.sku_row import SkuRow, read_sku_row
from quanyi.db import utcnow
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.inventory import picking
from quanyi.inventory import service as inventory_service
from quanyi.money import format_money
from quanyi.scope import PLATFORM, PLATFORM_MERCHANT_ID, Scope
from quanyi.suppliers import service as suppliers_service

__all__ = [
    "CategoryNotFound", "ProductNotFound", "SkuNotFound", "SlugTaken", "SkuCodeTaken",
    "create_category", "update_category", "list_categories", "get_category_by_slug",
    "create_product", "update_product", "get_product", "get_product_by_slug", "list_products", "redemption_guide",
    "redemption_guides",
    "create_sku", "update_sku", "get_sku", "get_sku_row", "get_sku_by_code", "SkuRow",
    "SkuNotPurchasable", "QuantityOutOfRange",
    "stock_state", "check_orderable", "describe_sku", "product_type", "pickable_keys",
    "describe_product", "summarize_products", "sellable_counts",
]


class CategoryNotFound(NotFound):
    code = "category_not_found"


class ProductNotFound(NotFound):
    code = "product_not_found"


class SkuNotFound(NotFound):
    code = "sku_not_found"


class SlugTaken(Conflict):
    code = "slug_taken"


class SkuCodeTaken(Conflict):
    code = "sku_code_taken"


class SkuNotPurchasable(Conflict):
    code = "sku_not_purchasable"


class QuantityOutOfRange(InvalidInput):
    code = "quantity_out_of_range"


# ---------------------------------------------------------------- purchasability (one rule)

def _listing_block(sku: Sku | SkuRow, *, supplied: bool = False) -> str | None:
    """Why a SKU cannot be ordered regardless of stock, or None. `supplied`: an active supplier maps it."""
    product = sku.product
    if not (sku.on_sale and product.is_active and product.category.is_active and product.merchant.status == "active"):
        return "off_sale"  # a suspended merchant's goods are off sale until it is active again
    if sku.delivery_type is DeliveryType.DIRECT_RECHARGE and not supplied:
        return "coming_soon"  # 直充 is orderable only while an active supplier maps it (their stock decides)
    return None


# Supplier stock shown to buyers at most as this many (a supplier may report a million, or "uncounted").
SUPPLIER_STOCK_DISPLAY_CAP = 999


async def sellable_counts(*, session: AsyncSession, sku_ids: Sequence[int]) -> dict[int, int]:
    """Units buyers can order now: our own sellable card keys plus what active suppliers report (capped
    for display). The one count behind the storefront, the API and stock_state: no 无货空挂."""
    local = await inventory_service.available_counts(session=session, sku_ids=sku_ids)
    remote = await suppliers_service.supplier_stock_counts(session=session, sku_ids=sku_ids)
    counted = [sku_id for sku_id, units in remote.items() if 0 < units < suppliers_service.UNCOUNTED]
    promised = await suppliers_service.promised_supplier_units(session=session, sku_ids=counted, now=utcnow())
    return {sku_id: local.get(sku_id, 0) + min(suppliers_service.free_supplier_units(
                remote.get(sku_id, 0), promised.get(sku_id, 0)), SUPPLIER_STOCK_DISPLAY_CAP)
            for sku_id in set(local) | set(remote)}


# 手动发货: the operator fulfils each order by hand, so there is no stock to count; shown as plenty.
MANUAL_STOCK_DISPLAY = SUPPLIER_STOCK_DISPLAY_CAP


def stock_state(sku: Sku, available: int, *, supplied: bool = False) -> StockState:
    """Whether a SKU can be bought now. The single rule used by API, pages and checkout."""
    if sku.delivery_type is DeliveryType.MANUAL:
        available = MANUAL_STOCK_DISPLAY
    block = _listing_block(sku, supplied=supplied)
    if block is not None:
        return StockState(available=0 if block == "coming_soon" else available, purchasable=False, status=block)
    if available < sku.min_quantity:
        return StockState(available=available, purchasable=False, status="sold_out")
    return StockState(available=available, purchasable=True, status="in_stock")


def check_orderable(sku: Sku | SkuRow, quantity: int, *, supplied: bool = False) -> None:
    """Raise unless `quantity` of this SKU may be ordered (stock itself is checked by reservation)."""
    block = _listing_block(sku, supplied=supplied)
    if block == "off_sale":
        raise SkuNotPurchasable(f"{sku.product.name} {sku.name} is not on sale", reason=block)
    if block == "coming_soon":
        raise SkuNotPurchasable(f"{sku.product.name} {sku.name} cannot be ordered yet", reason=block)
    if not sku.min_quantity <= quantity <= sku.max_quantity:
        raise QuantityOutOfRange(
            f"quantity must be between {sku.min_quantity} and {sku.max_quantity}",
            min_quantity=sku.min_quantity, max_quantity=sku.max_quantity,
        )


# ---------------------------------------------------------------- categories

async def _ensure_category_slug_free(session: AsyncSession, slug: str, *, except_id: int | None = None) -> None:
    found = await session.scalar(select(Category.id).where(Category.slug == slug))
    if found is not None and found != except_id:
        raise SlugTaken(f"category slug {slug!r} is already used")


async def create_category(*, session: AsyncSession, data: CategoryCreate) -> Category:
    """Create a category."""
    await _ensure_category_slug_free(session, data.slug)
    category = Category(**data.model_dump())
    session.add(category)
    await session.flush()
    return category


async def get_category(*, session: AsyncSession, category_id: int) -> Category:
    category = await session.get(Category, category_id)
    if category is None:
        raise CategoryNotFound(f"category {category_id} does not exist")
    return category


async def get_category_by_slug(*, session: AsyncSession, slug: str, active_only: bool = True) -> Category:
    stmt = select(Category).where(Category.slug == slug)
    if active_only:
        stmt = stmt.where(Category.is_active.is_(True))
    category = await session.scalar(stmt)
    if category is None:
        raise CategoryNotFound(f"category {slug!r} does not exist")
    return category


async def update_category(*, session: AsyncSession, category_id: int, data: CategoryUpdate) -> Category:
    """Change a category's fields; only fields present in the request change."""
    category = await get_category(session=session, category_id=category_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("slug") is not None:
        await _ensure_category_slug_free(session, changes["slug"], except_id=category.id)
    for field, value in changes.items():
        if value is None:
            raise InvalidInput(f"{field} cannot be null")
        setattr(category, field, value)
    await session.flush()
    return category


async def list_categories(*, session: AsyncSession, active_only: bool = True) -> Sequence[Category]:
    stmt = select(Category).order_by(Category.sort_order, Category.id)
    if active_only:
        stmt = stmt.where(Category.is_active.is_(True))
    return (await session.scalars(stmt)).all()


# ---------------------------------------------------------------- SKUs

async def _ensure_sku_code_free(session: AsyncSession, code: str) -> None:
    if await session.scalar(select(Sku.id).where(Sku.code == code)) is not None:
        raise SkuCodeTaken(f"SKU code {code!r} is already used")


async def create_sku(*, session: AsyncSession, product_id: int, data: SkuCreate, scope: Scope = PLATFORM) -> Sku:
    """Add a sellable variant to a product (of the product's merchant)."""
    product = await get_product(session=session, product_id=product_id, active_only=False, scope=scope)
    await _ensure_sku_code_free(session, data.code)
    sku = Sku(product_id=product_id, merchant_id=product.merchant_id, **data.model_dump())
    session.add(sku)
    await session.flush()
    return await get_sku(session=session, sku_id=sku.id)


def _sku_query():  # type: ignore[no-untyped-def]
    # Many-to-one all the way: one joined query instead of three round trips (checkout's hot path).
    return select(Sku).options(joinedload(Sku.product).joinedload(Product.category))


# Built once: checkout reads its SKU on every call (construction and cache key per call otherwise).
_SKU_BY_ID = _sku_query().where(Sku.id == bindparam("b_sku_id")).execution_options(populate_existing=True)


async def get_sku(*, session: AsyncSession, sku_id: int, scope: Scope = PLATFORM) -> Sku:
    """A SKU with its product and category; another merchant's SKU is not found (no extra query: one check)."""
    sku = await session.scalar(_SKU_BY_ID, {"b_sku_id": sku_id})
    if sku is None or not scope.sees(sku.merchant_id):
        raise SkuNotFound(f"SKU {sku_id} does not exist")
    return sku


async def get_sku_row(*, session: AsyncSession, sku_id: int) -> SkuRow:
    """The SKU with its product, category and merchant as a plain read-only row (a guest's checkout: no ORM
    object, catalog.sku_row); raises SkuNotFound like `get_sku`."""
    sku = await read_sku_row(session, sku_id)
    if sku is None:
        raise SkuNotFound(f"SKU {sku_id} does not exist")
    return sku


async def get_sku_by_code(*, session: AsyncSession, code: str, scope: Scope = PLATFORM) -> Sku:
    sku = await session.scalar(_sku_query().where(Sku.code == code.strip().upper()))
    if sku is None or not scope.sees(sku.merchant_id):
        raise SkuNotFound(f"SKU {code!r} does not exist")
    return sku


async def update_sku(*, session: AsyncSession, sku_id: int, data: SkuUpdate, scope: Scope = PLATFORM) -> Sku:
    """Change price, limits, sale state or the 自选 surcharge. Existing orders keep their price snapshot."""
    sku = await get_sku(session=session, sku_id=sku_id, scope=scope)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field != "pick_surcharge_cents":
            raise InvalidInput(f"{field} cannot be null")
        setattr(sku, field, value)
    if sku.pick_surcharge_cents is not None and sku.delivery_type is not DeliveryType.CARD_KEY:
        raise InvalidInput("only card-key SKUs let buyers pick a key (pick_surcharge_cents)",
                           field="pick_surcharge_cents")
    if sku.max_quantity < sku.min_quantity:
        raise InvalidInput("max_quantity must be at least min_quantity")
    await session.flush()
    return sku


async def _recharge_supply(session: AsyncSession, skus: Sequence[Sku]) -> dict[int, int]:
    """Units suppliers can recharge per direct-recharge SKU (absent: no active supplier maps it)."""
    ids = [sku.id for sku in skus if sku.delivery_type is DeliveryType.DIRECT_RECHARGE]
    return await suppliers_service.supplier_stock_counts(session=session, sku_ids=ids) if ids else {}


def describe_sku(sku: Sku, available: int, *, supplied: bool = False) -> SkuRead:
    return SkuRead(
        id=sku.id, product_id=sku.product_id, code=sku.code, name=sku.name,
        face_value_cents=sku.face_value_cents, price_cents=sku.price_cents, currency=sku.currency,
        price_display=format_money(sku.price_cents, sku.currency), delivery_type=sku.delivery_type,
        min_quantity=sku.min_quantity, max_quantity=sku.max_quantity, on_sale=sku.on_sale,
        stock=stock_state(sku, available, supplied=supplied), product_type=product_type(sku),
        pick_surcharge_cents=sku.pick_surcharge_cents if sku.buyers_pick else None,
    )


def product_type(sku: Sku) -> str:
    """The product type buyers and operators see (API `product_type`): the delivery type, 自选卡密 told apart."""
    return "chosen_card_key" if sku.buyers_pick else sku.delivery_type.value


# ---------------------------------------------------------------- products

async def _ensure_product_slug_free(session: AsyncSession, slug: str, *, except_id: int | None = None) -> None:
    found = await session.scalar(select(Product.id).where(Product.slug == slug))
    if found is not None and found != except_id:
        raise SlugTaken(f"product slug {slug!r} is already used")


def _product_query():  # type: ignore[no-untyped-def]
    # Sku.product is not eager-loaded: it is this same Product, found in the identity map without SQL
    # (a cyclic eager load combined with populate_existing would expire the freshly loaded skus).
    return select(Product).options(selectinload(Product.category), selectinload(Product.skus))


async def create_product(*, session: AsyncSession, data: ProductCreate,
                         merchant_id: int = PLATFORM_MERCHANT_ID) -> Product:
    """Create a product of `merchant_id` (resolved from the caller's scope), optionally with its SKUs."""
    await get_category(session=session, category_id=data.category_id)
    await _ensure_product_slug_free(session, data.slug)
    codes = [sku.code for sku in data.skus]
    if len(set(codes)) != len(codes):
        raise SkuCodeTaken("SKU codes in one request must be distinct")
    for code in codes:
        await _ensure_sku_code_free(session, code)
    product = Product(**data.model_dump(exclude={"skus", "merchant_code"}), merchant_id=merchant_id)
    product.skus = [Sku(**sku.model_dump(), merchant_id=merchant_id) for sku in data.skus]
    session.add(product)
    await session.flush()
    return await get_product(session=session, product_id=product.id, active_only=False)


async def get_product(*, session: AsyncSession, product_id: int, active_only: bool = True,
                      scope: Scope = PLATFORM) -> Product:
    stmt = _product_query().where(Product.id == product_id).execution_options(populate_existing=True)
    product = await session.scalar(stmt)
    if product is None or not scope.sees(product.merchant_id) or (
            active_only and not (product.is_active and product.category.is_active)):
        raise ProductNotFound(f"product {product_id} does not exist")
    return product


async def redemption_guide(*, session: AsyncSession, product_id: int) -> str:
    """A product's redemption guide (Markdown) without loading the product; "" when it has none."""
    return await session.scalar(select(Product.redemption_guide).where(Product.id == product_id)) or ""


async def redemption_guides(*, session: AsyncSession, product_ids: Collection[int]) -> dict[int, str | None]:
    """The redemption guides (Markdown) of several products at once, by product id."""
    if not product_ids:
        return {}
    rows = await session.execute(select(Product.id, Product.redemption_guide).where(Product.id.in_(product_ids)))
    return {product_id: guide for product_id, guide in rows.all()}


async def get_product_by_slug(*, session: AsyncSession, slug: str) -> Product:
    product = await session.scalar(_product_query().where(Product.slug == slug))
    if product is None or not (product.is_active and product.category.is_active
                               and product.merchant.status == "active"):
        raise ProductNotFound(f"product {slug!r} does not exist")
    return product


async def update_product(*, session: AsyncSession, product_id: int, data: ProductUpdate,
                         scope: Scope = PLATFORM) -> Product:
    """Change a product's fields; only fields present in the request change (never its merchant)."""
    product = await get_product(session=session, product_id=product_id, active_only=False, scope=scope)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("category_id") is not None:
        await get_category(session=session, category_id=changes["category_id"])
    if changes.get("slug") is not None:
        await _ensure_product_slug_free(session, changes["slug"], except_id=product.id)
    for field, value in changes.items():
        if value is None and field != "cover_image_url":
            raise InvalidInput(f"{field} cannot be null")
        setattr(product, field, value)
    await session.flush()
    return await get_product(session=session, product_id=product.id, active_only=False)


async def list_products(
    *, session: AsyncSession, category_id: int | None = None, active_only: bool = True, scope: Scope = PLATFORM,
    merchant_id: int | None = None,
) -> Sequence[Product]:
    """Products in the scope (the storefront: every merchant's), optionally of one merchant or category."""
    stmt = (_product_query().join(Product.category).where(scope.where(Product.merchant_id))
            .order_by(Product.sort_order, Product.id))
    if merchant_id is not None:
        stmt = stmt.where(Product.merchant_id == merchant_id)
    if category_id is not None:
        stmt = stmt.where(Product.category_id == category_id)
    if active_only:  # the storefront: nothing of a suspended merchant
        stmt = stmt.where(Product.is_active.is_(True), Category.is_active.is_(True),
                          Product.merchant.has(status="active"))
    return (await session.scalars(stmt)).all()


async def describe_product(*, session: AsyncSession, product: Product) -> ProductRead:
    """A product with its SKUs and live stock, as buyers and the API see it."""
    counts = await sellable_counts(session=session, sku_ids=[s.id for s in product.skus])
    supply = await _recharge_supply(session, product.skus)
    return ProductRead(
        id=product.id, merchant_id=product.merchant_id, merchant_code=product.merchant.code,
        merchant_name=product.merchant.name, slug=product.slug, name=product.name,
        category_id=product.category_id, description=product.description, redemption_guide=product.redemption_guide,
        redemption_guide_html=render_guide(product.redemption_guide),
        cover_image_url=product.cover_image_url, is_active=product.is_active, updated_at=product.updated_at,
        skus=[describe_sku(sku, counts.get(sku.id, 0), supplied=sku.id in supply)
              for sku in product.skus],
    )


async def summarize_products(*, session: AsyncSession, products: Sequence[Product]) -> list[ProductSummary]:
    """Listing cards: lowest price among purchasable-or-listed SKUs and whether anything is in stock."""
    sku_ids = [sku.id for product in products for sku in product.skus]
    counts = await sellable_counts(session=session, sku_ids=sku_ids)
    supply = await _recharge_supply(session, [sku for product in products for sku in product.skus])
    summaries = []
    for product in products:
        listed = [sku for sku in product.skus if sku.on_sale]
        cheapest = min(listed, key=lambda s: s.price_cents, default=None)
        states = [stock_state(sku, counts.get(sku.id, 0), supplied=sku.id in supply)
                  for sku in listed]
        in_stock = any(state.purchasable for state in states)
        if in_stock:
            status = "in_stock"
        elif not states:
            status = "off_sale"
        elif all(state.status == "coming_soon" for state in states):
            status = "coming_soon"
        else:
            status = "sold_out"
        summaries.append(
            ProductSummary(
                id=product.id, merchant_id=product.merchant_id, merchant_code=product.merchant.code,
                merchant_name=product.merchant.name, slug=product.slug, name=product.name,
                category_id=product.category_id, cover_image_url=product.cover_image_url,
                min_price_cents=cheapest.price_cents if cheapest else None,
                currency=cheapest.currency if cheapest else None,
                price_display=format_money(cheapest.price_cents, cheapest.currency) if cheapest else None,
                in_stock=in_stock, stock_status=status,
            )
        )
    return summaries


async def stock_states(*, session: AsyncSession, skus: Sequence[Sku]) -> dict[int, StockState]:
    """Live stock and purchasability of many SKUs in a few queries (dashboards, stock alerts)."""
    counts = await sellable_counts(session=session, sku_ids=[sku.id for sku in skus])
    supply = await _recharge_supply(session, skus)
    return {sku.id: stock_state(sku, counts.get(sku.id, 0), supplied=sku.id in supply) for sku in skus}


async def pickable_keys(*, session: AsyncSession, sku_id: int) -> list[PickableKeyRead]:
    """自选卡密: the keys a buyer may pick now, as label and id (never the code); only for a SKU on sale that
    offers picks (otherwise SkuNotFound, like a SKU buyers cannot see)."""
    sku = await get_sku(session=session, sku_id=sku_id)
    if not sku.buyers_pick or _listing_block(sku) is not None:
        raise SkuNotFound(f"SKU {sku_id} offers no card keys to pick")
    keys = await picking.pickable_keys(session=session, sku_id=sku.id)
    return [PickableKeyRead(id=key.id, label=key.label) for key in keys]
