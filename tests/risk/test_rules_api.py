"""The rule set through the admin API: validation, edits in force on the next request, in every process."""

from __future__ import annotations

import asyncio

import pytest

from quanyi.app import create_app
from quanyi.context import build_context
from risk.support import add_rule, checkout


@pytest.fixture
async def goods(shop):
    sku = await shop.make_sku(code="API-GOODS", max_quantity=50)
    await shop.stock(sku, 20)
    return sku


@pytest.mark.parametrize(("body", "code"), [
    ({"kind": "velocity", "params": {"dimension": "ip", "max_count": 3}}, "invalid_rule_params"),
    ({"kind": "velocity", "params": {"dimension": "cookie", "window_seconds": 60, "max_count": 3}},
     "invalid_rule_params"),
    ({"kind": "velocity", "params": {"dimension": "ip", "window_seconds": 60, "max_count": 0}}, "invalid_rule_params"),
    ({"kind": "velocity", "params": {"dimension": "ip", "window_seconds": 60, "max_count": 3, "x": 1}},
     "invalid_rule_params"),
    ({"kind": "block_list", "params": {"ips": ["300.1.1.1/8"]}}, "invalid_rule_params"),
    ({"kind": "block_list", "params": {}}, "invalid_rule_params"),
    ({"kind": "amount_limit", "params": {"scope": "order"}}, "invalid_rule_params"),
    ({"kind": "time_window", "params": {"start": "25:00", "end": "06:00"}}, "invalid_rule_params"),
    ({"kind": "teleport", "params": {}}, "invalid_rule_params"),
    ({"kind": "velocity", "params": {"dimension": "ip", "window_seconds": 60, "max_count": 3}, "action": "maybe"},
     "validation_failed"),
    ({"kind": "velocity", "params": {"dimension": "ip", "window_seconds": 60, "max_count": 3}, "stages": []},
     "validation_failed"),
])
async def test_bad_rule_params_are_refused_with_422_and_nothing_stored(shop, body, code):
    payload = {"name": "bad", "action": "deny", "reason_code": "bad", **body}
    response = await shop.client.post("/api/admin/risk/rules", headers=shop.admin, json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert (await shop.client.get("/api/admin/risk/rules", headers=shop.admin)).json() == []


async def test_rule_admin_needs_the_admin_token(shop):
    assert (await shop.client.get("/api/admin/risk/rules")).status_code == 401


async def test_bad_params_in_an_edit_change_nothing(shop):
    rule = await add_rule(shop, "velocity", {"dimension": "ip", "window_seconds": 60, "max_count": 3})
    response = await shop.client.patch(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin,
                                       json={"params": {"dimension": "ip", "window_seconds": 5, "max_count": 3}})
    assert response.status_code == 422
    stored = (await shop.client.get(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin)).json()
    assert stored["params"] == {"dimension": "ip", "window_seconds": 60, "max_count": 3}
    assert (await shop.client.patch("/api/admin/risk/rules/9999", headers=shop.admin,
                                    json={"enabled": False})).status_code == 404
    duplicate = await shop.client.post("/api/admin/risk/rules", headers=shop.admin, json={
        "name": rule["name"], "kind": "velocity", "action": "deny", "reason_code": "x",
        "params": {"dimension": "ip", "window_seconds": 60, "max_count": 3}})
    assert duplicate.status_code == 409
    for field in ("enabled", "name", "params", "stages"):  # found by schemathesis: null used to be a 500
        nulled = await shop.client.patch(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin,
                                         json={field: None})
        assert nulled.status_code == 422 and "cannot be null" in nulled.json()["detail"]
    assert (await shop.client.get(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin)).json() == stored


async def test_bad_thresholds_are_refused(shop):
    response = await shop.client.put("/api/admin/risk/policy", headers=shop.admin,
                                     json={"challenge_at": 90, "review_at": 50})
    assert response.status_code == 422


async def test_rule_edit_applies_at_once_here_and_within_the_cache_delay_in_another_process(shop, goods, settings):
    # A second shop process on the same database: its own context, app and copy of the rules, nothing shared.
    delay = 0.3
    other_ctx = build_context(settings.model_copy(update={"risk_rules_cache_seconds": delay}))
    other_app = create_app(ctx=other_ctx)
    other = type(shop)(ctx=other_ctx, client=shop.client)

    async def after_the_delay(expected: int) -> None:
        await asyncio.sleep(delay + 0.05)
        assert (await checkout(other, goods.id)).status_code == expected

    try:
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://test") as c:
            other.client = c
            assert (await checkout(other, goods.id)).status_code == 201
            rule = await add_rule(shop, "velocity", {"dimension": "contact", "window_seconds": 600, "max_count": 5})
            await after_the_delay(201)

            await shop.client.patch(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin,
                                    json={"params": {"dimension": "contact", "window_seconds": 600, "max_count": 1}})
            assert (await checkout(shop, goods.id)).json()["code"] == "order_refused"  # the editing process: at once
            await asyncio.sleep(delay + 0.05)
            assert (await checkout(other, goods.id)).json()["code"] == "order_refused"

            await shop.client.patch(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin, json={"enabled": False})
            assert (await checkout(shop, goods.id)).status_code == 201
            await after_the_delay(201)

            await shop.client.patch(f"/api/admin/risk/rules/{rule['id']}", headers=shop.admin, json={"enabled": True})
            assert (await checkout(shop, goods.id)).status_code == 403
            await after_the_delay(403)
            assert (await shop.client.delete(f"/api/admin/risk/rules/{rule['id']}",
                                             headers=shop.admin)).status_code == 204
            assert (await checkout(shop, goods.id)).status_code == 201
            await after_the_delay(201)
    finally:
        await other_ctx.close()


async def test_another_process_keeps_its_copy_of_the_rules_until_it_is_old_enough(shop, goods, settings):
    """The bound is real: within QUANYI_RISK_RULES_CACHE_SECONDS another process may still use the rules it read."""
    other_ctx = build_context(settings.model_copy(update={"risk_rules_cache_seconds": 300}))
    other_app = create_app(ctx=other_ctx)
    other = type(shop)(ctx=other_ctx, client=shop.client)
    try:
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other_app), base_url="http://test") as c:
            other.client = c
            assert (await checkout(other, goods.id)).status_code == 201  # reads (no rules) and keeps the copy
            await add_rule(shop, "block_list", {"ips": ["198.51.100.7"]})
            assert (await checkout(shop, goods.id)).status_code == 403
            assert (await checkout(other, goods.id)).status_code == 201
    finally:
        await other_ctx.close()


async def test_default_rules_install_once_and_validate(shop):
    first = await shop.client.post("/api/admin/risk/rules/defaults", headers=shop.admin)
    assert first.status_code == 200
    again = await shop.client.post("/api/admin/risk/rules/defaults", headers=shop.admin)
    assert len(again.json()) == len(first.json()) >= 10
    policy = (await shop.client.get("/api/admin/risk/policy", headers=shop.admin)).json()
    assert policy == {"challenge_at": 50, "review_at": 80, "deny_at": 120}
    kinds = (await shop.client.get("/api/admin/risk/rule-kinds", headers=shop.admin)).json()
    assert {k["kind"] for k in kinds} >= {r["kind"] for r in first.json()}


async def test_refusals_are_in_the_decision_log_and_allowed_checkouts_are_not(shop, goods):
    await add_rule(shop, "block_list", {"ips": ["192.0.2.1"]}, name="blocked ip")
    assert (await checkout(shop, goods.id)).status_code == 201
    assert (await checkout(shop, goods.id, ip="192.0.2.1")).status_code == 403
    log = (await shop.client.get("/api/admin/risk/decisions", headers=shop.admin)).json()
    assert len(log) == 1
    entry = log[0]
    assert (entry["stage"], entry["decision"], entry["outcome"]) == ("order", "deny", "refused")
    assert entry["rules_hit"][0]["name"] == "blocked ip" and entry["signals"]["ip"] == "192.0.2.1"
