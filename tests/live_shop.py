"""The demo shop on a real port, for the browser tests: a copy of the migrated SQLite template, filled with the demo
data (and whatever a test's `setup` adds), served by uvicorn in a thread of this process. One helper for every
browser module, so each says only what its shop has that the others' do not."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from helpers import make_settings
from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.context import build_context
from quanyi.demo import load_demo
from quanyi.orders.access import order_access_token

__all__ = ["LiveShop", "ServerThread", "listening_socket", "serve_demo_shop"]

Setup = Callable[[Any], Awaitable[None]]


@dataclass
class LiveShop:
    url: str
    settings: Settings
    db_path: Path

    def api_keys(self, order_no: str) -> list[str]:
        """The order's card keys as the shop's API returns them."""
        token = order_access_token(self.settings.app_secret.get_secret_value(), order_no)
        response = httpx.post(f"{self.url}/api/orders/{order_no}/reveal", headers={"X-Order-Token": token},
                              timeout=60)
        assert response.status_code == 200, response.text
        return [key["code"] for key in response.json()["keys"]]

    def mailbox_code(self, contact: str) -> str:
        """The newest sign-in code sent to `contact` (read from the outbox, as the buyer reads their mailbox: the
        shops run no worker)."""
        with sqlite3.connect(self.db_path) as db:
            row = db.execute("SELECT payload FROM notifications_outbox WHERE kind = 'member_code' AND recipient = ? "
                             "ORDER BY id DESC LIMIT 1", (contact,)).fetchone()
        assert row is not None, "no sign-in code in the outbox"
        return str(json.loads(row[0])["code"])


class ServerThread(threading.Thread):
    """uvicorn in its own thread and event loop. The shop context (engine, HTTP client) is built, filled with
    demo data and closed inside that loop: an async engine must not be shared across loops. Its risk clock reads
    noon (tests/risk_clock.py): the demo's default rules score night hours."""

    def __init__(self, settings: Settings, sock: socket.socket, setup: Setup | None = None) -> None:
        super().__init__(name="quanyi-live-server", daemon=True)
        self.settings, self.sock, self.setup = settings, sock, setup
        self.server: uvicorn.Server | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc

    async def _main(self) -> None:
        ctx = build_context(self.settings)
        try:
            await load_demo(ctx)
            if self.setup is not None:
                await self.setup(ctx)
            app = create_app(ctx=ctx)
            self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
            await self.server.serve(sockets=[self.sock])
        finally:
            await ctx.close()

    def wait_started(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error is not None:
                raise RuntimeError("the live server failed to start") from self.error
            if self.server is not None and self.server.started:
                return
            time.sleep(0.05)
        raise RuntimeError("the live server did not start in time")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(timeout=15)


def listening_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and the shop's URL on it (known before the shop starts)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def serve_demo_shop(template: Path, folder: Path, *, setup: Setup | None = None,
                    bound: tuple[socket.socket, str] | None = None, sandbox_here: bool = False,
                    **settings: Any) -> Iterator[LiveShop]:
    """The demo shop (plus `setup`) in `folder`, served until the block ends. `settings` override the defaults:
    public_base_url is the shop's own URL (the sandbox cashier notifies it over real HTTP) and no background
    tasks run; `sandbox_here`: the sandbox gateway's API is this shop's own (sandbox_api_url). `bound`: a
    listening_socket() taken earlier, when something must know the URL first."""
    db_path = folder / "shop.db"
    shutil.copyfile(template, db_path)
    sock, url = bound or listening_socket()
    values = {"public_base_url": url, "run_background_tasks": False, **({"sandbox_api_url": url} if sandbox_here
                                                                         else {}), **settings}
    live = LiveShop(url=url, settings=make_settings(f"sqlite:///{db_path}", **values), db_path=db_path)
    thread = ServerThread(live.settings, sock, setup=setup)
    thread.start()
    try:
        thread.wait_started()
        yield live
    finally:
        thread.stop()
        sock.close()
    assert thread.error is None, thread.error
