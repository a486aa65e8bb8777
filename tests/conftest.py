"""Real databases for every test: a fresh SQLite file, and (when QUANYI_TEST_PG_URL is set) a fresh
PostgreSQL database, each cloned from a template migrated once per session with `alembic upgrade head`.

Fixtures chain like the shop does: settings -> ctx -> app -> client; sku -> stocked_sku -> order ->
paid_order. Tests that take `backend`-dependent fixtures run once per backend.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url

from helpers import Shop, make_settings
from pg_databases import PgDatabases
from quanyi import passwords
from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.context import ShopContext, build_context
from quanyi.migrate import upgrade
from risk_clock import pinned_risk_clocks

pytest_plugins = ["serial_tests"]

PG_URL = os.environ.get("QUANYI_TEST_PG_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

if IN_CI and not (PG_URL and os.environ.get("QUANYI_TEST_REDIS_URL")):
    raise pytest.UsageError(
        "CI must run the PostgreSQL and Redis tests: set QUANYI_TEST_PG_URL and QUANYI_TEST_REDIS_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _share_the_default_tls_context() -> None:
    """httpx builds a new default SSL context for every client and transport, loading the whole CA bundle
    (30-130 ms of CPU each); tests build thousands (every test's loopback transport, every test peer's
    notification) and talk plain HTTP on loopback. The default context, built once, serves them all: it is
    the same context, and nothing changes a context once built."""
    module = httpx._transports.default
    build = getattr(module, "create_ssl_context", None)
    if build is None:
        return
    built: dict[tuple[object, ...], object] = {}

    def create_ssl_context(verify: object = True, cert: object = None, trust_env: bool = True) -> object:
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        # The default context depends only on these (httpx reads them when it builds one).
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in built:
            built[key] = build(verify=True, trust_env=trust_env)
        return built[key]

    module.create_ssl_context = create_ssl_context


_share_the_default_tls_context()


def pytest_configure(config: pytest.Config) -> None:
    """With PYTHONDONTWRITEBYTECODE set, every `quanyi` process a test starts would compile the package from
    source again (~0.4 s of CPU each, hundreds of them): compile it once here (into its usual __pycache__,
    which git ignores). Processes still only read bytecode that matches its source."""
    if sys.dont_write_bytecode and not hasattr(config, "workerinput"):
        compileall.compile_dir(Path(passwords.__file__).parent, quiet=1)


def _pg_admin_dsn() -> str:
    url = make_url(PG_URL)  # type: ignore[arg-type]
    return url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def _pg_url(database: str) -> str:
    url = make_url(PG_URL)  # type: ignore[arg-type]
    return url.set(drivername="postgresql+asyncpg", database=database).render_as_string(hide_password=False)


async def _pg_admin(*statements: str) -> None:
    connection = await asyncpg.connect(_pg_admin_dsn())
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def risk_clock_at_noon() -> Iterator[None]:
    """Every shop built in a test reads its risk clock at noon of the shop's day (risk_clock.py): no test depends
    on the hour the suite runs (the default rules score night hours). Time-rule tests set their own instant."""
    with pinned_risk_clocks():
        yield


# argon2 with the production parameters costs ~0.5 s of CPU per hash or check (seconds on a loaded machine).
_CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Passwords are hashed with cheap argon2 parameters in tests (same code, same hash format), except in
    tests marked `real_password_hashing`: the parameters themselves and the equal-time checks."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr(passwords, "_hasher", _CHEAP_HASHER)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> object:
    if not PG_URL:
        yield None
        return
    name = f"quanyi_tpl_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    upgrade(_pg_url(name))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_databases(pg_template: str | None) -> Iterator[PgDatabases | None]:
    if pg_template is None:
        yield None
        return
    databases = PgDatabases(_pg_admin_dsn(), pg_template)
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, sqlite_template: Path, pg_databases: PgDatabases | None, tmp_path: Path) -> object:
    """A fresh database cloned from the session's migrated template, for this test only."""
    if backend == "sqlite":
        path = tmp_path / "shop.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    assert pg_databases is not None
    name = pg_databases.create()
    yield _pg_url(name)
    pg_databases.drop_later(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def ctx(settings: Settings, loopback: LoopbackTransport) -> AsyncIterator[ShopContext]:
    context = build_context(settings, transport=loopback)
    yield context
    await context.close()


class LoopbackTransport(httpx.AsyncBaseTransport):
    """The shop's outbound HTTP, answered by the app under test in-process (the app is built after the context).

    The sandbox gateway's notifications and its merchant API (query, refund) thus reach the same app, like
    a real gateway over HTTP. Requests to other hosts (test peers on real ports) go out over the network.
    """

    def __init__(self) -> None:
        self.app: object | None = None
        self._network = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host in ("test", "127.0.0.1", "localhost") and request.url.port in (None, 8000):
            assert self.app is not None, "the app under test is not built yet"
            return await httpx.ASGITransport(app=self.app).handle_async_request(request)  # type: ignore[arg-type]
        return await self._network.handle_async_request(request)

    async def aclose(self) -> None:
        await self._network.aclose()


@pytest.fixture
def loopback() -> LoopbackTransport:
    return LoopbackTransport()


@pytest.fixture
async def app(ctx: ShopContext, loopback: LoopbackTransport) -> object:
    application = create_app(ctx=ctx)
    loopback.app = application
    return application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:  # type: ignore[arg-type]
        yield c


@pytest.fixture
def shop(ctx: ShopContext, client: httpx.AsyncClient) -> Shop:
    return Shop(ctx=ctx, client=client)


@pytest.fixture
async def sku(shop: Shop) -> object:
    return await shop.make_sku()


@pytest.fixture
async def stocked_sku(shop: Shop) -> object:
    sku = await shop.make_sku(code="STOCKED-1M")
    await shop.stock(sku, 10)
    return sku


@pytest.fixture
async def order(shop: Shop, stocked_sku: object) -> dict:
    return await shop.create_order(stocked_sku.id)  # type: ignore[attr-defined]


@pytest.fixture
async def paid_order(shop: Shop, order: dict) -> dict:
    await shop.pay(order)
    return order
