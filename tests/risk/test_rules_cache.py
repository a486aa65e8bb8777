"""The process's copy of the enabled rules (risk.ruleset._RulesCache): one read refreshes it, however many
requests arrive while it expires (single-flight)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, text

from quanyi.db import Database
from quanyi.risk import rules, ruleset
from quanyi.risk.models import RiskRule
from quanyi.risk.ruleset import CachedRule, _RulesCache
from risk.support import add_rule, checkout

CALLERS = 50


def _rule(name: str) -> CachedRule:
    return CachedRule(id=1, name=name, kind="amount_limit", params={"scope": "order", "max_quantity": 20},
                      stages=("order",), action="review", score=0, reason_code="large_quantity")


class _Reads:
    """Stands in for the database read: counts the reads, each taking a moment (as a read under load does)."""

    def __init__(self) -> None:
        self.count = 0
        self.fail = False
        self.name = "v1"

    async def __call__(self, session: Any) -> list[CachedRule]:
        self.count += 1
        name = self.name  # the rules as they were when the read began
        await asyncio.sleep(0.02)
        if self.fail:
            self.fail = False
            raise RuntimeError("the database went away")
        return [_rule(name)]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> _Reads:
    reads = _Reads()
    monkeypatch.setattr(ruleset, "_read_enabled", reads)
    return reads


def _expire(cache: _RulesCache) -> None:
    assert cache._copy is not None
    generation, at, rules = cache._copy
    cache._copy = (generation, at - cache.seconds - 1, rules)


async def test_many_callers_at_expiry_read_the_rules_once_and_none_waits_for_it(reads):
    cache = _RulesCache(2.0)
    await cache.enabled(None)  # type: ignore[arg-type]
    reads.name = "v2"
    _expire(cache)
    answers = await asyncio.gather(*(cache.enabled(None) for _ in range(CALLERS)))  # type: ignore[arg-type]
    assert reads.count == 2  # the first copy, then ONE refresh (the old code: one per caller, 51)
    assert answers[0][0].name == "v2"  # the caller that read has the new rules ...
    assert {a[0].name for a in answers[1:]} == {"v1"}  # ... the others used the expired copy meanwhile
    assert (await cache.enabled(None))[0].name == "v2"  # type: ignore[arg-type]
    assert reads.count == 2


async def test_callers_without_a_copy_wait_for_the_one_read(reads):
    cache = _RulesCache(2.0)
    answers = await asyncio.gather(*(cache.enabled(None) for _ in range(CALLERS)))  # type: ignore[arg-type]
    assert reads.count == 1
    assert {a[0].name for a in answers} == {"v1"}


async def test_an_edit_while_a_read_is_in_flight_is_not_answered_by_that_read(reads):
    cache = _RulesCache(2.0)
    first = asyncio.create_task(cache.enabled(None))  # type: ignore[arg-type]
    await asyncio.sleep(0)  # its read is in flight
    cache.edited()
    reads.name = "v2"
    assert (await cache.enabled(None))[0].name == "v2"  # type: ignore[arg-type]
    assert (await first)[0].name == "v1"
    assert reads.count == 2
    assert (await cache.enabled(None))[0].name == "v2"  # type: ignore[arg-type]  # the older read kept nothing


async def test_a_failed_read_fails_its_caller_and_the_waiters_read_for_themselves(reads):
    cache = _RulesCache(2.0)
    reads.fail = True
    answers = await asyncio.gather(*(cache.enabled(None) for _ in range(3)),  # type: ignore[arg-type]
                                   return_exceptions=True)
    assert isinstance(answers[0], RuntimeError)
    assert [a[0].name for a in answers[1:]] == ["v1", "v1"]  # type: ignore[index]
    assert reads.count == 3
    assert cache._reading is None


async def test_a_waiter_cancelled_does_not_cancel_the_read(reads):
    cache = _RulesCache(2.0)
    reader = asyncio.create_task(cache.enabled(None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.enabled(None))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    waiter.cancel()
    assert (await reader)[0].name == "v1"
    assert waiter.cancelled()
    assert reads.count == 1


async def test_with_no_cache_delay_every_caller_reads(reads):
    cache = _RulesCache(0)
    await asyncio.gather(*(cache.enabled(None) for _ in range(5)))  # type: ignore[arg-type]
    assert reads.count == 5


class _RolledBack(Exception):
    pass


async def test_rules_edited_and_rolled_back_are_never_the_process_copy(shop):
    """A session that edits the rules and reads them (its own edit: its transaction's view) leaves the process's
    copy holding committed rules only: neither another session meanwhile nor a checkout after the rollback sees the
    rolled-back edit (the old code kept the editing session's read as the copy of the new generation)."""
    sku = await shop.make_sku(code="ROLLED-BACK")
    await shop.stock(sku, 3)
    rule = await add_rule(shop, "block_list", {"ips": ["192.0.2.1"]})
    db = shop.ctx.db
    with pytest.raises(_RolledBack):
        async with db.transaction() as session:
            await ruleset.update_rule(session=session, rule_id=rule["id"], changes={"enabled": False})
            await session.flush()
            assert await ruleset.enabled_rules(session=session) == []  # its own edit, in its transaction
            async with db.read_session() as other:
                assert [r.id for r in await ruleset.enabled_rules(session=other)] == [rule["id"]]
            assert await ruleset.enabled_rules(session=session) == []
            raise _RolledBack
    assert [r.id for r in ruleset.fresh_copy(db.session_info) or []] == [rule["id"]]  # the other session's read
    assert (await checkout(shop, sku.id, ip="192.0.2.1")).status_code == 403  # the committed rule (old code: 201)


async def test_callers_holding_every_connection_never_wait_for_a_read_that_needs_one(shop):
    """Single flight on a busy pool: the first caller after the copy went stale (an edit in this process, the start)
    reads on a session that has no connection yet and waits for one; payments that hold every connection of the pool
    (their order rows locked) then ask for the rules. They read on their own connections: waiting for that read
    waited for their own connections, every payment of the process stalled for the pool's timeout (30 s) and the
    read then failed."""
    if shop.ctx.db.is_sqlite:
        pytest.skip("PostgreSQL's bounded pool")
    rule = await add_rule(shop, "block_list", {"ips": ["192.0.2.1"]})
    db = Database(shop.ctx.db.url, pool_size=1)  # two connections at most
    ruleset.install_cache(db.session_info, 2.0)

    async def fresh() -> list[CachedRule]:
        async with db.read_session() as session:
            return await ruleset.enabled_rules(session=session)

    try:
        async with db.transaction() as one, db.transaction() as other:
            for session in (one, other):
                await session.execute(text("SELECT 1"))  # each holds a connection: the pool is used up
            reader = asyncio.create_task(fresh())  # the read, waiting for a connection
            await asyncio.sleep(0.2)
            answers = await asyncio.wait_for(asyncio.gather(ruleset.enabled_rules(session=one),
                                                            ruleset.enabled_rules(session=other)), 10)
            assert [[r.id for r in rules] for rules in answers] == [[rule["id"]], [rule["id"]]]
        assert [r.id for r in await asyncio.wait_for(reader, 10)] == [rule["id"]]
    finally:
        await db.dispose()


async def test_checkouts_judge_with_the_parameters_validated_when_the_rules_were_read(shop, monkeypatch):
    """Each rule's parameters are validated once per read of the rules (ruleset.CachedRule.model), not at every
    evaluation (the old code validated every rule's parameters on every checkout, twice or more on the one-transaction
    way); an edit is judged with its new parameters at once."""
    shop.ctx.db.session_info[ruleset._CACHE_KEY].seconds = 300  # no expiry in between, however slow the machine
    sku = await shop.make_sku(code="VALIDATED-ONCE")
    await shop.stock(sku, 10)
    await add_rule(shop, "velocity", {"dimension": "ip", "window_seconds": 600, "max_count": 50}, action="challenge")
    await add_rule(shop, "card_testing", {"dimension": "ip", "window_seconds": 600, "max_count": 50,
                                          "max_amount_cents": 500})
    listed = await add_rule(shop, "block_list", {"ips": ["192.0.2.1"]})
    assert (await checkout(shop, sku.id, ip="192.0.2.1")).status_code == 403  # the rules read: the copy filled
    validated: list[str] = []
    real = rules.params_model

    def counted(kind: str, params: Any) -> Any:
        validated.append(kind)
        return real(kind, params)

    monkeypatch.setattr(rules, "params_model", counted)  # what an evaluation would validate with
    monkeypatch.setattr(ruleset, "params_model", counted)  # what a read of the rules validates with
    for n in range(3):
        assert (await checkout(shop, sku.id, ip=f"198.51.100.{n + 1}", contact=f"b{n}@example.com")).status_code == 201
    assert validated == []  # the old code: 3 rules x every evaluation
    changed = await shop.client.patch(f"/api/admin/risk/rules/{listed['id']}", headers=shop.admin,
                                      json={"params": {"ips": ["192.0.2.2"]}})
    assert changed.status_code == 200, changed.text
    assert (await checkout(shop, sku.id, ip="192.0.2.2", contact="c@example.com")).status_code == 403
    assert (await checkout(shop, sku.id, ip="192.0.2.1", contact="d@example.com")).status_code == 201
    assert sorted(validated) == ["block_list", "card_testing", "velocity"]  # once each: the read after the edit


async def test_a_read_whose_snapshot_began_before_an_edit_committed_is_not_the_copy_of_the_edit(shop):
    """A session that read the database before a rule edit of this process committed (SQLite: a deferred transaction
    reads the database as it was at its first read) and reads the rules after it: it sees the old rules (its
    transaction's view), but they are not kept as the process's copy, which the checkout after uses (the old code kept
    them as the new generation's copy until it expired: the disabled block list still refused the checkout, 403)."""
    sku = await shop.make_sku(code="OLD-SNAPSHOT")
    await shop.stock(sku, 1)
    rule = await add_rule(shop, "block_list", {"ips": ["192.0.2.1"]})
    db = shop.ctx.db
    async with db.read_session() as reader:
        await reader.execute(select(RiskRule.id))  # its snapshot begins (SQLite)
        async with db.transaction() as session:
            await ruleset.update_rule(session=session, rule_id=rule["id"], changes={"enabled": False})
        seen = [r.id for r in await ruleset.enabled_rules(session=reader)]
        assert seen == ([rule["id"]] if shop.ctx.db.is_sqlite else [])  # PostgreSQL: each statement reads anew
    assert ruleset.fresh_copy(db.session_info) in (None, [])
    assert (await checkout(shop, sku.id, ip="192.0.2.1")).status_code == 201
