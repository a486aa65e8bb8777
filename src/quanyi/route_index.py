"""Routing without scanning every route: FastAPI tries the app's routes in order, each included router's in turn,
until one matches; with the shop's ~80 routers and ~440 routes that cost 40-70 µs to reach the checkout or the
payment notification and about 1.7 ms to answer a 404 (docs/PERFORMANCE.md, issue 15).

`RouteIndex` sits where the router dispatches (`Router.middleware_stack`). For each distinct start of a path (its
first two segments) it keeps the router's top-level routes that could match a path starting so, in their order,
and runs FastAPI's own dispatch over just those: same first match, same 405 / redirect / 404 decisions, since a
route left out cannot match. Whether a route could match is judged by the literal text of its path before the
first `{`: a path it matches starts with that text. A route whose path is not known that way (a host route, a
mount at the root, anything unfamiliar) is kept for every path, as is every route when anything is unusual
(a root path, the router's own middleware, low-priority routes), so the index only ever narrows what cannot match.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import routing as fastapi_routing
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

__all__ = ["RouteIndex", "install_route_index"]

_MAX_KEYS = 2048  # distinct path starts remembered (404 scanners invent new ones: forgotten all at once)
_IncludedRouter: Any = getattr(fastapi_routing, "_IncludedRouter", None)
_EffectiveRouteContext: Any = getattr(fastapi_routing, "_EffectiveRouteContext", None)


def _literal_start(path: str, regex: re.Pattern[str] | None) -> str:
    """The text every path `regex` matches starts with; "" (anything) when that cannot be told for sure."""
    start = path.split("{", 1)[0]
    if regex is not None and not regex.pattern.startswith("^" + re.escape(start)):
        return ""
    return start


def _starts(entry: Any) -> set[str]:
    """The literal starts of the paths `entry` (a top-level route) can match: "" means any path."""
    if _IncludedRouter is not None and isinstance(entry, _IncludedRouter):
        starts: set[str] = set()
        for candidate in entry.effective_candidates():
            starts |= _starts(candidate)
            if "" in starts:
                break
        return starts
    if _EffectiveRouteContext is not None and isinstance(entry, _EffectiveRouteContext):
        if isinstance(entry.original_route, fastapi_routing.APIRoute):
            return {_literal_start(entry.path, getattr(entry, "path_regex", None))}
        entry = entry.starlette_route
    if isinstance(entry, Mount):
        return {entry.path} if entry.path else {""}
    if isinstance(entry, Route | WebSocketRoute):
        return {_literal_start(entry.path, entry.path_regex)}
    return {""}


def _path_start(path: str) -> str:
    """`path` up to (not including) its third "/": "/api/orders/QY1/reveal" -> "/api/orders"."""
    first = path.find("/", 1)
    if first < 0:
        return path
    second = path.find("/", first + 1)
    return path if second < 0 else path[:second]


class RouteIndex:
    def __init__(self, router: Any) -> None:
        self.router = router
        self._routes: list[Any] | None = None
        self._count = -1
        self._usable = False
        self._starts: list[set[str]] = []
        self._narrowed: dict[str, Any] = {}

    def _judge(self, routes: list[Any]) -> None:
        self._routes, self._count = routes, len(routes)
        # Low-priority routes (FastAPI's frontend routes) come from every router: with any, the index stands aside.
        self._usable = not list(self.router._iter_low_priority_routes())
        self._starts = [_starts(route) for route in routes] if self._usable else []
        self._narrowed = {}

    def _narrowed_for(self, key: str) -> Any:
        routes = self.router.routes
        if routes is not self._routes or len(routes) != self._count:  # routes added since: judge them again
            self._judge(routes)
        if not self._usable:
            return self.router
        narrowed = self._narrowed.get(key)
        if narrowed is None:
            if len(self._narrowed) >= _MAX_KEYS:
                self._narrowed = {}
            # A path starting with `key` can start with `start` only if one of the two begins the other.
            kept = [route for route, starts in zip(routes, self._starts, strict=True)
                    if any(start.startswith(key) or key.startswith(start) for start in starts)]
            narrowed = copy.copy(self.router)  # the same router (settings, low-priority routes, 404) ...
            narrowed.routes = kept  # ... trying only these
            self._narrowed[key] = narrowed
        return narrowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or scope.get("root_path"):
            await self.router.app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self.router  # url_for and friends see every route
        await self._narrowed_for(_path_start(scope["path"])).app(scope, receive, send)


def install_route_index(router: Any) -> bool:
    """Put a `RouteIndex` in front of `router`'s dispatch, unless something makes it unsafe (the router has its own
    middleware, or this FastAPI lacks what the index relies on); True when installed. Call it once the routes are
    included: routes added later to the app are seen, routes added later to an already included router are not."""
    if (router.middleware_stack != router.app or _IncludedRouter is None or _EffectiveRouteContext is None
            or not hasattr(router, "_iter_low_priority_routes")):
        return False
    router.middleware_stack = RouteIndex(router)
    return True
