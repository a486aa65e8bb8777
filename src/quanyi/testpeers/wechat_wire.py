"""TEST PEER (WeChat Pay simulator): its records, keys and notification shape, apart from the server."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

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


def platform_certificate(key: rsa.RSAPrivateKey, *, serial: int, not_before: dt.datetime,
                         not_after: dt.datetime) -> str:
    """A WeChat Pay platform certificate (平台证书) for `key`, PEM: subject and issuer as Tenpay's, self-signed
    here (the real ones chain to the Tenpay.com Root CA, which the shop does not check: it pins the certificate)."""
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tenpay.com CA Center"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


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
