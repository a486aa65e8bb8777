"""The checkout lane (下单快车道): a plain guest checkout (`POST /api/orders`), or a member's with coupons and points,
answered without routing, dependency injection or FastAPI's request and response handling; the same code as the
route does the checkout.

`place_checkout` is the route's body, shared: the route (`orders.routes.create_order`, kept for the OpenAPI document
and as the fallback) and this lane both call it, so the order, the refusals and the answer's content are one code.
The lane takes a request only when it is a guest's plain checkout or a member's checkout with marketing (coupons,
points, the member price): a small `application/json` body that is a valid `OrderCreate` with no picked key,
recharge account, distributor code or answer to a challenge, a member session (if any) in the `X-Member-Token`
header (an app's; a session cookie needs the CSRF check of the route's dependency) and no referral cookie.
Anything else (bad input included: its 422 problem is the route's) goes on to the app untouched, the body handed
on as it came. The answer is the route's byte for byte: 201 with `OrderCreated` as FastAPI serializes a response
model, then the `NO_STORE` headers and the device cookie; a refusal is answered by the app's own exception handler
for it (a domain error's problem, a database error's 503); an error no handler takes goes up to
`UnexpectedErrorMiddleware` as the route's would.

A lane of the front door (middleware.FrontDoor, app.py), after the sold-out and purchase lanes: it runs before
Starlette's error, telemetry and body-limit layers and the shop's middleware (~0.15 ms of a checkout's CPU,
docs/PERFORMANCE.md section 11). What those layers did for it is done here or does not apply: a body above the
request limit (`max_request_bytes`) or longer than its Content-Length goes on to the app, whose body limit answers
413; an error no handler takes gets the front door's 500 (the same `unexpected` answer, logged once); the security
headers are the front door's own; a checkout mints no CSRF client id, so the CSRF layer adds nothing to its answer.
`QUANYI_CHECKOUT_LANE=false` turns it off (tests/orders/test_checkout_lane.py compares the two).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quanyi.context import ShopContext
from quanyi.deps import client_ip, no_store
from quanyi.inventory.service import OutOfStock
from quanyi.members.dependencies import MEMBER_COOKIE, MemberToken
from quanyi.orders import pay_at_checkout
from quanyi.orders import service as orders_service
from quanyi.orders.access import order_access_token
from quanyi.orders.placing import CheckoutInput, place_order
from quanyi.orders.schemas import OrderCreate, OrderCreated, OrderRead
from quanyi.orders.sold_out_lane import exception_handler, read_declared, replay
from quanyi.promoters.referral import REFERRAL_COOKIE
from quanyi.risk.challenges import Verification
from quanyi.risk.checkout import ensure_device_cookie, request_device

__all__ = ["CheckoutLane", "place_checkout"]

_PATH = "/api/orders"
_MAX_BODY = 8 * 1024  # a checkout is a few hundred bytes; anything larger takes the ordinary road
_ANSWER = TypeAdapter(OrderCreated)  # what FastAPI serializes a response model with (its dump_json fast path)


async def place_checkout(ctx: ShopContext, data: OrderCreate, request: Request, response: Response,
                         member_token: MemberToken | None) -> OrderCreated:
    """`POST /api/orders`: place the order and describe it; sets the device cookie on `response`. Raises the
    refusal (a DomainError) having placed nothing."""
    ctx.gateways.require_any()
    if data.pay is not None:  # checkout and pay in one request: a gateway that cannot be chosen places nothing
        pay_at_checkout.check_pay(ctx, data.pay)
    if ctx.sold_out.is_sold_out(data.sku_id):  # found sold out a moment ago: no screening, no transaction
        raise OutOfStock("sold out", available=0, requested=data.quantity)
    verification = (Verification(data.challenge_id, data.verification_code, data.captcha_token)
                    if data.challenge_id or data.captcha_token else None)
    described: list[OrderRead] = []

    async def describe(session: Any, order: Any) -> None:
        described.append(await orders_service.describe_order(session=session, order=order))

    # With `pay`, the checkout's committed connection starts the payment too: one pool checkout and return less
    # (quanyi.db_driven.handing_over; nothing between the two waits for another connection).
    async with ctx.db.handing_over() if data.pay is not None else contextlib.nullcontext():
        try:
            order = await place_order(ctx, CheckoutInput(
                sku_id=data.sku_id, quantity=data.quantity, contact=data.contact,
                locale=data.locale or ctx.settings.default_locale, ip=client_ip(request),
                device=request_device(ctx, request), verification=verification, query_password=data.query_password,
                recharge_account=data.recharge_account, card_key_id=data.card_key_id, member_token=member_token,
                points=data.points, coupon_codes=data.coupon_codes, member_coupon_ids=data.member_coupon_ids,
                distributor_code=data.distributor_code, referral_cookie=request.cookies.get(REFERRAL_COOKIE)),
                inside=describe)
        except OutOfStock as exc:
            if exc.context.get("available") == 0:
                ctx.sold_out.remember(data.sku_id)
            raise
        read = described[0]
        token = order_access_token(ctx.settings.app_secret.get_secret_value(), order.order_no)
        ensure_device_cookie(ctx, request, response)  # a client with a cookie jar keeps one device from now on
        created = OrderCreated(**read.model_dump(), access_token=token)
        if data.pay is not None:  # the order is committed: start its payment as POST .../payments would
            return await pay_at_checkout.with_payment(ctx, created, data.pay, client_ip(request))
        return created


Handler = Callable[[Request, Exception], Any]


class CheckoutLane:
    def __init__(self, app: ASGIApp, *, ctx: ShopContext, handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.ctx = ctx
        self.handlers = handlers  # the app's exception handlers (FastAPI.exception_handlers), looked up per error
        self.enabled = ctx.settings.checkout_lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (not self.enabled or scope["type"] != "http" or scope["path"] != _PATH or scope["method"] != "POST"
                or scope.get("query_string")):
            await self.app(scope, receive, send)
            return
        length = content_type = cookie = member = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
            elif name == b"x-member-token" and member is None:  # the first, as Request.headers.get gives the route
                member = value
        # Above the request limit (read at each request: settings may change) the app's body limit answers 413.
        if (length is None or not length.isdigit() or int(length) > min(_MAX_BODY, self.ctx.settings.max_request_bytes)
                or content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json"
                or (cookie is not None and _has_session_cookie(cookie))):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            body, messages = await read_declared(receive, int(length))
            data = _lane_checkout(body) if body is not None else None
            if data is None:
                await self.app(scope, replay(messages, receive), send)
                return
            headers = Response()  # collects what the route's dependencies and body set (no-store, the cookie)
            del headers.headers["content-length"]
            no_store(headers)
            # The route's OptionalMemberTokenDep: the header's token, stripped ("" when blank; no cookie session here).
            token = member.decode("latin-1").strip() if member is not None else ""
            created = await place_checkout(self.ctx, data, request, headers, MemberToken(token))
        except Exception as exc:
            handler = exception_handler(self.handlers, exc)
            if handler is None:
                raise  # as the route's: UnexpectedErrorMiddleware answers 500
            answer = await handler(request, exc)
        else:
            answer = Response(content=_ANSWER.dump_json(created, by_alias=True), status_code=201,
                              media_type="application/json")
            answer.headers.raw.extend(headers.headers.raw)
        await answer(scope, receive, send)


def _has_session_cookie(header: bytes) -> bool:
    cookies = cookie_parser(header.decode("latin-1"))
    return bool(cookies.get(MEMBER_COOKIE)) or REFERRAL_COOKIE in cookies


def _lane_checkout(body: bytes) -> OrderCreate | None:
    """The body as an `OrderCreate` when it is a checkout the lane takes (a plain one, or with coupons and points),
    else None (the route takes it)."""
    try:
        data = OrderCreate.model_validate_json(body)
    except ValidationError:
        return None  # the route answers with its validation problem
    if (data.card_key_id is not None or data.recharge_account is not None or data.distributor_code is not None
            or data.challenge_id or data.verification_code or data.captcha_token):
        return None
    return data
