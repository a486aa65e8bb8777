"""TEST PEER — group-robot webhooks of WeCom (企业微信) and DingTalk (钉钉), as documented by each.

WeCom:    POST /cgi-bin/webhook/send?key=KEY  {"msgtype": "markdown", "markdown": {"content": ...}}
DingTalk: POST /robot/send?access_token=T&timestamp=MS&sign=S  {"msgtype": "markdown", "markdown": {"title", "text"}}
          with S = base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")) and the timestamp within one hour.
Both answer {"errcode": 0, "errmsg": "ok"}; errors carry their documented errcode. Knob: `fail_next[channel]`
answers that many requests with errcode -1 ("system busy").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["RobotReceiver", "RobotRecord"]

_DINGTALK_WINDOW_MS = 3600 * 1000
_MAX_MARKDOWN_BYTES = 4096


@dataclass(frozen=True)
class RobotRecord:
    channel: str  # wecom | dingtalk
    title: str
    text: str


@dataclass
class RobotReceiver:
    wecom_key: str
    dingtalk_token: str
    dingtalk_secret: str
    messages: list[RobotRecord] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rejected.clear()
            self.fail_next.clear()

    def of(self, channel: str) -> list[RobotRecord]:
        with self._lock:
            return [m for m in self.messages if m.channel == channel]

    def _error(self, channel: str, errcode: int, errmsg: str) -> JSONResponse:
        self.rejected.append((channel, errcode))
        return JSONResponse({"errcode": errcode, "errmsg": errmsg})

    def _busy(self, channel: str) -> bool:
        if self.fail_next.get(channel, 0) > 0:
            self.fail_next[channel] -= 1
            return True
        return False

    @staticmethod
    async def _json(request: Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def _wecom(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        with self._lock:
            if request.query_params.get("key") != self.wecom_key:
                return self._error("wecom", 93000, "invalid webhook url")
            if self._busy("wecom"):
                return JSONResponse({"errcode": -1, "errmsg": "system busy"})
            markdown = (body or {}).get("markdown")
            if (body or {}).get("msgtype") != "markdown" or not isinstance(markdown, dict) \
                    or not isinstance(markdown.get("content"), str):
                return self._error("wecom", 40008, "invalid message type or missing markdown.content")
            if len(markdown["content"].encode()) > _MAX_MARKDOWN_BYTES:
                return self._error("wecom", 40058, "markdown.content exceeds max length 4096")
            self.messages.append(RobotRecord("wecom", "", markdown["content"]))
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _dingtalk(self, request: Request) -> JSONResponse:
        body = await self._json(request)
        query = request.query_params
        with self._lock:
            if query.get("access_token") != self.dingtalk_token:
                return self._error("dingtalk", 300001, "token is not exist")
            try:
                timestamp = int(query.get("timestamp", ""))
            except ValueError:
                return self._error("dingtalk", 310000, "sign not match: timestamp missing")
            if abs(time.time() * 1000 - timestamp) > _DINGTALK_WINDOW_MS:
                return self._error("dingtalk", 310000, "sign not match: timestamp is more than 1 hour off")
            mac = hmac.new(self.dingtalk_secret.encode(), f"{timestamp}\n{self.dingtalk_secret}".encode(),
                           hashlib.sha256)
            if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), query.get("sign", "")):
                return self._error("dingtalk", 310000, "sign not match")
            if self._busy("dingtalk"):
                return JSONResponse({"errcode": -1, "errmsg": "system busy"})
            markdown = (body or {}).get("markdown")
            if (body or {}).get("msgtype") != "markdown" or not isinstance(markdown, dict) \
                    or not all(isinstance(markdown.get(k), str) and markdown.get(k) for k in ("title", "text")):
                return self._error("dingtalk", 40035, "missing markdown.title or markdown.text")
            self.messages.append(RobotRecord("dingtalk", markdown["title"], markdown["text"]))
            return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/cgi-bin/webhook/send", self._wecom, methods=["POST"]),
            Route("/robot/send", self._dingtalk, methods=["POST"]),
        ])
