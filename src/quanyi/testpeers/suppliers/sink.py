"""TEST PEER — a callback receiver standing in for the shop's supplier-callback route (not production code).

Records every request (headers and raw body) so tests can feed them to an adapter's `parse_callback`, and
answers with a configurable body: the right ack, or a wrong one to make a platform retry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CallbackSink", "ReceivedCallback"]


@dataclass(frozen=True)
class ReceivedCallback:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackSink:
    answer_status: int = 200
    answer_body: bytes = b"success"
    answer_media_type: str = "text/plain"
    url: str = ""  # set by whoever serves it
    received: list[ReceivedCallback] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes, *, status: int = 200, media_type: str = "text/plain") -> None:
        self.answer_body, self.answer_status, self.answer_media_type = body, status, media_type

    def reset(self) -> None:
        with self._lock:
            self.received.clear()

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append(ReceivedCallback(path=request.url.path, headers=dict(request.headers), body=body))
        return Response(self.answer_body, status_code=self.answer_status, media_type=self.answer_media_type)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])
