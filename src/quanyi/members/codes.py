"""One-time codes for members (会员验证码): sent to an e-mail address or phone through the notifications outbox,
the same channels as risk control's checkout codes.

A code is six digits, stored only as an HMAC keyed with the app secret, expires (QUANYI_MEMBER_CODE_TTL_SECONDS),
allows QUANYI_MEMBER_CODE_MAX_ATTEMPTS tries, is bound to its contact and purpose (a sign-in code does not add a
contact, nor the other way round) and works once. Sending is limited per contact and per client (address and
device); wrong codes are counted per client before they are checked, like order lookups.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import Settings
from quanyi.db import Database
from quanyi.errors import DomainError, InvalidInput
from quanyi.members.models import CodePurpose, MemberCode
from quanyi.notifications import service as notifications_service
from quanyi.orders.contact import normalize_contact
from quanyi.risk.service import AttemptSlot, RateLimiter, reserve_attempt

__all__ = ["SignInLimits", "ContactInvalid", "SignInRateLimited", "CodeCannotBeSent", "CodeWrong", "CodeExpired",
           "normalize_member_contact", "limit_code_requests", "send_code", "reserve_login_attempt", "check_code"]


class ContactInvalid(InvalidInput):
    code = "contact_invalid"


class SignInRateLimited(DomainError):
    code = "too_many_attempts"


class CodeCannotBeSent(DomainError):
    """No code can reach this contact: its channel is not configured (a phone number on a shop without SMS).
    `use_contact_kind` says which kind would work ("email"), if any."""
    code = "verification_unavailable"


class CodeWrong(InvalidInput):
    code = "code_wrong"


class CodeExpired(DomainError):
    """Expired, used already, out of attempts, or unknown: ask for a new code."""
    code = "code_expired"


@dataclass(frozen=True)
class SignInLimits:
    window_seconds: int
    codes_per_contact: int
    codes_per_client: int
    failures_per_client: int
    failures_per_contact: int
    code_ttl_seconds: int
    code_max_attempts: int
    session_days: float

    @classmethod
    def from_settings(cls, s: Settings) -> SignInLimits:
        return cls(s.member_login_window_seconds, s.member_codes_per_contact, s.member_codes_per_client,
                   s.member_login_max_failures_per_client, s.member_login_max_failures_per_contact,
                   s.member_code_ttl_seconds, s.member_code_max_attempts, s.member_session_days)


def normalize_member_contact(text: str) -> tuple[str, str]:
    """("email", "a@b.cn") or ("phone", "13800138000"), normalized as at checkout; ContactInvalid otherwise."""
    try:
        return normalize_contact(text)
    except ValueError as exc:
        raise ContactInvalid(str(exc), field="contact") from None


def _contact_key(prefix: str, contact: str) -> str:
    """A limiter key of a contact: a digest (fixed length; no contact in the limiter's store or Redis)."""
    return f"{prefix}:contact:{hashlib.sha256(contact.encode()).hexdigest()[:32]}"


def _client_keys(prefix: str, ip: str, device: str, limit: int) -> list[tuple[str, int]]:
    keys = [(f"{prefix}:ip:{ip}", limit)]
    if device:
        keys.append((f"{prefix}:device:{device}", limit))
    return keys


async def limit_code_requests(*, limiter: RateLimiter, limits: SignInLimits, contact: str, ip: str,
                              device: str) -> None:
    """Count one code sent to `contact` from this client; SignInRateLimited (nothing counted) past a limit. Every
    code counts, sent or not: the limit is on how often a contact can be messaged, whoever asks."""
    keys = [(_contact_key("member-code", contact), limits.codes_per_contact),
            *_client_keys("member-code", ip, device, limits.codes_per_client)]
    if await reserve_attempt(limiter, keys, window_seconds=limits.window_seconds) is None:
        raise SignInRateLimited("too many codes requested; try again later", retry_after=limits.window_seconds)


async def reserve_login_attempt(*, limiter: RateLimiter, limits: SignInLimits, ip: str, device: str,
                                contact: str | None = None) -> AttemptSlot:
    """Count one login attempt (code or password) as a failure before it is checked, per client and, for
    password logins, per contact; the caller gives the slot back when it succeeds. SignInRateLimited when a
    count is used up (then a right answer is refused too: guessing cannot win)."""
    keys = _client_keys("member-login", ip, device, limits.failures_per_client)
    if contact is not None:
        keys.append((_contact_key("member-login", contact), limits.failures_per_contact))
    slot = await reserve_attempt(limiter, keys, window_seconds=limits.window_seconds)
    if slot is None:
        raise SignInRateLimited("too many failed attempts; try again later", retry_after=limits.window_seconds)
    return slot


def _digest(secret: bytes, public_id: str, code: str) -> str:
    return hmac.new(secret, f"member-code:{public_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def send_code(*, session: AsyncSession, secret: bytes, limits: SignInLimits, purpose: CodePurpose,
                    contact_kind: str, contact: str, locale: str, ip: str, member_id: int | None = None,
                    now: dt.datetime) -> MemberCode:
    """Make a code and put it in the outbox, one transaction. CodeCannotBeSent when this contact's channel is not
    configured (the caller's transaction then rolls back: no code is left for a message nobody gets)."""
    public_id = "mc_" + secrets.token_urlsafe(18)
    code = f"{secrets.randbelow(1_000_000):06d}"
    row = MemberCode(public_id=public_id, purpose=purpose, contact_kind=contact_kind, contact=contact,
                     member_id=member_id, code_hash=_digest(secret, public_id, code), attempts=0,
                     max_attempts=limits.code_max_attempts, created_at=now,
                     expires_at=now + dt.timedelta(seconds=limits.code_ttl_seconds), ip=ip[:64])
    session.add(row)
    await session.flush()
    sent = await notifications_service.on_member_code(
        session=session, contact_kind=contact_kind, contact=contact, code=code, code_id=public_id,
        purpose=purpose.value, minutes=max(1, limits.code_ttl_seconds // 60), locale=locale, now=now)
    if not sent:
        email_works = contact_kind != "email" and notifications_service.can_send_verification_code(
            session=session, contact_kind="email")
        raise CodeCannotBeSent("we cannot send a code to this contact; use an e-mail address instead"
                               if email_works else "we cannot send a code to this contact; please contact the shop",
                               use_contact_kind="email" if email_works else None)
    return row


async def check_code(*, db: Database, secret: bytes, code_id: str, code: str, purpose: CodePurpose,
                     member_id: int | None = None, now: dt.datetime) -> tuple[str, str]:
    """Use a code: its (contact_kind, contact) once it matches; CodeWrong (the attempt is counted and committed)
    or CodeExpired otherwise. An ADD_CONTACT code works only for the member who asked for it."""
    async with db.transaction() as session:
        # Row lock: two requests with the same right code cannot both use it.
        row = await session.scalar(select(MemberCode).where(MemberCode.public_id == code_id[:40]).with_for_update())
        if row is None or row.purpose is not purpose or row.member_id != member_id:
            raise CodeExpired("this code is unknown or was not sent for this; ask for a new code")
        if row.used_at is not None or row.expires_at <= now or row.attempts >= row.max_attempts:
            raise CodeExpired("this code has expired or was used already; ask for a new code")
        row.attempts += 1
        if hmac.compare_digest(row.code_hash, _digest(secret, row.public_id, code.strip())):
            row.used_at = now
            return row.contact_kind, row.contact
        attempts_left = max(0, row.max_attempts - row.attempts)
    # Outside the block: the counted attempt is committed before we say no.
    raise CodeWrong("wrong code", attempts_left=attempts_left)
