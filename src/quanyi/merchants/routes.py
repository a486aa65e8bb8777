"""Merchants admin API: the platform admits and manages merchants; a merchant's staff see their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from quanyi.deps import AdminDep, ContextDep, PlatformAdminDep, ReadSessionDep, ScopeDep, SessionDep, client_ip
from quanyi.merchants import applications
from quanyi.merchants import service as merchants_service
from quanyi.merchants.models import ApplicationStatus
from quanyi.merchants.schemas import (
    ApplicationAdminRead,
    ApplicationApprove,
    ApplicationCreate,
    ApplicationRead,
    ApplicationReject,
    ApplicationSubmitted,
    MerchantCreate,
    MerchantRead,
    MerchantUpdate,
)
from quanyi.passwords import hash_password
from quanyi.web.i18n import pick_locale

__all__ = ["admin_router", "router", "applications_admin_router"]

admin_router = APIRouter(prefix="/api/admin/merchants", tags=["admin: merchants"])
applications_admin_router = APIRouter(prefix="/api/admin/merchant-applications", tags=["admin: merchants"])
router = APIRouter(prefix="/api/merchant-applications", tags=["merchants"])

MerchantCodePath = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
ApplicationNoPath = Annotated[str, Path(pattern=r"^MA[0-9A-Za-z]{16}$")]


@admin_router.get("", response_model=list[MerchantRead], summary="Merchants (a merchant's staff: their own)")
async def list_merchants(session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> list[MerchantRead]:
    return [MerchantRead.model_validate(m) for m in await merchants_service.list_merchants(session=session,
                                                                                          scope=scope)]


@admin_router.post("", response_model=MerchantRead, status_code=201, summary="Admit a merchant (platform staff)")
async def create_merchant(data: MerchantCreate, session: SessionDep, _: PlatformAdminDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.create_merchant(session=session, data=data))


@admin_router.get("/{code}", response_model=MerchantRead, summary="One merchant")
async def get_merchant(code: MerchantCodePath, session: ReadSessionDep, _: AdminDep, scope: ScopeDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.get_merchant(session=session, code=code, scope=scope))


@admin_router.patch("/{code}", response_model=MerchantRead,
                    summary="Change a merchant's commission, hold period, profile or status (platform staff)")
async def update_merchant(code: MerchantCodePath, data: MerchantUpdate, session: SessionDep,
                          _: PlatformAdminDep) -> MerchantRead:
    return MerchantRead.model_validate(await merchants_service.update_merchant(session=session, code=code, data=data))


# ---------------------------------------------------------------- applications (入驻申请)

async def submit(request: Request, ctx: ContextDep, data: ApplicationCreate) -> ApplicationSubmitted:
    """Shared by the API and the application form: rate limit per address, hash, record."""
    ip = client_ip(request)
    if await ctx.limiter.hit(f"merchant-apply:ip:{ip}", 3600) > ctx.settings.merchant_applications_per_ip_hour:
        raise applications.ApplicationRateLimited("too many applications from this address; try again later",
                                                  retry_after=3600)
    password_hash = await hash_password(data.owner_password)  # before the transaction: argon2 is slow
    async with ctx.db.transaction() as session:
        application = await applications.submit_application(
            session=session, data=data, password_hash=password_hash, ip=ip,
            locale=pick_locale(request, ctx.settings.default_locale))
    token = applications.application_token(ctx.settings.app_secret.get_secret_value(), application.application_no)
    return ApplicationSubmitted(application_no=application.application_no, status=application.status,
                                access_token=token)


@router.post("", response_model=ApplicationSubmitted, status_code=201,
             summary="Apply to sell on the platform (商户入驻申请)",
             responses={409: {"description": "Shop code or login name taken"},
                        429: {"description": "Too many applications from this address"}})
async def apply(data: ApplicationCreate, request: Request, ctx: ContextDep) -> ApplicationSubmitted:
    return await submit(request, ctx, data)


@router.get("/{application_no}", response_model=ApplicationRead, summary="Follow an application",
            responses={404: {"description": "No such application, or a wrong token"}})
async def follow(application_no: ApplicationNoPath, session: ReadSessionDep, ctx: ContextDep,
                 token: Annotated[str | None, Header(alias="X-Application-Token", max_length=64)] = None
                 ) -> ApplicationRead:
    if not applications.verify_application_token(ctx.settings.app_secret.get_secret_value(), application_no.upper(),
                                                 token):
        raise applications.ApplicationNotFound(f"application {application_no!r} does not exist")
    return ApplicationRead.model_validate(await applications.get_application(session=session,
                                                                             application_no=application_no))


@applications_admin_router.get("", response_model=list[ApplicationAdminRead],
                               summary="Applications, newest first (platform staff)")
async def list_applications(session: ReadSessionDep, _: PlatformAdminDep,
                            status: Annotated[ApplicationStatus | None, Query()] = None) -> list[ApplicationAdminRead]:
    found = await applications.list_applications(session=session, status=status.value if status else None)
    return [ApplicationAdminRead.model_validate(a) for a in found]


@applications_admin_router.get("/{application_no}", response_model=ApplicationAdminRead, summary="One application")
async def get_application(application_no: ApplicationNoPath, session: ReadSessionDep,
                          _: PlatformAdminDep) -> ApplicationAdminRead:
    return ApplicationAdminRead.model_validate(await applications.get_application(session=session,
                                                                                  application_no=application_no))


@applications_admin_router.post("/{application_no}/approve", response_model=ApplicationAdminRead,
                                summary="Admit the applicant: the merchant and its owner's login are created")
async def approve_application(application_no: ApplicationNoPath, data: ApplicationApprove, session: SessionDep,
                              admin: PlatformAdminDep) -> ApplicationAdminRead:
    application, _ = await applications.approve_application(
        session=session, application_no=application_no, actor=admin, reason=data.reason,
        commission_bps=data.commission_bps, hold_days=data.hold_days)
    return ApplicationAdminRead.model_validate(application)


@applications_admin_router.post("/{application_no}/reject", response_model=ApplicationAdminRead,
                                summary="Refuse an application with the reason the applicant is shown")
async def reject_application(application_no: ApplicationNoPath, data: ApplicationReject, session: SessionDep,
                             admin: PlatformAdminDep) -> ApplicationAdminRead:
    return ApplicationAdminRead.model_validate(await applications.reject_application(
        session=session, application_no=application_no, actor=admin, reason=data.reason))
