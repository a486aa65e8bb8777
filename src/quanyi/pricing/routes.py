"""Price quote API: what a checkout would cost, computed by the same function that prices the order."""

from __future__ import annotations

from fastapi import APIRouter

from quanyi.catalog import service as catalog_service
from quanyi.deps import ReadSessionDep
from quanyi.members.dependencies import OptionalMemberDep
from quanyi.money import format_money
from quanyi.pricing import service as pricing_service
from quanyi.pricing.schemas import PriceBreakdownRead, QuoteRequest

__all__ = ["router"]

router = APIRouter(prefix="/api/pricing", tags=["orders"])


@router.post("/quote", response_model=PriceBreakdownRead, summary="Preview the price of a checkout (no stock held)",
             responses={404: {"description": "No such SKU or coupon code"},
                        409: {"description": "Not on sale, or a coupon does not apply (see reason)"},
                        422: {"description": "Quantity out of range or bad input"}})
async def quote(data: QuoteRequest, session: ReadSessionDep, member: OptionalMemberDep) -> PriceBreakdownRead:
    sku = await catalog_service.get_sku(session=session, sku_id=data.sku_id)
    catalog_service.check_orderable(sku, data.quantity, supplied=True)
    breakdown = await pricing_service.price_order(session=session, sku=sku, quantity=data.quantity,
                                                  member_id=member.member_id if member else None,
                                                  points=data.points, coupon_codes=data.coupon_codes,
                                                  member_coupon_ids=data.member_coupon_ids)
    return PriceBreakdownRead(**breakdown.as_dict(),  # type: ignore[arg-type]
                              payable_display=format_money(breakdown.payable_cents, breakdown.currency))
