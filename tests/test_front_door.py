"""The front door (`middleware.FrontDoor`, outside Starlette's own layers): lanes answer before the framework runs,
hand every other request on untouched, and a failing lane gets the shop's 500 problem answer, logged once."""

from __future__ import annotations

import logging
from functools import partial

from httpx import ASGITransport, AsyncClient
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from quanyi.app import create_app
from quanyi.middleware import FrontDoor


class _Lane:
    """Answers GET /lane itself, fails on GET /lane/boom, hands everything else on."""

    def __init__(self, app: ASGIApp, *, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/lane":
            self.seen.append("answered")
            await PlainTextResponse("from the lane")(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/lane/boom":
            raise RuntimeError("lane failed")
        self.seen.append("handed on")
        await self.app(scope, receive, send)


def _with_lane(ctx, seen: list[str]):
    app = create_app(ctx=ctx)
    door = app.front_door
    app.front_door = lambda stack: FrontDoor(door(stack), lanes=[partial(_Lane, seen=seen)])
    return app


async def test_a_lane_answers_before_routing_and_hands_the_rest_on_with_security_headers(ctx):
    seen: list[str] = []
    async with AsyncClient(transport=ASGITransport(app=_with_lane(ctx, seen)), base_url="http://t") as client:
        laned = await client.get("/lane")  # no route has this path: only the lane can answer 200
        routed = await client.get("/healthz")
    assert (laned.status_code, laned.text) == (200, "from the lane")
    assert routed.status_code == 200 and routed.json()["status"] == "ok"
    assert seen == ["answered", "handed on"]
    for response in (laned, routed):
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]
        assert response.headers.get_list("x-frame-options") == ["DENY"]


async def test_a_failing_lane_gets_the_problem_500_logged_once(ctx, caplog):
    app = create_app(ctx=ctx)
    door = app.front_door
    app.front_door = lambda stack: door(_Lane(stack, seen=[]))  # inside the shop's own front door
    with caplog.at_level(logging.ERROR):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get("/lane/boom", headers={"X-Request-ID": "req-lane-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error" and "lane failed" not in response.text
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "GET /lane/boom" in errors[0].getMessage() and errors[0].request_id == "req-lane-1"
