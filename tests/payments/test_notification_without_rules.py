"""PostgreSQL: the notification's one statement (payments/express.py) names the payment stage's rule parts
(risk.payment_sql: the counted keys, the functions that read after the locks, `rule_hits`) only when the process's copy
of the rules has a payment- or delivery-stage rule for it to judge; a shop without one sends the statement without
them (a third of the plan PostgreSQL plans and sets up: docs/PERFORMANCE.md, section 29). What guards a rule the copy
does not know yet stays in both: the statement counts the enabled rules in the database and declines on a mismatch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert

from helpers import make_settings
from quanyi.config import Settings
from quanyi.risk import counters, ruleset
from quanyi.risk.models import RiskRule

_RULE_PARTS = ("rule_hits", "risk_events_after_locks", "risk_day_orders_after_locks", "counted_keys")


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The process's copy of the rules outlives the test (a loaded machine may take seconds between two requests)."""
    return make_settings(database_url, risk_rules_cache_seconds=300)


@pytest.fixture(autouse=True)
def _postgres_only(shop, monkeypatch: pytest.MonkeyPatch) -> None:
    if shop.ctx.db.write_engine.dialect.name != "postgresql":
        pytest.skip("SQLite's express lane has no one statement")
    monkeypatch.setattr(counters.random, "random", lambda: 1.0)  # no pruning of counter events now and then


@contextmanager
def _statements(shop) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    engine = shop.ctx.db.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    shop.ctx.ledger_worker.running = True  # as in `quanyi serve`: the worker posts the books later
    try:
        yield seen
    finally:
        shop.ctx.ledger_worker.running = False
        event.remove(engine, "before_cursor_execute", count)


async def _notify(shop, order) -> list[str]:
    """Pay `order`; the statements its notification sent."""
    payment = await shop.start_payment(order)
    with _statements(shop) as seen:
        response = await shop.notify(shop.notification(payment, buyer_id="payer-1"))
    assert response.text == "success" and (await shop.get_order(order))["status"] == "delivered"
    return seen


async def test_the_statement_names_the_rule_parts_only_when_a_payment_rule_is_on(shop, sku):
    await shop.stock(sku, 3)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # warms the process's caches
    plain = await _notify(shop, await shop.create_order(sku.id, contact="second@example.com"))
    assert len(plain) == 1 and not [part for part in _RULE_PARTS if part in plain[0]], plain
    async with shop.ctx.db.transaction() as session:  # the shipped rules: payment-stage rules the statement judges
        await ruleset.install_default_rules(session=session)
    judged = await _notify(shop, await shop.create_order(sku.id, contact="third@example.com"))
    assert len(judged) == 1 and all(part in judged[0] for part in _RULE_PARTS), judged


async def test_a_payment_rule_enabled_elsewhere_makes_the_statement_without_rule_parts_decline(shop, sku):
    """A rule another process enabled after this process read the rules: its copy (no rule) picks the statement
    without the rule parts, whose count of enabled rules (1, not the 0 it judged) makes it deliver nothing; the
    notification then takes the other way (more statements), and the order is still delivered once."""
    await shop.stock(sku, 2)
    await shop.pay(await shop.create_order(sku.id, contact="first@example.com"))  # the copy: no rule
    now = dt.datetime.now(dt.UTC)
    async with shop.ctx.db.transaction() as session:  # not through ruleset: this process does not see the edit
        await session.execute(insert(RiskRule).values(
            name="large orders at payment", kind="amount_limit", params={"scope": "order", "max_quantity": 50},
            action="review", score=0, reason_code="large_order", stages=["payment"], enabled=True,
            created_at=now, updated_at=now))
    seen = await _notify(shop, await shop.create_order(sku.id, contact="second@example.com"))
    assert len(seen) > 1 and not [part for part in _RULE_PARTS if part in seen[0]], seen
