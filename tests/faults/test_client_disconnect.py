"""A client that hangs up in the middle of its request body (a gateway timing out, a buyer closing the tab
during an upload) is not a server error: no 500, no traceback in the log, nothing applied."""

from __future__ import annotations

import logging


async def _call_and_hang_up(app, path: str, first_part: bytes) -> list[dict]:  # type: ignore[no-untyped-def]
    """Drive the ASGI app directly: part of the declared body arrives, then the client disconnects."""
    incoming = [{"type": "http.request", "body": first_part, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test"), (b"content-type", b"application/x-www-form-urlencoded"),
                         (b"content-length", b"4096")],
             "client": ("127.0.0.1", 50000), "server": ("test", 80)}
    await app(scope, receive, send)
    return sent


async def test_client_hanging_up_mid_body_is_logged_quietly_not_as_an_error(app, caplog):
    caplog.set_level(logging.DEBUG)
    sent = await _call_and_hang_up(app, "/payments/sandbox/notify", b"out_trade_no=P123&total_amo")
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] in ([], [400])  # nobody is listening; at most a plain 400
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "client disconnected" in caplog.text


async def test_client_hanging_up_mid_json_body_is_not_a_server_error(app, caplog):
    caplog.set_level(logging.DEBUG)
    sent = await _call_and_hang_up(app, "/api/orders", b'{"sku_id": 1, "quan')
    assert all(m["status"] < 500 for m in sent if m["type"] == "http.response.start")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
