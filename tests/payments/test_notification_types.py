"""PostgreSQL: the hot statements with array parameters send them as text[], the one array type asyncpg encodes
without asking the server: any other (varchar[], bigint[], double precision[], boolean[]) made it run its catalog
look-up of the type on every new connection, in the first notification (or checkout) on that connection, 5-70 ms
(docs/PERFORMANCE.md, section 21)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url

from quanyi.payments import express
from quanyi.risk import counters


@pytest.fixture
def pg_url(backend: str, database_url: str) -> str:
    if backend != "postgresql":
        pytest.skip("asyncpg only")
    return database_url


async def test_notification_and_counter_statements_need_no_type_look_up(pg_url):
    dialect = asyncpg_dialect()
    statements = {
        "notification": express._PG_LOCK_AND_DELIVER_DIRECT.plan(dialect).sql,
        "notification without the rules' parts": express._PG_LOCK_AND_DELIVER_NO_RULES_DIRECT.plan(dialect).sql,
        "second statement": str(express._PG_DELIVER_COUPONS.compile(dialect=dialect)),
        "counters": str(counters._PG_HIT.compile(dialect=dialect)),
    }
    url = make_url(pg_url)
    connection = await asyncpg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                       database=url.database)
    try:
        asked: list[str] = []
        connection.add_query_logger(lambda query: asked.append(query.query))
        for name, sql in statements.items():
            asked.clear()
            await connection.prepare(sql)
            assert asked == [], f"{name}: asyncpg looked a type up: {asked[0][:60]!r}"
    finally:
        await connection.close()
