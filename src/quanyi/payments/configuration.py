"""Which real gateways a shop takes, with what account: stored per shop, secrets encrypted at rest.

Each gateway kind declares a pydantic config model (its secrets as SecretStr) and how to build the gateway
from it. An admin saves a configuration (validated, merged over the stored one so a secret left out is
kept, encrypted as a whole); every server process builds its registry from the stored rows at start and
refreshes it periodically, so a change takes effect everywhere without a restart. The sandbox is not here:
it is switched by settings (QUANYI_SANDBOX_ENABLED) because it must never be turned on by accident.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quanyi.db import utcnow
from quanyi.errors import InvalidInput
from quanyi.inventory.crypto import CardKeyCipher, CardKeyDecryptionError, EncryptedCode
from quanyi.payments.gateway import GatewayRegistry, PaymentGateway, UnknownGateway
from quanyi.payments.models import GatewayConfig
from quanyi.urls import PublicBaseUrlMissing

__all__ = [
    "GatewayKind", "InvalidGatewayConfig", "gateway_kinds", "register_kind", "save_gateway_config",
    "describe_gateway_configs", "build_configured_gateways", "ConfigField", "config_fields", "refresh_registry",
    "MASK", "reseal_gateway_config", "known_gateway_names",
]

logger = logging.getLogger(__name__)
MASK = "********"
_refused_without_url: set[str] = set()


@dataclass(frozen=True, slots=True)
class GatewayKind:
    name: str
    title: str
    config_model: type[BaseModel]
    build: Callable[[Any, httpx.AsyncClient], PaymentGateway]


class InvalidGatewayConfig(InvalidInput):
    code = "invalid_gateway_config"


_KINDS: dict[str, GatewayKind] = {}


def register_kind(kind: GatewayKind) -> None:
    _KINDS[kind.name] = kind


def gateway_kinds() -> dict[str, GatewayKind]:
    """The gateway kinds this build of quanyi can talk to."""
    return dict(_KINDS)


def known_gateway_names(registry: GatewayRegistry) -> set[str]:
    """Gateways the shop may have been paid through: those taking payments now and every kind it can be configured
    as (a process that has not loaded the stored configurations, like a CLI command, still knows them)."""
    return set(registry.names()) | set(_KINDS)


def _aad(name: str) -> bytes:
    return b"payments-gateway-config:" + name.encode()


def _plain(value: Any) -> Any:
    """A validated config as plain JSON values, secrets revealed (only ever to be encrypted)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _masked(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, str) and "PRIVATE KEY" in value:
        return MASK  # a safety net: a private key typed as plain str is still never shown
    if isinstance(value, BaseModel):
        return {key: _masked(item) for key, item in value}
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    return value


def _kind(name: str) -> GatewayKind:
    kind = _KINDS.get(name)
    if kind is None:
        raise UnknownGateway(f"quanyi has no gateway called {name!r}; known: {', '.join(sorted(_KINDS)) or 'none'}")
    return kind


def _decrypt(row: GatewayConfig, cipher: CardKeyCipher) -> dict[str, Any]:
    raw = cipher.decrypt(EncryptedCode(key_id=row.key_id, ciphertext=row.ciphertext), fingerprint=_aad(row.gateway))
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


def reseal_gateway_config(cipher: CardKeyCipher, *, name: str, sealed: EncryptedCode) -> EncryptedCode:
    """A stored configuration re-encrypted under the active key (key rotation), same associated data."""
    return cipher.reencrypt(sealed, fingerprint=_aad(name))


def _validate(kind: GatewayKind, values: Mapping[str, Any]) -> BaseModel:
    try:
        return kind.config_model.model_validate(dict(values))
    except ValidationError as exc:
        # Field names and reasons only: the submitted values may be secrets and must not be echoed or logged.
        problems = [{"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]} for err in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise InvalidGatewayConfig(f"{kind.name} configuration is not valid: {summary}", errors=problems) from None


@dataclass(frozen=True, slots=True)
class ConfigField:
    """One setting of a gateway kind as a form shows it: secrets are write-only (left blank: kept)."""

    name: str
    secret: bool
    required: bool
    multiline: bool  # a PEM key: several lines
    default: Any
    description: str


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def config_fields(name: str) -> list[ConfigField]:
    """The settings of gateway kind `name`, in the order its config model declares them."""
    kind = _kind(name)
    found = []
    for field_name, info in kind.config_model.model_fields.items():
        secret = _is_secret(info.annotation)
        described = info.description or ""
        found.append(ConfigField(
            name=field_name, secret=secret, required=info.is_required(),
            multiline=field_name.endswith(("private_key", "public_key", "certificate")),
            default=None if info.is_required() else info.default, description=described))
    return found


async def save_gateway_config(
    *, session: AsyncSession, cipher: CardKeyCipher, name: str, config: Mapping[str, Any], enabled: bool,
    public_base_url: str | None, updated_by: str = "admin",
) -> GatewayConfig:
    """Validate and store a gateway configuration. Fields left out (e.g. secrets) keep their stored value.
    Enabling needs the shop's public address (QUANYI_PUBLIC_BASE_URL): the gateway notifies the shop there."""
    kind = _kind(name)
    if enabled and not public_base_url:
        raise PublicBaseUrlMissing(
            f"{kind.title} ({name}) cannot be enabled without QUANYI_PUBLIC_BASE_URL, the shop's public https address "
            "(e.g. https://shop.example.com): the gateway sends its payment notifications and the buyers back there, "
            "and the shop never takes that address from a request. Set it, restart, and enable again",
            setting="QUANYI_PUBLIC_BASE_URL")
    row = await session.scalar(select(GatewayConfig).where(GatewayConfig.gateway == name).with_for_update())
    merged: dict[str, Any] = {}
    if row is not None:
        try:
            merged = _decrypt(row, cipher)
        except CardKeyDecryptionError:
            logger.warning("stored %s configuration cannot be decrypted; it is replaced entirely", name)
    merged.update({key: value for key, value in config.items() if value != MASK})
    validated = _validate(kind, merged)
    sealed = cipher.encrypt(json.dumps(_plain(validated), separators=(",", ":")), fingerprint=_aad(name))
    if row is None:
        row = GatewayConfig(gateway=name)
        session.add(row)
    row.enabled, row.key_id, row.ciphertext = enabled, sealed.key_id, sealed.ciphertext
    row.updated_by, row.updated_at = updated_by[:64], utcnow()
    await session.flush()
    return row


async def describe_gateway_configs(
    *, session: AsyncSession, cipher: CardKeyCipher, registry: GatewayRegistry
) -> list[dict[str, Any]]:
    """Every gateway kind with its stored configuration, secrets masked, and whether it is taking payments."""
    rows = {row.gateway: row for row in (await session.scalars(select(GatewayConfig))).all()}
    active = set(registry.names())
    described = []
    for name, kind in sorted(_KINDS.items()):
        row = rows.get(name)
        config: dict[str, Any] | None = None
        problem = None
        if row is not None:
            try:
                config = _masked(_validate(kind, _decrypt(row, cipher)))
            except (CardKeyDecryptionError, InvalidGatewayConfig) as exc:
                problem = str(exc)
        described.append({
            "name": name, "title": kind.title, "configured": row is not None,
            "enabled": bool(row and row.enabled), "active": name in active, "config": config,
            "problem": problem, "updated_at": row.updated_at if row else None,
            "updated_by": row.updated_by if row else None,
        })
    return described


async def build_configured_gateways(
    *, session: AsyncSession, cipher: CardKeyCipher, http: httpx.AsyncClient, public_base_url: str | None
) -> tuple[list[PaymentGateway], set[str]]:
    """Gateways from the enabled stored configurations, and the names of configured kinds (enabled or not).
    Without QUANYI_PUBLIC_BASE_URL none is started (each says why in the log, once per process)."""
    gateways, managed = [], set()
    for row in (await session.scalars(select(GatewayConfig))).all():
        kind = _KINDS.get(row.gateway)
        if kind is None:
            logger.error("stored configuration for unknown gateway %r ignored", row.gateway)
            continue
        managed.add(row.gateway)
        if not row.enabled:
            continue
        if not public_base_url:
            if row.gateway not in _refused_without_url:
                _refused_without_url.add(row.gateway)
                logger.error("gateway %s not started: QUANYI_PUBLIC_BASE_URL is not set (the gateway would have "
                             "nowhere to send payment notifications and buyers); set it and restart", row.gateway)
            continue
        try:
            gateways.append(kind.build(_validate(kind, _decrypt(row, cipher)), http))
        except (CardKeyDecryptionError, InvalidGatewayConfig) as exc:
            logger.error("gateway %s not started: its stored configuration is unusable (%s)", row.gateway, exc)
    return gateways, managed


async def refresh_registry(*, session: AsyncSession, cipher: CardKeyCipher, http: httpx.AsyncClient,
                           registry: GatewayRegistry, public_base_url: str | None) -> list[str]:
    """Bring the registry in line with the stored configurations; returns the gateway names now active."""
    gateways, managed = await build_configured_gateways(session=session, cipher=cipher, http=http,
                                                        public_base_url=public_base_url)
    built = {gateway.name for gateway in gateways}
    for gateway in gateways:
        registry.register(gateway)
    for name in managed - built:
        registry.unregister(name)
    return registry.names()


def _register_builtin_kinds() -> None:
    from quanyi.payments.alipay.gateway import AlipayConfig, AlipayGateway
    from quanyi.payments.stripe.gateway import StripeConfig, StripeGateway
    from quanyi.payments.wechat.gateway import WechatConfig, WechatGateway

    register_kind(GatewayKind("alipay", AlipayGateway.title, AlipayConfig,
                              lambda config, http: AlipayGateway(config, http=http)))
    register_kind(GatewayKind("stripe", StripeGateway.title, StripeConfig,
                              lambda config, http: StripeGateway(config, http=http)))
    register_kind(GatewayKind("wechat", WechatGateway.title, WechatConfig,
                              lambda config, http: WechatGateway(config, http=http)))


_register_builtin_kinds()
