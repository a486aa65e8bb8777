"""TEST PEER — a Stripe API + webhook simulator (never point a real shop at it).

Implements the endpoints StripeGateway calls, with Stripe's shapes and refusals: bearer-key auth,
Idempotency-Key replay / idempotency_error, checkout sessions (expires_at must be 30 min .. 24 h ahead),
session retrieval, payment-intent search by metadata, refunds (never above what was received,
amount_too_large / charge_already_refunded) and the refund list. A minimal hosted page at /c/pay/{id}
has a pay button. Events are signed with the endpoint secret like Stripe's (`Stripe-Signature: t=,v1=`).

Delivery: `auto` posts each event to the webhook URL from a worker thread, re-signed per attempt, with
backoff until a 2xx; `manual` queues them for `take_notifications()` so a test posts them itself.
Knobs: pay(), pay(delayed=True)/settle()/fail_delayed(), expire(), fail_next(n), latency, refund_latency (a
refund made, its answer late), lose_next(n), forget_idempotency_keys() (a day later), and helpers to forge /
tamper / re-sign deliveries. Thread-safe: state changes under one lock.

    python -m quanyi.testpeers.stripe --port 12111 [--webhook-url http://127.0.0.1:8000/payments/stripe/notify]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import queue
import re
import secrets
import threading
import time
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from quanyi.payments.stripe.form import FormError, decode_form
from quanyi.payments.stripe.signing import signature_header
from quanyi.testpeers.stripe_wire import (
    API_VERSION,
    MINIMUM_AMOUNTS,
    SEARCH,
    Delivery,
    Intent,
    Refund,
    Session,
    error,
    new_id,
)

__all__ = ["StripeSimulator", "Delivery", "MINIMUM_AMOUNTS"]


class StripeSimulator:
    def __init__(self, *, secret_key: str | None = None, webhook_secret: str | None = None,
                 mode: Literal["auto", "manual"] = "manual", webhook_url: str | None = None,
                 public_url: str = "http://127.0.0.1:12111", retry_delays: tuple[float, ...] = (1, 5, 30, 120, 600),
                 ) -> None:
        self.secret_key = secret_key or "sk_test_" + secrets.token_urlsafe(24)
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_urlsafe(24)
        self.mode = mode
        self.webhook_url = webhook_url
        self.public_url = public_url.rstrip("/")
        self.retry_delays = retry_delays
        self.latency = 0.0  # seconds added to every API answer
        self.refund_latency = 0.0  # seconds before a created refund's answer: it is made, its answer comes late
        self.next_refund_status = "succeeded"  # the status the next created refund gets
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers) seen by the API
        self.delivery_log: list[tuple[str, int | str]] = []  # auto mode: (event id, status or error) per attempt
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._intents: dict[str, Intent] = {}
        self._idempotency: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = {}
        self._outbox: list[Delivery] = []
        self._fail_next: list[int] = []
        self._lose_next = 0
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self.app = self._build_app()
        if mode == "auto":
            threading.Thread(target=self._deliver_forever, name="stripe-sim-webhooks", daemon=True).start()

    # ------------------------------------------------------------------ knobs (test thread)

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """The next `count` API calls answer `status` (5xx: Stripe trouble) without doing anything."""
        with self._lock:
            self._fail_next.extend([status] * count)

    def forget_idempotency_keys(self) -> None:
        """A day has passed: Stripe prunes an Idempotency-Key once it is 24 hours old, and a request sent again with
        it afterwards is a new request (a second refund, if the payment has money left)."""
        with self._lock:
            self._idempotency.clear()

    def lose_next(self, count: int = 1) -> None:
        """The next `count` events are never delivered (the shop must find out by querying)."""
        with self._lock:
            self._lose_next += count

    def session_for(self, payment_no: str) -> dict[str, Any]:
        with self._lock:
            return self._find_session(payment_no).json()

    def pay(self, payment_no_or_session: str, *, delayed: bool = False, customer: str | None = None) -> dict[str, Any]:
        """The buyer pays on the hosted page. `delayed`: a bank debit that clears later (see settle).
        `customer`: the paying Stripe customer id; a new one per session otherwise."""
        with self._lock:
            session = self._find_session(payment_no_or_session)
            if session.status != "open":
                raise ValueError(f"session {session.id} is {session.status}")
            intent = Intent(id=new_id("pi"), amount=session.amount, currency=session.currency,
                             metadata=dict(session.pi_metadata), created=int(time.time()))
            intent.status = "processing" if delayed else "succeeded"
            self._intents[intent.id] = intent
            session.status, session.payment_intent = "complete", intent.id
            session.customer = customer or new_id("cus")
            session.payment_status = "unpaid" if delayed else "paid"
            self._emit("checkout.session.completed", session.json())
            return session.json()

    def settle(self, payment_no_or_session: str) -> dict[str, Any]:
        """A delayed payment clears: checkout.session.async_payment_succeeded."""
        return self._finish_delayed(payment_no_or_session, succeeded=True)

    def fail_delayed(self, payment_no_or_session: str) -> dict[str, Any]:
        return self._finish_delayed(payment_no_or_session, succeeded=False)

    def expire(self, payment_no_or_session: str) -> dict[str, Any]:
        with self._lock:
            session = self._find_session(payment_no_or_session)
            if session.status != "open":
                raise ValueError(f"session {session.id} is {session.status}")
            session.status = "expired"
            self._emit("checkout.session.expired", session.json())
            return session.json()

    def send_event(self, event_type: str, obj: dict[str, Any], *, event_id: str | None = None,
                   created: int | None = None) -> Delivery:
        """Emit any event (e.g. a correctly signed one with a changed amount, or an unrelated type)."""
        with self._lock:
            return self._emit(event_type, obj, event_id=event_id, created=created)

    def take_notifications(self) -> list[Delivery]:
        with self._lock:
            taken, self._outbox = self._outbox, []
            return taken

    def resign(self, delivery: Delivery, *, secret: str | None = None, timestamp: int | None = None,
               body: bytes | None = None) -> Delivery:
        """The same delivery signed again: Stripe's retry (fresh t), a forgery (other secret), a replay
        (old t), or a body changed after signing when `body` is given without re-signing it (see tamper)."""
        body = delivery.body if body is None else body
        header = signature_header(secret or self.webhook_secret, int(time.time()) if timestamp is None else timestamp,
                                  body)
        return Delivery(delivery.event_id, delivery.type, body, {**delivery.headers, "Stripe-Signature": header})

    @staticmethod
    def tamper(delivery: Delivery, old: bytes, new: bytes) -> Delivery:
        """Change the body after it was signed (the signature header is kept)."""
        assert old in delivery.body, "nothing to tamper with"
        return Delivery(delivery.event_id, delivery.type, delivery.body.replace(old, new, 1), dict(delivery.headers))

    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json() for pi in self._intents.values() for r in pi.refunds]

    def settle_refund(self, refund_id: str, status: str = "succeeded") -> None:
        with self._lock:
            for intent in self._intents.values():
                for refund in intent.refunds:
                    if refund.id == refund_id:
                        refund.status = status
                        return
        raise KeyError(refund_id)

    # ------------------------------------------------------------------ internals (lock held)

    def _find_session(self, key: str) -> Session:
        if key in self._sessions:
            return self._sessions[key]
        matches = [s for s in self._sessions.values() if s.metadata.get("payment_no") == key]
        if not matches:
            raise KeyError(f"no checkout session for {key}")
        return max(matches, key=lambda s: (s.status == "open", s.created))

    def _finish_delayed(self, key: str, *, succeeded: bool) -> dict[str, Any]:
        with self._lock:
            session = self._find_session(key)
            intent = self._intents[session.payment_intent or ""]
            if intent.status != "processing":
                raise ValueError(f"{intent.id} is {intent.status}, not processing")
            intent.status = "succeeded" if succeeded else "requires_payment_method"
            session.payment_status = "paid" if succeeded else "unpaid"
            kind = "async_payment_succeeded" if succeeded else "async_payment_failed"
            self._emit(f"checkout.session.{kind}", session.json())
            return session.json()

    def _emit(self, event_type: str, obj: dict[str, Any], *, event_id: str | None = None,
              created: int | None = None) -> Delivery:
        event = {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "api_version": API_VERSION,
                 "created": int(time.time()) if created is None else created, "data": {"object": obj},
                 "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                 "type": event_type}
        body = json.dumps(event, indent=2).encode()
        delivery = Delivery(event["id"], event_type, body, {
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": signature_header(self.webhook_secret, int(time.time()), body)})
        if self._lose_next:
            self._lose_next -= 1
        elif self.mode == "auto":
            self._queue.put(delivery)
        else:
            self._outbox.append(delivery)
        return delivery

    def _deliver_forever(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while True:
                delivery = self._queue.get()
                for delay in (0, *self.retry_delays):
                    time.sleep(delay)
                    signed = self.resign(delivery)  # Stripe signs each attempt anew
                    try:
                        answer = client.post(self.webhook_url or "", content=signed.body, headers=signed.headers)
                        self.delivery_log.append((delivery.event_id, answer.status_code))
                        if 200 <= answer.status_code < 300:
                            break
                    except httpx.HTTPError as exc:
                        self.delivery_log.append((delivery.event_id, type(exc).__name__))

    # ------------------------------------------------------------------ HTTP API

    def _build_app(self) -> FastAPI:  # noqa: C901 - one closure per endpoint reads best here
        app = FastAPI(title="Stripe simulator (test peer)")
        sim = self

        async def guard(request: Request) -> JSONResponse | None:
            sim.requests.append((request.method, request.url.path, dict(request.headers)))
            if sim.latency:
                await asyncio.sleep(sim.latency)
            with sim._lock:
                failure = sim._fail_next.pop(0) if sim._fail_next else None
            if failure is not None:
                return error(failure, "api_error", "Simulated Stripe trouble")
            if request.headers.get("authorization") != f"Bearer {sim.secret_key}":
                return error(401, "invalid_request_error", "Invalid API Key provided")
            return None

        async def form(request: Request) -> dict[str, Any]:
            return decode_form(parse_qsl((await request.body()).decode(), keep_blank_values=True))

        def idempotent(request: Request, params: dict[str, Any], run: Any) -> JSONResponse:
            key = request.headers.get("idempotency-key")
            with sim._lock:
                if key is not None and key in sim._idempotency:
                    path, first_params, status, body = sim._idempotency[key]
                    if path != request.url.path or first_params != params:
                        return error(400, "idempotency_error", "Keys for idempotent requests can only be used "
                                      "with the same parameters they were first used with.")
                    return JSONResponse(body, status_code=status, headers={"Idempotent-Replayed": "true"})
                answer: JSONResponse = run(params)
                if key is not None and answer.status_code < 500:
                    sim._idempotency[key] = (request.url.path, params, answer.status_code, json.loads(answer.body))
                return answer

        @app.post("/v1/checkout/sessions")
        async def create_session(request: Request) -> Response:
            if (refused := await guard(request)) is not None:
                return refused
            try:
                params = await form(request)
            except (FormError, UnicodeDecodeError) as exc:
                return error(400, "invalid_request_error", str(exc))
            return idempotent(request, params, sim._create_session)

        @app.get("/v1/checkout/sessions/{session_id}")
        async def get_session(session_id: str, request: Request) -> Response:
            if (refused := await guard(request)) is not None:
                return refused
            with sim._lock:
                session = sim._sessions.get(session_id)
                if session is None:
                    return error(404, "invalid_request_error", f"No such checkout.session: '{session_id}'",
                                  "resource_missing", "session")
                if session.status == "open" and session.expires_at <= time.time():
                    session.status = "expired"
                    sim._emit("checkout.session.expired", session.json())
                return JSONResponse(session.json())

        @app.get("/v1/payment_intents/search")
        async def search_intents(request: Request) -> Response:
            if (refused := await guard(request)) is not None:
                return refused
            match = SEARCH.match(request.query_params.get("query", ""))
            if match is None:
                return error(400, "invalid_request_error", "Unsupported search query", param="query")
            with sim._lock:
                found = [pi.json() for pi in sim._intents.values() if pi.metadata.get(match[1]) == match[2]]
            return JSONResponse({"object": "search_result", "data": found, "has_more": False, "next_page": None,
                                 "url": "/v1/payment_intents/search"})

        @app.post("/v1/refunds")
        async def create_refund(request: Request) -> Response:
            if (refused := await guard(request)) is not None:
                return refused
            try:
                params = await form(request)
            except (FormError, UnicodeDecodeError) as exc:
                return error(400, "invalid_request_error", str(exc))
            answer = idempotent(request, params, sim._create_refund)
            if sim.refund_latency:
                await asyncio.sleep(sim.refund_latency)
            return answer

        @app.get("/v1/refunds")
        async def list_refunds(request: Request) -> Response:
            if (refused := await guard(request)) is not None:
                return refused
            query = request.query_params
            limit = int(query.get("limit", "10")) if query.get("limit", "10").isdigit() else 10
            with sim._lock:
                intent = sim._intents.get(query.get("payment_intent", ""))
                if intent is None:
                    return error(400, "invalid_request_error", "No such payment_intent", "resource_missing",
                                  "payment_intent")
                refunds = list(reversed(intent.refunds))  # newest first, like Stripe's lists
                after = query.get("starting_after")
                if after:
                    ids = [r.id for r in refunds]
                    refunds = refunds[ids.index(after) + 1:] if after in ids else []
                page = refunds[:max(1, min(limit, 100))]
                return JSONResponse({"object": "list", "data": [r.json() for r in page],
                                     "has_more": len(refunds) > len(page), "url": "/v1/refunds"})

        @app.get("/c/pay/{session_id}", response_class=HTMLResponse)
        async def cashier(session_id: str) -> Response:
            with sim._lock:
                session = sim._sessions.get(session_id)
                if session is None or session.status != "open":
                    return HTMLResponse("<h1>This checkout session is no longer available.</h1>", status_code=404)
                shown = f"{session.amount} {session.currency.upper()} (minor units)"
                return HTMLResponse(
                    f"<!doctype html><title>Stripe Checkout (simulator)</title><h1>{html.escape(session.name)}</h1>"
                    f"<p>{html.escape(shown)}</p><form method=post><button>Pay</button></form>")

        @app.post("/c/pay/{session_id}")
        async def cashier_pay(session_id: str) -> Response:
            try:
                session = sim.pay(session_id)
            except (KeyError, ValueError) as exc:
                return HTMLResponse(html.escape(str(exc)), status_code=409)
            return RedirectResponse(session["success_url"], status_code=303)

        return app

    def _create_session(self, p: dict[str, Any]) -> JSONResponse:
        try:
            item = p["line_items"]["0"]
            price = item["price_data"]
            currency, amount, name = price["currency"], price["unit_amount"], price["product_data"]["name"]
            expires_at, success_url = p["expires_at"], p["success_url"]
        except (KeyError, TypeError) as exc:
            return error(400, "invalid_request_error", f"Missing required param: {exc}")
        if p.get("mode") != "payment" or item.get("quantity") != "1" or set(p["line_items"]) != {"0"}:
            return error(400, "invalid_request_error", "this simulator takes mode=payment with one line item")
        if not re.fullmatch(r"[a-z]{3}", currency) or not amount.isdigit() or not expires_at.isdigit():
            return error(400, "invalid_request_error", "Invalid currency, unit_amount or expires_at")
        now = int(time.time())
        if not now + 1800 <= int(expires_at) <= now + 86400:
            return error(400, "invalid_request_error", "The `expires_at` timestamp must be between 30 minutes "
                          "and 24 hours from the time of checkout session creation.", param="expires_at")
        if int(amount) < MINIMUM_AMOUNTS.get(currency, 1):
            return error(400, "invalid_request_error", "The Checkout Session's total amount due must add up to "
                          "at least the currency's minimum charge amount", "amount_too_small")
        metadata = p.get("metadata", {})
        pi_data = p.get("payment_intent_data", {})
        session_id = new_id("cs")
        session = Session(id=session_id, amount=int(amount), currency=currency, name=name, metadata=metadata,
                           pi_metadata=pi_data.get("metadata", {}), client_reference_id=p.get("client_reference_id"),
                           success_url=success_url, cancel_url=p.get("cancel_url"), expires_at=int(expires_at),
                           created=now, url=f"{self.public_url}/c/pay/{session_id}")
        self._sessions[session_id] = session
        return JSONResponse(session.json())

    def _create_refund(self, p: dict[str, Any]) -> JSONResponse:
        intent = self._intents.get(p.get("payment_intent", ""))
        if intent is None:
            return error(400, "invalid_request_error", f"No such payment_intent: '{p.get('payment_intent')}'",
                          "resource_missing", "payment_intent")
        if intent.status != "succeeded":
            return error(400, "invalid_request_error", "This PaymentIntent does not have a successful charge to "
                          "refund.", "charge_not_refundable")
        refunded = sum(r.amount for r in intent.refunds if r.status in ("succeeded", "pending"))
        remaining = intent.amount - refunded
        amount_text = p.get("amount", str(remaining))
        if not amount_text.isdigit() or int(amount_text) < 1:
            return error(400, "invalid_request_error", "Invalid positive integer", param="amount")
        if remaining == 0:
            return error(400, "invalid_request_error", f"Charge for {intent.id} has already been refunded.",
                          "charge_already_refunded")
        if int(amount_text) > remaining:
            return error(400, "invalid_request_error", f"Refund amount ({amount_text}) is greater than unrefunded "
                          f"amount on charge ({remaining})", "amount_too_large", "amount")
        refund = Refund(id=new_id("re"), payment_intent=intent.id, amount=int(amount_text), currency=intent.currency,
                         status=self.next_refund_status, metadata=p.get("metadata", {}), reason=p.get("reason"),
                         created=int(time.time()))
        intent.refunds.append(refund)
        return JSONResponse(refund.json())


def main() -> None:
    parser = argparse.ArgumentParser(description="Stripe simulator (test peer): auto-delivers signed webhooks")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default="http://127.0.0.1:8000/payments/stripe/notify")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    sim = StripeSimulator(mode="auto", webhook_url=args.webhook_url, public_url=base)
    print(json.dumps({"secret_key": sim.secret_key, "webhook_secret": sim.webhook_secret, "api_base_url": base},
                     indent=2), flush=True)
    import uvicorn

    uvicorn.run(sim.app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
