"""Stripe card payments (银行卡 Card) through hosted Checkout Sessions, webhooks, refunds.

Specs followed (https://docs.stripe.com):
- API basics: /api (Authentication: `Authorization: Bearer sk_...`; form-encoded request bodies; Errors:
  `{"error": {"type", "code", "message"}}`, 4xx = refused, 5xx = Stripe's problem; Idempotent requests:
  `Idempotency-Key`, same key + same parameters replays the first answer, same key + other parameters is an
  `idempotency_error`, a concurrent request with the same key gets 409; Pagination: `has_more`/`starting_after`).
- /api/checkout/sessions/create (mode=payment, line_items[].price_data, client_reference_id, metadata,
  payment_intent_data[metadata], expires_at "30 minutes to 24 hours after creation"), /api/checkout/sessions/
  retrieve (status open|complete|expired, payment_status paid|unpaid|no_payment_required).
- /api/payment_intents/search and /search#search-query-language (`metadata['key']:'value'`).
- /api/refunds/create (payment_intent, amount, reason, metadata; status pending|requires_action|succeeded|
  failed|canceled), /api/refunds/list (filter by payment_intent).
- /webhooks (#verify-manually, #replay-attacks; see signing.py), /checkout/fulfillment ("checkout.session.
  completed" with payment_status "paid", and "checkout.session.async_payment_succeeded" for delayed methods).
- /currencies#zero-decimal (amounts are integers in the currency's smallest unit; JPY has none).

Stripe's API answers are NOT signed: TLS to api.stripe.com authenticates them, so the trust in a query or
refund answer rests on the HTTPS connection to the configured api_base_url (keep it https in production).
Only webhooks are signed. Notify URLs are not sent per checkout: Stripe delivers to the webhook endpoint
configured on the account (https://SHOP/payments/stripe/notify).

No `stripe` SDK: the webhook check is a dozen lines of HMAC (signing.py), and the SDK's own HTTP client,
retries and exception hierarchy would sit between our shared httpx client (timeouts, test transport) and
our GatewayUnavailable mapping without adding anything the shop needs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from quanyi.money import CURRENCIES, MAX_AMOUNT_CENTS
from quanyi.payments import gateway as gateway_errors
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayReply,
    GatewayUnavailable,
    NotificationRejected,
    PaymentGateway,
    PaymentNotification,
    RefundRequest,
    RefundResult,
    TradeQuery,
    payer_account_of,
)
from quanyi.payments.stripe import parsing
from quanyi.payments.stripe.form import encode_form
from quanyi.payments.stripe.signing import DEFAULT_TOLERANCE_SECONDS, SignatureError, verify_signature_header

__all__ = ["StripeConfig", "StripeGateway", "CheckoutRefused", "SESSION_MIN_SECONDS", "SESSION_MAX_SECONDS"]

logger = logging.getLogger(__name__)

# Stripe accepts a checkout session's expires_at 30 min .. 24 h after creation; keep a margin for clock skew.
SESSION_MIN_SECONDS = 30 * 60 + 120
SESSION_MAX_SECONDS = 24 * 3600 - 120
_EXPIRY_BUCKET = 600
_SUCCESS_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
_SESSION_EVENTS = (*_SUCCESS_EVENTS, "checkout.session.expired", "checkout.session.async_payment_failed")
_OUR_NO = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # our payment/refund numbers (and what fits their columns)
_MAX_REFUND_PAGES = 20


def _payer(session: dict[str, Any]) -> str | None:
    """Who paid a checkout session, for risk control: its customer (cus_..., possibly expanded), else the
    e-mail the buyer gave Stripe (guest checkouts have no customer)."""
    customer = session.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if payer := payer_account_of(customer):
        return payer
    details = session.get("customer_details")
    email = details.get("email") if isinstance(details, dict) else None
    return payer_account_of(email.lower()) if isinstance(email, str) else None


class CheckoutRefused(gateway_errors.CheckoutRefused):
    """Stripe refused to open a checkout session (bad currency, amount below Stripe's minimum, ...)."""


class StripeConfig(BaseModel):
    """A merchant's Stripe account as the shop uses it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret_key: SecretStr  # sk_live_... / sk_test_... or a restricted rk_ key
    webhook_secret: SecretStr  # whsec_... of the endpoint /payments/stripe/notify
    # The previous endpoint secret while rolling it (Stripe signs with both for up to 24 h).
    previous_webhook_secret: SecretStr | None = None
    api_base_url: str = "https://api.stripe.com"
    api_version: str | None = None  # Stripe-Version header; None = the account's default version
    webhook_tolerance_seconds: int = Field(default=DEFAULT_TOLERANCE_SECONDS, ge=30, le=3600)
    timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    cancel_url: str | None = None  # where "back" on the Stripe page goes; default: the order page

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("sk_", "rk_")):
            raise ValueError("a Stripe secret key starts with sk_ (or rk_ for a restricted key)")
        return value

    @field_validator("webhook_secret", "previous_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError("a Stripe webhook signing secret starts with whsec_")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_base_url must be an http(s) URL")
        return value.rstrip("/")


class StripeGateway(PaymentGateway):
    name = "stripe"
    title, title_en = "银行卡 Card (Stripe)", "Card (Stripe)"

    def __init__(self, config: StripeConfig, *, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._webhook_secrets = [config.webhook_secret.get_secret_value()]
        if config.previous_webhook_secret is not None:
            self._webhook_secrets.append(config.previous_webhook_secret.get_secret_value())

    # ------------------------------------------------------------------ HTTP

    async def _call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, idempotency_key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One API call. Returns (status, JSON object) for 2xx and definite 4xx answers; raises
        GatewayUnavailable when nothing definite is known (network, timeout, 5xx, 429, 409 lock, auth)."""
        headers = {"Authorization": f"Bearer {self._config.secret_key.get_secret_value()}"}
        if self._config.api_version:
            headers["Stripe-Version"] = self._config.api_version
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        pairs = encode_form(params or {})
        url = self._config.api_base_url + path
        try:
            if method == "GET":
                response = await self._http.get(url, params=pairs, headers=headers,
                                                timeout=self._config.timeout_seconds)
            else:
                response = await self._http.post(url, data=dict(pairs), headers=headers,
                                                 timeout=self._config.timeout_seconds)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"stripe {method} {path}: {type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status >= 500 or status in (401, 403, 409, 429):
            # 401/403: our key is wrong or lacks permission (configuration, retry after fixing);
            # 409: the same idempotency key is in flight; 429: rate limited. Nothing definite happened.
            detail = response.text[:200]
            raise GatewayUnavailable(f"stripe {method} {path}: HTTP {status}: {detail}")
        try:
            answer = parsing.strict_json(response.content)
        except ValueError:
            raise GatewayUnavailable(f"stripe {method} {path}: HTTP {status}, answer is not JSON") from None
        if not isinstance(answer, dict):
            raise GatewayUnavailable(f"stripe {method} {path}: answer is not a JSON object")
        if not (200 <= status < 300 or status in (400, 402, 404)):
            raise GatewayUnavailable(f"stripe {method} {path}: unexpected HTTP {status}")
        return status, answer

    # ------------------------------------------------------------------ checkout

    @staticmethod
    def session_expiry(requested: dt.datetime | None, now: float) -> int:
        """expires_at for a new session: the order's deadline, clamped into Stripe's 30 min .. 24 h window.

        A deadline sooner than 30 min (the usual case: reservations are 15 min) is rounded up to a 10-minute
        boundary, so asking again for the same payment soon after sends identical parameters and Stripe
        answers with the same session (idempotent replay) instead of opening a second one. A payment after
        the reservation ran out is still handled by the shop (delivered if stock remains, else refunded)."""
        low, high = int(now) + SESSION_MIN_SECONDS, int(now) + SESSION_MAX_SECONDS
        wanted = int(requested.timestamp()) if requested is not None else low
        if wanted <= low:
            return min(math.ceil(low / _EXPIRY_BUCKET) * _EXPIRY_BUCKET, high)
        return min(wanted, high)

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.currency not in CURRENCIES:
            raise CheckoutRefused(f"currency {request.currency!r} is not supported")
        if not 0 < request.amount_cents <= MAX_AMOUNT_CENTS:
            raise CheckoutRefused("a Stripe checkout needs a positive amount")
        if not _OUR_NO.match(request.payment_no):
            raise CheckoutRefused(f"payment number {request.payment_no!r} cannot be sent to Stripe")
        expires_at = self.session_expiry(request.expires_at, time.time())
        params = {
            "mode": "payment",
            "line_items": [{
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount_cents,  # minor units; JPY is zero-decimal, so yen
                    "product_data": {"name": (request.subject.strip() or request.payment_no)[:250]},
                },
                "quantity": 1,
            }],
            "success_url": request.return_url,
            "cancel_url": self._config.cancel_url or request.return_url,
            "client_reference_id": request.payment_no,
            "metadata": {"payment_no": request.payment_no},
            "payment_intent_data": {"metadata": {"payment_no": request.payment_no}},
            "expires_at": expires_at,
        }
        # Same payment + same parameters -> the same session (see session_expiry for why expiry is bucketed).
        key = f"{request.payment_no}-{expires_at}"
        status, answer = await self._call("POST", "/v1/checkout/sessions", params=params, idempotency_key=key)
        if status != 200:
            kind, code, message = parsing.error(answer)
            raise CheckoutRefused(f"Stripe refused the checkout: {kind} {code} {message}".strip(),
                                  stripe_code=code or kind)
        try:
            session_id = parsing.stripe_id(answer.get("id"), "cs", "session id")
            url = answer.get("url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise ValueError("session has no url")
            if parsing.metadata(answer, "payment_no") != request.payment_no:
                raise ValueError("session belongs to another payment")
        except ValueError as exc:
            raise GatewayUnavailable(f"stripe checkout session answer unusable: {exc}") from None
        qr = url if request.mode == "qr" else None  # no wallet QR on Stripe: a code of the hosted page
        return Checkout(cashier_url=url, qr_code=qr, gateway_session_id=session_id)

    # ------------------------------------------------------------------ webhook

    def verify_notification(
        self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> PaymentNotification:
        try:
            verify_signature_header(parsing.header(headers, "Stripe-Signature"), body, secrets=self._webhook_secrets,
                                    now=now.timestamp(), tolerance=self._config.webhook_tolerance_seconds)
        except SignatureError as exc:
            raise NotificationRejected(f"stripe webhook: {exc}") from None
        try:
            return self._parse_event(parsing.strict_json(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise NotificationRejected(f"stripe webhook event malformed: {exc}") from None

    def _parse_event(self, event: Any) -> PaymentNotification:
        if not isinstance(event, dict) or event.get("object") != "event":
            raise ValueError("not an event object")
        event_id = parsing.stripe_id(event.get("id"), "evt", "event id")
        kind = event.get("type")
        created = event.get("created")
        if not isinstance(kind, str) or isinstance(created, bool) or not isinstance(created, int):
            raise ValueError("event lacks type or created")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise ValueError("event lacks data.object")
        payment_no = parsing.metadata(obj, "payment_no")
        if kind not in _SESSION_EVENTS or payment_no is None:
            # Other event types, or sessions not opened by this shop: acknowledged and ignored.
            logger.info("stripe event %s (%s) is not about a shop checkout; ignored", event_id, kind)
            return PaymentNotification(payment_no=payment_no if payment_no and _OUR_NO.match(payment_no) else "",
                                       gateway_trade_no="", amount_cents=0, currency="", succeeded=False,
                                       paid_at=None, event_id=event_id)
        if obj.get("object") != "checkout.session":
            raise ValueError(f"{kind} does not carry a checkout.session")
        if not _OUR_NO.match(payment_no):
            raise ValueError("metadata.payment_no is not one of our payment numbers")
        reference = obj.get("client_reference_id")
        if reference is not None and reference != payment_no:
            raise ValueError("client_reference_id and metadata.payment_no disagree")
        session_id = parsing.stripe_id(obj.get("id"), "cs", "session id")
        succeeded = kind in _SUCCESS_EVENTS and obj.get("payment_status") == "paid"
        if not succeeded:
            return PaymentNotification(payment_no=payment_no, gateway_trade_no=session_id, amount_cents=0,
                                       currency="", succeeded=False, paid_at=None, event_id=event_id)
        return PaymentNotification(
            payment_no=payment_no,
            gateway_trade_no=parsing.stripe_id(obj.get("payment_intent"), "pi", "payment_intent"),
            amount_cents=parsing.amount(obj.get("amount_total"), "amount_total"),
            currency=parsing.currency(obj.get("currency")),
            succeeded=True,
            paid_at=dt.datetime.fromtimestamp(created, dt.UTC),
            event_id=event_id,
            payer_account=_payer(obj),
        )

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "application/json", '{"received": true}')

    def refuse(self, reason: str) -> GatewayReply:
        return GatewayReply(400, "application/json", json.dumps({"error": reason}))

    # ------------------------------------------------------------------ trade query

    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        if not _OUR_NO.match(payment_no):
            raise ValueError(f"not one of our payment numbers: {payment_no!r}")
        by_session: TradeQuery | None = None
        if gateway_session_id is not None:
            by_session = await self._query_session(payment_no, gateway_session_id)
            if by_session.state == "paid":
                return by_session
        # No session, or its session is not paid: another session for the same payment may have been
        # (search is eventually consistent, about a minute behind; the session answer is immediate).
        searched = await self._search_intents(payment_no)
        if by_session is None or searched.state == "paid":
            return searched
        return by_session

    async def _query_session(self, payment_no: str, session_id: str) -> TradeQuery:
        try:
            parsing.stripe_id(session_id, "cs", "gateway_session_id")
        except ValueError as exc:
            raise GatewayUnavailable(str(exc)) from None
        status, answer = await self._call("GET", f"/v1/checkout/sessions/{session_id}")
        if status == 404:
            return TradeQuery(payment_no=payment_no, state="not_found")
        if status != 200:
            raise GatewayUnavailable("stripe refused the session query: {} {} {}".format(*parsing.error(answer)))
        try:
            if answer.get("id") != session_id or parsing.metadata(answer, "payment_no") != payment_no:
                raise ValueError("answer is about another session or payment")
            state, payment_status = answer.get("status"), answer.get("payment_status")
            if state == "complete" and payment_status == "paid":
                return TradeQuery(
                    payment_no=payment_no, state="paid",
                    gateway_trade_no=parsing.stripe_id(answer.get("payment_intent"), "pi", "payment_intent"),
                    amount_cents=parsing.amount(answer.get("amount_total"), "amount_total"),
                    currency=parsing.currency(answer.get("currency")),
                    payer_account=_payer(answer),
                )
            if state in ("open", "complete"):  # complete + unpaid: a delayed method still clearing
                return TradeQuery(payment_no=payment_no, state="pending")
            if state == "expired":
                return TradeQuery(payment_no=payment_no, state="closed")
            raise ValueError(f"unknown session status {state!r}")
        except ValueError as exc:
            raise GatewayUnavailable(f"stripe session answer unusable: {exc}") from None

    async def _find_intents(self, payment_no: str) -> list[dict[str, Any]]:
        query = f"metadata['payment_no']:'{payment_no}'"  # payment_no is [A-Za-z0-9_-]: nothing to escape
        status, answer = await self._call("GET", "/v1/payment_intents/search", params={"query": query, "limit": 20})
        if status != 200:
            raise GatewayUnavailable("stripe refused the payment search: {} {} {}".format(*parsing.error(answer)))
        data = answer.get("data")
        if not isinstance(data, list):
            raise GatewayUnavailable("stripe search answer has no data list")
        return [pi for pi in data if isinstance(pi, dict) and parsing.metadata(pi, "payment_no") == payment_no]

    async def _search_intents(self, payment_no: str) -> TradeQuery:
        intents = await self._find_intents(payment_no)
        succeeded = [pi for pi in intents if pi.get("status") == "succeeded"]
        if len(succeeded) > 1:
            logger.warning("stripe: payment %s was paid by %d payment intents; the extra ones need a refund",
                           payment_no, len(succeeded))
        if succeeded:
            pi = succeeded[0]
            try:
                return TradeQuery(
                    payment_no=payment_no, state="paid", gateway_trade_no=parsing.stripe_id(pi.get("id"), "pi", "id"),
                    amount_cents=parsing.amount(pi.get("amount_received"), "amount_received"),
                    currency=parsing.currency(pi.get("currency")),
                )
            except ValueError as exc:
                raise GatewayUnavailable(f"stripe payment intent unusable: {exc}") from None
        if not intents:
            return TradeQuery(payment_no=payment_no, state="not_found")
        if all(pi.get("status") == "canceled" for pi in intents):
            return TradeQuery(payment_no=payment_no, state="closed")
        return TradeQuery(payment_no=payment_no, state="pending")

    # ------------------------------------------------------------------ refunds

    def _refund_result(self, refund_no: str, answer: Mapping[str, Any]) -> RefundResult:
        try:
            refund_id = parsing.stripe_id(answer.get("id"), "re", "refund id")
            if parsing.metadata(answer, "refund_no") != refund_no:
                raise ValueError("refund belongs to another refund number")
            amount = parsing.amount(answer.get("amount"), "amount")
        except ValueError as exc:
            raise GatewayUnavailable(f"stripe refund answer unusable: {exc}") from None
        status = answer.get("status")
        if status == "succeeded":
            state = "succeeded"
        elif status in ("pending", "requires_action"):
            state = "processing"
        elif status in ("failed", "canceled"):
            state = "failed"
        else:
            raise GatewayUnavailable(f"stripe refund {refund_id} has unknown status {status!r}")
        detail = str(answer.get("failure_reason") or "") if state == "failed" else ""
        return RefundResult(refund_no=refund_no, state=state, amount_cents=amount, gateway_refund_no=refund_id,
                            detail=detail)

    async def refund(self, request: RefundRequest) -> RefundResult:
        if not _OUR_NO.match(request.refund_no):
            raise ValueError(f"refund number {request.refund_no!r} cannot be sent to Stripe")
        try:
            payment_intent = parsing.stripe_id(request.gateway_trade_no, "pi", "gateway_trade_no")
        except ValueError as exc:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail=str(exc))
        if not 0 < request.amount_cents <= request.payment_amount_cents:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="refund amount must be positive and at most the payment's amount")
        # Stripe keeps an Idempotency-Key for 24 hours only: this refund number sent again later (a stalled refund an
        # operator retries) would be a second refund. So ask first: one Stripe made for it (its answer lost) is
        # answered as it stands; a failed one is sent again (no money went back by it).
        made = await self._find_refund(payment_intent, request.refund_no)
        if made is not None:
            found = self._refund_result(request.refund_no, made)
            if found.state != "failed" and found.amount_cents == request.amount_cents:
                return found
        params = {
            "payment_intent": payment_intent,
            "amount": request.amount_cents,
            "reason": "requested_by_customer",
            "metadata": {"refund_no": request.refund_no, "payment_no": request.payment_no,
                         "note": request.reason[:500] or None},
        }
        status, answer = await self._call("POST", "/v1/refunds", params=params, idempotency_key=request.refund_no)
        if status == 200:
            result = self._refund_result(request.refund_no, answer)
            if result.amount_cents != request.amount_cents:
                raise GatewayUnavailable(f"stripe refund {result.gateway_refund_no} is for {result.amount_cents}, "
                                         f"not {request.amount_cents}")
            return result
        kind, code, message = parsing.error(answer)
        # A definite no: over-refund (amount_too_large / charge_already_refunded), unknown payment intent,
        # or this refund number used before with other parameters (idempotency_error).
        return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                            detail=f"{code or kind}: {message}")

    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        # The interface gives us our payment number, not the payment intent: find the intents first.
        if not _OUR_NO.match(payment_no):
            raise ValueError(f"not one of our payment numbers: {payment_no!r}")
        for pi in await self._find_intents(payment_no):
            pi_id = pi.get("id")
            if not isinstance(pi_id, str) or not parsing.STRIPE_ID["pi"].match(pi_id):
                continue
            found = await self._find_refund(pi_id, refund_no)
            if found is not None:
                return self._refund_result(refund_no, found)
        return RefundResult(refund_no=refund_no, state="failed", amount_cents=0, detail="refund not found")

    async def _find_refund(self, payment_intent: str, refund_no: str) -> dict[str, Any] | None:
        params: dict[str, Any] = {"payment_intent": payment_intent, "limit": 100}
        for _ in range(_MAX_REFUND_PAGES):
            status, answer = await self._call("GET", "/v1/refunds", params=params)
            if status == 400 and parsing.error(answer)[1] == "resource_missing":
                return None  # no such payment intent: no refund of it either
            if status != 200:
                raise GatewayUnavailable("stripe refused the refund list: {} {} {}".format(*parsing.error(answer)))
            data = answer.get("data")
            if not isinstance(data, list):
                raise GatewayUnavailable("stripe refund list has no data list")
            for refund in data:
                if isinstance(refund, dict) and parsing.metadata(refund, "refund_no") == refund_no:
                    return refund
            if answer.get("has_more") is not True or not data or not isinstance(data[-1], dict):
                return None
            params = {**params, "starting_after": data[-1].get("id")}
        raise GatewayUnavailable(f"stripe: more than {_MAX_REFUND_PAGES * 100} refunds on {payment_intent}")
