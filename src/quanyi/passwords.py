"""Argon2 password hashing, shared by staff logins and buyers' order-lookup passwords (查询密码).

Hashing and checking run off the event loop. A check with no stored hash (unknown user, unknown order)
still spends one verification, against a dummy hash made with the same parameters, so a miss costs the same
time as a wrong password. The dummy hash is made on first use, not at import: every `quanyi` command and
server process imports this module, and one argon2 hash costs ~0.5 s of CPU.
"""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "password_matches", "warm_up"]

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash nobody's password opens, made once per hasher (so its cost is the hasher's cost)."""
    return hasher.hash("quanyi-timing-equalizer")


async def warm_up() -> None:
    """Make the dummy hash now (a server calls this at startup), so the first miss costs what every miss costs."""
    await asyncio.to_thread(_dummy_hash, _hasher)


async def hash_password(password: str) -> str:
    """The argon2 hash of `password`."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(_hasher), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


async def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; False, in the same time, when there is no hash."""
    return await asyncio.to_thread(_verify, password_hash, password)
