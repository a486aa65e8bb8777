"""PostgreSQL advisory locks that serialize one client's (or payer's) risk counts across processes: all of a
check's locks in one statement, taken in one sorted order, so two checks never wait on each other crosswise.

The lock ids travel as one text parameter (`{1,2,3}`) cast to bigint[] on the server, not as a bigint[]
parameter: asyncpg looks up the codec of an array type (one catalog query, WITH RECURSIVE typeinfo_tree) on every
new connection that first sends one, and PostgreSQL spent 20-70 ms planning that query each time — ~0.7 ms of
the database's CPU per purchase in the flash-sale bench, whose 40 pooled connections each paid it once
(docs/PERFORMANCE.md, "PostgreSQL's own CPU per purchase")."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text

__all__ = ["PG_LOCKS", "PAYMENT_LOCKS", "lock_params", "payment_lock_key"]

PG_LOCKS = text("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest(CAST(CAST(:locks AS TEXT) AS bigint[])) AS k "
                "ORDER BY 1 OFFSET 0) AS ordered")


def lock_params(ids: Iterable[int]) -> dict[str, str]:
    """The parameters of `PG_LOCKS` for these lock ids."""
    return {"locks": "{" + ",".join(str(int(i)) for i in sorted(ids)) + "}"}


# A payment's counted rules (risk.payment_stage.lock_counted, risk.payment_sql): the locks of its payer / contact /
# SKU by key (`payment_lock_key`), each the 64-bit hash PostgreSQL makes of it, taken in ascending order by the
# function `risk_take_locks` (migration 7c2e4b91d0a5), which the notification's one statement calls too.
PAYMENT_LOCKS = text("SELECT risk_take_locks(CAST(:keys AS text[]))")


def payment_lock_key(dimension: str, value: object) -> str:
    """The key of the lock that serializes the payment-stage counts of one payer / contact / SKU."""
    return f"payment:{dimension}:{value}"
