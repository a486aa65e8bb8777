"""Every endpoint answers malformed input with a 4xx and a clear message, never a 500.

The operation list comes from the app's own OpenAPI document, so a new endpoint is covered the day it
is added. Each operation gets broken path parameters, broken JSON, wrong JSON types, hostile strings and
out-of-range numbers, with and without credentials; plus a Hypothesis fuzz of arbitrary JSON bodies.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

BAD_PATH_VALUES = ["0", "-1", "abc", "99999999999999999999", "1.5", "%00", "%E2%80%AE", "a" * 300]
BAD_JSON_BODIES: list[bytes] = [b"{", b"[]", b"null", b'"text"', b"12", b"{\"sku_id\": }", b"\xff\xfe\x00",
                                b"{" * 500 + b"}" * 500]
HOSTILE_VALUES: list[Any] = [None, -1, 0, 2**63, -(2**63), 1e308, 1.5, True, "", "\x00", "a\x00b", "\u202e",
                             "<script>alert(1)</script>", "' OR 1=1 --", "x" * 100_000, [], {}, [1, 2], {"a": 1}]


def _operations(app) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.openapi()
    ops = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            ops.append((method.upper(), path, op))
    return ops


def _fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _body_fields(app, op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = app.openapi()["components"]["schemas"][schema["$ref"].split("/")[-1]]
    elif "anyOf" in schema:
        refs = [s for s in schema["anyOf"] if "$ref" in s]
        schema = app.openapi()["components"]["schemas"][refs[0]["$ref"].split("/")[-1]] if refs else {}
    return list(schema.get("properties", {}))


def _assert_clean_4xx(response, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        assert body["code"] and body["detail"], what
    else:  # gateway protocol answers are plain text, still with a reason
        assert response.text.strip(), what


async def test_every_operation_is_in_the_openapi_document(app):
    paths = {path for _, path, _ in _operations(app)}
    assert {"/api/orders", "/api/orders/{order_no}/reveal", "/api/orders/lookup", "/payments/{gateway_name}/notify",
            "/api/admin/skus/{sku_id}/card-keys/import", "/api/catalog/products/{slug}"} <= paths


@pytest.mark.parametrize("authorized", [False, True], ids=["anonymous", "admin"])
async def test_broken_path_parameters_never_500(app, client, shop, authorized):
    headers = shop.admin if authorized else {}
    for method, path, _ in _operations(app):
        if "{" not in path:
            continue
        for value in BAD_PATH_VALUES:
            response = await client.request(method, _fill(path, value), headers=headers, json={})
            _assert_clean_4xx(response, f"{method} {path} with {value!r}")


@pytest.mark.parametrize("authorized", [False, True], ids=["anonymous", "admin"])
async def test_broken_json_bodies_never_500(app, client, shop, order, authorized):
    headers = {**(shop.admin if authorized else {}), **shop.auth(order), "content-type": "application/json"}
    for method, path, op in _operations(app):
        if "application/json" not in op.get("requestBody", {}).get("content", {}):
            continue  # operations without a JSON body ignore one
        url = _fill(path, order["order_no"] if "order_no" in path else "1").replace("{gateway_name}", "sandbox")
        for body in BAD_JSON_BODIES:
            if body == b"null" and not op["requestBody"].get("required"):
                continue  # an optional body may be absent
            response = await client.request(method, url, headers=headers, content=body)
            _assert_clean_4xx(response, f"{method} {path} with body {body[:20]!r}")


async def test_hostile_field_values_never_500(app, client, shop, order, stocked_sku):
    headers = {**shop.admin, **shop.auth(order)}
    for method, path, op in _operations(app):
        fields = _body_fields(app, op)
        if not fields:
            continue
        url = _fill(path, order["order_no"] if "order_no" in path else str(stocked_sku.id))
        for field in fields:
            for value in HOSTILE_VALUES:
                response = await client.request(method, url, headers=headers, json={field: value})
                assert response.status_code < 500, f"{method} {path} {field}={value!r}: {response.text[:300]}"


async def test_validation_errors_name_the_field(client):
    response = await client.post("/api/orders", json={"sku_id": "seven", "contact": "a@example.com"})
    body = response.json()
    assert response.status_code == 422 and body["code"] == "validation_failed"
    assert body["errors"][0]["field"] == "body.sku_id"
    assert body["detail"].startswith("body.sku_id:")
    malformed = await client.post("/api/orders", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["code"] == "malformed_json"


async def test_unknown_routes_and_methods_are_problem_documents(client):
    missing = await client.get("/api/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = await client.delete("/api/orders")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_order_fields = st.fixed_dictionaries({}, optional={
    "sku_id": _json, "quantity": _json, "contact": _json, "query_password": _json, "locale": _json})


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_json, _order_fields))
async def test_fuzzed_order_bodies_never_500(client, stocked_sku, body):
    for path in ("/api/orders", "/api/orders/lookup"):
        response = await client.post(path, json=body)
        assert response.status_code < 500, (path, body, response.text[:300])
