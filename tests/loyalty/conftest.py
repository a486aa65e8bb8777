"""Member tests: e-mail is configured, so sign-in codes go to the outbox (where the tests read them)."""

from __future__ import annotations

import pytest

from helpers import make_settings


@pytest.fixture
def settings(database_url: str):
    return make_settings(database_url, smtp_host="127.0.0.1", smtp_from="shop@example.com")
