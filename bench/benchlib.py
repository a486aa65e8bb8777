"""Shared by the benchmark scripts: throwaway secrets, a fresh database (SQLite file or a new PostgreSQL
database that is dropped afterwards), a migrated and stocked shop in it, `quanyi serve` / `quanyi worker`
subprocesses, percentiles and plain aligned tables."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from quanyi.catalog import service as catalog_service
from quanyi.catalog.schemas import CategoryCreate, ProductCreate, SkuCreate
from quanyi.config import Settings, generate_secrets_env
from quanyi.context import build_context
from quanyi.inventory import service as inventory_service

__all__ = [
    "DEFAULT_PG_URL", "FreshDatabase", "secrets_env", "make_settings", "percentile", "table", "human_bytes",
    "resolve_database_url", "Server", "Worker", "Processes", "free_port", "server_env", "write_env_file",
    "card_codes", "stock_shop", "buyer_headers", "flood_limits", "check_redis", "forget_redis_counters", "Shop",
    "prepare_shop", "install_default_risk_rules",
]

P = TypeVar("P", bound="_Process")
_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_SANDBOX_WARNING = "the sandbox payment gateway is enabled"  # expected: the buyers pay through the sandbox

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def secrets_env() -> dict[str, str]:
    """Fresh QUANYI_* secrets, exactly what `quanyi init` would write."""
    env = {}
    for line in generate_secrets_env().splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            env[name] = value
    return env


def make_settings(database_url: str, env: dict[str, str], **overrides: object) -> Settings:
    """Settings for in-process setup work, sharing the server's secrets, ignoring any local env file."""
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": env["QUANYI_ADMIN_TOKEN"],
        "app_secret": env["QUANYI_APP_SECRET"],
        "card_keys": env["QUANYI_CARD_KEYS"],
        "card_key_active_id": env["QUANYI_CARD_KEY_ACTIVE_ID"],
        "card_key_hash_key": env["QUANYI_CARD_KEY_HASH_KEY"],
        "sandbox_secret": env["QUANYI_SANDBOX_SECRET"],
        "sandbox_enabled": True,
        "run_background_tasks": False,
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def resolve_database_url(pg: bool, database_url: str | None) -> str | None:
    """None for the default SQLite file; otherwise the PostgreSQL server URL to create a database on."""
    if database_url:
        backend = make_url(database_url).get_backend_name()
        if backend != "postgresql":
            raise SystemExit(f"--database-url must be a postgresql:// URL (got {backend}); "
                             "SQLite is the default and needs no URL")
        return database_url
    return DEFAULT_PG_URL if pg else None


class FreshDatabase:
    """A temp directory plus an empty database in it (SQLite) or on a PostgreSQL server.

    The PostgreSQL database is named quanyi_bench_<random>, created through the server's `postgres`
    admin database and dropped (WITH FORCE) on exit unless `keep` is set.
    """

    def __init__(self, pg_server_url: str | None, *, keep: bool = False) -> None:
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="quanyi-bench-"))
        self.pg_server_url = pg_server_url
        self.pg_name: str | None = None
        if pg_server_url is None:
            self.path: Path | None = self.tmp / "bench.db"
            self.url = f"sqlite:///{self.path}"
            self.backend = "sqlite"
        else:
            self.path = None
            self.pg_name = f"quanyi_bench_{uuid.uuid4().hex[:10]}"
            self.url = make_url(pg_server_url).set(database=self.pg_name).render_as_string(hide_password=False)
            self.backend = "postgresql"

    def _admin_dsn(self) -> str:
        url = make_url(self.pg_server_url).set(drivername="postgresql", database="postgres")  # type: ignore[arg-type]
        return url.render_as_string(hide_password=False)

    async def _admin(self, statement: str) -> None:
        connection = await asyncpg.connect(self._admin_dsn())
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def __enter__(self) -> FreshDatabase:
        if self.pg_name is not None:
            asyncio.run(self._admin(f'CREATE DATABASE "{self.pg_name}"'))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.keep:
            print(f"kept: {self.tmp}" + (f" and PostgreSQL database {self.pg_name}" if self.pg_name else ""))
            return
        if self.pg_name is not None:
            try:
                asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            except (OSError, asyncpg.PostgresError) as error:
                print(f"warning: could not drop PostgreSQL database {self.pg_name}: {error}")
        shutil.rmtree(self.tmp, ignore_errors=True)

    def describe(self) -> str:
        if self.pg_name is not None:
            return f"postgresql ({make_url(self.url).host}, database {self.pg_name})"
        return "sqlite (WAL file)"

    def sqlite_files(self) -> dict[str, int]:
        """Bytes on disk of the main file, its WAL and its shared-memory index, as they are right now."""
        assert self.path is not None
        sizes = {}
        for name, suffix in (("file", ""), ("WAL", "-wal"), ("shm", "-shm")):
            candidate = Path(str(self.path) + suffix)
            if candidate.exists():
                sizes[name] = os.path.getsize(candidate)
        return sizes


def server_env(database_url: str, secrets_: dict[str, str], tmp: Path, extra: Sequence[str]) -> dict[str, str]:
    """The environment of the shop's subprocesses: ours minus any QUANYI_* setting, plus the throwaway
    secrets, the database, an env file in the temp dir, and `extra` QUANYI_NAME=value items."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    env.update(secrets_)
    env["QUANYI_DATABASE_URL"] = database_url
    env["QUANYI_ENV_FILE"] = str(tmp / "quanyi.env")
    # uvicorn takes the client address from X-Forwarded-For only from these peers: the bench's buyers
    # connect from loopback and each claims its own address (see buyer_headers).
    env["FORWARDED_ALLOW_IPS"] = "127.0.0.1,::1"
    for item in extra:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("QUANYI_"):
            raise SystemExit(f"--server-env wants QUANYI_NAME=value, got {item!r}")
        env[name] = value
    return env


def write_env_file(path: Path, secrets_: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{k}={v}\n" for k, v in secrets_.items())


def buyer_headers(n: int) -> dict[str, str]:
    """Buyer n's own client address and device id. All buyers connect from loopback; without these the
    shop's checkout flood limits (QUANYI_CHECKOUT_LIMIT_PER_IP / _PER_DEVICE) would see one client placing
    thousands of orders and answer 429."""
    return {"X-Forwarded-For": f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}",
            "X-Device-Id": f"bench-buyer-{n:08d}"}


def flood_limits(env: dict[str, str]) -> str:
    """The checkout flood limits the servers run with, in words."""
    def setting(name: str) -> str:
        return env.get(f"QUANYI_{name.upper()}", str(Settings.model_fields[name].default))

    per_ip, per_device = setting("checkout_limit_per_ip"), setting("checkout_limit_per_device")
    window = setting("checkout_limit_window_seconds")
    if per_ip == per_device == "0":
        limits = "off (QUANYI_CHECKOUT_LIMIT_PER_IP=0, QUANYI_CHECKOUT_LIMIT_PER_DEVICE=0)"
    else:
        limits = (f"on: {per_ip if per_ip != '0' else 'no limit'} per IP, "
                  f"{per_device if per_device != '0' else 'no limit'} per device in {window} s")
    return limits + "; each buyer sends its own X-Forwarded-For and X-Device-Id"


def card_codes(count: int) -> str:
    """`count` distinct realistic card-key codes, one per line."""
    rng = random.Random(secrets.randbits(64))
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("-".join("".join(rng.choices(_ALNUM, k=4)) for _ in range(4)))
    return "\n".join(codes)


async def stock_shop(database_url: str, secrets_: dict[str, str], keys: int) -> int:
    """One category / product / SKU with `keys` card keys, through the service layer. Returns the SKU id."""
    ctx = build_context(make_settings(database_url, secrets_))
    try:
        async with ctx.db.transaction() as session:
            category = await catalog_service.create_category(
                session=session, data=CategoryCreate(slug="bench", name="Bench"))
            product = await catalog_service.create_product(session=session, data=ProductCreate(
                category_id=category.id, slug="bench-vip", name="Bench Video VIP",
                skus=[SkuCreate(code="BENCH-1M", name="1 month", price_cents=1980, max_quantity=10)]))
            sku = product.skus[0]
            await inventory_service.import_card_keys(session=session, cipher=ctx.cipher, sku=sku,
                                                     text=card_codes(keys), source_name="bench")
            return sku.id
    finally:
        await ctx.close()


async def install_default_risk_rules(database_url: str, secrets_: dict[str, str], *,
                                     order_stage: bool = False) -> list[str]:
    """The shipped risk rules (`quanyi risk defaults`), those of the order stage only turned off (unless
    `order_stage`: every shipped rule on, for buyers with the shop's signed device cookie): with them the
    bench's buyers (an X-Device-Id header, not the shop's signed device cookie, from thousands of addresses) would be
    asked a one-time code after the third checkout ("cookieless surge"). The rules of the payment and delivery stages
    (payer burst, contacts per payer, buyer's daily amount, large order) are what every notification evaluates.
    Returns the names of the rules left on."""
    from quanyi.risk import ruleset

    ctx = build_context(make_settings(database_url, secrets_))
    try:
        async with ctx.db.transaction() as session:
            await ruleset.install_default_rules(session=session)
            for rule in await ruleset.list_rules(session=session):
                if rule.stages == ["order"] and not order_stage:
                    rule.enabled = False
            return [rule.name for rule in await ruleset.list_rules(session=session, enabled_only=True)]
    finally:
        await ctx.close()


@dataclass
class Shop:
    """A migrated shop with one stocked SKU, and the environment its processes run with."""
    secrets: dict[str, str]
    env: dict[str, str]
    sku_id: int


def prepare_shop(db: FreshDatabase, *, keys: int, extra_env: Sequence[str] = ()) -> Shop:
    """Fresh secrets (also in an env file in the temp dir), `quanyi migrate` as a subprocess, and one SKU
    holding `keys` card keys."""
    shop_secrets = secrets_env()
    write_env_file(db.tmp / "quanyi.env", shop_secrets)
    env = server_env(db.url, shop_secrets, db.tmp, extra_env)
    print(f"setting up {db.describe()} in {db.tmp} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "quanyi.cli", "migrate"], env=env, cwd=db.tmp, check=True,
                   stdout=subprocess.DEVNULL)
    return Shop(shop_secrets, env, asyncio.run(stock_shop(db.url, shop_secrets, keys)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Process:
    """A `quanyi` command in its own session and process group (so whatever it forks dies with it), output to
    a log file in the shop's temp directory."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path, log_name: str) -> None:
        self.log_path = cwd / log_name
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quanyi.cli", *args],
            env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])

    def notable_lines(self, limit: int = 30) -> str:
        """Errors, warnings, tracebacks and 4xx/5xx answers from the log."""
        notable = re.compile(r'" [45]\d\d |WARNING|ERROR|CRITICAL|Traceback')
        lines, in_traceback = [], False
        for line in self._log_text().splitlines():
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and re.match(r"\d{4}-\d\d-\d\d |INFO:", line):
                in_traceback = False
            if (in_traceback or notable.search(line)) and _SANDBOX_WARNING not in line:
                lines.append(line)
        return "\n".join(lines[:limit]) + (f"\n... {len(lines) - limit} more" if len(lines) > limit else "")

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 15 s; then reap."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        # Anything the leader left behind in its group (uvicorn's worker processes) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


class Server(_Process):
    """`quanyi serve --workers N` on a port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, workers: int, log_name: str = "server.log") -> None:
        super().__init__(["serve", "--port", str(port), "--workers", str(workers)], env, cwd, log_name)
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers

    def wait_healthy(self, timeout: float = 180.0) -> None:
        """Until /healthz answers and every worker process has logged that its application started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                started = self._log_text().count("Application startup complete")
                if started >= self.workers and httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {timeout:.0f}s:\n{self.log_tail()}")


class Worker(_Process):
    """`quanyi worker`: the notification outbox and supplier fulfilment workers, outside the servers."""

    def __init__(self, env: dict[str, str], cwd: Path, number: int) -> None:
        super().__init__(["worker"], env, cwd, f"worker-{number}.log")

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")


class Processes:
    """Started processes, stopped together (last started first) when the `with` block ends, however it ends."""

    def __init__(self) -> None:
        self.started: list[_Process] = []

    def add(self, process: P) -> P:
        self.started.append(process)
        return process

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        while self.started:
            self.started.pop().stop()


def forget_redis_counters(url: str, prefix: str) -> None:
    """Delete the keys a run left under `prefix` in a (possibly shared) Redis."""
    from redis import Redis

    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])
    finally:
        client.close()


def check_redis(url: str) -> None:
    """Exit with a clear message unless the Redis at `url` answers."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except RedisError as exc:
        raise SystemExit(f"--redis {url}: {exc}") from None
    finally:
        client.close()


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, left: Sequence[int] = (0,)) -> str:
    """A small aligned text table; columns in `left` are left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"


def _proc_stat(pid: int | str) -> tuple[str, list[str]] | None:
    """(command name, the fields after it) of /proc/<pid>/stat, or None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()


def _ticks() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(match: Callable[[int, str], bool]) -> float:
    """User + system CPU time of the live processes for which match(process group id, command name) holds.
    Read from /proc; 0.0 where there is no /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        read = _proc_stat(stat.parent.name)
        if read is None:
            continue  # the process ended while we looked
        name, fields = read
        if match(int(fields[2]), name):  # fields[2] is the process group, [11]/[12] utime/stime in ticks
            total += int(fields[11]) + int(fields[12])
    return total / _ticks()


@dataclass(frozen=True)
class ClusterCpu:
    """CPU seconds a PostgreSQL cluster used so far: `total` = postmaster + its live children + its exited
    children (reaped: the postmaster's cutime/cstime); `backends` maps the live backends of one database (pid ->
    CPU seconds)."""
    total: float
    backends: dict[int, float]


class PostgresCpu:
    """The CPU of the PostgreSQL server (cluster) that a database lives on, when it runs on this machine.

    Found through the database itself: `pg_backend_pid()` is one of the postmaster's children, so its parent in
    /proc is the postmaster. Every backend, background worker and auxiliary process (WAL writer, checkpointer,
    autovacuum) is the postmaster's child; a child that exits is reaped by the postmaster, and the kernel adds
    its CPU to the postmaster's cutime/cstime, so connections that close during a span still count. Other
    databases of the same cluster count too (only the live backends of `database` are told apart)."""

    def __init__(self, postmaster: int, database: str) -> None:
        self.postmaster = postmaster
        self.database = database

    @classmethod
    def find(cls, database_url: str) -> PostgresCpu | None:
        """The cluster of `database_url`'s server, or None when its processes are not visible here."""
        dsn = make_url(database_url).set(drivername="postgresql")
        database = dsn.database or "postgres"

        async def backend() -> tuple[str, list[str]] | None:
            connection = await asyncpg.connect(dsn.render_as_string(hide_password=False))
            try:  # read while the backend lives
                return _proc_stat(int(await connection.fetchval("SELECT pg_backend_pid()")))
            finally:
                await connection.close()

        backend = asyncio.run(backend())
        if backend is None:
            return None  # another machine or container
        parent = int(backend[1][1])
        postmaster = _proc_stat(parent)
        if postmaster is None or postmaster[0] not in ("postgres", "postmaster"):
            return None
        return cls(parent, database)

    def _scan(self) -> tuple[int, dict[int, int]] | None:
        """(ticks of the postmaster and all its children, live or reaped; ticks per live backend of the
        database), or None when a child was reaped during the scan (it may have been counted twice)."""
        ticks = 0
        backends: dict[int, int] = {}
        before = _proc_stat(self.postmaster)
        if before is None:
            raise RuntimeError(f"the PostgreSQL postmaster (pid {self.postmaster}) is gone")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            read = _proc_stat(stat.parent.name)
            if read is None or read[1][1] != str(self.postmaster):  # fields[1]: the parent's pid
                continue
            used = int(read[1][11]) + int(read[1][12])
            ticks += used
            with contextlib.suppress(OSError):
                # A backend's title: "postgres: [cluster: ]user database client state"
                if f" {self.database} " in Path(f"/proc/{stat.parent.name}/cmdline").read_text(errors="replace"):
                    backends[int(stat.parent.name)] = used
        after = _proc_stat(self.postmaster)
        if after is None or after[1][13:15] != before[1][13:15]:
            return None
        # fields [11]/[12]: its own utime/stime, [13]/[14]: cutime/cstime of the children it reaped
        return ticks + sum(int(field) for field in after[1][11:15]), backends

    def read(self) -> ClusterCpu:
        scan = None
        for _ in range(20):
            scan = self._scan()
            if scan is not None:
                break
        if scan is None:
            raise RuntimeError("PostgreSQL backends kept exiting while their CPU was read")
        ticks = _ticks()
        return ClusterCpu(scan[0] / ticks, {pid: used / ticks for pid, used in scan[1].items()})


class CpuMeter:
    """CPU seconds the shop's server processes (their process groups), the database server and the load generator
    (this process) used in a span: with the machine's cores, they tell what a purchase costs and what bounds
    throughput, whatever else the machine was doing.

    The database: on PostgreSQL on this machine, its whole cluster (`PostgresCpu`: exited backends included), and
    of it `own` = the CPU of the bench database's backends still alive at its end (the shop's pool connections).
    Other databases' work on a shared server counts in `database` but not in `own`. SQLite runs inside the shop's
    processes (database 0)."""

    def __init__(self, groups: Sequence[int], database_url: str | None = None) -> None:
        self.groups = set(groups)  # the shop's processes: servers and workers, each its own process group
        self.postgres = None
        if database_url is not None and make_url(database_url).get_backend_name() == "postgresql":
            self.postgres = PostgresCpu.find(database_url)
        self.server = self.database = self.own = self.client = 0.0
        self.measured = Path("/proc/self/stat").exists()

    def _read(self) -> tuple[float, ClusterCpu | None, float]:
        return (cpu_seconds(lambda group, _name: group in self.groups),
                self.postgres.read() if self.postgres is not None else None,
                time.process_time())  # the load generator: this process

    def __enter__(self) -> CpuMeter:
        self._start = self._read()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self._read()
        # Never negative: each is a difference of counters that only grow (a process that left a group in between
        # could make the sum shrink).
        self.server = max(0.0, end[0] - self._start[0])
        self.client = max(0.0, end[2] - self._start[2])
        first, last = self._start[1], end[1]
        if first is not None and last is not None:
            self.database = max(0.0, last.total - first.total)
            self.own = sum(max(0.0, used - first.backends.get(pid, 0.0)) for pid, used in last.backends.items())

    def per_purchase_ms(self, purchases: int) -> str:
        """CPU milliseconds per purchase and the throughput they allow on this machine's cores."""
        if not purchases:
            return "no purchases"
        if not self.measured:
            return "not measured (no /proc)"
        total = self.server + self.database + self.client
        cores = os.cpu_count() or 1
        database = f"{1000 * self.database / purchases:.1f}"
        if self.postgres is not None:
            database += f" (of which the bench database's live backends {1000 * self.own / purchases:.1f})"
        return (f"shop {1000 * self.server / purchases:.1f} + database {database} + "
                f"load generator {1000 * self.client / purchases:.1f} ms per purchase; {cores} cores fully busy "
                f"allow {purchases * cores / total:.0f} purchases/s" if total else "no CPU used")
