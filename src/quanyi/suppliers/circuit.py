"""Circuit breaker per supplier (熔断), kept in the supplier row so every process shares it.

Closed: `circuit_open_until` is NULL; every call goes through. After `threshold` failures in a row
(unreachable, timeouts) it opens until now + open period. Once that has passed, the first caller to
take the trial (one conditional UPDATE, so exactly one process wins) pushes `circuit_open_until`
forward again and calls: half-open. A success closes the circuit; another failure leaves it open for
a further period. Every change is a single atomic UPDATE: no read-modify-write across processes.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import UTCDateTime, utcnow
from quanyi.suppliers.models import Supplier

__all__ = ["CircuitPolicy", "CircuitState", "circuit_state", "take_circuit_pass", "record_supplier_success",
           "record_supplier_failure"]


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    threshold: int
    open_for: dt.timedelta


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the open period is over: the next call is the trial


def circuit_state(supplier: Supplier, now: dt.datetime | None = None) -> CircuitState:
    """What the last loaded row says (for display and ranking; `take_circuit_pass` decides for real)."""
    now = now or utcnow()
    if supplier.circuit_open_until is None:
        return CircuitState.CLOSED
    return CircuitState.OPEN if supplier.circuit_open_until > now else CircuitState.HALF_OPEN


async def take_circuit_pass(*, session: AsyncSession, supplier_id: int, policy: CircuitPolicy,
                            now: dt.datetime | None = None) -> bool:
    """May we call this supplier now? Closed: yes. Open: no. Half-open: yes for exactly one caller,
    which holds the trial until it reports (the circuit stays open for everyone else meanwhile)."""
    now = now or utcnow()
    open_until = await session.scalar(select(Supplier.circuit_open_until).where(Supplier.id == supplier_id)
                                      .execution_options(populate_existing=True))
    if open_until is None:
        return True
    # Conditional on the period being over: of several processes only one matches the row.
    trial = await session.execute(
        update(Supplier).where(Supplier.id == supplier_id, Supplier.circuit_open_until <= now)
        .values(circuit_open_until=now + policy.open_for, updated_at=now)
        .execution_options(synchronize_session=False))
    return bool(trial.rowcount)  # type: ignore[attr-defined]


async def record_supplier_success(*, session: AsyncSession, supplier_id: int, now: dt.datetime | None = None) -> None:
    """The supplier answered properly (even a business "no"): close the circuit."""
    now = now or utcnow()
    await session.execute(
        update(Supplier).where(Supplier.id == supplier_id)
        .values(consecutive_failures=0, circuit_open_until=None, last_success_at=now, updated_at=now)
        .execution_options(synchronize_session=False))


async def record_supplier_failure(*, session: AsyncSession, supplier_id: int, error: str, policy: CircuitPolicy,
                                  now: dt.datetime | None = None) -> None:
    """The supplier was unreachable or timed out: count it, and open the circuit at the threshold."""
    now = now or utcnow()
    failures = Supplier.consecutive_failures + 1
    await session.execute(
        update(Supplier).where(Supplier.id == supplier_id)
        .values(consecutive_failures=failures, last_failure_at=now, last_error=error[:500], updated_at=now,
                circuit_open_until=case((failures >= policy.threshold, literal(now + policy.open_for, UTCDateTime())),
                                        else_=Supplier.circuit_open_until))
        .execution_options(synchronize_session=False))
