"""Sliding-window counters (滑动窗口计数), shared by every process of the shop.

A counter is a set of (member, timestamp) events under a key. `count` is the number of distinct members
seen in the window: record a fresh member per event for a plain count, or the value itself (a contact,
say) for a distinct count. Two backends with one interface:

- Redis (QUANYI_REDIS_URL): one sorted set per key, score = timestamp; recording and pruning run in
  one Lua script, so concurrent processes never lose or double an event. Events recorded with a
  session are written as that session's transaction commits (`db.before_commit`), so a transaction that
  fails leaves none behind; counts through the same session see them meanwhile, as database counters see
  their own uncommitted rows. Written before the COMMIT, not after: whoever waits on the transaction's locks
  (the payment stage's advisory locks of a payer, risk.payment_stage.lock_counted; SQLite's one writer) counts
  them once it has the locks, as it counts the rows the transaction committed. (A COMMIT that then fails, or a
  process that dies in between, leaves them counted: a payment's members are its order, contact and member,
  the same when its notification comes again.)
- Database: one row per event, pruned past the retention. `hit` (record and count) holds a per-key lock
  (pg_advisory_xact_lock on PostgreSQL, the writer lock on SQLite), so each caller sees an exact count.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import uuid
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Subquery, case, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import Database, before_commit
from quanyi.risk.locks import PG_LOCKS, lock_params
from quanyi.risk.models import CounterEvent

__all__ = ["SlidingCounters", "DatabaseCounters", "RedisCounters", "build_counters", "fresh_member"]

logger = logging.getLogger(__name__)

Event = tuple[str, str]  # (key, member)


def fresh_member() -> str:
    """A member that is never seen twice: makes `count` a plain event count."""
    return uuid.uuid4().hex


class SlidingCounters(Protocol):
    retention_seconds: int

    async def record(self, events: Sequence[Event], *, at: float, session: AsyncSession | None = None) -> None:
        """Record events at time `at`. With a session, as part of the caller's transaction: rolled back with
        it (Redis: written only once it commits), and seen by `count` through that session meanwhile."""
        ...

    async def count(self, key: str, *, window_seconds: float, at: float, until: float | None = None,
                    session: AsyncSession | None = None) -> int:
        """Distinct members of `key` seen in (at - window, until or at]."""
        ...

    async def hit(self, key: str, *, window_seconds: float, at: float) -> int:
        """Record one fresh event and return the count in the window including it, atomically."""
        ...

    async def hit_many(self, keys: Sequence[str], *, window_seconds: float, at: float,
                       session: AsyncSession | None = None) -> list[int]:
        """`hit` on several keys at once (one transaction on the database backend: the caller's `session` when
        given); counts in `keys` order."""
        ...


# text[], not varchar[]: asyncpg has a built-in codec for text[] only (any other array type is looked up in the
# catalog on every new connection, a query PostgreSQL plans in 5-70 ms: docs/PERFORMANCE.md, section 21).
_PG_HIT = text(
    "WITH added AS (INSERT INTO risk_counter_event (key, member, at) "
    "SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:members AS text[])) AS e(key, member), "
    "(SELECT CAST(:at AS double precision)) AS t) "
    "SELECT key, count(DISTINCT member) FROM risk_counter_event "
    "WHERE key = ANY(CAST(:keys AS text[])) AND at > :low AND at <= :at GROUP BY key")


class DatabaseCounters:
    def __init__(self, db: Database, *, retention_seconds: int) -> None:
        self._db = db
        self.retention_seconds = retention_seconds

    async def _insert(self, session: AsyncSession, events: Sequence[Event], at: float) -> None:
        await session.execute(insert(CounterEvent), [{"key": k[:200], "member": m[:200], "at": at} for k, m in events])
        await self.prune_now_and_then(session, at)

    async def prune_now_and_then(self, session: AsyncSession, at: float) -> None:
        """After writing events: prune now and then rather than on every write (the index keeps old rows cheap to
        skip)."""
        if random.random() < 0.02:  # noqa: S311 - not security relevant
            await session.execute(delete(CounterEvent).where(CounterEvent.at < at - self.retention_seconds))

    async def record(self, events: Sequence[Event], *, at: float, session: AsyncSession | None = None) -> None:
        if not events:
            return
        if session is not None:
            await self._insert(session, events, at)
            return
        async with self._db.transaction() as own:
            await self._insert(own, events, at)

    async def _count(self, session: AsyncSession, key: str, low: float, high: float) -> int:
        value = await session.scalar(
            select(func.count(func.distinct(CounterEvent.member)))
            .where(CounterEvent.key == key[:200], CounterEvent.at > low, CounterEvent.at <= high))
        return int(value or 0)

    async def count(self, key: str, *, window_seconds: float, at: float, until: float | None = None,
                    session: AsyncSession | None = None) -> int:
        high = at if until is None else until
        if session is not None:
            return await self._count(session, key, at - window_seconds, high)
        async with self._db.read_session() as own:
            return await self._count(own, key, at - window_seconds, high)

    async def hit(self, key: str, *, window_seconds: float, at: float) -> int:
        return (await self.hit_many([key], window_seconds=window_seconds, at=at))[0]

    async def hit_many(self, keys: Sequence[str], *, window_seconds: float, at: float,
                       session: AsyncSession | None = None) -> list[int]:
        if session is not None:
            return await self._hit_many(session, keys, window_seconds, at)
        async with self._db.transaction() as own:
            return await self._hit_many(own, keys, window_seconds, at)

    async def _hit_many(self, session: AsyncSession, keys: Sequence[str], window_seconds: float,
                        at: float) -> list[int]:
        keys = [key[:200] for key in keys]
        events = [(key, fresh_member()) for key in keys]
        if self._db.dialect == "postgresql":
            # Serialize hits on these keys across processes: insert-then-count under READ COMMITTED would
            # otherwise let two concurrent callers both miss each other's row. Locks are taken in one fixed
            # order (one statement), so two callers hitting the same keys never wait on each other crosswise.
            await session.execute(PG_LOCKS, lock_params(self.lock_ids(keys)))
            # Insert and count in one statement: the count's snapshot (taken after the locks) misses only the
            # rows inserted here, one fresh member per key, added back below.
            rows = (await session.execute(_PG_HIT, {"keys": [k for k, _ in events], "members": [m for _, m in events],
                                                    "at": at, "low": at - window_seconds})).all()
            if random.random() < 0.02:  # noqa: S311 - prune now and then, as _insert does
                await session.execute(delete(CounterEvent).where(CounterEvent.at < at - self.retention_seconds))
            counts = {key: int(n) + keys.count(key) for key, n in rows}
            return [counts.get(key, keys.count(key)) for key in keys]
        await self._insert(session, events, at)
        counts = dict((await session.execute(
            select(CounterEvent.key, func.count(func.distinct(CounterEvent.member)))
            .where(CounterEvent.key.in_(set(keys)), CounterEvent.at > at - window_seconds, CounterEvent.at <= at)
            .group_by(CounterEvent.key))).all())
        return [int(counts.get(key, 0)) for key in keys]

    @staticmethod
    def counts_subquery(keys: Sequence[Any], *, low: Any, high: Any) -> Subquery:
        """One row: the distinct members of each of `keys` in the window (low, high], one column per key in `keys`
        order, for a caller that counts them beside other things in one statement and writes its own events later
        in the same transaction, under `lock_ids` on PostgreSQL (risk.gate.count_checkout). `keys` (cut to 200
        characters), `low` and `high` are values or bind parameters standing for them (a statement built once)."""
        return (select(*[func.count(func.distinct(case((CounterEvent.key == key, CounterEvent.member))))
                         for key in keys])
                .where(CounterEvent.key.in_(list(keys)), CounterEvent.at > low, CounterEvent.at <= high)
                .subquery("counted"))

    @staticmethod
    def lock_ids(keys: Sequence[str]) -> set[int]:
        """The advisory locks `hit_many` takes on PostgreSQL for `keys`."""
        return {zlib.crc32(key[:200].encode()) - 2**31 for key in keys}

    async def purge(self, *, at: float) -> int:
        async with self._db.transaction() as session:
            result = await session.execute(delete(CounterEvent).where(CounterEvent.at < at - self.retention_seconds))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# KEYS[1] key; ARGV: at, retention, member...  Adds (at, member) for each member, drops events past the
# retention, keeps the key alive for the retention. ZADD updates the score of a member seen before, which
# is what a distinct count wants (last seen).
_RECORD = """
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return 1
"""
# KEYS[1] key; ARGV: at, retention, window, member. Record and count in one step.
_HIT = """
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[2])))
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return redis.call('ZCOUNT', KEYS[1], '(' .. (tonumber(ARGV[1]) - tonumber(ARGV[3])), ARGV[1])
"""


# How long a transaction waits, before its COMMIT, for its events to reach Redis (one pipelined round trip, well
# under a millisecond on a healthy server; a loaded host's scheduling must not lose them); past it the events
# are lost, as when Redis is down, and the transaction commits.
COMMITTING_WRITE_SECONDS = 1.0


class RedisCounters:
    def __init__(self, url: str, *, retention_seconds: int, prefix: str = "quanyi:risk:") -> None:
        from redis.asyncio import Redis  # optional dependency: quanyi[redis]

        self._redis = Redis.from_url(url)
        self._prefix = prefix
        self._pending_key = f"quanyi.risk.redis_pending:{id(self)}"  # per session, in its `info`
        self.retention_seconds = retention_seconds
        self._record = self._redis.register_script(_RECORD)
        self._hit = self._redis.register_script(_HIT)

    async def record(self, events: Sequence[Event], *, at: float, session: AsyncSession | None = None) -> None:
        if session is None:
            await self._write([(key, member, at) for key, member in events])
            return
        pending = session.info.get(self._pending_key)
        if pending is None:
            pending = session.info[self._pending_key] = []
            before_commit(session, functools.partial(self._write_committing, pending))
        pending.extend((key, member, at) for key, member in events)

    async def _write_committing(self, events: Sequence[tuple[str, str, float]]) -> None:
        try:
            # Bounded: the transaction waits here holding its locks (a payer's advisory locks, the order's row,
            # SQLite's one writer), so a Redis that accepts and never answers must not hold them for the client's
            # own timeout (seconds) on every payment.
            await self._write(events, within=COMMITTING_WRITE_SECONDS)
        except Exception:
            # Redis away: the transaction (a payment delivered, an order placed) still commits; its count is lost,
            # as it was when this write came after the commit.
            logger.warning("could not record %d risk counter events in Redis", len(events), exc_info=True)

    async def _write(self, events: Sequence[tuple[str, str, float]], *, within: float | None = None) -> None:
        """Record the events; `within`: the most seconds the round trip to Redis may take (TimeoutError past it)."""
        by_key: dict[tuple[str, float], list[str]] = {}
        for key, member, at in events:
            by_key.setdefault((key, at), []).append(member)
        async with asyncio.timeout(within):
            if len(by_key) <= 1:
                for (key, at), members in by_key.items():
                    await self._record(keys=[self._prefix + key], args=[at, self.retention_seconds, *members])
                return
            async with self._redis.pipeline(transaction=False) as pipe:  # one round trip (under the caller's locks)
                for (key, at), members in by_key.items():
                    await self._record(keys=[self._prefix + key], args=[at, self.retention_seconds, *members],
                                       client=pipe)
                await pipe.execute()

    async def count(self, key: str, *, window_seconds: float, at: float, until: float | None = None,
                    session: AsyncSession | None = None) -> int:
        low, high = at - window_seconds, at if until is None else until
        pending = {member for k, member, t in (session.info.get(self._pending_key, ()) if session else ())
                   if k == key and low < t <= high}
        if not pending:
            return int(await self._redis.zcount(self._prefix + key, f"({low}", high))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zcount(self._prefix + key, f"({low}", high)
            for member in pending:
                pipe.zscore(self._prefix + key, member)
            seen, *scores = await pipe.execute()
        # A member this transaction will record counts once, unless it is already in the window.
        return int(seen) + sum(1 for score in scores if score is None or not low < score <= high)

    async def hit(self, key: str, *, window_seconds: float, at: float) -> int:
        return int(await self._hit(keys=[self._prefix + key],
                                   args=[at, self.retention_seconds, window_seconds, fresh_member()]))

    async def hit_many(self, keys: Sequence[str], *, window_seconds: float, at: float,
                       session: AsyncSession | None = None) -> list[int]:
        return [await self.hit(key, window_seconds=window_seconds, at=at) for key in keys]

    async def purge(self, *, at: float) -> int:
        return 0  # sorted sets are trimmed on every write and expire on their own

    async def close(self) -> None:
        await self._redis.aclose()


def build_counters(db: Database, redis_url: str | None, *, retention_seconds: int,
                   redis_prefix: str = "quanyi:risk:") -> DatabaseCounters | RedisCounters:
    if redis_url:
        return RedisCounters(redis_url, retention_seconds=retention_seconds, prefix=redis_prefix)
    return DatabaseCounters(db, retention_seconds=retention_seconds)
