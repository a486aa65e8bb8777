"""Everything a running shop holds for its lifetime, built once from Settings."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

import quanyi.models  # noqa: F401  - every table registered before any query (cross-feature foreign keys)
from quanyi.config import Settings
from quanyi.db import Database
from quanyi.inventory.crypto import CardKeyCipher
from quanyi.inventory.sold_out import SoldOutMemo, install_stock_gate
from quanyi.ledger import service as ledger_service
from quanyi.notifications import service as notifications_service
from quanyi.payments.balance import BalanceGateway
from quanyi.payments.gateway import GatewayRegistry
from quanyi.payments.sandbox.gateway import SandboxGateway
from quanyi.resellers.signing import NonceStore, build_nonce_store
from quanyi.risk import engine as risk_engine
from quanyi.risk.counters import RedisCounters
from quanyi.risk.service import DatabaseRateLimiter, RedisRateLimiter, build_rate_limiter
from quanyi.shoptime import install_shop_zone
from quanyi.urls import LOCAL_BASE_URL

__all__ = ["ShopContext", "build_context", "build_cipher"]


@dataclass
class ShopContext:
    settings: Settings
    db: Database
    cipher: CardKeyCipher
    gateways: GatewayRegistry
    limiter: DatabaseRateLimiter | RedisRateLimiter
    # Outbound HTTP (sandbox notifications today, suppliers and gateways later). Tests swap the transport.
    http: httpx.AsyncClient
    risk: risk_engine.RiskRuntime
    # Open API request nonces seen in the replay window (database, or Redis when configured).
    nonces: NonceStore
    sold_out: SoldOutMemo = field(default_factory=lambda: SoldOutMemo(0))
    ledger_worker: ledger_service.LedgerWorker | None = None

    async def close(self) -> None:
        await self.http.aclose()
        if isinstance(self.limiter, RedisRateLimiter):
            await self.limiter.close()
        if isinstance(self.risk.counters, RedisCounters):
            await self.risk.counters.close()
        await self.nonces.close()
        await self.db.dispose()


def build_cipher(settings: Settings) -> CardKeyCipher:
    return CardKeyCipher(
        keyring=settings.card_keyring(),
        active_key_id=settings.card_key_active_id,
        hash_key=settings.card_key_hash_key.get_secret_value().encode(),
    )


def build_context(settings: Settings, *, db: Database | None = None,
                  transport: httpx.AsyncBaseTransport | None = None) -> ShopContext:
    db = db or Database(settings.database_url, pool_size=settings.database_pool_size,
                       ping_after_idle_seconds=settings.database_ping_after_idle_seconds)
    notifications_service.install_policy(db, settings)
    install_shop_zone(db, settings.shop_timezone)
    ledger_service.install_account_cache(db)
    ledger_worker = ledger_service.install_ledger_worker(db, batch_seconds=settings.ledger_batch_seconds)
    risk = risk_engine.install_runtime(db, settings)
    # Idle connections expire before the usual 5 s server keep-alive, so a request never goes out on a
    # connection the other side is just closing.
    http = httpx.AsyncClient(transport=transport, follow_redirects=False,
                             limits=httpx.Limits(keepalive_expiry=2.0), timeout=httpx.Timeout(10.0))
    gateways = GatewayRegistry([])
    gateways.register_internal(BalanceGateway(db))  # orders paid from a customer's prepaid balance
    if settings.sandbox_enabled:
        gateways.register(SandboxGateway(
            secret=settings.sandbox_secret.get_secret_value(),
            cashier_base_url=settings.public_base_url or "",
            tolerance_seconds=settings.notify_tolerance_seconds,
            http=http,
            api_base_url=settings.sandbox_api_url or settings.public_base_url or LOCAL_BASE_URL,
        ))
    sold_out = SoldOutMemo(settings.sold_out_memo_seconds)
    install_stock_gate(db, sold_out)
    return ShopContext(
        settings=settings, db=db, cipher=build_cipher(settings), gateways=gateways,
        limiter=build_rate_limiter(db, settings.redis_url, prefix=settings.redis_prefix("rl")), http=http, risk=risk,
        nonces=build_nonce_store(db, settings.redis_url, prefix=settings.redis_prefix("nonce")),
        sold_out=sold_out, ledger_worker=ledger_worker,
    )
