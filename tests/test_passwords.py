"""Argon2 password checks shared by staff logins and order lookup."""

from __future__ import annotations

from quanyi.passwords import hash_password, password_matches


async def test_a_hash_matches_its_password_only() -> None:
    stored = await hash_password("correct horse battery")
    assert stored.startswith("$argon2")
    assert await password_matches(stored, "correct horse battery")
    assert not await password_matches(stored, "correct horse battery ")


async def test_no_hash_or_a_broken_hash_never_matches() -> None:
    # No stored hash is checked against a dummy hash (same cost), whose password must not open anything.
    assert not await password_matches(None, "quanyi-timing-equalizer")
    assert not await password_matches("", "quanyi-timing-equalizer")
    assert not await password_matches("not-an-argon2-hash", "anything")
