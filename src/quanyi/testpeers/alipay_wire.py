"""TEST PEER: the Alipay peer's wire formats: its keys, its own RSA2 signing, amounts, times, records.

Written out independently of quanyi.payments.alipay so that a mistake in the shop's canonical string
cannot be mirrored here and go unnoticed.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "BEIJING", "REQUEST_WINDOW", "PAGE_METHODS", "AlipayKeys", "SimNotification", "SimTrade", "Refusal", "invalid",
    "beijing_time", "yuan", "cents_or_none", "string_to_sign", "rsa2_sign",
]

BEIJING = dt.timezone(dt.timedelta(hours=8))
REQUEST_WINDOW = dt.timedelta(minutes=30)  # how far a request's timestamp may be from the peer's clock
PAGE_METHODS = ("alipay.trade.page.pay", "alipay.trade.wap.pay")


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def pem_public(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class AlipayKeys:
    """The merchant's application key pair and Alipay's platform key pair, fresh for one run."""

    merchant_private_pem: str
    merchant_public_pem: str
    alipay_private_pem: str
    alipay_public_pem: str

    @classmethod
    def generate(cls) -> AlipayKeys:
        merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(pem_private(merchant), pem_public(merchant.public_key()),
                   pem_private(platform), pem_public(platform.public_key()))


def beijing_time(moment: dt.datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def yuan(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def cents_or_none(text: object) -> int | None:
    """Alipay's own amount rule: yuan, > 0, at most two decimals. None when not acceptable."""
    if not isinstance(text, str) or not text or not all(c in "0123456789." for c in text):
        return None
    try:
        value = Decimal(text) * 100
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() and value > 0 else None


def string_to_sign(params: Mapping[str, str], skip: tuple[str, ...], *, keep_empty: bool = False) -> bytes:
    """Requests (as Alipay checks them): empty values left out. Notifications and returns (as Alipay signs them,
    and the SDKs verify them): every parameter but `skip`, empty values included (`keep_empty`)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in skip and (keep_empty or params[k])).encode()


def rsa2_sign(text: bytes, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()


@dataclass(frozen=True)
class SimNotification:
    """One asynchronous notification exactly as Alipay POSTs it (form body, url-encoded)."""

    url: str
    params: dict[str, str]

    @property
    def body(self) -> bytes:
        return urlencode(self.params).encode("ascii")

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@dataclass
class SimTrade:
    out_trade_no: str
    trade_no: str
    amount_cents: int
    subject: str
    notify_url: str
    return_url: str
    status: Literal["WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED", "TRADE_FINISHED"]
    created_at: dt.datetime
    buyer_id: str
    time_expire: str = ""
    paid_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    refunds: dict[str, tuple[int, dt.datetime]] = field(default_factory=dict)  # out_request_no -> (cents, at)

    @property
    def refunded_cents(self) -> int:
        return sum(amount for amount, _ in self.refunds.values())


@dataclass(frozen=True)
class SimRefundCall:
    """One refund call the peer answered: `send` (alipay.trade.refund) with its outcome `new` (a refund made or,
    under hold_refunds, accepted), `resend` (an out_request_no it already has: nothing moves again) or `refused`;
    or `query` (alipay.trade.fastpay.refund.query) with `shown` or `not_shown` (no refund data: not refunded yet)."""

    kind: Literal["send", "query"]
    out_trade_no: str
    out_request_no: str
    outcome: Literal["new", "resend", "refused", "shown", "not_shown"]


class Refusal(Exception):
    def __init__(self, sub_code: str, sub_msg: str, code: str = "40004", msg: str = "Business Failed") -> None:
        super().__init__(sub_msg)
        self.answer = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def invalid(sub_code: str, sub_msg: str) -> Refusal:
    return Refusal(sub_code, sub_msg, code="40002", msg="Invalid Arguments")


