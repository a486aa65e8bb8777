"""Extra verification for a checkout (二次验证): a one-time code sent to the buyer's contact through the
notifications outbox, or a captcha through a pluggable verifier.

Codes are six digits, stored only as an HMAC keyed with the app secret, expire, allow a few attempts,
and are bound to the contact they were sent to; a verified challenge cannot be used again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import inspect
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.config import import_object
from quanyi.db import Database
from quanyi.errors import DomainError, InvalidInput
from quanyi.notifications import service as notifications_service
from quanyi.risk.models import RiskChallenge

if TYPE_CHECKING:
    from quanyi.risk.engine import RiskRuntime

__all__ = ["CaptchaVerifier", "StaticTokenCaptcha", "load_captcha_verifier", "Verification", "VerificationFailed",
           "VerificationExpired", "VerificationUnavailable", "issue_challenge", "verify_challenge"]


class VerificationFailed(InvalidInput):
    code = "verification_failed"


class VerificationExpired(DomainError):
    code = "verification_expired"


class VerificationUnavailable(DomainError):
    """Checkout needs a one-time code, but the shop cannot send one to this contact (its channel is not
    configured). `use_contact_kind` says which contact would work ("email"), if any."""
    code = "verification_unavailable"


class CaptchaVerifier(Protocol):
    """A captcha provider (e.g. a slider or image captcha service) checks a token the browser obtained."""

    async def verify(self, token: str, *, ip: str) -> bool: ...


class StaticTokenCaptcha:
    """Test verifier: accepts each of the given tokens once."""

    def __init__(self, tokens: set[str]) -> None:
        self._tokens = set(tokens)

    async def verify(self, token: str, *, ip: str) -> bool:
        if token in self._tokens:
            self._tokens.discard(token)
            return True
        return False


def load_captcha_verifier(path: str) -> CaptchaVerifier:
    """The verifier QUANYI_RISK_CAPTCHA_VERIFIER names ("package.module:factory"): the factory is called once
    per process. ValueError, saying what is wrong, when it does not give a verifier."""
    setting = "QUANYI_RISK_CAPTCHA_VERIFIER"
    factory = import_object(path, setting=setting)
    try:
        verifier = factory()
    except Exception as exc:
        raise ValueError(f"{setting}: {path} failed ({type(exc).__name__}: {exc})") from exc
    if not inspect.iscoroutinefunction(getattr(verifier, "verify", None)):
        raise ValueError(f"{setting}: {path} returned {type(verifier).__name__}, which has no "
                         "`async def verify(token, *, ip)` method")
    return verifier  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Verification:
    challenge_id: str | None = None
    code: str | None = None
    captcha_token: str | None = None


def _digest(secret: bytes, public_id: str, code: str) -> str:
    return hmac.new(secret, f"{public_id}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_challenge(*, session: AsyncSession, runtime: RiskRuntime, contact: str, contact_kind: str,
                          locale: str, amount_cents: int, currency: str, now: dt.datetime) -> RiskChallenge:
    """Create a challenge and put its code in the outbox (e-mail or SMS by contact kind), one transaction.
    Raises VerificationUnavailable when the code cannot be sent; the caller's transaction then rolls back,
    so no challenge is left behind for a code nobody received."""
    public_id = "ch_" + secrets.token_urlsafe(18)
    code = f"{secrets.randbelow(1_000_000):06d}"
    channel = "email" if contact_kind == "email" else "sms"
    challenge = RiskChallenge(public_id=public_id, contact=contact, channel=channel,
                              code_hash=_digest(runtime.secret, public_id, code), attempts=0,
                              max_attempts=runtime.challenge_max_attempts,
                              expires_at=now + dt.timedelta(seconds=runtime.challenge_ttl_seconds), created_at=now)
    session.add(challenge)
    await session.flush()
    sent = await notifications_service.on_verification_code(
        session=session, contact_kind=contact_kind, contact=contact, code=code, challenge_id=public_id,
        minutes=max(1, runtime.challenge_ttl_seconds // 60), locale=locale, amount_cents=amount_cents,
        currency=currency, now=now)
    if not sent:
        raise _unavailable(session, contact_kind, channel)
    return challenge


def _unavailable(session: AsyncSession, contact_kind: str, channel: str) -> VerificationUnavailable:
    if contact_kind != "email" and notifications_service.can_send_verification_code(session=session,
                                                                                    contact_kind="email"):
        return VerificationUnavailable(
            "this order needs a one-time code, which we cannot send by SMS; please check out with an e-mail "
            "address instead, or contact the shop", channel=channel, use_contact_kind="email")
    return VerificationUnavailable(
        "this order needs a one-time code, which we cannot send to this contact; please contact the shop",
        channel=channel, use_contact_kind=None)


async def verify_challenge(*, db: Database, runtime: RiskRuntime, verification: Verification, contact: str,
                           ip: str, now: dt.datetime) -> None:
    """Accept a captcha token or a challenge's code for this contact, or raise. A wrong code counts."""
    if verification.captcha_token:
        if runtime.captcha is not None and await runtime.captcha.verify(verification.captcha_token, ip=ip):
            return
        raise VerificationFailed("the captcha was not accepted")
    if not verification.challenge_id or not verification.code:
        raise VerificationFailed("send challenge_id and verification_code (or a captcha token)")
    async with db.transaction() as session:
        challenge = await session.scalar(
            select(RiskChallenge).where(RiskChallenge.public_id == verification.challenge_id).with_for_update())
        if challenge is None or not hmac.compare_digest(challenge.contact.encode(), contact.encode()):
            raise VerificationFailed("unknown verification challenge for this contact")
        if challenge.verified_at is not None:
            raise VerificationFailed("this verification code was already used; start checkout again")
        if challenge.expires_at <= now:
            raise VerificationExpired("the verification code has expired; start checkout again for a new one")
        if challenge.attempts >= challenge.max_attempts:
            raise VerificationExpired("too many wrong codes; start checkout again for a new one")
        challenge.attempts += 1
        if hmac.compare_digest(challenge.code_hash, _digest(runtime.secret, challenge.public_id,
                                                            verification.code.strip())):
            challenge.verified_at = now
            return
    # Outside the block: the counted attempt is committed before we say no.
    raise VerificationFailed("wrong verification code",
                             attempts_left=max(0, challenge.max_attempts - challenge.attempts))
