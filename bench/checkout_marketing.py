"""CPU of a checkout with marketing (a signed-in member using a coupon code) next to a plain guest checkout.

Issue 12's budget: a checkout with marketing may cost at most 25 % more shop CPU than a plain one. Both lanes run
in one process on one fresh database, straight through ASGI (bench/hot_path.py's harness), interleaved one plain,
one marketing purchase, so machine load and database growth fall on both alike. Each purchase is complete:
checkout -> start payment -> the sandbox's signed notification (the coupon is used on payment). Per lane it prints
CPU and SQL statements per checkout, per notification and per purchase, and the marketing/plain ratios.

The marketing lane is issue 12's "coupon + points + tier": a member session (X-Member-Token: the member is looked
up, orders.member_id set, the distribution binding asked), whose level (会员等级, 5 % off) gives the member price,
a public 满减 coupon code (validated, priced, taken with the order, used on payment), and 100 of the member's
1,000 points (an operator's gift made before the run) spent on the order (taken off the balance and posted).

    python bench/checkout_marketing.py                 # SQLite, 200 purchases per lane
    python bench/checkout_marketing.py --pg --purchases 300
    python bench/checkout_marketing.py --show-sql "marketing checkout"   # one request's statements
    python bench/checkout_marketing.py --profile "marketing checkout"    # where its CPU goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import pstats
import sys
import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import event

from benchlib import FreshDatabase, buyer_headers, make_settings, prepare_shop, resolve_database_url
from hot_path import Asgi, Meter
from purchase import notification
from quanyi.app import create_app
from quanyi.context import build_context
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.pricing.arithmetic import percent_of

COUPON = "BENCH3"
COUPON_OFF_CENTS = 300
LEVEL_DISCOUNT_BPS = 500  # the members' level: 5 % off the list price
POINTS_GIVEN, POINTS_SPENT = 1000, 100
PHASES = ("plain checkout", "plain notify", "marketing checkout", "marketing notify")


async def _members(ctx: Any, count: int) -> list[str]:
    """`count` members with an open session each (as after signing in by code), each at the bench level and
    holding POINTS_GIVEN points (an operator's gift, posted to the ledger): their session tokens."""
    tokens = []
    async with ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="BENCH", name="Bench member", min_paid_cents=0,
                                       discount_bps=LEVEL_DISCOUNT_BPS)
        for n in range(count):
            member = Member(email=f"member{n}@example.com")
            session.add(member)
            await session.flush()
            tokens.append(await open_member_session(session=session, member=member, method=LoginMethod.CODE,
                                                    days=1, ip="10.0.0.1", user_agent="bench"))
            await loyalty_points.adjust(session=session, member_id=member.id, points=POINTS_GIVEN,
                                        reason="bench gift", actor="bench")
        await loyalty_levels.reevaluate(session=session)  # every member reaches the bench level (from 0 paid)
    return tokens


async def _coupon(client: Asgi, admin_token: str) -> None:
    now = dt.datetime.now(dt.UTC)
    body = {"name": "3 yuan off", "kind": "amount_off", "amount_off_cents": COUPON_OFF_CENTS, "distribution": "code",
            "code": COUPON, "per_member_limit": 1, "starts_at": (now - dt.timedelta(days=1)).isoformat(),
            "ends_at": (now + dt.timedelta(days=1)).isoformat()}
    status, answer = await client.request("POST", "/api/admin/coupons", body=json.dumps(body).encode(),
                                          headers={"Authorization": f"Bearer {admin_token}"})
    if status != 201:
        raise SystemExit(f"creating the coupon answered {status}: {answer[:300]!r}")


async def _purchase(client: Asgi, meter: Meter, lane: str, secret: str, n: int, sku_id: int,
                    member_token: str | None) -> int:
    headers = buyer_headers(n)
    ip = headers.pop("X-Forwarded-For")
    order_body: dict[str, Any] = {"sku_id": sku_id, "quantity": 1, "contact": f"fan{n}@example.com"}
    if member_token:
        headers["X-Member-Token"] = member_token
        order_body["coupon_codes"] = [COUPON]
        order_body["points"] = POINTS_SPENT
    status, answer = await meter.run(f"{lane} checkout", client.request(
        "POST", "/api/orders", body=json.dumps(order_body).encode(), headers=headers, client=ip))
    if status != 201:
        raise SystemExit(f"{lane} checkout answered {status}: {answer[:300]!r}")
    order = json.loads(answer)
    meter.phase = "start payment"  # not measured: the same request in both lanes
    status, answer = await client.request("POST", f"/api/orders/{order['order_no']}/payments",
                                          body=b'{"gateway": "sandbox"}',
                                          headers={"X-Order-Token": order["access_token"]}, client=ip)
    if status != 201:
        raise SystemExit(f"start payment answered {status}: {answer[:300]!r}")
    form = urlencode(notification(secret, json.loads(answer))).encode()
    status, answer = await meter.run(f"{lane} notify", client.request(
        "POST", "/payments/sandbox/notify", body=form, content_type="application/x-www-form-urlencoded"))
    if status != 200 or answer != b"success":
        raise SystemExit(f"{lane} notification answered {status}: {answer[:300]!r}")
    return int(order["total_cents"])


async def race(url: str, secrets_: dict[str, str], sku_id: int, purchases: int, meter: Meter) -> None:
    ctx = build_context(make_settings(url, secrets_, run_background_tasks=False))
    app = create_app(ctx=ctx)
    client = Asgi(app)
    stop = await client.lifespan()
    worker = getattr(ctx, "ledger_worker", None)
    if worker is not None:  # as in `quanyi serve`: postings are the worker's (not measured here)
        worker.running = True
    try:
        await _coupon(client, secrets_["QUANYI_ADMIN_TOKEN"])
        tokens = await _members(ctx, purchases + 1)  # the last one for the warm-up
        for engine in {ctx.db.write_engine.sync_engine, ctx.db.read_engine.sync_engine}:
            event.listen(engine, "before_cursor_execute", meter.on_statement)
        secret = secrets_["QUANYI_SANDBOX_SECRET"]
        plain_total = marketing_total = 0
        # Two warm-up purchases, one per lane (first-use caches, statements compiled once per process: the
        # marketing lane's are its own), then the measured ones, interleaved.
        await _purchase(client, Meter(), "plain", secret, 2 * purchases, sku_id, None)
        await _purchase(client, Meter(), "marketing", secret, 2 * purchases + 1, sku_id, tokens[purchases])
        for n in range(purchases):
            plain_total += await _purchase(client, meter, "plain", secret, n, sku_id, None)
            marketing_total += await _purchase(client, meter, "marketing", secret, purchases + n, sku_id,
                                               tokens[n])
        unit = plain_total // purchases
        off = percent_of(unit, LEVEL_DISCOUNT_BPS) + COUPON_OFF_CENTS + POINTS_SPENT  # a point is worth a cent
        if marketing_total != plain_total - off * purchases:
            raise SystemExit(f"level, coupon and points took {plain_total - marketing_total} cents off {purchases} "
                             f"orders, not {off * purchases}")
        if worker is not None:
            from quanyi.ledger.deferred import post_all_deferred
            meter.phase = "ledger"  # not measured
            await post_all_deferred(ctx.db)
    finally:
        await stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument("--purchases", type=int, default=200, help="purchases per lane (200)")
    parser.add_argument("--show-sql", choices=PHASES, help="print the SQL statements of one request of this phase")
    parser.add_argument("--profile", choices=PHASES, help="cProfile this phase (the top functions by own time)")
    parser.add_argument("--lines", type=int, default=40, help="lines of the profile (40)")
    args = parser.parse_args()
    meter = Meter()
    meter.show_sql = args.show_sql
    if args.profile:
        meter.profiler, meter.profile_phase = cProfile.Profile(), args.profile
    started = time.perf_counter()
    with FreshDatabase(resolve_database_url(args.pg, args.database_url)) as db:
        shop = prepare_shop(db, keys=2 * args.purchases + 2)
        asyncio.run(race(db.url, shop.secrets, shop.sku_id, args.purchases, meter))
    print(f"{db.backend}: {args.purchases} purchases per lane, interleaved, in-process over ASGI "
          f"({time.perf_counter() - started:.0f} s wall)")
    print(f"{'request':<20}{'n':>6}{'CPU ms':>9}{'SQL':>6}")
    cpu = {}
    for phase in PHASES:
        n = max(meter.count[phase], 1)
        cpu[phase] = 1000 * meter.cpu[phase] / n
        print(f"{phase:<20}{meter.count[phase]:>6}{cpu[phase]:>9.3f}{meter.statements[phase] / n:>6.1f}")
    checkout = cpu["marketing checkout"] / cpu["plain checkout"]
    plain = cpu["plain checkout"] + cpu["plain notify"]
    marketing = cpu["marketing checkout"] + cpu["marketing notify"]
    print(f"CPU per checkout: plain {cpu['plain checkout']:.2f} ms, with marketing {cpu['marketing checkout']:.2f} ms"
          f" = {100 * (checkout - 1):+.0f} % (budget +25 %)")
    print(f"CPU per purchase (checkout + notification): plain {plain:.2f} ms, with marketing {marketing:.2f} ms"
          f" = {100 * (marketing / plain - 1):+.0f} %")
    if meter.profiler is not None:
        stats = pstats.Stats(meter.profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(args.lines)
        stats.sort_stats("cumulative").print_stats(args.lines)
    if meter.shown:
        print(f"SQL of the 11th {args.show_sql} request:")
        print("\n".join(f"  {n + 1:>2}. {text}" for n, text in enumerate(meter.shown)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
