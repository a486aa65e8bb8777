"""Aliyun (阿里云) RPC-style request signing, as used by the SMS API (dysmsapi SendSms).

Follows Alibaba Cloud's "RPC signature" (SignatureMethod=HMAC-SHA1, SignatureVersion=1.0) doc for the
SMS API ("HTTP 协议及签名" / "RPC 风格请求体签名"):
  canonicalized = "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params))   # Signature itself excluded
  string_to_sign = method + "&" + pct("/") + "&" + pct(canonicalized)
  signature = base64(HMAC-SHA1(key=access_key_secret + "&", string_to_sign))
where pct is RFC 3986 percent-encoding of UTF-8: only A-Z a-z 0-9 - _ . ~ stay as they are (so a space
is %20, never '+', and '*' is %2A).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["percent_encode", "canonicalized_query", "string_to_sign", "rpc_signature"]


def percent_encode(value: str) -> str:
    return quote(value, safe="-_.~", encoding="utf-8")


def canonicalized_query(params: Mapping[str, str]) -> str:
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    mac = hmac.new((access_key_secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()
