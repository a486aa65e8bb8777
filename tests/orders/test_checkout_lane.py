"""The checkout lane (orders.checkout_lane) answers exactly as the route: the same requests, run once with the lane and
once without it (QUANYI_CHECKOUT_LANE=false) on two fresh databases, get the same status, headers and body (random
values such as order numbers, tokens, device cookies and instants masked) and leave the same rows: orders, keys,
order events, risk signals, flood-limit counter events, coupon redemptions, points balances. Covers placed orders,
bad input (the route's 400 / 422 problems, never a 500), unknown SKUs, the flood and held-stock limits, sold out
(from the database and from the memo), members with coupons and points (and their refusals), risk rules that refuse
or ask for a code, a shop without a payment method, and checkouts that pay in the same request (`pay`: started,
refused input, a gateway that cannot be reached, sold out) with the payments they leave."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from conftest import _pg_url
from coupons.support import make_coupon
from helpers import Shop, make_settings
from quanyi.app import create_app
from quanyi.context import build_context
from quanyi.loyalty import levels as loyalty_levels
from quanyi.loyalty import points as loyalty_points
from quanyi.members.models import LoginMethod, Member
from quanyi.members.sessions import open_member_session
from quanyi.orders import routes
from quanyi.payments.gateway import Checkout, CheckoutRequest, GatewayUnavailable
from quanyi.payments.sandbox.gateway import SandboxGateway
from risk.support import add_rule

A = "198.51.100.1"
B = "198.51.100.2"
C = "198.51.100.3"
D = "198.51.100.4"
E = "198.51.100.5"
F = "198.51.100.6"
G = "198.51.100.7"
H = "198.51.100.8"


class DownGateway(SandboxGateway):
    """The sandbox protocol, but the gateway cannot be reached."""

    name = "down"
    title = "Down"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        raise GatewayUnavailable("down: connection reset")


def _body(sku: int, contact: str = "fan@example.com", **extra: Any) -> bytes:
    return json.dumps({"sku_id": sku, "quantity": 1, "contact": contact, **extra}).encode()


def _scenario(sku: int, empty: int, member: bytes) -> list[tuple[str, bytes, list[tuple[bytes, bytes]], bytes]]:
    """(client address, body, extra headers, content type) of each checkout, in order."""
    plain: list[tuple[bytes, bytes]] = []
    json_type = b"application/json"
    return [
        (A, _body(sku), plain, json_type),  # placed; a device cookie handed out
        (A, _body(sku), [(b"x-device-id", b"phone-1")], json_type),  # the contact's 2nd unit held
        (A, _body(sku), plain, json_type),  # 429 too_much_stock_held (2 per contact)
        (A, _body(sku, "other@example.com", query_password="s3cret-pw", locale="en"), plain, json_type),
        (A, _body(sku, "third@example.com"), plain, json_type),  # 429: 5th checkout of this address (limit 4)
        (B, b'{"sku_id": 1, "quantity": 0, "contact": "fan@example.com"}', plain, json_type),  # 422
        (B, _body(sku, surprise=True), plain, json_type),  # 422 extra field
        (B, b'{"sku_id": ', plain, json_type),  # 400 malformed JSON
        (B, _body(sku, "not a contact"), plain, json_type),  # 422
        (B, _body(sku), plain, b"text/plain"),  # the route's answer to a body it does not read as JSON
        (B, _body(999_999), plain, json_type),  # unknown SKU
        (B, b"[]", plain, json_type),
        (B, _body(sku, "b@example.com"), [(b"x-member-token", b"not-a-session")], json_type),  # the route's
        (B, _body(sku, "b2@example.com", coupon_codes=["NOSUCHCODE"]), plain, json_type),  # the route's refusal
        (B, _body(sku, "b3@example.com"), [(b"cookie", b"qy_ref=nobody")], json_type),
        (C, _body(empty, "c@example.com"), plain, json_type),  # sold out, found by the database
        (C, _body(empty, "c@example.com"), plain, json_type),  # sold out, from the memo
        (C, _body(sku, "c@example.com", quantity=2), plain, json_type),
        (C, _body(sku, "c2@example.com", quantity=10), plain, json_type),  # more than is left: sold out
        # A member (level price) with the coupon and points; again (the coupon's per-member limit refuses); points
        # alone; the header twice (the first counts); a blank header (a guest, whose points need a member).
        (E, _body(sku, "m@example.com", coupon_codes=["LANE3"], points=100), [(b"x-member-token", member)], json_type),
        (E, _body(sku, "m2@example.com", coupon_codes=["lane-3"]), [(b"x-member-token", member)], json_type),
        (E, _body(sku, "m3@example.com", points=50), [(b"x-member-token", member), (b"x-member-token", b"qm_x")],
         json_type),
        (F, _body(sku, "g@example.com", points=50), [(b"x-member-token", b"  ")], json_type),
        (F, _body(sku, "g2@example.com", coupon_codes=["LANE3", "LANE3"]), [(b"x-member-token", member)], json_type),
    ]


def _pay_scenario(sku: int, empty: int) -> list[tuple[str, bytes]]:
    """(client address, body) of checkouts that start the payment in the same request (orders.pay_at_checkout)."""
    return [
        (G, _body(sku, "p1@example.com", pay={"gateway": "sandbox"})),  # placed and its payment started
        (G, _body(sku, "p2@example.com", pay={"gateway": "sandbox", "mode": "qr"})),
        (G, _body(sku, "p3@example.com", pay={"gateway": "down"})),  # placed; payment_error 503, its payment kept
        (H, _body(sku, "p4@example.com", pay={"gateway": "nosuch"})),  # 422 unknown_gateway, nothing placed
        (H, _body(sku, "p5@example.com", pay={"gateway": "sandbox", "mode": "fax"})),  # 422
        (H, _body(sku, "p6@example.com", pay={})),  # the defaults: sandbox, page
        (H, _body(empty, "p7@example.com", pay={"gateway": "nosuch"})),  # sold out (memo), but 422 first
        (H, _body(empty, "p7@example.com", pay={"gateway": "sandbox"})),  # sold out
    ]


def _risk_scenario(sku: int) -> list[tuple[str, bytes, list[tuple[bytes, bytes]], bytes]]:
    json_type = b"application/json"
    return [(D, _body(sku, "d@example.com"), [], json_type), (D, _body(sku, "d2@example.com"), [], json_type)]


async def _call(app: Any, ip: str, body: bytes, headers: list[tuple[bytes, bytes]],
                content_type: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/orders", "raw_path": b"/api/orders", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-type", content_type),
                         (b"content-length", str(len(body)).encode()), *headers],
             "client": (ip, 40000), "server": ("test", 80)}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return start["status"], list(start["headers"]), b"".join(chunks)


_RANDOM_KEYS = {"order_no", "access_token", "created_at", "expires_at", "challenge_id", "retry_after", "payment_no",
                "cashier_url"}


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return [(k, "<random>" if k in _RANDOM_KEYS else _masked(v)) for k, v in value.items()]  # keeps the order
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _answer(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[Any, ...]:
    names = [name for name, _ in headers]
    values = {name: value for name, value in headers}
    assert int(values[b"content-length"]) == len(body)
    shown = []
    for name, value in headers:
        if name == b"content-length":
            continue
        if name == b"set-cookie":
            value = re.sub(rb"^([a-z_]+)=[^;]*", rb"\1=<random>", value)
        if name == b"retry-after":
            value = b"<seconds>"
        shown.append((name, value))
    try:
        parsed: Any = _masked(json.loads(body))
    except ValueError:
        parsed = body
    return status, names, shown, parsed


async def _rows(ctx: Any) -> dict[str, Any]:
    async with ctx.db.read_session() as session:
        async def all_of(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in (await session.execute(text(sql))).all()]
        return {
            "orders": await all_of(
                "SELECT id, status, sku_id, quantity, unit_price_cents, total_cents, currency, contact_kind, contact, "
                "query_password_hash IS NULL, locale, created_ip, member_id, distributor_code, delivery_type, "
                "price_source FROM orders_order ORDER BY id"),
            "keys": await all_of("SELECT sku_id, status, order_id FROM inventory_card_key ORDER BY sku_id, order_id, "
                                 "status"),
            "events": await all_of("SELECT order_id, from_status, to_status, reason FROM orders_order_event "
                                   "ORDER BY order_id, id"),
            "signals": await all_of("SELECT order_id, ip, device = '', contact, sku_id, quantity, amount_cents, paid "
                                    "FROM risk_order_signals ORDER BY order_id"),
            "coupons": await all_of("SELECT coupon_id, order_id, member_id, discount_cents, status "
                                    "FROM coupons_redemption ORDER BY order_id"),
            "points": await all_of("SELECT member_id, points_balance FROM loyalty_member ORDER BY member_id"),
            "payments": await all_of("SELECT order_id, gateway, amount_cents, currency, status, "
                                     "checkout_qr_code IS NULL FROM payments_payment ORDER BY order_id, gateway"),
            "counters": sorted((re.sub(r"device:[^:]+$", "device:<id>", key), count) for key, count in await all_of(
                "SELECT key, count(*) FROM risk_counter_event GROUP BY key")),
        }


async def _member(shop: Shop) -> bytes:
    """A member at a 5 %-off level holding 1,000 points, and a 3-yuan coupon code (LANE3, once per member): the
    member's session token."""
    await make_coupon(shop, code="LANE3", per_member_limit=1)
    async with shop.ctx.db.transaction() as session:
        await loyalty_levels.set_level(session=session, code="SILVER", name="Silver", min_paid_cents=0,
                                       discount_bps=500)
        member = Member(email="lane-member@example.com")
        session.add(member)
        await session.flush()
        token = await open_member_session(session=session, member=member, method=LoginMethod.CODE, days=1,
                                          ip="127.0.0.1", user_agent="test")
        await loyalty_points.adjust(session=session, member_id=member.id, points=1000, reason="gift", actor="test")
        await loyalty_levels.reevaluate(session=session)
    return token.encode()


async def _run(url: str, *, lane: bool, rules: bool, routed: list[int]) -> tuple[list[Any], dict[str, Any]]:
    ctx = build_context(make_settings(url, checkout_lane=lane, checkout_limit_per_ip=4, held_units_limit_per_contact=2,
                                      sold_out_memo_seconds=60, risk_rules_cache_seconds=0))
    app = create_app(ctx=ctx)
    routed.clear()
    answers: list[Any] = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            shop = Shop(ctx=ctx, client=client)
            sku = await shop.make_sku(code="LANE-A", max_quantity=10)
            await shop.stock(sku, 16)
            empty = await shop.make_sku(code="LANE-B")
            paid = await shop.make_sku(code="LANE-P")
            await shop.stock(paid, 6)
            member = await _member(shop)
            for ip, body, headers, content_type in _scenario(sku.id, empty.id, member):
                answers.append(_answer(*await _call(app, ip, body, headers, content_type)))
            # A device cookie the shop handed out comes back: no new one.
            cookie = next(v for n, v in (await _call(app, D, _body(sku.id, "e@example.com"), [],
                                                     b"application/json"))[1] if n == b"set-cookie")
            device = cookie.split(b";")[0]
            answers.append(_answer(*await _call(app, D, _body(sku.id, "e2@example.com"), [(b"cookie", device)],
                                                b"application/json")))
            ctx.gateways.register(DownGateway(secret=shop.sandbox_secret))
            for ip, body in _pay_scenario(paid.id, empty.id):
                answers.append(_answer(*await _call(app, ip, body, [], b"application/json")))
            if rules:  # order-stage rules: screening first (risk.checkout), answered by the lane all the same
                await add_rule(shop, "velocity", {"dimension": "ip", "window_seconds": 600, "max_count": 1})
                for ip, body, headers, content_type in _risk_scenario(sku.id):
                    answers.append(_answer(*await _call(app, ip, body, headers, content_type)))
                await add_rule(shop, "new_account", {"min_amount_cents": 0}, action="challenge")
                answers.append(_answer(*await _call(app, "203.0.113.9", _body(sku.id, "f@example.com"), [],
                                                    b"application/json")))
            ctx.gateways._gateways.clear()  # the shop stops taking payments: 503, before anything else
            answers.append(_answer(*await _call(app, A, _body(sku.id), [], b"application/json")))
        rows = await _rows(ctx)
    finally:
        await ctx.close()
    return answers, rows


@pytest.fixture
def second_database_url(backend: str, sqlite_template: Path, pg_databases: Any, tmp_path: Path) -> Any:
    if backend == "sqlite":
        path = tmp_path / "route.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    name = pg_databases.create()
    yield _pg_url(name)
    pg_databases.drop_later(name)


@pytest.mark.parametrize("rules", [False, True], ids=["no-rules", "rules"])
async def test_the_lane_answers_and_writes_exactly_as_the_route(database_url, second_database_url, rules,
                                                                 monkeypatch):
    routed: list[int] = []  # checkouts the FastAPI route placed
    place = routes.place_checkout

    async def counted(*args: Any, **kwargs: Any) -> Any:
        routed.append(1)
        return await place(*args, **kwargs)

    monkeypatch.setattr(routes, "place_checkout", counted)
    with_lane, rows_with_lane = await _run(database_url, lane=True, rules=rules, routed=routed)
    assert len(routed) == 1  # the referred checkout: the lane answered the rest
    without, rows_without = await _run(second_database_url, lane=False, rules=rules, routed=routed)
    assert len(routed) > 10
    assert len(with_lane) == len(without)
    for n, (ours, route) in enumerate(zip(with_lane, without, strict=True)):
        assert ours == route, f"request {n}"
    assert rows_with_lane == rows_without
    statuses = [answer[0] for answer in with_lane]
    assert 500 not in statuses
    # The scenario covers what it claims (the route's answers, as seen without the lane).
    assert {201, 400, 404, 409, 422, 429, 503} <= set(statuses)
    if rules:
        assert statuses.count(403) == 2, with_lane[-4:]  # refused by the velocity rule, then asked for a code
    assert sum(1 for row in rows_with_lane["orders"]) >= 5
    assert statuses[19:24] == [201, 409, 201, 201, 409], [answer[:1] + answer[3:] for answer in with_lane[19:24]]
    # The member's checkouts: the first took the coupon and 100 points, the third 50 points (the guest's none).
    assert [row[3] for row in rows_with_lane["coupons"]] == [300], rows_with_lane["coupons"]
    assert [row[1] for row in rows_with_lane["points"]] == [850], rows_with_lane["points"]
    # Checkout with `pay`: three orders and their payments started, one whose gateway is down, two bad inputs.
    first = len(_scenario(0, 0, b"")) + 1  # after the scenario and the device cookie's checkout
    paying = [(answer[0], dict(answer[3]).get("code")) for answer in with_lane[first:first + 8]]
    assert paying == [(201, None), (201, None), (201, None), (422, "unknown_gateway"), (422, "validation_failed"),
                      (201, None), (422, "unknown_gateway"), (409, "sold_out")], paying
    answered = [dict(answer[3]) for answer in with_lane[first:first + 6]]
    assert ["payment" in body for body in answered] == [True, True, False, False, False, True]
    assert dict(answered[2]["payment_error"]) == {"status": 503, "code": "gateway_unavailable",
                                                  "detail": "down: connection reset"}
    assert [(row[1], row[4]) for row in rows_with_lane["payments"]] == [("sandbox", "created"), ("sandbox", "created"),
                                                                         ("down", "created"), ("sandbox", "created")]


async def test_in_the_front_door_the_lane_keeps_the_body_limit_and_the_500_answer(database_url, monkeypatch):
    # The lane runs before Starlette's layers (middleware.FrontDoor): a body above the request limit is still the
    # body limit's 413, and an error no handler takes still the shop's one 500 answer, as without the lane.
    from quanyi.orders import checkout_lane

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the checkout broke")

    answers: dict[bool, list[Any]] = {}
    for lane in (True, False):
        ctx = build_context(make_settings(database_url, checkout_lane=lane, max_request_bytes=1024))
        app = create_app(ctx=ctx)
        try:
            big = _body(999_999, "big@example.com") + b" " * 1100  # valid JSON, above the limit
            assert 1024 < len(big) < 8 * 1024
            answers[lane] = [_answer(*await _call(app, A, big, [], b"application/json"))]
            with monkeypatch.context() as patch:
                patch.setattr(checkout_lane, "place_order", broken)
                answers[lane].append(_answer(*await _call(app, A, _body(999_999), [], b"application/json")))
        finally:
            await ctx.close()
    assert [answer[0] for answer in answers[True]] == [413, 500]
    assert answers[True] == answers[False]
