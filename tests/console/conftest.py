"""Console tests log in a lot: staff passwords are hashed with a cheap argon2 here (the strength of the real
parameters is not what these tests are about; tests/staff and tests/test_passwords.py use the real ones)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from quanyi import passwords


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
