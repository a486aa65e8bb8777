"""Payment gateway pages (支付渠道): which gateways take payments, configure one (secrets are write-only: shown
masked, a secret left blank keeps the stored one), enable or disable it. Through the gateway configuration service
the admin API uses; platform staff only (a merchant's staff never see the platform's payment accounts)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, Response

import quanyi.console.texts.gateways  # noqa: F401 - registers the texts
from quanyi.console import forms
from quanyi.console.auth import ConsoleUser, console_router, needs
from quanyi.console.menu import MenuItem, register
from quanyi.console.rendering import render_page
from quanyi.deps import ContextDep
from quanyi.errors import DomainError, NotFound
from quanyi.payments import configuration as gateway_configuration
from quanyi.staff.audit import record_action
from quanyi.staff.permissions import ADMIN

__all__ = ["router"]

router = console_router("/console/gateways")
register(MenuItem("gateways", "/console/gateways", ADMIN, group="system", order=20, icon="card",
                  platform_only=True))

PlatformAdmin = Annotated[ConsoleUser, needs(ADMIN, platform_only=True)]
GatewayName = Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_]+$")]


async def _described(ctx: ContextDep) -> list[dict[str, Any]]:
    async with ctx.db.read_session() as session:
        return await gateway_configuration.describe_gateway_configs(session=session, cipher=ctx.cipher,
                                                                    registry=ctx.gateways)


@router.get("", response_class=HTMLResponse)
async def gateway_list(request: Request, ctx: ContextDep, user: PlatformAdmin) -> HTMLResponse:
    return render_page(request, "console/gateways.html", {
        "gateways": await _described(ctx), "sandbox": ctx.settings.sandbox_enabled,
        "public_base_url": ctx.settings.public_base_url,
        "message": forms.flash(request, "gw", ("saved",), values=("name",)),
    }, user=user, active="gateways")


async def _form(request: Request, ctx: ContextDep, user: ConsoleUser, name: str, *,
                message: forms.Message | None = None, submitted: dict[str, Any] | None = None,
                status_code: int = 200) -> HTMLResponse:
    try:
        fields = gateway_configuration.config_fields(name)
    except NotFound:
        return forms.not_found(request, user, active="gateways")
    described = next(item for item in await _described(ctx) if item["name"] == name)
    stored = described["config"] or {}
    values = {f.name: (submitted or {}).get(f.name, stored.get(f.name, f.default)) for f in fields if not f.secret}
    secrets_set = {f.name for f in fields if f.secret and stored.get(f.name)}
    return render_page(request, "console/gateway.html", {
        "g": described, "fields": fields, "values": values, "secrets_set": secrets_set, "message": message,
        "public_base_url": ctx.settings.public_base_url,
    }, user=user, active="gateways", status_code=status_code)


@router.get("/{gateway_name}", response_class=HTMLResponse)
async def gateway_form(gateway_name: GatewayName, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    return await _form(request, ctx, user, gateway_name)


@router.post("/{gateway_name}", response_class=HTMLResponse)
async def save_gateway(gateway_name: GatewayName, request: Request, ctx: ContextDep, user: PlatformAdmin) -> Response:
    try:
        fields = gateway_configuration.config_fields(gateway_name)
    except NotFound:
        return forms.not_found(request, user, active="gateways")
    form = await request.form()
    config: dict[str, Any] = {}
    submitted: dict[str, Any] = {}
    for field in fields:
        raw = str(form.get(field.name, "") or "").strip()
        if field.secret:
            if raw:  # blank: keep the stored secret (the service merges over it)
                config[field.name] = raw
            continue
        submitted[field.name] = raw
        # A cleared optional setting goes back to its default; a cleared required one is refused by validation.
        config[field.name] = raw if raw or field.required else field.default
    enabled = forms.checkbox(form, "enabled")
    try:
        async with ctx.db.transaction() as session:
            await gateway_configuration.save_gateway_config(
                session=session, cipher=ctx.cipher, name=gateway_name, config=config, enabled=enabled,
                updated_by=user.name, public_base_url=ctx.settings.public_base_url)
            changed = sorted(config)
            await record_action(session=session, actor=user.actor, action="gateway_configured", object_type="gateway",
                                object_id=gateway_name, summary=f"enabled={enabled}; fields: {', '.join(changed)}")
    except DomainError as exc:
        return await _form(request, ctx, user, gateway_name, message=forms.error(exc), submitted=submitted,
                           status_code=forms.status_for(exc))
    async with ctx.db.read_session() as session:
        await gateway_configuration.refresh_registry(session=session, cipher=ctx.cipher, http=ctx.http,
                                                     registry=ctx.gateways,
                                                     public_base_url=ctx.settings.public_base_url)
    return forms.back("/console/gateways", "saved", name=gateway_name)
