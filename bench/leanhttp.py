"""A minimal HTTP/1.1 keep-alive client for load generation: one connection per simulated buyer.

The load generator runs on the same 2 cores as the shop. httpx spent as much CPU per purchase as the shop
itself (about 4.5 ms per request), so the benchmark measured the client as much as the server; this client
costs a fraction of that. It speaks just what the benchmarks need: requests with a JSON or form body,
answers with Content-Length or chunked bodies, keep-alive, Connection: close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
from typing import Any
from urllib.parse import urlencode, urlsplit

__all__ = ["LeanConnection", "LeanError", "LeanResponse"]


class LeanError(Exception):
    """The connection failed or the answer was not HTTP/1.1 we understand."""


class LeanResponse:
    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class LeanConnection:
    """One keep-alive connection to `base_url`; requests on it run one after another."""

    def __init__(self, base_url: str, *, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._host_header = f"{self.host}:{self.port}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, *, json: Any = None, data: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> LeanResponse:
        return await self.request("POST", path, json=json, data=data, headers=headers)

    async def request(self, method: str, path: str, *, json: Any = None, data: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None) -> LeanResponse:
        body, content_type = b"", None
        if json is not None:
            body, content_type = jsonlib.dumps(json).encode(), b"application/json"
        elif data is not None:
            body, content_type = urlencode(data).encode(), b"application/x-www-form-urlencoded"
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self._host_header,
                b"Content-Length: " + str(len(body)).encode()]
        if content_type:
            head.append(b"Content-Type: " + content_type)
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}".encode())
        try:
            return await asyncio.wait_for(self._exchange(b"\r\n".join(head) + b"\r\n\r\n" + body), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            await self.close()
            raise LeanError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, request: bytes) -> LeanResponse:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {lines[0]!r}")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self._reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            content = b"".join(chunks)
        elif "content-length" in headers:
            content = await self._reader.readexactly(int(headers["content-length"]))
        else:
            content = await self._reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return LeanResponse(status, headers, content)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
