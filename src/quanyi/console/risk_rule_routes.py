"""The risk rules editor (风控规则): the rule set and the score thresholds, create / edit / enable / disable / delete
a rule (the audit entry keeps all of a deleted rule, to make it again), add the missing default rules. Through the
rule set service the admin API uses (parameters validated for the rule's kind, the same request shapes); platform
staff only. An edit is in force for the next checkout of every process."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.console.texts.risk_rules import rule_name  # registers the texts too
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.risk import ruleset
from quanyi.risk.rules import RULE_PARAMS, Decision, Stage, describe_kinds
from quanyi.risk.schemas import PolicyUpdate, RuleCreate, RuleUpdate
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN
from quanyi.web.i18n import pick_locale

__all__ = ["router"]

router = console_router("/console/risk-rules")
register(MenuItem("risk_rules", "/console/risk-rules", ADMIN, group="risk", order=20, icon="sliders",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
RuleId = Annotated[int, Path(ge=1, le=2_147_483_647)]
MESSAGES = ("created", "saved", "enabled", "disabled", "deleted", "policy_saved", "defaults")


@router.get("", response_class=HTMLResponse)
async def rule_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return await _list_page(request, ctx, user)


async def _list_page(request: Request, ctx: ContextDep, user: ConsoleUser, *,
                     message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    async with ctx.db.read_session() as session:
        rules = await ruleset.list_rules(session=session)
        policy = await ruleset.get_policy(session=session)
    return render_page(request, "console/risk_rules.html", {
        "rules": rules, "policy": policy,
        "message": message or _shown(forms.flash(request, "rr", MESSAGES, values=("name", "count")),
                                     pick_locale(request, ctx.settings.default_locale)),
    }, user=user, active="risk_rules", status_code=status_code)


def _shown(flashed: forms.Message | None, locale: str) -> forms.Message | None:
    """A done message names the rule as the page shows it (a default rule under its Chinese name)."""
    if flashed is None or not flashed[1].get("name"):
        return flashed
    return flashed[0], {**flashed[1], "name": rule_name(flashed[1]["name"], locale)}, flashed[2]


def _kinds() -> list[dict[str, Any]]:
    """Each rule kind with its parameters (name, type, description) for the form's help."""
    described = []
    for kind in describe_kinds():
        schema = kind["params"]
        params = [{"name": name, "type": spec.get("type") or "/".join(
            str(o.get("type", "")) for o in spec.get("anyOf", []) if o.get("type")),
            "description": spec.get("description", ""), "required": name in schema.get("required", [])}
            for name, spec in schema.get("properties", {}).items()]
        described.append({"kind": kind["kind"], "description": kind["description"], "params": params})
    return described


def _form_page(request: Request, user: ConsoleUser, values: dict[str, Any], *, rule_id: int | None,
               message: forms.Message | None = None, status_code: int = 200) -> HTMLResponse:
    return render_page(request, "console/risk_rule.html", {
        "values": values, "rule_id": rule_id, "kinds": _kinds(), "actions": [d.value for d in Decision],
        "stages": [s.value for s in Stage], "message": message,
    }, user=user, active="risk_rules", status_code=status_code)


def _values(form: Any) -> dict[str, Any]:
    """What the form says, as the rule request shapes take it (params parsed from their JSON)."""
    raw_params = forms.text(form, "params", max_length=20_000) or "{}"
    try:
        params = json.loads(raw_params)
    except json.JSONDecodeError as exc:
        raise forms.FormError(f"params is not valid JSON: {exc.msg} (line {exc.lineno})", field="params") from None
    if not isinstance(params, dict):
        raise forms.FormError("params must be a JSON object: {\"name\": value, ...}", field="params")
    return {"name": forms.text(form, "name", max_length=200), "params": params,
            "action": forms.text(form, "action", max_length=16), "score": forms.integer(
                form, "score", minimum=0, maximum=1000, default=0),
            "reason_code": forms.text(form, "reason_code", max_length=64),
            "stages": [str(s) for s in form.getlist("stages")], "enabled": forms.checkbox(form, "enabled")}


def _redraw(form: Any) -> dict[str, Any]:
    """The submitted form as it was typed, to draw it again after a refusal."""
    return {"name": str(form.get("name", ""))[:200], "kind": str(form.get("kind", ""))[:32],
            "params": str(form.get("params", ""))[:20_000], "action": str(form.get("action", ""))[:16],
            "score": str(form.get("score", ""))[:8], "reason_code": str(form.get("reason_code", ""))[:64],
            "stages": [str(s) for s in form.getlist("stages")], "enabled": forms.checkbox(form, "enabled")}


@router.get("/new", response_class=HTMLResponse)
async def new_rule(request: Request, user: PlatformAdmin) -> HTMLResponse:
    kind = request.query_params.get("kind", "")
    kind = kind if kind in RULE_PARAMS else "velocity"
    return _form_page(request, user, {"name": "", "kind": kind, "params": "{}", "action": "challenge", "score": 0,
                                      "reason_code": "", "stages": ["order"], "enabled": True}, rule_id=None)


@router.post("", response_class=HTMLResponse)
async def create_rule(request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        data = forms.validated(RuleCreate, {**_values(form), "kind": forms.text(form, "kind", max_length=32)})
        async with ctx.db.transaction() as session:
            rule = await ruleset.create_rule(session=session, **data.model_dump())
            await record_action(session=session, actor=user.actor, action="risk_rule_created", object_type="risk_rule",
                                object_id=rule.id, summary=_summary(rule))
            name = rule.name
    except DomainError as exc:
        return _form_page(request, user, _redraw(form), rule_id=None, message=forms.error(exc),
                          status_code=forms.status_for(exc))
    return forms.back("/console/risk-rules", "created", name=name)


def _summary(rule: Any) -> str:
    return (f"{rule.name}: {rule.kind} {rule.action} score={rule.score} reason={rule.reason_code} "
            f"stages={','.join(rule.stages)} "
            f"enabled={rule.enabled} params={json.dumps(rule.params, ensure_ascii=False, sort_keys=True)}")


def _stored(rule: Any) -> dict[str, Any]:
    return {"name": rule.name, "kind": rule.kind, "params": json.dumps(rule.params, indent=2, ensure_ascii=False),
            "action": rule.action, "score": rule.score, "reason_code": rule.reason_code, "stages": rule.stages,
            "enabled": rule.enabled}


@router.post("/policy", response_class=HTMLResponse)
async def set_policy(request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        values = {name: forms.integer(form, name, minimum=1, maximum=100_000) if str(form.get(name, "")).strip()
                  else None for name in ("challenge_at", "review_at", "deny_at")}
        data = forms.validated(PolicyUpdate, values)
        async with ctx.db.transaction() as session:
            policy = await ruleset.set_policy(session=session, **data.model_dump())
            await record_action(session=session, actor=user.actor, action="risk_policy_set", object_type="risk_policy",
                                object_id=1, summary=f"challenge_at={policy.challenge_at} review_at={policy.review_at}"
                                f" deny_at={policy.deny_at}")
    except DomainError as exc:
        return await _list_page(request, ctx, user, message=forms.error(exc), status_code=forms.status_for(exc))
    return forms.back("/console/risk-rules", "policy_saved")


@router.post("/defaults", response_class=HTMLResponse)
async def install_defaults(ctx: ContextDep, user: PlatformAdmin) -> Response:
    async with ctx.db.transaction() as session:
        added = await ruleset.install_default_rules(session=session)
        await record_action(session=session, actor=user.actor, action="risk_defaults_installed",
                            object_type="risk_rule", summary=f"{added} default rules added")
    return forms.back("/console/risk-rules", "defaults", count=str(added))


@router.get("/{rule_id}", response_class=HTMLResponse)
async def edit_rule(rule_id: RuleId, request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    try:
        async with ctx.db.read_session() as session:
            rule = await ruleset.get_rule(session=session, rule_id=rule_id)
    except NotFound:
        return forms.not_found(request, user, active="risk_rules")
    return _form_page(request, user, _stored(rule), rule_id=rule.id)


@router.post("/{rule_id}", response_class=HTMLResponse)
async def update_rule(rule_id: RuleId, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    form = await request.form()
    try:
        data = forms.validated(RuleUpdate, _values(form))
        async with ctx.db.transaction() as session:
            rule = await ruleset.update_rule(session=session, rule_id=rule_id,
                                             changes=data.model_dump(exclude_unset=True))
            await record_action(session=session, actor=user.actor, action="risk_rule_updated", object_type="risk_rule",
                                object_id=rule.id, summary=_summary(rule))
            name = rule.name
    except NotFound:
        return forms.not_found(request, user, active="risk_rules")
    except DomainError as exc:
        async with ctx.db.read_session() as session:
            kind = (await ruleset.get_rule(session=session, rule_id=rule_id)).kind
        return _form_page(request, user, {**_redraw(form), "kind": kind}, rule_id=rule_id, message=forms.error(exc),
                          status_code=forms.status_for(exc))
    return forms.back("/console/risk-rules", "saved", name=name)


@router.post("/{rule_id}/enabled", response_class=HTMLResponse)
async def set_enabled(rule_id: RuleId, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    enabled = forms.checkbox(await request.form(), "enabled")
    try:
        async with ctx.db.transaction() as session:
            rule = await ruleset.update_rule(session=session, rule_id=rule_id, changes={"enabled": enabled})
            await record_action(session=session, actor=user.actor,
                                action="risk_rule_enabled" if enabled else "risk_rule_disabled",
                                object_type="risk_rule", object_id=rule.id, summary=rule.name)
            name = rule.name
    except NotFound:
        return forms.not_found(request, user, active="risk_rules")
    return forms.back("/console/risk-rules", "enabled" if enabled else "disabled", name=name)


@router.post("/{rule_id}/delete", response_class=HTMLResponse)
async def delete_rule(rule_id: RuleId, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    try:
        async with ctx.db.transaction() as session:
            rule = await ruleset.get_rule(session=session, rule_id=rule_id)
            name, summary = rule.name, _summary(rule)
            await ruleset.delete_rule(session=session, rule_id=rule_id)
            await record_action(session=session, actor=user.actor, action="risk_rule_deleted", object_type="risk_rule",
                                object_id=rule_id, summary=summary)
    except NotFound:
        return forms.not_found(request, user, active="risk_rules")
    return forms.back("/console/risk-rules", "deleted", name=name)
