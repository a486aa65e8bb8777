"""Request body limits (QUANYI_MAX_REQUEST_BYTES, QUANYI_MAX_IMPORT_BYTES): every endpoint answers 413 with a
problem document before reading a body above its limit whole, whether the size is declared or only streamed."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from helpers import random_code, with_csrf
from quanyi.orders.models import Order

CHUNK = 64 * 1024


async def _call(app, path: str, *, chunks, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, int]:
    """Drive the ASGI app directly: returns (status, JSON body, bytes the app pulled from the client)."""
    pulled = 0
    source = iter(chunks)
    answer: dict = {"body": b""}

    async def receive():
        nonlocal pulled
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), *headers], "client": ("127.0.0.1", 1234), "server": ("test", 80)}
    await app(scope, receive, send)
    return answer["status"], json.loads(answer["body"]), pulled


def _endless(size: int):
    chunk = b"x" * CHUNK
    for _ in range(size // CHUNK):
        yield chunk


async def test_a_declared_oversized_body_is_refused_before_a_byte_is_read(app, shop):
    limit = shop.ctx.settings.max_request_bytes
    status, body, pulled = await _call(app, "/api/orders", chunks=_endless(200 * 1024 * 1024), headers=[
        (b"content-type", b"application/json"), (b"content-length", str(200 * 1024 * 1024).encode())])
    assert status == 413 and pulled == 0
    assert body["code"] == "payload_too_large" and body["max_bytes"] == limit
    assert await shop.count(Order) == 0


JSON, FORM = b"application/json", b"application/x-www-form-urlencoded"


@pytest.mark.parametrize(("path", "content_type"), [
    ("/api/orders", JSON), ("/lookup", FORM), ("/p/product-1/checkout", FORM), ("/payments/sandbox/notify", FORM),
    ("/api/admin/categories", JSON), ("/api/orders/lookup", JSON), ("/api/staff/login", JSON),
    ("/api/suppliers/ACME/stock-callback", JSON)])
async def test_a_streamed_200_mb_body_stops_at_the_limit_and_memory_stays_flat(app, shop, path, content_type):
    limit = shop.ctx.settings.max_request_bytes
    tracemalloc.start()
    try:
        status, body, pulled = await _call(app, path, chunks=_endless(200 * 1024 * 1024),
                                           headers=[(b"content-type", content_type)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413, body
    assert body["code"] == "payload_too_large"
    assert pulled <= limit + CHUNK  # the client's 200 MB were never read: one chunk past the limit at most
    assert peak < 16 * 1024 * 1024, peak


async def test_a_body_longer_than_its_content_length_is_counted_too(app, shop):
    status, body, pulled = await _call(app, "/api/orders", chunks=_endless(10 * 1024 * 1024), headers=[
        (b"content-type", b"application/json"), (b"content-length", b"100")])
    assert status == 413 and pulled <= shop.ctx.settings.max_request_bytes + CHUNK


async def test_forms_and_small_bodies_still_work_under_the_limit(shop, client, stocked_sku):
    shop.ctx.settings.max_request_bytes = 4096
    ok = await client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1, "contact": "a@example.com"})
    assert ok.status_code == 201
    padded = await client.post("/api/orders", json={"sku_id": stocked_sku.id, "quantity": 1,
                                                    "contact": "a@example.com", "pad": "x" * 5000})
    assert padded.status_code == 413 and padded.json()["max_bytes"] == 4096
    page = await client.post("/lookup", data=await with_csrf(client, {"order_no": "x" * 5000}),
                             headers={"Accept": "text/html"})
    assert page.status_code == 413
    assert await shop.count(Order) == 1


async def test_the_card_key_import_has_its_own_larger_limit(shop, client, sku):
    shop.ctx.settings.max_request_bytes = 4096
    shop.ctx.settings.max_import_bytes = 64 * 1024
    text = "\n".join(random_code() for _ in range(600)).encode()  # ~12 KB: above the general limit
    accepted = await client.post(f"/api/admin/skus/{sku.id}/card-keys/import", headers=shop.admin,
                                 files={"file": ("keys.txt", text, "text/plain")})
    assert accepted.status_code in (201, 202), accepted.text
    too_big = await client.post(f"/api/admin/skus/{sku.id}/card-keys/import", headers=shop.admin,
                                files={"file": ("keys.txt", b"A" * (200 * 1024), "text/plain")})
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
