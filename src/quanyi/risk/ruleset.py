"""The rule set in the database: create, edit, enable/disable, delete; the score thresholds; the defaults.

Each process keeps a copy of the enabled rules (`enabled_rules`), per database, behind a generation number: an
edit through this module bumps the generation of its process (at once and again when it commits), so it is in
force for this process's very next request. The copy holds committed rules only: the editing transaction reads the
rules itself (its own edits) and never fills the copy, so an edit rolled back is seen by no one else; nor does a
SQLite transaction that began before this process's latest edit committed (it may read the rules as they were). Other
processes read the rules again once their copy is `QUANYI_RISK_RULES_CACHE_SECONDS` old (2 s by default; 0 reads
them at every evaluation). The checkout hot path therefore reads no rule in the steady state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import after_commit, transaction_began, utcnow
from quanyi.db_driven import DrivenAsyncSession
from quanyi.errors import Conflict, InvalidInput, NotFound
from quanyi.risk.models import RiskPolicy, RiskRule
from quanyi.risk.rules import Decision, Stage, params_model, validate_params

__all__ = ["RuleNotFound", "RuleNameTaken", "CachedRule", "enabled_rules", "fresh_copy", "install_cache", "list_rules",
           "get_rule", "create_rule", "update_rule", "delete_rule",
           "get_policy", "set_policy", "install_default_rules", "DEFAULT_RULES", "DEFAULT_POLICY"]


class RuleNotFound(NotFound):
    code = "risk_rule_not_found"


class RuleNameTaken(Conflict):
    code = "risk_rule_name_taken"


DEFAULT_POLICY = {"challenge_at": 50, "review_at": 80, "deny_at": 120}

_ORDER = ["order"]
# The default rule set (默认规则). Velocity and distinct-contact limits catch scripts; scores let weak
# signals (night time, a first-time buyer, a large amount) add up to a challenge without blocking anyone alone.
# "cookieless surge": more than 3 addresses checking out one SKU without the shop's signed device cookie.
DEFAULT_RULES: list[dict[str, Any]] = [
    {"name": "disposable e-mail domains", "kind": "block_list", "action": "deny", "score": 0,
     "reason_code": "blocked_email_domain", "stages": _ORDER,
     "params": {"email_domains": ["mailinator.com", "yopmail.com", "guerrillamail.com", "10minutemail.com",
                                  "trashmail.com", "sharklasers.com"]}},
    {"name": "ip burst", "kind": "velocity", "action": "challenge", "score": 40, "reason_code": "ip_velocity",
     "stages": _ORDER, "params": {"dimension": "ip", "window_seconds": 600, "max_count": 5}},
    {"name": "ip flood", "kind": "velocity", "action": "deny", "score": 100, "reason_code": "ip_flood",
     "stages": _ORDER, "params": {"dimension": "ip", "window_seconds": 3600, "max_count": 30}},
    {"name": "device burst", "kind": "velocity", "action": "challenge", "score": 40,
     "reason_code": "device_velocity", "stages": _ORDER,
     "params": {"dimension": "device", "window_seconds": 600, "max_count": 3}},
    {"name": "contact burst", "kind": "velocity", "action": "challenge", "score": 40,
     "reason_code": "contact_velocity", "stages": _ORDER,
     "params": {"dimension": "contact", "window_seconds": 3600, "max_count": 4}},
    {"name": "contact repeat", "kind": "velocity", "action": "allow", "score": 25, "reason_code": "contact_repeat",
     "stages": _ORDER, "params": {"dimension": "contact", "window_seconds": 1800, "max_count": 1}},
    {"name": "cookieless surge", "kind": "velocity", "action": "challenge", "score": 40,
     "reason_code": "bot_surge", "stages": _ORDER,
     "params": {"dimension": "sku_without_device", "window_seconds": 600, "max_count": 3}},
    {"name": "many contacts per ip", "kind": "distinct_contacts", "action": "challenge", "score": 40,
     "reason_code": "ip_many_contacts", "stages": _ORDER,
     "params": {"dimension": "ip", "window_seconds": 3600, "max_distinct": 4}},
    {"name": "many contacts per device", "kind": "distinct_contacts", "action": "challenge", "score": 40,
     "reason_code": "device_many_contacts", "stages": _ORDER,
     "params": {"dimension": "device", "window_seconds": 86_400, "max_distinct": 3}},
    {"name": "card testing by ip", "kind": "card_testing", "action": "deny", "score": 80,
     "reason_code": "card_testing", "stages": _ORDER,
     "params": {"dimension": "ip", "window_seconds": 3600, "max_count": 3, "max_amount_cents": 500}},
    {"name": "card testing by device", "kind": "card_testing", "action": "deny", "score": 80,
     "reason_code": "card_testing", "stages": _ORDER,
     "params": {"dimension": "device", "window_seconds": 3600, "max_count": 2, "max_amount_cents": 500}},
    {"name": "card testing by contact", "kind": "card_testing", "action": "deny", "score": 80,
     "reason_code": "card_testing", "stages": _ORDER,
     "params": {"dimension": "contact", "window_seconds": 3600, "max_count": 3, "max_amount_cents": 500}},
    {"name": "abandoned payments by ip", "kind": "failed_payments", "action": "challenge", "score": 30,
     "reason_code": "unpaid_orders", "stages": _ORDER,
     "params": {"dimension": "ip", "window_seconds": 86_400, "max_unpaid": 5, "grace_seconds": 900}},
    {"name": "abandoned payments by contact", "kind": "failed_payments", "action": "challenge", "score": 30,
     "reason_code": "unpaid_orders", "stages": _ORDER,
     "params": {"dimension": "contact", "window_seconds": 86_400, "max_unpaid": 3, "grace_seconds": 900}},
    {"name": "large order", "kind": "amount_limit", "action": "review", "score": 0, "reason_code": "large_quantity",
     "stages": ["order", "payment"], "params": {"scope": "order", "max_quantity": 20}},
    {"name": "high value", "kind": "amount_limit", "action": "allow", "score": 15, "reason_code": "high_value",
     "stages": _ORDER, "params": {"scope": "order", "max_amount_cents": 29_999}},
    {"name": "buyer daily amount", "kind": "amount_limit", "action": "review", "score": 0,
     "reason_code": "buyer_daily_amount", "stages": ["payment"],
     "params": {"scope": "buyer_day", "max_amount_cents": 300_000}},
    {"name": "night hours", "kind": "time_window", "action": "allow", "score": 30, "reason_code": "night_time",
     "stages": _ORDER, "params": {"start": "01:00", "end": "06:00"}},
    {"name": "first purchase", "kind": "new_account", "action": "allow", "score": 5, "reason_code": "new_buyer",
     "stages": _ORDER, "params": {"min_amount_cents": 0}},
    {"name": "known buyer, new device", "kind": "new_device", "action": "allow", "score": 30,
     "reason_code": "new_device", "stages": _ORDER, "params": {"ip_must_be_new": True}},
    # Per payer account (the gateway's buyer id, known once paid): a stolen wallet or a reseller's account.
    {"name": "payer burst", "kind": "velocity", "action": "review", "score": 0, "reason_code": "payer_velocity",
     "stages": ["payment"], "params": {"dimension": "payer", "window_seconds": 3600, "max_count": 5}},
    {"name": "many contacts per payer", "kind": "distinct_contacts", "action": "review", "score": 0,
     "reason_code": "payer_many_contacts", "stages": ["payment"],
     "params": {"dimension": "payer", "window_seconds": 86_400, "max_distinct": 3}},
]


def _check_common(*, action: str, stages: list[str], score: int) -> None:
    if action not in {d.value for d in Decision}:
        raise InvalidInput(f"action must be one of {[d.value for d in Decision]}")
    if not stages or any(s not in {st.value for st in Stage} for s in stages):
        raise InvalidInput(f"stages must be a non-empty subset of {[s.value for s in Stage]}")
    if not 0 <= score <= 1000:
        raise InvalidInput("score must be between 0 and 1000")


@dataclass(frozen=True, slots=True)
class CachedRule:
    """An enabled rule as the engine evaluates it: a plain copy, shared by every request of the process."""

    id: int
    name: str
    kind: str
    params: dict[str, Any]
    stages: tuple[str, ...]
    action: str
    score: int
    reason_code: str
    # `params` as its kind's model (rules.RULE_PARAMS), validated once when the rules are read: the engine judges
    # with it instead of validating the parameters again at every evaluation. None when the stored parameters no
    # longer validate: `checked` then validates them as before and raises.
    model: Any = None

    def checked(self) -> Any:
        """The parameters as `rules.rule_hits` and `rules.extra_events` take them."""
        return self.model if self.model is not None else params_model(self.kind, self.params)


class _RulesCache:
    """One database's enabled rules in this process. `generation` counts the edits seen here: a copy read
    before the latest edit is never used, and any copy is read again once `seconds` old."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.generation = 0
        self.committed_at = -math.inf  # when (time.monotonic()) an edit made in this process last committed
        self._copy: tuple[int, float, list[CachedRule]] | None = None
        # The read in flight (single-flight): its generation and what it will answer (None: it failed).
        self._reading: tuple[int, asyncio.Future[list[CachedRule] | None]] | None = None

    def edited(self) -> None:
        self.generation += 1

    def committed(self) -> None:
        """An edit made in this process has committed: read again, and no read that may not see it is kept."""
        self.committed_at = time.monotonic()
        self.generation += 1

    def fresh(self, now: float) -> list[CachedRule] | None:
        copy = self._copy
        if copy is not None and copy[0] == self.generation and now - copy[1] < self.seconds:
            return copy[2]
        return None

    async def enabled(self, session: AsyncSession) -> list[CachedRule]:
        """The copy if fresh; else ONE caller reads the rules (single-flight: without it, every request that came
        while the copy expired read them too, a stampede under load). While it reads, the others keep using the
        expired copy of the same generation, or wait for its answer when there is none (unless they hold a pooled
        connection already: they read on it). With `seconds` 0 every caller reads (that setting's promise)."""
        now = time.monotonic()
        copy, generation = self._copy, self.generation  # an edit while reading makes this copy stale at once
        if copy is not None and copy[0] == generation and now - copy[1] < self.seconds:
            return copy[2]
        reading = self._reading
        if self.seconds > 0 and reading is not None and reading[0] == generation \
                and reading[1].get_loop() is asyncio.get_running_loop():
            if copy is not None and copy[0] == generation:
                return copy[2]
            if _holds_connection(session):
                # The read may be waiting for a pooled connection, this one's among them: waiting for it could wait
                # for the pool's timeout (every connection held by a caller waiting so). Read on our own instead.
                return await _read_enabled(session)
            # shield: a waiter cancelled (a client gone) must not cancel the read the others wait for
            answer = await asyncio.shield(reading[1])
            if answer is not None:
                return answer
            return await _read_enabled(session)  # that read failed: this caller reads on its own session
        future: asyncio.Future[list[CachedRule] | None] = asyncio.get_running_loop().create_future()
        self._reading = (generation, future)
        rules: list[CachedRule] | None = None
        try:
            # SQLite: a transaction reads the database as it was when it first read, maybe before the latest edit
            # committed: such a read answers its caller (its transaction's view) but is not kept as the copy.
            began = None if session is None else await transaction_began(session)
            rules = await _read_enabled(session)
            if (self._copy is None or self._copy[0] <= generation) and (began is None or began > self.committed_at):
                self._copy = (generation, now, rules)
        finally:
            future.set_result(rules)
            if self._reading is not None and self._reading[1] is future:
                self._reading = None
        return rules


def _holds_connection(session: AsyncSession | None) -> bool:
    """Whether `session` holds a pooled connection already (a transaction begun, or a driven unit: quanyi.db_driven
    checks one out when it starts)."""
    return session is not None and (isinstance(session, DrivenAsyncSession) or session.in_transaction())


_CACHE_KEY = "quanyi.risk.rules_cache"
# In a session's info: the transaction in which it edited the rules (see `_editing`).
_EDITING_KEY = "quanyi.risk.rules_edited_in"


def install_cache(session_info: dict[str, Any], seconds: float) -> None:
    """Give every session of a database (its `session_info`) this process's copy of the rules."""
    session_info[_CACHE_KEY] = _RulesCache(seconds)


def fresh_copy(session_info: dict[str, Any]) -> list[CachedRule] | None:
    """The enabled rules from this process's copy for the database of `session_info` (`Database.session_info`),
    or None when there is none fresh enough (then `enabled_rules` reads them)."""
    cache = session_info.get(_CACHE_KEY)
    return cache.fresh(time.monotonic()) if isinstance(cache, _RulesCache) else None


def _cache(session: AsyncSession) -> _RulesCache | None:
    cache = session.info.get(_CACHE_KEY)
    return cache if isinstance(cache, _RulesCache) else None


async def enabled_rules(*, session: AsyncSession) -> list[CachedRule]:
    """The enabled rules, from this process's copy (see the module docstring for how fresh it is); read from the
    database when the session's database has no copy installed (`install_cache`: a CLI command, say)."""
    cache = _cache(session)
    if cache is None or _editing(session):
        return await _read_enabled(session)
    return await cache.enabled(session)


def _editing(session: AsyncSession) -> bool:
    """Whether `session`'s transaction has edited the rules: it then sees its uncommitted edits, which must never
    become the process's copy (another request would use them, and keep them if the transaction rolls back)."""
    edited_in = session.info.get(_EDITING_KEY)
    return edited_in is not None and edited_in is session.sync_session.get_transaction()


async def _read_enabled(session: AsyncSession) -> list[CachedRule]:
    return [CachedRule(id=r.id, name=r.name, kind=r.kind, params=r.params, stages=tuple(r.stages), action=r.action,
                       score=r.score, reason_code=r.reason_code, model=_model_or_none(r.kind, r.params))
            for r in await list_rules(session=session, enabled_only=True)]


def _model_or_none(kind: str, params: dict[str, Any]) -> Any:
    try:
        return params_model(kind, params)
    except (KeyError, ValidationError):
        return None


def _edited(session: AsyncSession) -> None:
    """The rule set changes in `session`'s transaction: this process reads it again now and after the commit."""
    cache = _cache(session)
    if cache is None:
        return
    cache.edited()
    # The transaction object itself (not a flag): a new transaction of the session, after a commit or a rollback,
    # is no longer editing.
    session.info[_EDITING_KEY] = session.sync_session.get_transaction()

    async def again() -> None:
        cache.committed()

    after_commit(session, again)


async def list_rules(*, session: AsyncSession, enabled_only: bool = False) -> list[RiskRule]:
    query = select(RiskRule).order_by(RiskRule.id)
    if enabled_only:
        query = query.where(RiskRule.enabled.is_(True))
    return list((await session.scalars(query)).all())


async def get_rule(*, session: AsyncSession, rule_id: int) -> RiskRule:
    rule = await session.get(RiskRule, rule_id)
    if rule is None:
        raise RuleNotFound(f"no risk rule {rule_id}")
    return rule


async def _name_free(session: AsyncSession, name: str, rule_id: int | None = None) -> None:
    other = await session.scalar(select(RiskRule.id).where(RiskRule.name == name))
    if other is not None and other != rule_id:
        raise RuleNameTaken(f"a rule named {name!r} exists")


async def create_rule(*, session: AsyncSession, name: str, kind: str, params: dict[str, Any], action: str,
                      score: int = 0, reason_code: str, stages: list[str], enabled: bool = True,
                      now: dt.datetime | None = None) -> RiskRule:
    """Add a rule after validating its parameters for its kind."""
    now = now or utcnow()
    clean = validate_params(kind, params)
    _check_common(action=action, stages=stages, score=score)
    await _name_free(session, name)
    rule = RiskRule(name=name, kind=kind, params=clean, action=action, score=score, reason_code=reason_code,
                    stages=list(dict.fromkeys(stages)), enabled=enabled, created_at=now, updated_at=now)
    session.add(rule)
    await session.flush()
    _edited(session)
    return rule


async def update_rule(*, session: AsyncSession, rule_id: int, changes: dict[str, Any],
                      now: dt.datetime | None = None) -> RiskRule:
    """Change some fields of a rule; parameters are validated again for its kind."""
    nulls = sorted(field for field, value in changes.items() if value is None)
    if nulls:
        raise InvalidInput(f"{', '.join(nulls)} cannot be null; leave a field out to keep it", fields=nulls)
    rule = await get_rule(session=session, rule_id=rule_id)
    params = changes.get("params", rule.params)
    validated = validate_params(rule.kind, params)
    _check_common(action=changes.get("action", rule.action), stages=changes.get("stages", rule.stages),
                  score=changes.get("score", rule.score))
    if "name" in changes:
        await _name_free(session, changes["name"], rule.id)
    for field in ("name", "action", "score", "reason_code", "enabled"):
        if field in changes:
            setattr(rule, field, changes[field])
    if "stages" in changes:
        rule.stages = list(dict.fromkeys(changes["stages"]))
    rule.params = validated
    rule.updated_at = now or utcnow()
    _edited(session)
    return rule


async def delete_rule(*, session: AsyncSession, rule_id: int) -> None:
    await session.delete(await get_rule(session=session, rule_id=rule_id))
    _edited(session)


async def get_policy(*, session: AsyncSession) -> RiskPolicy:
    """The score thresholds; with none stored, scores alone never change a decision."""
    policy = await session.get(RiskPolicy, 1)
    return policy or RiskPolicy(id=1, challenge_at=None, review_at=None, deny_at=None)


async def set_policy(*, session: AsyncSession, challenge_at: int | None, review_at: int | None,
                     deny_at: int | None, now: dt.datetime | None = None) -> RiskPolicy:
    set_values = [v for v in (challenge_at, review_at, deny_at) if v is not None]
    if any(v < 1 for v in set_values) or set_values != sorted(set_values):
        raise InvalidInput("thresholds must be positive and challenge_at <= review_at <= deny_at")
    policy = await session.get(RiskPolicy, 1)
    if policy is None:
        policy = RiskPolicy(id=1)
        session.add(policy)
    policy.challenge_at, policy.review_at, policy.deny_at = challenge_at, review_at, deny_at
    policy.updated_at = now or utcnow()
    await session.flush()
    return policy


async def install_default_rules(*, session: AsyncSession) -> int:
    """Add the default rules that are missing (by name) and the default thresholds if none are set."""
    added = 0
    for spec in DEFAULT_RULES:
        if await session.scalar(select(RiskRule.id).where(RiskRule.name == spec["name"])) is None:
            await create_rule(session=session, **spec)
            added += 1
    if await session.get(RiskPolicy, 1) is None:
        await set_policy(session=session, **DEFAULT_POLICY)
    return added
