"""The risk rules editor and the notifications / dead letters page in the console: through the rule set and
notification services (validated as the admin API validates), refused forms change nothing, every action audited."""

from __future__ import annotations

import html
import json

from sqlalchemy import func, select, update

from console.support import logged_in, post_form
from quanyi.notifications import service as notifications_service
from quanyi.notifications.models import Channel, Kind, MessageStatus, OutboxMessage
from quanyi.risk.models import RiskPolicy, RiskRule
from quanyi.staff.models import StaffAuditEntry

VELOCITY = {"dimension": "ip", "window_seconds": 600, "max_count": 5}


async def _audit(shop, actor: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(StaffAuditEntry.action).where(
            StaffAuditEntry.actor == actor, StaffAuditEntry.action != "login").order_by(StaffAuditEntry.id))).all())


async def _rules(shop) -> list[RiskRule]:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return list((await session.scalars(select(RiskRule).order_by(RiskRule.id))).all())


def _rule_form(**overrides: object) -> dict[str, object]:
    form: dict[str, object] = {"name": "checkout burst", "kind": "velocity", "params": json.dumps(VELOCITY),
                               "action": "challenge", "score": "40", "reason_code": "ip_velocity",
                               "stages": ["order"], "enabled": "on"}
    form.update(overrides)
    return form


async def test_rules_are_created_edited_and_disabled_through_the_rule_set_with_validation(shop):
    client = await logged_in(shop, "rose", roles=("owner",))
    page = await client.get("/console/risk-rules/new?lang=en")
    assert page.status_code == 200 and "max_count" in page.text  # the kinds' parameters are described

    for bad, status, says in ((_rule_form(params="{not json"), 422, "not valid JSON"),
                              (_rule_form(params=json.dumps({"dimension": "ip", "window_seconds": -1})), 422,
                               "params."),
                              (_rule_form(kind="telepathy"), 422, "unknown rule kind"),
                              (_rule_form(reason_code="Has Spaces"), 422, "reason_code"),
                              (_rule_form(stages=[]), 422, "stages"),
                              (_rule_form(score="9999"), 422, "score")):
        refused = await post_form(client, "/console/risk-rules", bad, page_url="/console/risk-rules/new")  # type: ignore[arg-type]
        assert refused.status_code == status and says in refused.text, (bad, refused.status_code)
        assert 'data-testid="rule-form"' in refused.text  # drawn again, as typed
    assert await _rules(shop) == []

    created = await post_form(client, "/console/risk-rules", _rule_form(), page_url="/console/risk-rules/new")  # type: ignore[arg-type]
    assert created.status_code == 303
    [rule] = await _rules(shop)
    assert (rule.kind, rule.action, rule.score, rule.enabled, rule.stages) == ("velocity", "challenge", 40, True,
                                                                               ["order"])
    assert rule.params["max_count"] == 5
    taken = await post_form(client, "/console/risk-rules", _rule_form(), page_url="/console/risk-rules/new")  # type: ignore[arg-type]
    assert taken.status_code == 409 and len(await _rules(shop)) == 1

    edit = await client.get(f"/console/risk-rules/{rule.id}")
    assert edit.status_code == 200 and '"max_count": 5' in html.unescape(edit.text)
    saved = await post_form(client, f"/console/risk-rules/{rule.id}", _rule_form(
        params=json.dumps({**VELOCITY, "max_count": 9}), action="review", score="0",
        stages=["order", "payment"]), page_url=f"/console/risk-rules/{rule.id}")  # type: ignore[arg-type]
    assert saved.status_code == 303
    bad_edit = await post_form(client, f"/console/risk-rules/{rule.id}", _rule_form(
        params=json.dumps({**VELOCITY, "max_count": "lots"})), page_url=f"/console/risk-rules/{rule.id}")  # type: ignore[arg-type]
    assert bad_edit.status_code == 422
    disabled = await post_form(client, f"/console/risk-rules/{rule.id}/enabled", {},
                               page_url="/console/risk-rules")
    assert disabled.status_code == 303 and "m=disabled" in disabled.headers["location"]
    [rule] = await _rules(shop)
    assert (rule.action, rule.params["max_count"], rule.stages, rule.enabled) == ("review", 9, ["order", "payment"],
                                                                                  False)
    listing = await client.get("/console/risk-rules?lang=en")
    assert 'data-testid="rule-enable"' in listing.text and "Off" in listing.text
    missing = await client.get("/console/risk-rules/2147480000")
    assert missing.status_code == 404

    unordered = await post_form(client, "/console/risk-rules/policy", {"challenge_at": "90", "review_at": "50"},
                                page_url="/console/risk-rules")
    assert unordered.status_code == 422
    policy = await post_form(client, "/console/risk-rules/policy",
                             {"challenge_at": "40", "review_at": "70", "deny_at": ""}, page_url="/console/risk-rules")
    assert policy.status_code == 303
    async with shop.ctx.db.read_session() as session:
        stored = await session.get(RiskPolicy, 1)
        assert (stored.challenge_at, stored.review_at, stored.deny_at) == (40, 70, None)
    defaults = await post_form(client, "/console/risk-rules/defaults", {}, page_url="/console/risk-rules")
    assert defaults.status_code == 303 and len(await _rules(shop)) > 10
    assert await _audit(shop, "rose") == ["risk_rule_created", "risk_rule_updated", "risk_rule_disabled",
                                          "risk_policy_set", "risk_defaults_installed"]



def test_every_default_rule_has_a_chinese_name():
    from quanyi.console.i18n import MESSAGES
    from quanyi.risk.ruleset import DEFAULT_RULES

    for spec in DEFAULT_RULES:
        assert f"rr.rule.{spec['name']}" in MESSAGES["zh-CN"], spec["name"]


async def test_default_rules_show_chinese_names_and_a_renamed_rule_keeps_the_operators_name(shop):
    from quanyi.risk import ruleset

    async with shop.ctx.db.transaction() as session:
        await ruleset.install_default_rules(session=session)
        renamed = await session.scalar(select(RiskRule.id).where(RiskRule.name == "night hours"))
        await ruleset.update_rule(session=session, rule_id=renamed, changes={"name": "深夜订单加分"})
        burst = await session.scalar(select(RiskRule.id).where(RiskRule.name == "ip burst"))
    client = await logged_in(shop, "rhea", roles=("owner",))
    listing = await client.get("/console/risk-rules?lang=zh-CN")
    assert 'data-rule="ip burst"' in listing.text  # the stored name stays the rule's identity
    assert ">同一 IP 短时间内频繁下单</a>" in listing.text and ">ip burst</a>" not in listing.text
    assert ">深夜订单加分</a>" in listing.text and "凌晨时段下单" not in listing.text
    kind = '<span data-testid="rule-kind-name">频率限制</span> <code class="small muted">velocity</code>'
    assert kind in listing.text
    edit = await client.get(f"/console/risk-rules/{burst}")
    assert 'value="ip burst"' in edit.text and "显示为“同一 IP 短时间内频繁下单”" in edit.text
    assert 'data-testid="default-name"' not in (await client.get(f"/console/risk-rules/{renamed}")).text
    disabled = await post_form(client, f"/console/risk-rules/{burst}/enabled", {}, page_url="/console/risk-rules")
    flashed = await client.get(disabled.headers["location"])
    assert "同一 IP 短时间内频繁下单" in flashed.text[flashed.text.index('data-testid="flash"'):][:300]


async def _dead_message(shop, recipient: str, key: str) -> int:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.transaction() as session:
        await notifications_service.enqueue(session=session, channel=Channel.EMAIL, recipient=recipient,
                                            kind=Kind.ORDER_DELIVERED, locale="zh-CN", payload={"order_no": key},
                                            dedupe_key=f"test:{key}")
        message_id = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == f"test:{key}"))
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id)
                              .values(status="dead", attempts=8, last_error="550 mailbox unavailable"))
    return int(message_id)


async def _status(shop, message_id: int) -> str:  # type: ignore[no-untyped-def]
    async with shop.ctx.db.read_session() as session:
        return str(await session.scalar(select(OutboxMessage.status).where(OutboxMessage.id == message_id)))


async def test_dead_letters_are_retried_or_discarded_with_a_reason(shop):
    first = await _dead_message(shop, "alice.buyer@example.com", "one")
    second = await _dead_message(shop, "bob.buyer@example.com", "two")
    client = await logged_in(shop, "otto", roles=("operator",))
    page = await client.get("/console/notifications?lang=en")
    assert page.status_code == 200 and page.text.count('data-testid="notification-row"') == 2
    assert "alice.buyer@example.com" not in page.text and "a***@example.com" in page.text  # masked for operators
    assert "550 mailbox unavailable" in page.text

    retried = await post_form(client, f"/console/notifications/{first}/retry", {}, page_url="/console/notifications")
    assert retried.status_code == 303 and await _status(shop, first) == MessageStatus.PENDING
    again = await post_form(client, f"/console/notifications/{first}/retry", {}, page_url="/console/notifications")
    assert again.status_code == 409 and await _status(shop, first) == MessageStatus.PENDING

    no_reason = await post_form(client, f"/console/notifications/{second}/discard", {"reason": " "},
                                page_url="/console/notifications")
    assert no_reason.status_code == 422 and await _status(shop, second) == MessageStatus.DEAD
    pending = await post_form(client, f"/console/notifications/{first}/discard", {"reason": "x"},
                              page_url="/console/notifications")
    assert pending.status_code == 409 and await _status(shop, first) == MessageStatus.PENDING  # only dead ones
    discarded = await post_form(client, f"/console/notifications/{second}/discard",
                                {"reason": "buyer got the codes by phone"}, page_url="/console/notifications")
    assert discarded.status_code == 303 and await _status(shop, second) == MessageStatus.DISCARDED
    dead_list = await client.get("/console/notifications")
    assert 'data-testid="no-notifications"' in dead_list.text  # neither is a dead letter any more
    async with shop.ctx.db.read_session() as session:
        assert await notifications_service.count_messages(session=session, status=MessageStatus.DEAD) == 0
        claimed = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.id == second, OutboxMessage.status == MessageStatus.PENDING))
        assert claimed == 0  # a discarded message is never picked up again
    missing = await post_form(client, "/console/notifications/2147480000/retry", {},
                              page_url="/console/notifications")
    assert missing.status_code == 404
    assert await _audit(shop, "otto") == ["notification_retried", "notification_discarded"]


def test_every_rule_kind_is_explained_in_chinese_too():
    from quanyi.console.i18n import MESSAGES
    from quanyi.risk.rules import RULE_PARAMS

    for kind in RULE_PARAMS:
        assert f"rr.kind.{kind}" in MESSAGES["zh-CN"], kind


async def test_the_rule_editor_explains_the_kinds_in_the_pages_language(shop):
    client = await logged_in(shop, "rhea", roles=("owner",))
    page = await client.get("/console/risk-rules/new")
    assert page.status_code == 200
    assert "在店铺时间 `start` 至 `end` 之间下的订单" in html.unescape(page.text)
    assert "滑动时间窗口（秒）" in page.text and "Orders placed between" not in page.text
    assert "Sliding window in seconds" not in page.text
    english = await client.get("/console/risk-rules/new?lang=en")
    assert "Orders placed between" in english.text
