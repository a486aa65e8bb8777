"""Shared by the benchmark scripts: throwaway secrets, a fresh database (SQLite file or a new PostgreSQL
database that is dropped afterwards), a `quanyi serve` subprocess, percentiles and plain aligned tables."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from quanyi.config import Settings, generate_secrets_env

__all__ = [
    "DEFAULT_PG_URL", "FreshDatabase", "secrets_env", "make_settings", "percentile", "table", "human_bytes",
    "resolve_database_url", "Server", "free_port",
]

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`quanyi serve` in its own process group (so its workers die with it), output to a log file."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, workers: int) -> None:
        self.log_path = cwd / "server.log"
        self.url = f"http://127.0.0.1:{port}"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "quanyi.cli", "serve", "--port", str(port), "--workers", str(workers)],
            env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def notable_lines(self, limit: int = 30) -> str:
        """Errors, warnings, tracebacks and 4xx/5xx answers from the server log."""
        if not self._log.closed:
            self._log.flush()
        notable = re.compile(r'" [45]\d\d |WARNING|ERROR|CRITICAL|Traceback')
        lines, in_traceback = [], False
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and re.match(r"\d{4}-\d\d-\d\d |INFO:", line):
                in_traceback = False
            if in_traceback or notable.search(line):
                lines.append(line)
        return "\n".join(lines[:limit]) + (f"\n... {len(lines) - limit} more" if len(lines) > limit else "")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self._log.close()


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
