"""Argon2 password hashing, shared by staff logins and buyers' order-lookup passwords (查询密码).

Hashing and checking run off the event loop. A check with no stored hash (unknown user, unknown order)
still spends one verification, against a dummy hash, so a miss costs the same time as a wrong password.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "password_matches"]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("quanyi-timing-equalizer")


async def hash_password(password: str) -> str:
    """The argon2 hash of `password`."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; False, in the same time, when there is no hash."""
    return await asyncio.to_thread(_verify, password_hash, password)
