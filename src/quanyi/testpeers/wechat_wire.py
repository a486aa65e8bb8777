"""TEST PEER (WeChat Pay simulator): its records, keys and notification shape, apart from the server."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["SimNotification", "Trade", "Refund", "new_rsa_key", "pem_private", "pem_public", "now_text",
           "CST", "AUTH", "PAIR", "OUT_NO"]

CST = dt.timezone(dt.timedelta(hours=8))
AUTH = re.compile(r'^WECHATPAY2-SHA256-RSA2048 (.+)$')
PAIR = re.compile(r'\s*(\w+)="([^"]*)"\s*')
OUT_NO = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_private(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def pem_public(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def now_text() -> str:
    return dt.datetime.now(CST).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class SimNotification:
    url: str
    headers: dict[str, str]
    body: bytes
    event_id: str
    out_trade_no: str


@dataclass
class Trade:
    out_trade_no: str
    description: str
    total: int
    notify_url: str
    code_url: str
    time_expire: dt.datetime | None
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    payer_openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"  # the paying WeChat user (per appid)
    refunds: list[str] = field(default_factory=list)


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    trade: Trade
    amount: int
    reason: str
    create_time: str
    status: str
    success_time: str | None = None
