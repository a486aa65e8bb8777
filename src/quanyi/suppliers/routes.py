"""Supplier HTTP API: the stock push endpoint suppliers call, and the admin API for suppliers, product
mappings, price policies, sync and the price-change log. Credentials are accepted, never returned."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from quanyi.deps import AdminDep, ContextDep, ReadSessionDep, ScopeDep, SessionDep
from quanyi.merchants import service as merchants_service
from quanyi.schema_types import DbId
from quanyi.suppliers import mapping as mapping_service
from quanyi.suppliers import pricing as pricing_service
from quanyi.suppliers import records as records_service
from quanyi.suppliers.push import receive_stock_callback
from quanyi.suppliers.schemas import (
    MappingCreate,
    MappingRead,
    MappingUpdate,
    PriceChangeRead,
    PricePolicyRead,
    PricePolicyResult,
    PricePolicySet,
    SupplierCreate,
    SupplierProductRead,
    SupplierRead,
    SupplierSyncStatus,
    SupplierUpdate,
    SyncResultRead,
)
from quanyi.suppliers.sync import SyncFailed, pull_supplier

__all__ = ["router", "admin_router"]

router = APIRouter(prefix="/api/suppliers", tags=["suppliers"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin: suppliers"])

CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]

# Signature headers of every dialect are small; a push larger than this is not a stock update.
_MAX_PUSH_BYTES = 1024 * 1024


@router.post("/{code}/stock-callback", summary="A supplier pushes stock/cost changes (signed, per its dialect)",
             responses={200: {"description": "The dialect's acknowledgement"},
                        400: {"description": "Not authentic or not understood: nothing changed"}})
async def stock_callback(code: CodePath, request: Request, session: SessionDep, ctx: ContextDep) -> Response:
    body = await request.body()
    if len(body) > _MAX_PUSH_BYTES:
        return Response(status_code=413, content=b"too large", media_type="text/plain")
    outcome = await receive_stock_callback(session=session, cipher=ctx.cipher, http=ctx.http, code=code,
                                           headers=dict(request.headers), body=body)
    ack = outcome.ack
    return Response(content=ack.body, status_code=ack.status_code, media_type=ack.media_type)


# ---------------------------------------------------------------- suppliers

@admin_router.get("/suppliers", response_model=list[SupplierRead], summary="Suppliers with terms and health")
async def list_suppliers(session: ReadSessionDep, ctx: ContextDep, _: AdminDep, scope: ScopeDep) -> list[SupplierRead]:
    return [await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=s)
            for s in await records_service.list_suppliers(session=session, scope=scope)]


@admin_router.post("/suppliers", response_model=SupplierRead, status_code=201, summary="Register a supplier")
async def create_supplier(data: SupplierCreate, session: SessionDep, ctx: ContextDep, _: AdminDep,
                          scope: ScopeDep) -> SupplierRead:
    owner = await merchants_service.resolve_owner(session=session, scope=scope, merchant_code=data.merchant_code)
    supplier = await records_service.create_supplier(session=session, cipher=ctx.cipher, http=ctx.http, data=data,
                                                     merchant_id=owner)
    return await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)


@admin_router.get("/suppliers/{code}", response_model=SupplierRead, summary="One supplier")
async def get_supplier(code: CodePath, session: ReadSessionDep, ctx: ContextDep, _: AdminDep,
                       scope: ScopeDep) -> SupplierRead:
    supplier = await records_service.get_supplier_by_code(session=session, code=code, scope=scope)
    return await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)


@admin_router.patch("/suppliers/{code}", response_model=SupplierRead,
                    summary="Change terms, endpoint, status; credentials given replace the stored ones")
async def update_supplier(code: CodePath, data: SupplierUpdate, session: SessionDep, ctx: ContextDep,
                          _: AdminDep, scope: ScopeDep) -> SupplierRead:
    supplier = await records_service.update_supplier(session=session, cipher=ctx.cipher, http=ctx.http, code=code,
                                                     data=data, scope=scope)
    return await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)


@admin_router.get("/suppliers/{code}/products", response_model=list[SupplierProductRead],
                  summary="A supplier's synced catalog (unmapped=true: only products no SKU uses)")
async def list_supplier_products(code: CodePath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
                                 unmapped: bool = False) -> list[SupplierProductRead]:
    return await mapping_service.list_supplier_products(session=session, code=code, unmapped_only=unmapped,
                                                        scope=scope)


@admin_router.post("/suppliers/{code}/sync", response_model=SyncResultRead,
                   summary="Pull now: the whole catalog (default) or quotes of mapped products",
                   responses={409: {"description": "Disabled, or being synced right now"},
                              502: {"description": "The supplier did not answer (recorded on its health)"}})
async def sync_supplier(code: CodePath, ctx: ContextDep, _: AdminDep, scope: ScopeDep,
                        mode: Annotated[Literal["catalog", "quotes"], Query()] = "catalog") -> SyncResultRead:
    async with ctx.db.read_session() as session:
        supplier = await records_service.get_supplier_by_code(session=session, code=code, scope=scope)
    result = await pull_supplier(db=ctx.db, cipher=ctx.cipher, http=ctx.http, supplier_id=supplier.id,
                                 full=mode == "catalog")
    if not result.ok:
        raise SyncFailed(f"supplier {result.supplier_code} did not answer: {result.error}", result=result)
    return result


@admin_router.get("/suppliers/{code}/sync-status", response_model=SupplierSyncStatus,
                  summary="Last pull and push, and every product with its last sync time and source")
async def sync_status(code: CodePath, session: ReadSessionDep, ctx: ContextDep, _: AdminDep,
                      scope: ScopeDep) -> SupplierSyncStatus:
    supplier = await records_service.get_supplier_by_code(session=session, code=code, scope=scope)
    described = await records_service.describe_supplier(session=session, cipher=ctx.cipher, supplier=supplier)
    products = await mapping_service.list_supplier_products(session=session, code=code, scope=scope)
    return SupplierSyncStatus(supplier_code=supplier.code, status=supplier.status, sync=described.sync,
                              products=products)


# ---------------------------------------------------------------- mappings

@admin_router.get("/skus/{sku_id}/supplier-mappings", response_model=list[MappingRead],
                  summary="Supplier products that fill a SKU, with cost, stock and last sync")
async def list_mappings(sku_id: IdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> list[MappingRead]:
    return await mapping_service.list_mappings(session=session, sku_id=sku_id, scope=scope)


async def _mapping_read(session: ReadSessionDep, mapping_id: int, sku_id: int) -> MappingRead:
    # Only after the scoped change that produced this mapping: it is the caller's.
    return next(m for m in await mapping_service.list_mappings(session=session, sku_id=sku_id) if m.id == mapping_id)


@admin_router.post("/skus/{sku_id}/supplier-mappings", response_model=MappingRead, status_code=201,
                   summary="Map a supplier product to a SKU (kinds must match: card key / direct recharge)")
async def create_mapping(sku_id: IdPath, data: MappingCreate, session: SessionDep, _: AdminDep,
                         scope: ScopeDep) -> MappingRead:
    mapping = await mapping_service.create_mapping(session=session, sku_id=sku_id, data=data, scope=scope)
    return await _mapping_read(session, mapping.id, mapping.sku_id)


@admin_router.patch("/supplier-mappings/{mapping_id}", response_model=MappingRead,
                    summary="Change a mapping's priority, enable or disable it")
async def update_mapping(mapping_id: IdPath, data: MappingUpdate, session: SessionDep, _: AdminDep,
                         scope: ScopeDep) -> MappingRead:
    mapping = await mapping_service.update_mapping(session=session, mapping_id=mapping_id, data=data, scope=scope)
    return await _mapping_read(session, mapping.id, mapping.sku_id)


@admin_router.delete("/supplier-mappings/{mapping_id}", status_code=204, summary="Remove a mapping")
async def delete_mapping(mapping_id: IdPath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> None:
    await mapping_service.delete_mapping(session=session, mapping_id=mapping_id, scope=scope)


# ---------------------------------------------------------------- price policy

@admin_router.get("/skus/{sku_id}/price-policy", response_model=PricePolicyRead,
                  summary="A SKU's margin floor and what the policy has changed")
async def get_price_policy(sku_id: IdPath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> PricePolicyRead:
    return PricePolicyRead.model_validate(await pricing_service.require_price_policy(session=session, sku_id=sku_id,
                                                                                    scope=scope))


@admin_router.put("/skus/{sku_id}/price-policy", response_model=PricePolicyResult,
                  summary="Set a SKU's margin floor and policy (reprice / off_sale); applied at once")
async def set_price_policy(sku_id: IdPath, data: PricePolicySet, session: SessionDep,
                           _: AdminDep, scope: ScopeDep) -> PricePolicyResult:
    policy, changes = await pricing_service.set_price_policy(session=session, sku_id=sku_id, data=data, scope=scope)
    return PricePolicyResult(policy=PricePolicyRead.model_validate(policy),
                             changes=[PriceChangeRead.model_validate(c) for c in changes])


@admin_router.delete("/skus/{sku_id}/price-policy", status_code=204,
                     summary="Stop guarding a SKU (what the policy changed stays)")
async def delete_price_policy(sku_id: IdPath, session: SessionDep, _: AdminDep, scope: ScopeDep) -> None:
    await pricing_service.require_price_policy(session=session, sku_id=sku_id, scope=scope)
    await pricing_service.delete_price_policy(session=session, sku_id=sku_id)


@admin_router.get("/supplier-price-changes", response_model=list[PriceChangeRead],
                  summary="Every automatic price / on-sale change the policy made, newest first")
async def list_price_changes(session: ReadSessionDep, _: AdminDep, scope: ScopeDep,
                             sku_id: Annotated[DbId | None, Query()] = None) -> list[PriceChangeRead]:
    changes = await pricing_service.list_price_changes(session=session, sku_id=sku_id, scope=scope)
    return [PriceChangeRead.model_validate(c) for c in changes]

