"""Merchant applications (商户入驻申请): anyone applies (form or API), the platform reviews.

Approval creates the merchant and its owner's staff account (the login the applicant chose) in one
transaction; rejection records the reason. Either decision is final and stays on the application (who, when,
why). The applicant follows the application with its number and an access token (an HMAC under the app
secret), like a buyer follows an order.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import Conflict, DomainError, InvalidInput, NotFound
from quanyi.merchants.models import ApplicationStatus, Merchant, MerchantApplication
from quanyi.merchants.schemas import ApplicationCreate, MerchantCreate
from quanyi.merchants.service import create_merchant
from quanyi.staff import service as staff_service

__all__ = ["ApplicationNotFound", "ApplicationConflict", "ApplicationRateLimited", "ApplicationNotPending",
           "application_token", "verify_application_token", "submit_application", "get_application",
           "list_applications", "approve_application", "reject_application", "OWNER_ROLES"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The owner's account: the merchant owner role (everything within the merchant; staff are scoped to it).
OWNER_ROLES = ("merchant_owner",)


class ApplicationNotFound(NotFound):
    code = "application_not_found"


class ApplicationConflict(Conflict):
    code = "application_conflict"


class ApplicationNotPending(Conflict):
    code = "application_not_pending"


class ApplicationRateLimited(DomainError):
    code = "too_many_applications"


def application_token(secret: str, application_no: str) -> str:
    mac = hmac.new(secret.encode(), b"merchant-application:" + application_no.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


def verify_application_token(secret: str, application_no: str, token: str | None) -> bool:
    return bool(token) and len(token or "") <= 64 and hmac.compare_digest(
        application_token(secret, application_no), token or "")


async def _check_free(session: AsyncSession, code: str, username: str, *, except_id: int | None = None) -> None:
    """The code and the owner login must be free: no merchant or staff has them, no other pending application."""
    pending = select(MerchantApplication.id).where(MerchantApplication.status == ApplicationStatus.PENDING.value)
    if except_id is not None:
        pending = pending.where(MerchantApplication.id != except_id)
    if await session.scalar(select(Merchant.id).where(Merchant.code == code)) is not None or \
            await session.scalar(pending.where(MerchantApplication.code == code)) is not None:
        raise ApplicationConflict(f"the shop code {code!r} is taken; choose another", field="code")
    if not await staff_service.username_available(session=session, username=username) or \
            await session.scalar(pending.where(MerchantApplication.owner_username == username)) is not None:
        raise ApplicationConflict(f"the login name {username!r} is taken; choose another", field="owner_username")


async def submit_application(*, session: AsyncSession, data: ApplicationCreate, password_hash: str, ip: str,
                             locale: str, now: dt.datetime | None = None) -> MerchantApplication:
    """Record an application (pending). Hash the owner's password with `staff_service.hash_password` first,
    outside the transaction (argon2 is slow on purpose)."""
    username = staff_service.check_new_login(data.owner_username, data.owner_password)
    await _check_free(session, data.code, username)
    application = MerchantApplication(
        application_no="MA" + "".join(secrets.choice(_ALPHABET) for _ in range(16)),
        status=ApplicationStatus.PENDING.value, code=data.code, name=data.name, description=data.description,
        contact_name=data.contact_name, contact_email=data.contact_email, contact_phone=data.contact_phone,
        owner_username=username, owner_password_hash=password_hash, locale=locale[:8], ip=ip[:64],
        created_at=now or utcnow())
    session.add(application)
    await session.flush()
    return application


async def get_application(*, session: AsyncSession, application_no: str, lock: bool = False) -> MerchantApplication:
    stmt = select(MerchantApplication).where(MerchantApplication.application_no == application_no.strip().upper())
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    application = await session.scalar(stmt)
    if application is None:
        raise ApplicationNotFound(f"application {application_no!r} does not exist")
    return application


async def list_applications(*, session: AsyncSession, status: str | None = None,
                            limit: int = 200) -> Sequence[MerchantApplication]:
    stmt = select(MerchantApplication).order_by(MerchantApplication.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(MerchantApplication.status == status)
    return (await session.scalars(stmt)).all()


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("a reason is required for every review decision")
    return reason[:500]


async def _pending(session: AsyncSession, application_no: str) -> MerchantApplication:
    # Row lock: two reviewers deciding at once decide once.
    application = await get_application(session=session, application_no=application_no, lock=True)
    if application.status != ApplicationStatus.PENDING.value:
        raise ApplicationNotPending(f"application {application.application_no} was already {application.status}",
                                    application_status=application.status)
    return application


async def approve_application(*, session: AsyncSession, application_no: str, actor: str, reason: str,
                              commission_bps: int, hold_days: int | None = None,
                              now: dt.datetime | None = None) -> tuple[MerchantApplication, Merchant]:
    """Admit the applicant: the merchant (with these terms) and its owner's login, in the caller's transaction."""
    now = now or utcnow()
    application = await _pending(session, application_no)
    reason = _reason(reason)
    await _check_free(session, application.code, application.owner_username, except_id=application.id)
    merchant = await create_merchant(session=session, data=MerchantCreate(
        code=application.code, name=application.name, commission_bps=commission_bps, hold_days=hold_days,
        description=application.description, contact_name=application.contact_name,
        contact_email=application.contact_email, contact_phone=application.contact_phone))
    await staff_service.create_staff(session=session, username=application.owner_username, password="",
                                     password_hash=application.owner_password_hash, roles=OWNER_ROLES,
                                     merchant_id=merchant.id)
    application.status, application.merchant_id = ApplicationStatus.APPROVED.value, merchant.id
    application.reviewed_by, application.reviewed_at, application.review_reason = actor[:64], now, reason
    application.owner_password_hash = ""  # it lives on in the staff account only
    return application, merchant


async def reject_application(*, session: AsyncSession, application_no: str, actor: str, reason: str,
                             now: dt.datetime | None = None) -> MerchantApplication:
    """Refuse the application with the reason the applicant is shown; the chosen password is erased."""
    application = await _pending(session, application_no)
    application.status = ApplicationStatus.REJECTED.value
    application.reviewed_by, application.reviewed_at = actor[:64], now or utcnow()
    application.review_reason = _reason(reason)
    application.owner_password_hash = ""
    return application
