"""Risk admin API: rules, score thresholds, the decision log and the review queue (admin token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep, require_permission
from quanyi.orders import service as orders_service
from quanyi.orders.models import Order
from quanyi.refunds import service as refunds_service
from quanyi.risk import review as review_service
from quanyi.risk import ruleset
from quanyi.risk.models import RiskDecisionLog
from quanyi.risk.rules import describe_kinds
from quanyi.risk.schemas import (
    DecisionRead,
    HeldOrderRead,
    PolicyRead,
    PolicyUpdate,
    ReviewActionRead,
    ReviewDecision,
    ReviewResult,
    RuleCreate,
    RuleRead,
    RuleUpdate,
)

RuleIdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
OrderNoPath = Annotated[str, Path(min_length=1, max_length=64, description="Order number")]

# Reviewers (staff with risk.review) work the queue of their scope (a merchant's staff: their merchant's held
# orders); rules and thresholds are the platform's (risk control protects every merchant alike).
ReviewerDep = Annotated[str, require_permission("risk.review")]
admin_router = APIRouter(prefix="/api/admin/risk", tags=["admin: risk"])


@admin_router.get("/rule-kinds", summary="Built-in rule types and their parameters")
async def rule_kinds(_: PlatformAdminDep) -> list[dict[str, Any]]:
    return list(describe_kinds())


@admin_router.get("/rules", response_model=list[RuleRead])
async def list_rules(_: PlatformAdminDep, session: ReadSessionDep) -> list[Any]:
    return await ruleset.list_rules(session=session)


@admin_router.post("/rules", response_model=RuleRead, status_code=201,
                   summary="Add a rule (in force for the next request of every process)")
async def create_rule(data: RuleCreate, _: PlatformAdminDep, session: SessionDep) -> Any:
    return await ruleset.create_rule(session=session, **data.model_dump())


@admin_router.post("/rules/defaults", response_model=list[RuleRead], summary="Add the missing default rules")
async def install_defaults(_: PlatformAdminDep, session: SessionDep) -> list[Any]:
    await ruleset.install_default_rules(session=session)
    return await ruleset.list_rules(session=session)


@admin_router.get("/rules/{rule_id}", response_model=RuleRead)
async def get_rule(rule_id: RuleIdPath, _: PlatformAdminDep, session: ReadSessionDep) -> Any:
    return await ruleset.get_rule(session=session, rule_id=rule_id)


@admin_router.patch("/rules/{rule_id}", response_model=RuleRead, summary="Edit, enable or disable a rule")
async def update_rule(rule_id: RuleIdPath, data: RuleUpdate, _: PlatformAdminDep, session: SessionDep) -> Any:
    return await ruleset.update_rule(session=session, rule_id=rule_id, changes=data.model_dump(exclude_unset=True))


@admin_router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: RuleIdPath, _: PlatformAdminDep, session: SessionDep) -> None:
    await ruleset.delete_rule(session=session, rule_id=rule_id)


@admin_router.get("/policy", response_model=PolicyRead, summary="Score thresholds")
async def get_policy(_: PlatformAdminDep, session: ReadSessionDep) -> Any:
    return await ruleset.get_policy(session=session)


@admin_router.put("/policy", response_model=PolicyRead)
async def set_policy(data: PolicyUpdate, _: PlatformAdminDep, session: SessionDep) -> Any:
    return await ruleset.set_policy(session=session, **data.model_dump())


@admin_router.get("/decisions", response_model=list[DecisionRead], summary="Decision log (everything not allowed)")
async def decisions(_: ReviewerDep, scope: ScopeDep, session: ReadSessionDep,
                    order_no: Annotated[str | None, Query(max_length=64)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[Any]:
    query = select(RiskDecisionLog).order_by(RiskDecisionLog.id.desc()).limit(limit)
    if order_no or not scope.is_platform:
        # A merchant's staff see decisions on their merchant's orders only (checkout refusals have no order).
        query = query.join(Order, Order.id == RiskDecisionLog.order_id).where(scope.where(Order.merchant_id))
    if order_no:
        query = query.where(Order.order_no == order_no.upper())
    return list((await session.scalars(query)).all())


@admin_router.get("/reviews", response_model=list[HeldOrderRead], summary="Paid orders held for review")
async def held_orders(_: ReviewerDep, scope: ScopeDep, session: ReadSessionDep) -> list[HeldOrderRead]:
    held = await review_service.list_held_orders(session=session, scope=scope)
    return [HeldOrderRead(
        order_no=h.order.order_no, status=h.order.status.value, product_name=h.order.product_name,
        sku_name=h.order.sku_name, quantity=h.order.quantity, total_cents=h.order.total_cents,
        currency=h.order.currency, contact=h.order.contact, paid_at=h.order.paid_at,
        status_reason=h.order.status_reason,
        signals={"ip": h.signals.ip, "device": h.signals.device, "review_reason": h.signals.review_reason}
        if h.signals else None,
        decisions=[DecisionRead.model_validate(d) for d in h.decisions]) for h in held]


@admin_router.post("/reviews/{order_no}/approve", response_model=ReviewResult,
                   summary="Approve a held order: it is delivered now")
async def approve(order_no: OrderNoPath, data: ReviewDecision, actor: ReviewerDep, scope: ScopeDep,
                  session: SessionDep) -> ReviewResult:
    order, effect = await review_service.approve_order(session=session, order_no=order_no, actor=actor,
                                                       reason=data.reason, scope=scope)
    return ReviewResult(order_no=order.order_no, status=order.status.value, effect=effect.value)


@admin_router.post("/reviews/{order_no}/reject", response_model=ReviewResult,
                   summary="Reject a held order: its keys go back to stock and the payment is refunded")
async def reject(order_no: OrderNoPath, data: ReviewDecision, actor: ReviewerDep, scope: ScopeDep,
                 ctx: ContextDep) -> ReviewResult:
    async with ctx.db.transaction() as session:
        order, refund_no = await review_service.reject_order(session=session, order_no=order_no, actor=actor,
                                                             reason=data.reason, scope=scope)
        refund_id = (await refunds_service.get_refund(session=session, refund_no=refund_no)).id
    # Committed: the refund exists whatever happens next. Now the gateway call, outside any transaction; a
    # gateway that fails is retried in the background like any refund.
    await refunds_service.execute_refund(db=ctx.db, gateways=ctx.gateways, refund_id=refund_id)
    async with ctx.db.read_session() as session:
        status = (await orders_service.get_order(session=session, order_no=order_no)).status
    return ReviewResult(order_no=order_no, status=status.value, refund_no=refund_no)


@admin_router.get("/review-actions", response_model=list[ReviewActionRead], summary="Audit of review decisions")
async def review_actions(_: ReviewerDep, scope: ScopeDep, session: ReadSessionDep) -> list[Any]:
    return await review_service.list_review_actions(session=session, scope=scope)
