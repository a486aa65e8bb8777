"""TEST PEER — the knobs, order book and records shared by the three supplier simulators (not production code).

A simulator is the supplier's side of one wire dialect. This module holds everything that is the same in
all three: the catalog, the prepaid balance we hold there, idempotent order placement (the same key returns
the same order and never takes stock twice), recharge completion and its callbacks, stock pushes, and the
misbehaviour knobs. Each dialect module (quanyi_peer, async_recharge_peer, card_platform_peer) only speaks its
wire format on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, ClassVar, Literal, TypeVar

from quanyi.suppliers.adapter import SupplierEndpoint
from quanyi.testpeers.runner import serve_in_thread
from quanyi.testpeers.suppliers.callbacks import CallbackSender
from quanyi.testpeers.suppliers.control import add_control_routes
from quanyi.testpeers.suppliers.records import (
    CallbackRecord,
    Outgoing,
    Refusal,
    SimCode,
    SimOrder,
    SimProduct,
)

__all__ = ["SimProduct", "SimCode", "SimOrder", "CallbackRecord", "Outgoing", "Refusal", "TimeoutMode",
           "SupplierSimulator"]

T = TypeVar("T")
TimeoutMode = Literal["none", "hang_then_complete", "hang_before_accept"]


class SupplierSimulator(CallbackSender):
    """Shared state and knobs; subclasses set `dialect`, build `app` and the outgoing callbacks."""

    dialect: ClassVar[str]
    code_prefix: ClassVar[str] = "SIM"

    def __init__(self, *, products: Iterable[SimProduct], credentials: dict[str, str], seed: int = 0,
                 balance_cents: int | None = None) -> None:
        self.products = {p.code: replace(p) for p in products}
        self.credentials, self.seed, self.balance_cents = dict(credentials), seed, balance_cents
        self.base_url = ""
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._latency_ms, self._error_rate, self._errors_on_reads = 0, 0.0, False
        self._placing_delay, self._placing_held = 0.0, False
        self._timeout_mode: TimeoutMode = "none"
        self._hang_seconds, self._timeout_times = 10.0, None
        self._failing, self._rejected_accounts = set[str](), set[str]()
        self._duplicates, self._callback_delay, self._callbacks_enabled, self._ack_retries = 1, 0.05, True, 2
        self.push_url: str | None = None
        self.orders: dict[str, SimOrder] = {}
        self.requests: Counter[str] = Counter()  # order-placing calls per idempotency key
        self.purchases: Counter[str] = Counter()  # orders actually created per key (never > 1)
        self.charged_cents = 0
        self.callbacks: list[CallbackRecord] = []
        self._codes_issued = 0
        self._issued: set[str] = set()
        self._issued_codes: list[SimCode] = []
        self._short, self._reissued, self._faulty_times = 0, 0, 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._stopping = threading.Event()
        self._server: contextlib.ExitStack | None = None
        self.app = self.build_app()
        add_control_routes(self.app, self)

    # --- to be provided by each dialect ----------------------------------------------------------

    def build_app(self) -> Any:
        raise NotImplementedError

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, *, port: int | None = None) -> SupplierSimulator:
        """Serve on 127.0.0.1 (a free port unless given); `base_url` tells where."""
        if self._server is not None:
            raise RuntimeError("simulator already running")
        self._stopping.clear()
        stack = contextlib.ExitStack()
        self.base_url = stack.enter_context(serve_in_thread(self.app, port=port))
        self._server = stack
        return self

    def stop(self) -> None:
        """Stop serving (connections are refused afterwards); hanging requests end at once."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> SupplierSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def endpoint(self, *, supplier_code: str | None = None, timeout_seconds: float = 2.0) -> SupplierEndpoint:
        """How the shop's adapter reaches this simulator."""
        return SupplierEndpoint(supplier_code=supplier_code or f"sim-{self.dialect}", base_url=self.base_url,
                                credentials=dict(self.credentials), timeout_seconds=timeout_seconds)

    # --- knobs -----------------------------------------------------------------------------------

    def set_latency(self, ms: int) -> None:
        self._latency_ms = ms

    def set_placing_delay(self, seconds: float) -> None:
        """Order-placing calls wait this long before the order is placed (queries still answer at once), so a
        caller that gives up waiting can ask about an order that is placed only afterwards."""
        self._placing_delay = seconds

    def hold_placing(self) -> None:
        """Order-placing calls wait until release_placing() before the order is placed (queries still answer at
        once): like set_placing_delay, but the test decides when, so no stall of a loaded machine can move
        the placing to before the caller gave up, or after it asked again."""
        self._placing_held = True

    def release_placing(self) -> None:
        """Let the held order-placing calls go on and place their orders."""
        self._placing_held = False

    def set_error_rate(self, rate: float, *, on_reads: bool = False) -> None:
        """Answer this share of order-placing calls (and reads, if asked) with the dialect's "busy, not
        taken" error. Draws come from a random.Random(seed), so a run is reproducible."""
        self._error_rate, self._errors_on_reads = rate, on_reads

    def set_timeout_mode(self, mode: TimeoutMode, *, hang_seconds: float = 10.0, times: int | None = None) -> None:
        """hang_then_complete: the order IS placed, the answer comes after `hang_seconds`.
        hang_before_accept: hang, then refuse; nothing is placed. `times`: only the next N placing calls.
        Keep hang_seconds above the adapter's timeout; stop() ends a hang at once."""
        with self._lock:
            self._timeout_mode, self._hang_seconds, self._timeout_times = mode, hang_seconds, times

    def set_cost(self, product_code: str, cost_cents: int) -> None:
        with self._lock:
            self.products[product_code].cost_cents = cost_cents

    def set_stock(self, product_code: str, stock: int | None) -> None:
        with self._lock:
            self.products[product_code].stock = stock

    def set_available(self, product_code: str, available: bool) -> None:
        with self._lock:
            self.products[product_code].available = available

    def add_product(self, product: SimProduct) -> None:
        with self._lock:
            self.products[product.code] = replace(product)

    def set_balance(self, cents: int | None) -> None:
        """Our prepaid balance at this supplier; None = unlimited."""
        with self._lock:
            self.balance_cents = cents

    def fail_accounts(self, *accounts: str) -> None:
        """Recharges to these accounts are accepted and then FAIL."""
        self._failing.update(accounts)

    def reject_accounts(self, *accounts: str) -> None:
        """Recharges to these accounts are refused at submit (invalid account)."""
        self._rejected_accounts.update(accounts)

    def set_callback_duplicates(self, n: int) -> None:
        """Send every callback (and push) n times."""
        self._duplicates = max(1, n)

    def set_callback_delay(self, seconds: float | None) -> None:
        """Seconds from recharge submit to its final state; None = stays processing until resolve_recharge."""
        self._callback_delay = seconds

    def set_callbacks_enabled(self, enabled: bool) -> None:
        """Off: recharges still finish, but only polling (query) finds out."""
        self._callbacks_enabled = enabled

    def set_faulty_delivery(self, *, short: int = 0, reissued: int = 0, times: int = 1) -> None:
        """The next `times` card orders are charged in full but answered with `short` codes fewer than asked,
        and `reissued` of the codes are ones this supplier already sold to an earlier order."""
        with self._lock:
            self._short, self._reissued, self._faulty_times = short, reissued, times

    def set_push_url(self, url: str | None) -> None:
        """Where stock/price pushes go (configured at the supplier's side in real life)."""
        self.push_url = url

    # --- records ---------------------------------------------------------------------------------

    def requests_for(self, key: str) -> int:
        return self.requests[key]

    def purchases_for(self, key: str) -> int:
        return self.purchases[key]

    def order(self, key: str) -> SimOrder | None:
        with self._lock:
            return self.orders.get(key)

    def callbacks_for(self, topic: str) -> list[CallbackRecord]:
        return [c for c in list(self.callbacks) if c.topic == topic]

    def wait_for(self, predicate: Callable[[], bool], *, timeout: float = 60.0) -> None:
        """Block until predicate() holds (bounded): recharges and callbacks finish in the server thread."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("simulator condition not met in time")
            time.sleep(0.01)

    async def await_for(self, predicate: Callable[[], bool], *, within: float = 60.0) -> None:
        """wait_for for async tests (does not block the caller's event loop)."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("simulator condition not met in time")
            await asyncio.sleep(0.01)

    # --- used by the dialect apps ----------------------------------------------------------------

    async def gate(self, *, placing: bool) -> None:
        """Latency and random "busy" errors, before anything is looked at."""
        self._loop = asyncio.get_running_loop()
        if self._latency_ms:
            await self._sleep(self._latency_ms / 1000)
        if placing and self._placing_delay:
            await self._sleep(self._placing_delay)
        # Polls: release_placing() comes from the test's thread, and stop() ends the wait too.
        while placing and self._placing_held and not self._stopping.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if (placing or self._errors_on_reads) and self._error_rate > 0:
            with self._lock:
                busy = self._rng.random() < self._error_rate
            if busy:
                raise Refusal("unavailable", "system busy, request not accepted")

    async def place(self, action: Callable[[], T]) -> T:
        """Run an order-placing action under the timeout knob."""
        with self._lock:
            mode = self._timeout_mode
            if mode != "none" and self._timeout_times is not None:
                self._timeout_times -= 1
                if self._timeout_times <= 0:
                    self._timeout_mode, self._timeout_times = "none", None
        if mode == "hang_before_accept":
            await self._sleep(self._hang_seconds)
            raise Refusal("unavailable", "gave up before accepting")
        result = action()
        if mode == "hang_then_complete":
            await self._sleep(self._hang_seconds)
        return result

    def place_card_order(self, *, key: str, product_code: str, quantity: int, max_unit_cost_cents: int | None,
                         fingerprint: tuple[Any, ...]) -> SimOrder:
        """Take a card purchase (or return the one already taken under this key)."""
        with self._lock:
            self.requests[key] += 1
            existing = self._existing(key, fingerprint)
            if existing:
                return existing
            product = self._product(product_code, "card_key", quantity, max_unit_cost_cents)
            if product.stock is not None and product.stock < quantity:
                raise Refusal("out_of_stock", f"only {product.stock} left")
            self._charge(product.cost_cents * quantity)
            if product.stock is not None:
                product.stock -= quantity
            order = SimOrder(key=key, order_no=self._order_no(), kind="card_key", product_code=product_code,
                             quantity=quantity, unit_cost_cents=product.cost_cents, fingerprint=fingerprint,
                             codes=self._codes_for(quantity))
            return self._record(order)

    def place_recharge(self, *, key: str, product_code: str, account: str, quantity: int,
                       max_unit_cost_cents: int | None, notify_url: str | None,
                       fingerprint: tuple[Any, ...]) -> SimOrder:
        """Take a direct recharge; it finishes after the callback delay (or resolve_recharge)."""
        with self._lock:
            self.requests[key] += 1
            existing = self._existing(key, fingerprint)
            if existing:
                return existing
            product = self._product(product_code, "direct_recharge", quantity, max_unit_cost_cents)
            if account in self._rejected_accounts or not account or len(account) > 64:
                raise Refusal("invalid_account", f"account {account!r} cannot be recharged")
            if product.stock is not None and product.stock < quantity:  # e.g. the carrier channel is closed
                raise Refusal("out_of_stock", f"only {product.stock} left")
            self._charge(product.cost_cents * quantity)
            if product.stock is not None:
                product.stock -= quantity
            order = self._record(SimOrder(
                key=key, order_no=self._order_no(), kind="direct_recharge", product_code=product_code,
                quantity=quantity, unit_cost_cents=product.cost_cents, fingerprint=fingerprint, account=account,
                notify_url=notify_url, state="processing"))
        if self._callback_delay is not None:
            self._spawn(self._finish_later(order, self._callback_delay))
        return order

    def resolve_recharge(self, key: str, *, succeeded: bool | None = None, message: str = "") -> None:
        """Finish a processing recharge now (default outcome from fail_accounts) and send its callbacks."""
        order = self._finish(key, succeeded, message)
        if order is not None and self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._deliver_recharge(order), self._loop)
            future.result(timeout=30)

    async def aresolve_recharge(self, key: str, *, succeeded: bool | None = None, message: str = "") -> None:
        """resolve_recharge for async tests: waits for the callbacks without blocking the caller's loop."""
        order = self._finish(key, succeeded, message)
        if order is not None and self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._deliver_recharge(order), self._loop)
            await asyncio.wait_for(asyncio.wrap_future(future), 30)

    def find(self, key: str) -> SimOrder | None:
        with self._lock:
            return self.orders.get(key)

    def sign_time(self) -> int:
        return int(time.time())

    # --- internals -------------------------------------------------------------------------------

    def _existing(self, key: str, fingerprint: tuple[Any, ...]) -> SimOrder | None:
        existing = self.orders.get(key)
        if existing is not None and existing.fingerprint != fingerprint:
            raise Refusal("idempotency_conflict", "this key was used for a different order")
        return existing

    def _product(self, code: str, kind: str, quantity: int, max_unit_cost_cents: int | None) -> SimProduct:
        product = self.products.get(code)
        if product is None:
            raise Refusal("unknown_product", f"no product {code!r}")
        if product.kind != kind:
            raise Refusal("wrong_kind", f"{code} is a {product.kind} product")
        if not product.available:
            raise Refusal("product_unavailable", f"{code} is off the shelf")
        if not 1 <= quantity <= 100:
            raise Refusal("invalid_request", "quantity must be 1..100")
        if max_unit_cost_cents is not None and product.cost_cents > max_unit_cost_cents:
            raise Refusal("price_changed", f"unit cost is now {product.cost_cents}", unit_cost_cents=product.cost_cents)
        return product

    def _charge(self, cents: int) -> None:
        if self.balance_cents is not None:
            if self.balance_cents < cents:
                raise Refusal("insufficient_balance", "prepaid balance too low")
            self.balance_cents -= cents
        self.charged_cents += cents

    def _record(self, order: SimOrder) -> SimOrder:
        self.orders[order.key] = order
        self.purchases[order.key] += 1
        return order

    def _order_no(self) -> str:
        return f"{self.code_prefix}{self.seed:03d}{len(self.orders) + 1:09d}"

    def _codes_for(self, quantity: int) -> list[SimCode]:
        short = reissued = 0
        if self._faulty_times > 0:
            self._faulty_times -= 1
            short, reissued = self._short, min(self._reissued, len(self._issued_codes))
        fresh = max(0, quantity - short - reissued)
        return self._issued_codes[:reissued] + [self._new_code() for _ in range(fresh)]

    def _new_code(self) -> SimCode:
        # Deterministic per (dialect, seed, sequence); the set guards uniqueness.
        while True:
            self._codes_issued += 1
            digest = hashlib.sha256(f"{self.dialect}:{self.seed}:{self._codes_issued}".encode()).hexdigest().upper()
            number = str(int(digest[:15], 16) % 10**16).zfill(16)
            password = "-".join(digest[16 + i:20 + i] for i in range(0, 16, 4))
            if password not in self._issued:
                self._issued.add(password)
                code = SimCode(number=number, password=password,
                               expires_at=dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
                self._issued_codes.append(code)
                return code

    def _finish(self, key: str, succeeded: bool | None, message: str) -> SimOrder | None:
        with self._lock:
            order = self.orders.get(key)
            if order is None or order.state != "processing":
                return None
            if succeeded is None:
                succeeded = order.account not in self._failing
            order.state = "succeeded" if succeeded else "failed"
            order.message = message or ("" if succeeded else "recharge failed: account cannot be credited")
            if not succeeded:  # a failed recharge is not owed: the charge goes back
                refund = order.unit_cost_cents * order.quantity
                self.charged_cents -= refund
                if self.balance_cents is not None:
                    self.balance_cents += refund
            return order

    async def _finish_later(self, order: SimOrder, delay: float) -> None:
        await self._sleep(delay)
        if not self._stopping.is_set() and self._finish(order.key, None, "") is not None:
            await self._deliver_recharge(order)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sleep(self, seconds: float) -> None:
        """Sleep that ends early when the simulator stops (so stop() never waits on a hang)."""
        deadline = time.monotonic() + seconds
        # Polls a threading.Event: stop() comes from another thread, so an asyncio.Event would not do.
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(0.02, left))
