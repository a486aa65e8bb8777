"""Admin API for enterprise customers (企业客户): register, invoice data, contacts, status and credit, prepaid
top-ups, negotiated tier prices and quotes. Platform staff only: enterprises buy from the whole platform.
Operators also have `quanyi enterprises ...` (cli.py)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.catalog import service as catalog_service
from quanyi.deps import ContextDep, PlatformAdminDep, ReadSessionDep, SessionDep
from quanyi.enterprises import oauth, pricing
from quanyi.enterprises import service as enterprises_service
from quanyi.enterprises.models import Enterprise, EnterpriseStatus, LoginApp
from quanyi.enterprises.schemas import (
    BalanceRead,
    ContactCreate,
    ContactRead,
    EnterpriseCreate,
    EnterpriseRead,
    EnterpriseUpdate,
    Invoice,
    LoginAppRead,
    LoginAppSet,
    QuoteRead,
    SkuPriceRead,
    TierIn,
    TiersSet,
    TopUp,
)
from quanyi.enterprises.top_up_admin_routes import router as top_up_requests_router
from quanyi.money import line_total

__all__ = ["router", "describe", "CodePath", "IdempotencyKey"]

logger = logging.getLogger("quanyi.enterprises.admin")
router = APIRouter(prefix="/api/admin/enterprises", tags=["admin: enterprises"])
CodePath = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
SkuCodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100,
                                              pattern=r"^[\x21-\x7e]+$")]


def _invoice(data: Invoice) -> enterprises_service.InvoiceData:
    return enterprises_service.InvoiceData(**data.model_dump())


async def describe(*, session: AsyncSession, enterprise: Enterprise) -> EnterpriseRead:
    account = await enterprises_service.account_of(session=session, enterprise=enterprise)
    contacts = await enterprises_service.contacts_of(session=session, enterprise=enterprise)
    return EnterpriseRead(
        code=enterprise.code, name=enterprise.name, status=enterprise.status, account_code=account.code,
        balance_cents=account.balance_cents, credit_limit_cents=account.credit_limit_cents,
        currency=account.currency, created_at=enterprise.created_at,
        invoice=Invoice(**{name: getattr(enterprise, name) for name in Invoice.model_fields}),
        contacts=[ContactRead(id=c.id, name=c.name, role=c.role, email=c.email, phone=c.phone) for c in contacts])


@router.get("", response_model=list[EnterpriseRead], summary="Enterprise customers with balances")
async def list_enterprises(session: ReadSessionDep, _: PlatformAdminDep) -> list[EnterpriseRead]:
    return [await describe(session=session, enterprise=e)
            for e in await enterprises_service.list_enterprises(session=session)]


@router.post("", response_model=EnterpriseRead, status_code=201,
             summary="Register an enterprise customer with a prepaid account at zero and its invoice data")
async def create_enterprise(data: EnterpriseCreate, session: SessionDep, admin: PlatformAdminDep) -> EnterpriseRead:
    enterprise = await enterprises_service.create_enterprise(
        session=session, code=data.code, name=data.name, invoice=_invoice(data.invoice),
        credit_limit_cents=data.credit_limit_cents)
    logger.info("enterprise %s registered by %s", data.code, admin)
    return await describe(session=session, enterprise=enterprise)


@router.get("/{code}", response_model=EnterpriseRead, summary="One enterprise customer")
async def get_enterprise(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> EnterpriseRead:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    return await describe(session=session, enterprise=enterprise)


@router.patch("/{code}", response_model=EnterpriseRead,
              summary="Name, status (suspended: its account is frozen), credit limit, invoice data")
async def update_enterprise(code: CodePath, data: EnterpriseUpdate, session: SessionDep,
                            admin: PlatformAdminDep) -> EnterpriseRead:
    enterprise = await enterprises_service.update_enterprise(
        session=session, code=code, name=data.name, status=EnterpriseStatus(data.status) if data.status else None,
        invoice=_invoice(data.invoice) if data.invoice else None, credit_limit_cents=data.credit_limit_cents)
    logger.info("enterprise %s changed by %s: %s", code, admin, sorted(data.model_dump(exclude_none=True)))
    return await describe(session=session, enterprise=enterprise)


@router.post("/{code}/contacts", response_model=ContactRead, status_code=201, summary="Add a contact person")
async def add_contact(code: CodePath, data: ContactCreate, session: SessionDep, _: PlatformAdminDep) -> ContactRead:
    contact = await enterprises_service.add_contact(session=session, code=code, name=data.name, role=data.role,
                                                    email=data.email, phone=data.phone)
    return ContactRead(id=contact.id, name=contact.name, role=contact.role, email=contact.email, phone=contact.phone)


@router.delete("/{code}/contacts/{contact_id}", status_code=204, summary="Remove a contact person")
async def remove_contact(code: CodePath, contact_id: Annotated[int, Path(ge=1, le=2**31 - 1)], session: SessionDep,
                         _: PlatformAdminDep) -> None:
    await enterprises_service.remove_contact(session=session, code=code, contact_id=contact_id)


@router.post("/{code}/top-ups", response_model=BalanceRead, status_code=201,
             summary="Record money the enterprise paid in (Idempotency-Key: the same key credits once)")
async def top_up(code: CodePath, data: TopUp, session: SessionDep, admin: PlatformAdminDep,
                 idempotency_key: IdempotencyKey = None) -> BalanceRead:
    account, created = await enterprises_service.top_up(session=session, code=code, amount_cents=data.amount_cents,
                                                        note=data.note, actor=admin, reference=idempotency_key)
    logger.info("enterprise %s topped up by %d cents by %s (new: %s)", code, data.amount_cents, admin, created)
    return BalanceRead(account_code=account.code, balance_cents=account.balance_cents,
                       credit_limit_cents=account.credit_limit_cents, currency=account.currency, created=created)


@router.get("/{code}/prices", response_model=list[SkuPriceRead], summary="The enterprise's negotiated tier prices")
async def prices(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> list[SkuPriceRead]:
    return [SkuPriceRead(sku_code=sku.code, list_price_cents=sku.price_cents, currency=sku.currency,
                         tiers=[TierIn(min_quantity=t.min_quantity, unit_price_cents=t.unit_price_cents)
                                for t in tiers])
            for sku, tiers in await pricing.price_list(session=session, code=code)]


@router.put("/{code}/prices/{sku_code}", response_model=SkuPriceRead,
            summary="Set the enterprise's tiers of a SKU (阶梯价; replaces the earlier tiers)")
async def set_prices(code: CodePath, sku_code: SkuCodePath, data: TiersSet, session: SessionDep,
                     admin: PlatformAdminDep) -> SkuPriceRead:
    tiers = await pricing.set_tiers(session=session, code=code, sku_code=sku_code, actor=admin,
                                    tiers=[pricing.Tier(t.min_quantity, t.unit_price_cents) for t in data.tiers])
    sku = await catalog_service.get_sku_by_code(session=session, code=sku_code)
    return SkuPriceRead(sku_code=sku.code, list_price_cents=sku.price_cents, currency=sku.currency,
                        tiers=[TierIn(min_quantity=t.min_quantity, unit_price_cents=t.unit_price_cents)
                               for t in tiers])


@router.delete("/{code}/prices/{sku_code}", status_code=204, summary="Back to the list price for this SKU")
async def remove_prices(code: CodePath, sku_code: SkuCodePath, session: SessionDep, _: PlatformAdminDep) -> None:
    await pricing.remove_tiers(session=session, code=code, sku_code=sku_code)


@router.get("/{code}/quote", response_model=QuoteRead, summary="What N items of a SKU cost this enterprise")
async def quote(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep,
                sku: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")],
                quantity: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> QuoteRead:
    enterprise = await enterprises_service.get_enterprise(session=session, code=code)
    found = await catalog_service.get_sku_by_code(session=session, code=sku)
    unit = await pricing.unit_price(session=session, enterprise_id=enterprise.id, sku=found, quantity=quantity)
    return QuoteRead(sku_code=found.code, quantity=quantity, unit_price_cents=unit,
                     total_cents=line_total(unit, quantity), currency=found.currency,
                     list_price_cents=found.price_cents)


# ---------------------------------------------------------------- WeCom / DingTalk apps for claim sign-in

ProviderPath = Annotated[Literal["wecom", "dingtalk"], Path()]


def _login_app(row: LoginApp) -> LoginAppRead:
    return LoginAppRead(provider=row.provider, app_id=row.app_id, agent_id=row.agent_id, secret_hint=row.hint,
                        updated_at=row.updated_at)


@router.get("/{code}/login-apps", response_model=list[LoginAppRead],
            summary="The enterprise's WeCom / DingTalk apps for employees' sign-in on claim pages")
async def login_apps(code: CodePath, session: ReadSessionDep, _: PlatformAdminDep) -> list[LoginAppRead]:
    return [_login_app(row) for row in await oauth.login_apps(session=session, code=code)]


@router.put("/{code}/login-apps/{provider}", response_model=LoginAppRead,
            summary="Register the enterprise's WeCom app (corp id, AgentId, secret) or DingTalk app (client id, "
                    "secret); the secret is sealed and never shown again")
async def set_login_app(code: CodePath, provider: ProviderPath, data: LoginAppSet, session: SessionDep,
                        ctx: ContextDep, admin: PlatformAdminDep) -> LoginAppRead:
    row = await oauth.set_login_app(session=session, cipher=ctx.cipher, code=code, provider=provider,
                                    app_id=data.app_id, agent_id=data.agent_id, secret=data.secret, actor=admin)
    logger.info("enterprise %s %s app set by %s (app id %s)", code, provider, admin, data.app_id)
    return _login_app(row)


@router.delete("/{code}/login-apps/{provider}", status_code=204, summary="Remove the WeCom / DingTalk app")
async def remove_login_app(code: CodePath, provider: ProviderPath, session: SessionDep, _: PlatformAdminDep) -> None:
    await oauth.remove_login_app(session=session, code=code, provider=provider)


router.include_router(top_up_requests_router)  # /api/admin/enterprises/{code}/top-up-requests
