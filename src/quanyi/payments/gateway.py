"""The one interface every payment gateway (支付渠道) implements, and the registry of configured ones.

A gateway does these things for the shop: opens a checkout (a cashier URL or a QR code for the buyer),
verifies an asynchronous server-to-server notification and tells the shop how to answer it in the
gateway's own protocol, answers an active trade query (主动查单, so a lost notification still completes
the order), and refunds (full or partial, idempotent on our refund number) and queries a refund.
Verification is the gateway's job; what a verified payment *means* for an order is payments.service's job.

Network errors, timeouts and 5xx answers from the gateway raise GatewayUnavailable (the caller retries
later); a definite refusal by the gateway is a result (`TradeQuery.state`, `RefundResult.state`), not an
exception, so callers can record it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from quanyi.errors import DomainError, InvalidInput, NotFound

__all__ = [
    "CheckoutRequest", "Checkout", "PaymentNotification", "GatewayReply", "NotificationRejected",
    "UnknownGateway", "GatewayUnavailable", "NoPaymentMethod", "TradeQuery", "RefundRequest", "RefundResult",
    "CheckoutMode", "CheckoutRefused", "GatewayUnsupported",
    "PaymentGateway", "GatewayRegistry", "payer_account_of",
]


# page: desktop cashier page; wap: mobile browser cashier; qr: a code the buyer scans with the wallet app.
CheckoutMode = Literal["page", "wap", "qr"]


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_no: str  # our reference, sent to the gateway as its out_trade_no
    amount_cents: int
    currency: str
    subject: str
    notify_url: str
    return_url: str
    mode: CheckoutMode = "page"
    expires_at: dt.datetime | None = None  # the order's reservation deadline: the gateway closes the trade then
    buyer_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    cashier_url: str | None = None  # where to send the buyer (page / wap / hosted checkout)
    qr_code: str | None = None  # text to render as a QR code (Alipay precreate qr_code, WeChat code_url)
    gateway_session_id: str | None = None  # e.g. a Stripe checkout session id, kept for queries


def payer_account_of(value: object) -> str | None:
    """The gateway's payer id as risk control uses it, or None when absent or not a sane id (a bad one
    never rejects an otherwise good notification: the money is real either way)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > 128 or not value.isprintable():
        return None
    return value


@dataclass(frozen=True, slots=True)
class PaymentNotification:
    """A notification whose signature checked out. Its claims still need checking against our records."""

    payment_no: str
    gateway_trade_no: str
    amount_cents: int
    currency: str
    succeeded: bool
    paid_at: dt.datetime | None
    # The gateway's id for this notification/event when it has one (Stripe event id): a repeated event
    # is recognised and answered as already processed without being applied again.
    event_id: str | None = None
    # Who paid, as the gateway names the paying account (Alipay buyer_id, WeChat payer.openid, Stripe
    # customer / payment method): only for risk control's per-payer velocity; never stored in plaintext.
    payer_account: str | None = None


@dataclass(frozen=True, slots=True)
class TradeQuery:
    """What the gateway says about one of our payments when asked (主动查单)."""

    payment_no: str
    state: Literal["paid", "pending", "closed", "not_found"]
    gateway_trade_no: str | None = None
    amount_cents: int | None = None
    currency: str | None = None
    paid_at: dt.datetime | None = None
    payer_account: str | None = None  # as in PaymentNotification, when the query answer names the payer

    def as_notification(self) -> PaymentNotification:
        """A paid answer is as good as a verified notification (it came over our authenticated call)."""
        if self.state != "paid" or self.gateway_trade_no is None or self.amount_cents is None or not self.currency:
            raise ValueError(f"trade {self.payment_no} is {self.state}, not a complete paid trade")
        return PaymentNotification(
            payment_no=self.payment_no, gateway_trade_no=self.gateway_trade_no, amount_cents=self.amount_cents,
            currency=self.currency, succeeded=True, paid_at=self.paid_at, payer_account=self.payer_account,
        )


@dataclass(frozen=True, slots=True)
class RefundRequest:
    refund_no: str  # ours; the gateway's idempotency key (out_request_no / out_refund_no / Idempotency-Key)
    payment_no: str
    gateway_trade_no: str
    amount_cents: int  # this refund
    payment_amount_cents: int  # what the payment was for (WeChat needs it; sanity for the others)
    currency: str
    reason: str
    notify_url: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_no: str
    state: Literal["succeeded", "processing", "failed"]
    amount_cents: int
    gateway_refund_no: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class GatewayReply:
    status_code: int
    media_type: str
    body: str


class NotificationRejected(DomainError):
    """The notification is not authentic or not well formed; nothing may change because of it."""

    code = "notification_rejected"


class UnknownGateway(NotFound):
    code = "unknown_gateway"


class NoPaymentMethod(DomainError):
    """The shop has no gateway taking payments: an order placed now could only sit and block stock."""

    code = "no_payment_method"


class CheckoutRefused(DomainError):
    """The gateway definitely refused to open this checkout (already paid or closed there, below its minimum...)."""

    code = "gateway_refused"


class GatewayUnsupported(InvalidInput):
    """This gateway cannot take this payment at all (its currency, its amount)."""

    code = "gateway_unsupported"


class GatewayUnavailable(DomainError):
    """The gateway could not be reached or answered with a server error; nothing is known to have happened."""

    code = "gateway_unavailable"


class PaymentGateway(ABC):
    name: ClassVar[str]
    # How people read its name: `title` in Chinese, `title_en` in English (empty: the Chinese one). The one place
    # a gateway is named; every page reads it through quanyi.payments.titles.
    title: ClassVar[str]
    title_en: ClassVar[str] = ""
    # The refund worker follows a `processing` refund by sending it again (same refund_no) instead of querying
    # it: for gateways whose rule for a refund not (yet) visible is "retry the refund with the same number".
    resends_processing_refunds: ClassVar[bool] = False

    @abstractmethod
    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        """Open a payment at the gateway; return where to send the buyer."""

    @abstractmethod
    def verify_notification(
        self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> PaymentNotification:
        """Authenticate and parse a notification, or raise NotificationRejected."""

    @abstractmethod
    def acknowledge(self) -> GatewayReply:
        """The answer that tells the gateway to stop re-sending (only after our commit)."""

    @abstractmethod
    def refuse(self, reason: str) -> GatewayReply:
        """The answer for a notification we did not accept."""

    @abstractmethod
    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        """Ask the gateway about one of our payments (authenticated call; raises GatewayUnavailable).

        `gateway_session_id` is what create_checkout returned as Checkout.gateway_session_id, if anything."""

    @abstractmethod
    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a paid trade. Idempotent on request.refund_no: asking again returns the same refund."""

    @abstractmethod
    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        """The current state of a refund we asked for (for `processing` ones)."""


    def simulated_scan_url(self, qr_code: str) -> str | None:
        """Demo only: a web page where a visitor can "scan" this code, when the gateway is a simulator (test
        peer). Real gateways answer None; the storefront only asks while the sandbox is switched on."""
        return None


class GatewayRegistry:
    """The gateways buyers can pay with (`get`, `names`, `all`), and internal ones that only settle payments the
    shop itself creates (the `balance` method: orders paid from a customer's prepaid balance). Work on existing
    payments (refunds, trade queries, reconciliation) finds both with `lookup`."""

    def __init__(self, gateways: list[PaymentGateway]) -> None:
        self._gateways = {gateway.name: gateway for gateway in gateways}
        self._internal: dict[str, PaymentGateway] = {}

    def get(self, name: str) -> PaymentGateway:
        """A gateway buyers can choose at checkout."""
        try:
            return self._gateways[name]
        except KeyError:
            raise UnknownGateway(f"payment gateway {name!r} is not configured") from None

    def lookup(self, name: str) -> PaymentGateway:
        """Any registered gateway, internal ones included: for refunds, queries and reconciliation."""
        found = self._gateways.get(name) or self._internal.get(name)
        if found is None:
            raise UnknownGateway(f"payment gateway {name!r} is not configured")
        return found

    def register(self, gateway: PaymentGateway) -> None:
        """Add or replace a gateway (configuration changed at runtime, or a test peer's gateway)."""
        self._gateways[gateway.name] = gateway

    def register_internal(self, gateway: PaymentGateway) -> None:
        """Add a gateway buyers never see (it cannot open a checkout)."""
        self._internal[gateway.name] = gateway

    def unregister(self, name: str) -> None:
        self._gateways.pop(name, None)

    def require_any(self) -> None:
        """Raise NoPaymentMethod unless at least one gateway is taking payments."""
        if not self._gateways:
            raise NoPaymentMethod("this shop is not taking payments right now; no order was placed")

    def names(self) -> list[str]:
        return list(self._gateways)

    def all(self) -> list[PaymentGateway]:
        return list(self._gateways.values())
