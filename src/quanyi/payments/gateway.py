"""The one interface every payment gateway (支付渠道) implements, and the registry of configured ones.

A gateway does three things for the shop: opens a checkout (a cashier URL for the buyer), verifies an
asynchronous server-to-server notification, and tells the shop how to answer that notification in
the gateway's own protocol. Verification is the gateway's job; what a verified payment *means* for an
order is payments.service's job.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from quanyi.errors import DomainError, NotFound

__all__ = [
    "CheckoutRequest", "Checkout", "PaymentNotification", "GatewayReply", "NotificationRejected",
    "UnknownGateway", "PaymentGateway", "GatewayRegistry",
]


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    payment_no: str  # our reference, sent to the gateway as its out_trade_no
    amount_cents: int
    currency: str
    subject: str
    notify_url: str
    return_url: str


@dataclass(frozen=True, slots=True)
class Checkout:
    cashier_url: str


@dataclass(frozen=True, slots=True)
class PaymentNotification:
    """A notification whose signature checked out. Its claims still need checking against our records."""

    payment_no: str
    gateway_trade_no: str
    amount_cents: int
    currency: str
    succeeded: bool
    paid_at: dt.datetime | None


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


class PaymentGateway(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

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


class GatewayRegistry:
    def __init__(self, gateways: list[PaymentGateway]) -> None:
        self._gateways = {gateway.name: gateway for gateway in gateways}

    def get(self, name: str) -> PaymentGateway:
        try:
            return self._gateways[name]
        except KeyError:
            raise UnknownGateway(f"payment gateway {name!r} is not configured") from None

    def names(self) -> list[str]:
        return list(self._gateways)

    def all(self) -> list[PaymentGateway]:
        return list(self._gateways.values())
