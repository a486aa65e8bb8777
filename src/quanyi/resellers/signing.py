"""Verifying a reseller's signed request (docs/supplier-protocol.md §2.1), one refusal code per failure.

Order of the checks: the app id is known (unknown_app), the timestamp within ±300 s (stale_request), the
nonce well formed and the signature right under one of the reseller's live secrets (bad_signature; a
declared body hash that verifies but does not match the body: body_mismatch), the nonce never seen in the
last 10 minutes (replayed_nonce), the reseller active (account_suspended), its rate limit (rate_limited).
A nonce is remembered only once the signature verified, so nobody without the secret can burn nonces.

Nonces live in `resellers_nonce` (a unique primary key: of two concurrent requests with one nonce exactly one
inserts it) or, with QUANYI_REDIS_URL, in Redis (`SET NX EX`, just as exact), for twice the clock window.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from quanyi.db import Database, utcnow
from quanyi.errors import DomainError
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.openapi_client import H_APP, H_BODY, H_NONCE, H_SIG, H_TS, WINDOW_SECONDS, body_sha256, request_signature
from quanyi.resellers import service as resellers_service
from quanyi.resellers.models import ResellerNonce, ResellerStatus
from quanyi.risk.service import DatabaseRateLimiter, RedisRateLimiter

__all__ = ["SignatureRefused", "RateLimited", "AccountSuspended", "Caller", "NonceStore", "DatabaseNonceStore",
           "RedisNonceStore", "build_nonce_store", "authenticate", "NONCE_TTL_SECONDS"]

NONCE_TTL_SECONDS = 2 * WINDOW_SECONDS
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class SignatureRefused(DomainError):
    """A request that is not provably from the reseller (or not fresh); `code` says which check failed."""

    code = "bad_signature"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RateLimited(DomainError):
    code = "rate_limited"


class AccountSuspended(DomainError):
    code = "account_suspended"


@dataclass(frozen=True, slots=True)
class Caller:
    """The reseller a request verified as (plain values, usable after its session ended)."""

    reseller_id: int
    code: str
    app_id: str
    account_id: int
    contact_email: str
    callback_url: str | None


class NonceStore(Protocol):
    async def first_use(self, reseller_id: int, app_id: str, nonce: str) -> bool:
        """Remember the nonce; False if it was seen within NONCE_TTL_SECONDS."""
        ...

    async def purge(self) -> int: ...

    async def close(self) -> None: ...


class DatabaseNonceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def first_use(self, reseller_id: int, app_id: str, nonce: str) -> bool:
        insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        now = utcnow()
        async with self._db.transaction() as session:
            # A nonce older than the window is fair game again: drop that row first (same key only).
            await session.execute(delete(ResellerNonce).where(
                ResellerNonce.reseller_id == reseller_id, ResellerNonce.nonce == nonce,
                ResellerNonce.seen_at < now - dt.timedelta(seconds=NONCE_TTL_SECONDS)))
            # The primary key decides: of concurrent requests with this nonce exactly one inserts a row.
            result = await session.execute(insert(ResellerNonce).values(
                reseller_id=reseller_id, nonce=nonce, seen_at=now).on_conflict_do_nothing())
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def purge(self) -> int:
        cutoff = utcnow() - dt.timedelta(seconds=NONCE_TTL_SECONDS)
        async with self._db.transaction() as session:
            result = await session.execute(delete(ResellerNonce).where(ResellerNonce.seen_at < cutoff))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def close(self) -> None:
        return None


class RedisNonceStore:
    def __init__(self, url: str, *, prefix: str = "quanyi:nonce:") -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self._prefix = prefix

    async def first_use(self, reseller_id: int, app_id: str, nonce: str) -> bool:
        # Under the shop's namespace; app ids are random too, so shops sharing a Redis never collide.
        return bool(await self._redis.set(f"{self._prefix}{app_id}:{nonce}", "1", nx=True, ex=NONCE_TTL_SECONDS))

    async def purge(self) -> int:
        return 0  # keys expire by themselves

    async def close(self) -> None:
        await self._redis.aclose()


def build_nonce_store(db: Database, redis_url: str | None, *, prefix: str = "quanyi:nonce:") -> NonceStore:
    """`prefix`: this shop's Redis namespace (Settings.redis_prefix("nonce"))."""
    return RedisNonceStore(redis_url, prefix=prefix) if redis_url else DatabaseNonceStore(db)


def _refuse(code: str, message: str) -> SignatureRefused:
    return SignatureRefused(code, message)


async def authenticate(
    *, db: Database, cipher: CardKeyCipher, nonces: NonceStore, limiter: DatabaseRateLimiter | RedisRateLimiter,
    method: str, path: str, headers: Mapping[str, str], body: bytes, now: float | None = None,
) -> Caller:
    """The reseller that signed this request, or a refusal (nothing else happens for a refused request)."""
    now = time.time() if now is None else now
    app_id, timestamp = headers.get(H_APP.lower(), ""), headers.get(H_TS.lower(), "")
    nonce, signature = headers.get(H_NONCE.lower(), ""), headers.get(H_SIG.lower(), "").lower()
    declared = headers.get(H_BODY.lower())
    if not app_id or len(app_id) > 64:
        raise _refuse("unknown_app", f"missing or unknown {H_APP}")
    async with db.read_session() as session:
        reseller = await resellers_service.get_reseller_by_app_id(session=session, app_id=app_id)
        if reseller is None:
            raise _refuse("unknown_app", f"unknown {H_APP} {app_id[:64]!r}")
        keys = [s for row in await resellers_service.live_secrets(session=session, reseller_id=reseller.id)
                if (s := resellers_service.open_secret(cipher, reseller, row)) is not None]
        caller = Caller(reseller.id, reseller.code, reseller.app_id, reseller.account_id, reseller.contact_email,
                        reseller.callback_url)
        status, rate = reseller.status, reseller.rate_limit_per_minute
    if not timestamp.isdigit() or abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise _refuse("stale_request", f"{H_TS} must be Unix seconds within {WINDOW_SECONDS} s of the shop's clock "
                                       f"(the shop's time is {int(now)})")
    if not _NONCE.match(nonce):
        raise _refuse("bad_signature", f"{H_NONCE} must be 16-64 characters of [A-Za-z0-9_-]")
    if not _HEX64.match(signature):
        raise _refuse("bad_signature", f"{H_SIG} must be 64 hex characters")
    actual = body_sha256(body)
    claimed = declared.lower() if declared else actual

    def matches(digest: str) -> bool:
        return any(hmac.compare_digest(request_signature(key, method=method, path=path, timestamp=timestamp,
                                                         nonce=nonce, body=body, body_hash=digest), signature)
                   for key in keys)

    if claimed != actual:
        if _HEX64.match(claimed) and matches(claimed):
            raise _refuse("body_mismatch", "the body is not the one that was signed (its SHA-256 differs from "
                                           f"{H_BODY}): it was changed on the way")
        raise _refuse("bad_signature", "the signature does not match (key, method, path, timestamp, nonce, body)")
    if not matches(actual):
        raise _refuse("bad_signature", "the signature does not match: it is HMAC-SHA256 with your secret over "
                                       "METHOD, PATH (with query), TIMESTAMP, NONCE and the body's SHA-256")
    if not await nonces.first_use(caller.reseller_id, caller.app_id, nonce):
        raise _refuse("replayed_nonce", f"this {H_NONCE} was already used; send a fresh one with every request")
    if status != ResellerStatus.ACTIVE.value:
        raise AccountSuspended("this reseller account is suspended; contact the shop")
    if rate > 0:
        count = await limiter.hit(f"openapi:{caller.app_id}", 60, at=now)
        if count > rate:
            retry = 60 - int(now) % 60
            raise RateLimited(f"more than {rate} requests this minute; retry in {retry} s", retry_after=retry)
    return caller
