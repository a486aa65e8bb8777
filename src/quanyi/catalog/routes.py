"""Catalog HTTP API: public reads with live stock; admin CRUD behind the admin token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from quanyi.catalog import deletion as catalog_deletion
from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import (
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    PickableKeyRead,
    ProductCreate,
    ProductRead,
    ProductSummary,
    ProductUpdate,
    SkuCreate,
    SkuRead,
    SkuUpdate,
)
from quanyi.deps import AdminDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.merchants import service as merchants_service
from quanyi.schema_types import DbId

router = APIRouter(prefix="/api/catalog", tags=["catalog"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin: catalog"])

IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
SlugPath = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")]


@router.get("/categories", response_model=list[CategoryRead], summary="Categories on sale")
async def list_categories(session: ReadSessionDep) -> list[CategoryRead]:
    categories = await catalog_service.list_categories(session=session)
    return [CategoryRead.model_validate(c) for c in categories]


@router.get("/products", response_model=list[ProductSummary], summary="Products on sale, with lowest price")
async def list_products(
    session: ReadSessionDep, category_id: Annotated[DbId | None, Query()] = None
) -> list[ProductSummary]:
    products = await catalog_service.list_products(session=session, category_id=category_id)
    return await catalog_service.summarize_products(session=session, products=products)


@router.get("/products/{slug}", response_model=ProductRead, summary="One product with SKUs and live stock")
async def get_product(slug: SlugPath, session: ReadSessionDep) -> ProductRead:
    product = await catalog_service.get_product_by_slug(session=session, slug=slug)
    return await catalog_service.describe_product(session=session, product=product)


@router.get("/skus/{sku_id}/pickable-keys", response_model=list[PickableKeyRead],
            summary="自选卡密: the card keys a buyer may pick (label and id, never the code)",
            responses={404: {"description": "No such SKU on sale, or it offers no picks"}})
async def pickable_keys(sku_id: IdPath, session: ReadSessionDep) -> list[PickableKeyRead]:
    return await catalog_service.pickable_keys(session=session, sku_id=sku_id)


# ---------------------------------------------------------------- admin
# Categories are the platform's (shared by every merchant): platform staff change them. Products and SKUs
# belong to a merchant and are seen through the caller's scope (ScopeDep).

@admin_router.post("/categories", response_model=CategoryRead, status_code=201, summary="Create a category")
async def create_category(data: CategoryCreate, session: SessionDep, _: PlatformAdminDep) -> CategoryRead:
    return CategoryRead.model_validate(await catalog_service.create_category(session=session, data=data))


@admin_router.patch("/categories/{category_id}", response_model=CategoryRead, summary="Update a category")
async def update_category(
    category_id: IdPath, data: CategoryUpdate, session: SessionDep, _: PlatformAdminDep
) -> CategoryRead:
    category = await catalog_service.update_category(session=session, category_id=category_id, data=data)
    return CategoryRead.model_validate(category)


@admin_router.get("/categories", response_model=list[CategoryRead], summary="All categories, inactive too")
async def admin_list_categories(session: ReadSessionDep, _: AdminDep) -> list[CategoryRead]:
    categories = await catalog_service.list_categories(session=session, active_only=False)
    return [CategoryRead.model_validate(c) for c in categories]


@admin_router.get("/products", response_model=list[ProductSummary], summary="Products in your scope, inactive too")
async def admin_list_products(session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
                              category_id: Annotated[DbId | None, Query()] = None) -> list[ProductSummary]:
    products = await catalog_service.list_products(session=session, category_id=category_id, active_only=False,
                                                   scope=scope)
    return await catalog_service.summarize_products(session=session, products=products)


@admin_router.post("/products", response_model=ProductRead, status_code=201, summary="Create a product (with SKUs)")
async def create_product(data: ProductCreate, session: SessionDep, _: AdminDep, scope: ScopeDep) -> ProductRead:
    owner = await merchants_service.resolve_owner(session=session, scope=scope, merchant_code=data.merchant_code)
    product = await catalog_service.create_product(session=session, data=data, merchant_id=owner)
    return await catalog_service.describe_product(session=session, product=product)


@admin_router.get("/products/{product_id}", response_model=ProductRead, summary="A product, active or not")
async def admin_get_product(product_id: IdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> ProductRead:
    product = await catalog_service.get_product(session=session, product_id=product_id, active_only=False,
                                                scope=scope)
    return await catalog_service.describe_product(session=session, product=product)


@admin_router.patch("/products/{product_id}", response_model=ProductRead, summary="Update a product")
async def update_product(product_id: IdPath, data: ProductUpdate, session: SessionDep, _: AdminDep,
                         scope: ScopeDep) -> ProductRead:
    product = await catalog_service.update_product(session=session, product_id=product_id, data=data, scope=scope)
    return await catalog_service.describe_product(session=session, product=product)


@admin_router.post("/products/{product_id}/skus", response_model=SkuRead, status_code=201, summary="Add a SKU")
async def create_sku(product_id: IdPath, data: SkuCreate, session: SessionDep, _: AdminDep,
                     scope: ScopeDep) -> SkuRead:
    sku = await catalog_service.create_sku(session=session, product_id=product_id, data=data, scope=scope)
    return catalog_service.describe_sku(sku, 0)


@admin_router.patch("/skus/{sku_id}", response_model=SkuRead, summary="Update a SKU (price, limits, on/off sale)")
async def update_sku(sku_id: IdPath, data: SkuUpdate, session: SessionDep, _: AdminDep, scope: ScopeDep) -> SkuRead:
    sku = await catalog_service.update_sku(session=session, sku_id=sku_id, data=data, scope=scope)
    counts = await catalog_service.sellable_counts(session=session, sku_ids=[sku.id])
    return catalog_service.describe_sku(sku, counts.get(sku.id, 0))


@admin_router.delete("/skus/{sku_id}", status_code=204, summary="Delete a SKU nothing refers to",
                     responses={409: {"description": "In use: `references` lists what refers to it; remove that "
                                                     "configuration, or take the SKU off sale instead"}})
async def delete_sku(sku_id: IdPath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> None:
    await catalog_deletion.delete_sku(session=session, sku_id=sku_id, scope=scope)


@admin_router.delete("/products/{product_id}", status_code=204, summary="Delete a product nothing refers to",
                     responses={409: {"description": "In use: deactivate it instead"}})
async def delete_product(product_id: IdPath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> None:
    await catalog_deletion.delete_product(session=session, product_id=product_id, scope=scope)


@admin_router.delete("/categories/{category_id}", status_code=204, summary="Delete an empty category",
                     responses={409: {"description": "Still has products"}})
async def delete_category(category_id: IdPath, session: SessionDep, _: PlatformAdminDep) -> None:
    await catalog_deletion.delete_category(session=session, category_id=category_id)
