"""The route index (`quanyi.route_index`) narrows which routes a request tries, never what it gets: for a path made
from every route the shop has (and its variants with and without a trailing slash, and unknown paths), the first
route that matches among the narrowed ones is the one a full scan finds, for every method."""

from __future__ import annotations

import re
from typing import Any

from httpx import ASGITransport, AsyncClient
from starlette.routing import Match

from quanyi.app import create_app
from quanyi.route_index import RouteIndex, _path_start

_METHODS = ("GET", "POST")


def _paths(entry: Any) -> list[str]:
    """Every path pattern under a top-level route (included routers opened up)."""
    if hasattr(entry, "effective_candidates"):
        return [path for candidate in entry.effective_candidates() for path in _paths(candidate)]
    route = getattr(entry, "starlette_route", None) or entry
    return [path] if isinstance(path := getattr(entry, "path", None) or getattr(route, "path", None), str) else []


def _samples(app: Any) -> set[str]:
    samples = {"/", "/no/such/page", "/api", "/api/", "/api/nope/at/all", "/static", "/static/app.js", "//x", "/a"}
    for entry in app.router.routes:
        for pattern in _paths(entry):
            path = re.sub(r"\{[^}]+\}", "x1", pattern) or "/"
            samples |= {path, path + "/", path.rstrip("/") or "/", path + "/extra", path[: max(1, len(path) // 2)]}
    return samples


def _first(routes: list[Any], path: str, method: str) -> tuple[Match, int | None]:
    partial = None
    for route in routes:
        scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": [], "query_string": b""}
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return Match.FULL, id(route)
        if match == Match.PARTIAL and partial is None:
            partial = id(route)
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


async def test_the_index_chooses_what_a_full_scan_chooses_for_every_route_and_method(ctx):
    app = create_app(ctx=ctx)
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    samples = _samples(app)
    assert len(samples) > 500
    for path in sorted(samples):
        narrowed = index._narrowed_for(_path_start(path)).routes
        assert len(narrowed) < len(app.router.routes) or path in ("/", "//x")
        for variant in {path, path + "/", path.rstrip("/") or "/"}:  # the trailing-slash redirect looks at these
            for method in _METHODS:
                assert _first(narrowed, variant, method) == _first(app.router.routes, variant, method), (
                    path, variant, method)


async def test_answers_are_those_of_the_full_scan(ctx):
    indexed = create_app(ctx=ctx)
    plain = create_app(ctx=ctx)
    plain.router.middleware_stack = plain.router.app  # FastAPI's own dispatch over every route
    requests = [("GET", "/healthz"), ("GET", "/no/such/page"), ("GET", "/api/nope"), ("DELETE", "/api/orders"),
                ("GET", "/api/orders"), ("POST", "/api/orders/lookup/"), ("GET", "/static/nope.js"),
                ("PUT", "/healthz"), ("GET", "/openapi.json")]
    answers: list[list[tuple[int, str, bytes]]] = []
    for app in (indexed, plain):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
            answers.append([(r.status_code, r.headers.get("allow", "") + r.headers.get("location", ""), r.content)
                            for r in [await client.request(m, p) for m, p in requests]])
    assert answers[0] == answers[1]
    assert [status for status, _, _ in answers[0]][:4] == [200, 404, 404, 405]


async def test_a_route_added_after_the_first_request_is_found(ctx):
    app = create_app(ctx=ctx)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/api/_test/late")).status_code == 404

        @app.get("/api/_test/late")
        async def late() -> dict[str, str]:
            return {"late": "yes"}

        answer = await client.get("/api/_test/late")
    assert answer.status_code == 200 and answer.json() == {"late": "yes"}
