"""The access log `quanyi serve` writes (quanyi.accesslog.AccessLog): uvicorn's line, field for field, one per
answered request, 500 when the application fails before answering, tokens and card keys redacted."""

from __future__ import annotations

import io
import logging

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from quanyi.accesslog import AccessLog, access_line
from quanyi.inventory.masking import remember_codes


def _uvicorns_line(client: str, method: str, target: str, version: str, status: int) -> str:
    """The line uvicorn's own access log printed for these arguments (its formatter, without colours)."""
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               (client, method, target, version, status), None)
    formatter = AccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
                                use_colors=False)
    return formatter.format(record) + "\n"


def _scope(path: str, query: bytes = b"", method: str = "POST") -> dict:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
            "http_version": "1.1", "client": ("10.1.2.3", 50123), "headers": []}


@pytest.mark.parametrize(("path", "query", "status"), [
    ("/api/orders", b"", 409), ("/api/catalog/products", b"page=2&q=vip", 200), ("/healthz", b"", 599),
    ('/odd"path', b"", 404),
])
def test_the_line_is_the_line_uvicorn_printed(path, query, status):
    target = path.replace('"', "%22") + (f"?{query.decode()}" if query else "")
    assert access_line(_scope(path, query), status) == _uvicorns_line("10.1.2.3:50123", "POST", target, "1.1",
                                                                       status)


def test_tokens_and_card_keys_never_reach_the_line():
    remember_codes(["ZQ7K-PLM2-88XT-4RVA"])
    line = access_line(_scope("/orders/X/open", b"t=SECRETTOKEN&lang=en", "GET"), 200)
    assert "SECRETTOKEN" not in line and "/orders/X/open?t=[redacted]&lang=en" in line
    line = access_line(_scope("/api/admin/card-keys/trace", b"code=ZQ7K-PLM2-88XT-4RVA", "GET"), 200)
    assert "ZQ7K-PLM2-88XT-4RVA" not in line and "code=ZQ" in line
    assert "ZQ7K-PLM2-88XT-4RVA" not in access_line(_scope("/x/ZQ7K-PLM2-88XT-4RVA", method="ZQ7K-PLM2-88XT-4RVA"), 404)


async def test_every_answered_request_is_logged_once_with_its_status(app):
    out = io.StringIO()
    served = AccessLog(app, stream=lambda: out)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://test") as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/api/orders/NOPE")).status_code == 401
        assert (await http.post("/api/orders", content=b"{not json", headers={"content-type": "application/json"})
                ).status_code == 400
    assert out.getvalue().splitlines() == [
        'INFO:     127.0.0.1:123 - "GET /healthz HTTP/1.1" 200 OK',
        'INFO:     127.0.0.1:123 - "GET /api/orders/NOPE HTTP/1.1" 401 Unauthorized',
        'INFO:     127.0.0.1:123 - "POST /api/orders HTTP/1.1" 400 Bad Request',
    ]


async def test_a_failure_before_any_answer_is_logged_as_the_servers_500():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        await AccessLog(broken, stream=lambda: out)(_scope("/api/orders"), None, None)
    assert out.getvalue() == 'INFO:     10.1.2.3:50123 - "POST /api/orders HTTP/1.1" 500 Internal Server Error\n'


def test_the_served_app_leaves_what_startup_built_out_of_the_collectors_sight(monkeypatch):
    """`quanyi serve` freezes the objects built before serving (gc.freeze): a full collection during a sale then
    looks only at what requests allocate, not at the ~300,000 objects of modules, routes and models."""
    import gc
    from types import SimpleNamespace

    from quanyi.accesslog import create_served_app

    built = object()
    monkeypatch.setattr("quanyi.app.create_app", lambda: built)
    monkeypatch.setattr("quanyi.config.get_settings", lambda: SimpleNamespace(access_log=True))
    gc.unfreeze()
    try:
        served = create_served_app()
        assert isinstance(served, AccessLog) and served.app is built
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
