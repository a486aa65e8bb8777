"""Alipay open-platform signatures (RSA2 = SHA256withRSA, PKCS#1 v1.5, base64).

Spec followed: 支付宝开放平台文档 https://opendocs.alipay.com/common , chapter 签名与验签
(section titles below; the page ids were not re-checked offline):
- 自行实现签名: the string to sign is every request
  parameter except `sign`, with a non-empty value, sorted by name in ASCII order, joined as `k=v` with
  `&`, values neither url-encoded nor trimmed; sign with the merchant's private key, base64 the result.
- 异步通知验签: "除去 sign、sign_type 两个参数外，凡是通知返回回来的参数皆是待验签的参数": every url-decoded
  notification parameter but `sign` and `sign_type`, **empty values included** (`body=`), sorted and joined the
  same way; verify with Alipay's public key. This is what the SDKs do: python-alipay-sdk `AliPay.verify` pops
  `sign` and `sign_type` and joins every other item, and the official alipay-sdk-python `get_sign_content`
  joins every item it is given. (Leaving empty values out here refused genuine notices that carry one.)
  Requests never carry an empty parameter (the gateway leaves them out), so both rules agree on them.
- 自行实现验签 › 同步验签: an API answer is `{"<method>_response": {...},
  "sign": "..."}`; the signed text is the raw JSON of the `..._response` value exactly as it appears in
  the body. `response_sign_source` cuts it out without re-serialising (that would change the bytes).

Keys are accepted as PEM or as the bare base64 DER that Alipay's key tool and console hand out.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "InvalidKey", "canonical_string", "load_private_key", "load_public_key", "sign_text", "verify_text",
    "sign_params", "verify_params", "response_sign_source", "MIN_KEY_BITS",
]

MIN_KEY_BITS = 2048  # RSA2 keys are 2048-bit; anything smaller is refused
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")


class InvalidKey(ValueError):
    """A configured key cannot be used (not RSA, too short, not PEM/base64 DER)."""


def _der(text: str) -> bytes | None:
    """Bare base64 (no PEM armour), as Alipay's tools print keys; None when `text` is PEM."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return None
    if not stripped or not _B64.match(stripped):
        raise InvalidKey("a key must be PEM or base64 DER")
    try:
        return base64.b64decode("".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("a key must be PEM or base64 DER") from None


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The merchant's application private key (应用私钥): PKCS#8 or PKCS#1, PEM or bare base64."""
    try:
        der = _der(text)
        key = (serialization.load_pem_private_key(text.strip().encode(), password=None) if der is None
               else serialization.load_der_private_key(der, password=None))
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"not a usable private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise InvalidKey(f"the private key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Alipay's public key (支付宝公钥, not the application public key): SubjectPublicKeyInfo, PEM or base64."""
    try:
        der = _der(text)
        key = (serialization.load_pem_public_key(text.strip().encode()) if der is None
               else serialization.load_der_public_key(der))
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"not a usable public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise InvalidKey(f"the public key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def canonical_string(params: Mapping[str, str], *, exclude: frozenset[str] = frozenset({"sign"}),
                     keep_empty: bool = False) -> str:
    """`k=v` pairs sorted by name (ASCII), joined with `&`, values as they are; empty values only with
    `keep_empty` (notifications: the SDKs' rule), left out otherwise (requests: the documented rule)."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in exclude and (keep_empty or params[k] != ""))


def sign_text(text: str, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def verify_text(text: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    """Signature of a request (everything but `sign` is signed, `sign_type` included)."""
    return sign_text(canonical_string(params), key)


def verify_params(params: Mapping[str, str], key: rsa.RSAPublicKey, *, notification: bool = True) -> bool:
    """Check `params["sign"]`. Notifications: every parameter but `sign` and `sign_type`, empty ones included
    (as the SDKs verify them); requests: `sign_type` signed too, empty ones left out."""
    if notification:
        text = canonical_string(params, exclude=frozenset({"sign", "sign_type"}), keep_empty=True)
    else:
        text = canonical_string(params)
    return verify_text(text, params.get("sign", ""), key)


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def response_sign_source(body: str) -> dict[str, str]:
    """The raw text of each top-level member of a JSON object, exactly as it appears in `body`.

    Raises ValueError when `body` is not one JSON object with string keys (junk, arrays, trailing data).
    """
    decoder = json.JSONDecoder()
    index = _skip_ws(body, 0)
    if index >= len(body) or body[index] != "{":
        raise ValueError("the answer is not a JSON object")
    index = _skip_ws(body, index + 1)
    members: dict[str, str] = {}
    if index < len(body) and body[index] == "}":
        index += 1
    else:
        while True:
            key, index = decoder.raw_decode(body, index)
            if not isinstance(key, str):
                raise ValueError("a JSON key is not a string")
            index = _skip_ws(body, index)
            if index >= len(body) or body[index] != ":":
                raise ValueError("malformed JSON object")
            start = _skip_ws(body, index + 1)
            _, end = decoder.raw_decode(body, start)
            if key in members:
                raise ValueError(f"repeated member {key!r}")
            members[key] = body[start:end]
            index = _skip_ws(body, end)
            if index < len(body) and body[index] == ",":
                index = _skip_ws(body, index + 1)
                continue
            if index < len(body) and body[index] == "}":
                index += 1
                break
            raise ValueError("malformed JSON object")
    if _skip_ws(body, index) != len(body):
        raise ValueError("data after the JSON object")
    return members
