"""Staff login API: exchange a username and password for an expiring bearer token, and end it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from quanyi.deps import BearerDep, ContextDep, PrincipalDep, client_ip, user_agent
from quanyi.staff import service as staff_service
from quanyi.staff.schemas import LoginRequest, LoginResponse, StaffMe

router = APIRouter(prefix="/api/staff", tags=["staff"])


@router.post("/login", response_model=LoginResponse, summary="Log in as a staff member")
async def login(data: LoginRequest, request: Request, ctx: ContextDep) -> LoginResponse:
    limits = staff_service.LoginLimits.from_settings(ctx.settings)
    token, record, user = await staff_service.login(
        db=ctx.db, limiter=ctx.limiter, limits=limits, username=data.username, password=data.password,
        ip=client_ip(request), user_agent=user_agent(request), cipher=ctx.cipher, otp=data.otp,
    )
    principal = staff_service.principal_of(user)
    return LoginResponse(token=token, expires_at=record.expires_at, username=user.username,
                         permissions=sorted(principal.permissions), roles=sorted(principal.roles))


@router.post("/logout", status_code=204, summary="End this staff session")
async def logout(
    ctx: ContextDep, principal: PrincipalDep, credentials: BearerDep) -> None:
    if principal.staff_id is not None and credentials is not None:
        async with ctx.db.transaction() as session:
            await staff_service.logout(session=session, token=credentials.credentials)


@router.get("/me", response_model=StaffMe, summary="Who this token belongs to")
async def me(principal: PrincipalDep) -> StaffMe:
    return StaffMe(username=principal.name, merchant_id=principal.merchant_id,
                   permissions=sorted(principal.permissions), roles=sorted(principal.roles))
