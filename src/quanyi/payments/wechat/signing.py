"""WeChat Pay API v3 signature rules (签名生成 / 签名验证 / 回调报文解密).

Spec: 商户平台 API v3 文档 "开发指引 / 接口规则" (https://pay.weixin.qq.com/docs/merchant/development/
interface-rules/): 签名生成 (signature-generation.html), 签名验证 (signature-verification.html),
回调报文解密 (certificate-callback-decryption.html), and 微信支付公钥 (wechatpay-public-key).

- Request: message = "METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n" (empty body for GET), signed
  SHA256withRSA (RSASSA-PKCS1-v1_5) with the merchant private key; sent as
  `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",signature="..",timestamp="..",serial_no=".."`.
- Answer / notification: message = "TIMESTAMP\\nNONCE\\nBODY\\n" from the Wechatpay-Timestamp, Wechatpay-Nonce
  headers and the raw body, verified with the WeChat Pay platform public key named by Wechatpay-Serial.
- Notification resource: AES-256-GCM with the 32-byte APIv3 key, nonce and associated_data as UTF-8,
  ciphertext base64 (tag appended).
- Platform certificates (平台证书, the older scheme, "平台证书 / 获取平台证书列表"): an X.509 certificate whose
  serial number, in upper-case hex, is the Wechatpay-Serial of what it signs; its public key verifies it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "AUTH_SCHEMA", "request_message", "answer_message", "sign", "verify", "authorization",
    "decrypt_resource", "load_private_key", "load_public_key", "SignatureError", "PlatformCertificate",
    "load_platform_certificates", "certificate_serial",
]

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
_MIN_RSA_BITS = 2048


class SignatureError(ValueError):
    """A key, a signature or an encrypted resource that does not check out."""


def request_message(method: str, path_with_query: str, timestamp: str, nonce: str, body: str) -> bytes:
    """The string a merchant request signature covers (body "" for GET)."""
    return f"{method.upper()}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n".encode()


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The string WeChat Pay's answer / notification signature covers (the body exactly as received)."""
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"


def sign(message: bytes, private_key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(message: bytes, signature: str, public_key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


def authorization(*, mchid: str, serial_no: str, nonce: str, timestamp: str, signature: str) -> str:
    return (f'{AUTH_SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def decrypt_resource(*, key: bytes, nonce: str, ciphertext: str, associated_data: str) -> bytes:
    """Open a notification's encrypted resource, or raise SignatureError (wrong key or altered text)."""
    try:
        raw = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        return AESGCM(key).decrypt(nonce.encode(), raw, associated_data.encode())
    except (InvalidTag, binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError("the encrypted resource does not decrypt with our APIv3 key") from None


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SignatureError("not a PEM private key (apiclient_key.pem)") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < _MIN_RSA_BITS:
        raise SignatureError("the merchant private key must be RSA of at least 2048 bits")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise SignatureError("not a PEM public key (the WeChat Pay platform public key)") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
        raise SignatureError("the platform public key must be RSA of at least 2048 bits")
    return key


@dataclass(frozen=True)
class PlatformCertificate:
    """A WeChat Pay platform certificate as the gateway uses it: which Wechatpay-Serial it answers to, the key that
    verifies, and when it is valid."""

    serial: str  # upper-case hex, no leading zeros (certificate_serial)
    public_key: rsa.RSAPublicKey
    not_before: dt.datetime
    not_after: dt.datetime


def certificate_serial(serial: str | int) -> str:
    """A certificate serial as compared: upper-case hex without leading zeros (a Wechatpay-Serial header, or the
    certificate's serial number). Anything that is not hex stays as it is (it then matches no certificate)."""
    if isinstance(serial, int):
        return f"{serial:X}"
    text = serial.strip()
    try:
        return f"{int(text, 16):X}" if text and len(text) <= 64 and text.isascii() and text.isalnum() else text
    except ValueError:
        return text


_MAX_CERTIFICATE_CHARS = 64_000  # a handful of certificates; more is not a WeChat Pay certificate file


def load_platform_certificates(pem: str, *, now: dt.datetime | None) -> list[PlatformCertificate]:
    """The platform certificate(s) in `pem` (wechatpay_<serial>.pem; several concatenated during a rotation),
    validated: X.509 PEM, an RSA key of at least 2048 bits, valid at `now` (not expired, not yet to come;
    `now=None`: dates not checked, for a configuration saved earlier, which the verifier checks per use)."""
    if len(pem) > _MAX_CERTIFICATE_CHARS:
        raise SignatureError("the platform certificate file is too large to be WeChat Pay certificates")
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except (ValueError, TypeError):
        raise SignatureError("not a PEM X.509 certificate (the WeChat Pay platform certificate, "
                             "-----BEGIN CERTIFICATE-----)") from None
    loaded = []
    for certificate in certificates:
        key = certificate.public_key()
        serial = certificate_serial(certificate.serial_number)
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
            raise SignatureError(f"platform certificate {serial}: its key must be RSA of at least 2048 bits")
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        if now is not None and now >= not_after:
            raise SignatureError(f"platform certificate {serial} expired on {not_after:%Y-%m-%d %H:%M} UTC: "
                                 "download the current one (平台证书) from WeChat Pay")
        if now is not None and now < not_before:
            raise SignatureError(f"platform certificate {serial} is not valid before "
                                 f"{not_before:%Y-%m-%d %H:%M} UTC")
        loaded.append(PlatformCertificate(serial, key, not_before, not_after))
    if len({c.serial for c in loaded}) != len(loaded):
        raise SignatureError("the same platform certificate is given twice")
    return loaded
