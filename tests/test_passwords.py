"""Argon2 password checks shared by staff logins and order lookup.

Other tests hash with cheap parameters (tests/conftest.py); the tests here marked `real_password_hashing`
check the production ones.
"""

from __future__ import annotations

import argon2
import pytest

from quanyi import passwords
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


@pytest.mark.real_password_hashing
async def test_hashes_use_argon2id_with_at_least_the_rfc_9106_low_memory_cost() -> None:
    stored = await hash_password("correct horse battery")
    parameters = argon2.extract_parameters(stored)
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 64 * 1024 and parameters.time_cost >= 3 and parameters.parallelism >= 1
    # A miss is checked against a dummy hash of the same cost, made on first use (not at import).
    assert argon2.extract_parameters(passwords._dummy_hash(passwords._hasher)) == parameters
    await passwords.warm_up()
    assert not await password_matches(None, "correct horse battery")
