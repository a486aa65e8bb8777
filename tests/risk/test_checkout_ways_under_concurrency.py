"""One client's checkouts counted by an order-stage rule pass it exactly as often as one after the other would, when
they arrive at once, some the one-transaction way (risk.order_stage, its attempt committed with its order) and some
the general way (risk.engine.screen_checkout: its attempt recorded, then counted), each process on its own
connections: on PostgreSQL both ways take the client's advisory locks (risk.holdings.client_lock_ids) around their
count and their attempt; SQLite's one writer serializes them; a count up to now has no upper time bound."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, select

from quanyi.config import Settings
from quanyi.orders.models import Order
from quanyi.risk.models import CounterEvent
from races import race_processes
from risk.checkout_process import check_out
from risk.support import add_rule

PROCESSES = 4  # two the one-transaction way, two the general way
PER_PROCESS = 4
LIMIT = 5
CLIENT = {"ip": "203.0.113.9", "device": "racer-device", "contact": "racer@example.com"}


def _plain(settings: Settings) -> dict[str, Any]:
    values = settings.model_dump()
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    values["database_pool_size"] = PER_PROCESS
    return values


async def test_one_clients_checkouts_both_ways_at_once_pass_a_velocity_rule_exactly_as_often_as_allowed(shop,
                                                                                                        settings):
    """*contact burst* (more than 5 checkouts of one contact in an hour: refused), 16 checkouts of one client from 4
    processes at once, two of them the one-transaction way and two the general way only: exactly 5 placed, 11 refused
    (every attempt counted: 16 events). Before, a one-transaction checkout counted while a general one's attempt was
    not committed yet, and the general one counted while the other's order was not; and a count up to the moment
    read before the locks left out a later moment's attempt committed first: 8 placed (PostgreSQL)."""
    sku = await shop.make_sku(code="WAYS-RACE")
    await shop.stock(sku, PROCESSES * PER_PROCESS)
    await add_rule(shop, "velocity", {"dimension": "contact", "window_seconds": 3600, "max_count": LIMIT},
                   action="deny", name="contact burst")
    answers = race_processes(check_out, [(_plain(settings), sku.id, PER_PROCESS, n % 2 == 1, CLIENT)
                                         for n in range(PROCESSES)], doing="checking out",
                             risk_clock_now=shop.ctx.risk.now)
    outcomes = Counter(answer.split(" ", 1)[1] for answer in answers)
    assert outcomes == {"201": LIMIT, "403 order_refused": PROCESSES * PER_PROCESS - LIMIT}, " / ".join(sorted(answers))
    assert {answer.split(" ", 1)[0] for answer in answers} == {"fast", "general"}
    async with shop.ctx.db.read_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == LIMIT
        assert await session.scalar(select(func.count()).select_from(CounterEvent).where(
            CounterEvent.key == f"att:contact:{CLIENT['contact']}")) == PROCESSES * PER_PROCESS
