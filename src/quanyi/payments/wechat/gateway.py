"""WeChat Pay API v3 (微信支付) — Native payment (扫码支付): the buyer scans `code_url` with WeChat.

Spec followed (商户平台 API v3 文档, https://pay.weixin.qq.com/docs/merchant/ — now served under
https://pay.weixin.qq.com/doc/v3/merchant/...), sections of "Native支付 / API列表":
- Native下单 POST /v3/pay/transactions/native (.../apis/native-payment/direct-jsons/native-prepay.html)
- 商户订单号查询订单 GET /v3/pay/transactions/out-trade-no/{no} (.../native-payment/query-by-out-trade-no.html)
- 支付成功回调通知 TRANSACTION.SUCCESS, encrypt-resource (.../native-payment/payment-notice.html)
- 退款申请 POST /v3/refund/domestic/refunds (.../native-payment/create.html)
- 查询单笔退款 GET /v3/refund/domestic/refunds/{out_refund_no} (.../native-payment/query-by-out-refund-no.html)
- 签名生成 / 签名验证 / 回调报文解密 / 微信支付公钥: see signing.py.

Implemented with `cryptography` + httpx rather than the `wechatpayv3` package: that SDK is synchronous
(requests), would block the event loop, and is built around downloading platform certificates at start;
we need an async client that can be pointed at a local simulator and that verifies with a configured
WeChat Pay public key (微信支付公钥, Wechatpay-Serial = its PUB_KEY_ID) or, for merchants still on the older
scheme, the platform certificate itself (平台证书 PEM: Wechatpay-Serial = its serial number; validated and
expiry-checked when saved, and an expired one verifies nothing). Both may be configured during the switch.

Every answer is verified (signature, serial, timestamp within 5 minutes) before it is believed; a 5xx,
a network error or an answer that does not verify raises GatewayUnavailable (nothing is known). A signed
4xx is a definite refusal. WeChat Pay only notifies successful payments; any other state is parsed to
`succeeded=False` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from quanyi.money import MAX_AMOUNT_CENTS
from quanyi.payments import gateway as gateway_errors
from quanyi.payments.gateway import (
    Checkout,
    CheckoutRequest,
    GatewayReply,
    GatewayUnavailable,
    GatewayUnsupported,
    NotificationRejected,
    PaymentGateway,
    PaymentNotification,
    RefundRequest,
    RefundResult,
    TradeQuery,
    payer_account_of,
)
from quanyi.payments.wechat import signing

__all__ = ["WechatConfig", "WechatGateway", "WechatCheckoutRefused", "WechatUnsupported", "PRODUCTION_BASE_URL"]

PRODUCTION_BASE_URL = "https://api.mch.weixin.qq.com"
_CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
_TRADE_STATES = {
    "SUCCESS": "paid", "REFUND": "paid",  # REFUND: paid, then (part) refunded — the money did arrive
    "NOTPAY": "pending", "USERPAYING": "pending",
    "CLOSED": "closed", "REVOKED": "closed", "PAYERROR": "closed",
}
# ABNORMAL (退款异常) is no refusal: WeChat Pay took the money from the merchant, the buyer's bank card
# refused it, and the merchant sends it to the buyer's balance or another card (merchant platform /
# 发起异常退款), after which it is SUCCESS.
# Still on its way to the buyer: never "failed", which staff may withdraw (goods and money both).
_REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "processing", "CLOSED": "failed"}


class WechatCheckoutRefused(gateway_errors.CheckoutRefused):
    """WeChat Pay definitely refused to open the payment (already paid, closed, parameters changed...)."""


class WechatUnsupported(GatewayUnsupported):
    """WeChat Pay (Native, mainland merchant) takes CNY only, and more than nothing."""


class WechatConfig(BaseModel):
    """The merchant's WeChat Pay account (商户号) as configured in the shop."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mchid: str = Field(pattern=r"^[0-9]{1,32}$", description="商户号")
    appid: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$", description="the AppID bound to the merchant")
    merchant_serial_no: str = Field(pattern=r"^[0-9A-Fa-f]{8,64}$", description="商户API证书序列号")
    merchant_private_key: SecretStr = Field(description="apiclient_key.pem (RSA 2048, PEM)")
    apiv3_key: SecretStr = Field(description="APIv3密钥: 32 ASCII characters")
    # How WeChat Pay's signatures are verified: the WeChat Pay public key and its id, or the platform
    # certificate (older merchants), or both while switching. At least one.
    platform_public_key: str | None = Field(default=None, description="微信支付公钥 (PEM)")
    platform_public_key_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,64}$",
                                               description="微信支付公钥ID (PUB_KEY_ID_...)")
    platform_certificate: str | None = Field(
        default=None, description="平台证书 (PEM X.509, wechatpay_<serial>.pem; serial and key are read from it)")
    base_url: str = Field(default=PRODUCTION_BASE_URL, pattern=r"^https?://[^\s/?#]+$")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    tolerance_seconds: int = Field(default=300, ge=10, le=3600)

    @field_validator("merchant_private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        signing.load_private_key(value.get_secret_value())
        return value

    @field_validator("platform_public_key")
    @classmethod
    def _public_key_loads(cls, value: str | None) -> str | None:
        if value is not None:
            signing.load_public_key(value)
        return value

    @field_validator("platform_certificate")
    @classmethod
    def _certificate_loads(cls, value: str | None) -> str | None:
        if value is not None:
            signing.load_platform_certificates(value, now=dt.datetime.now(dt.UTC))
        return value

    @model_validator(mode="after")
    def _one_way_to_verify(self) -> WechatConfig:
        if (self.platform_public_key is None) != (self.platform_public_key_id is None):
            raise ValueError("platform_public_key and platform_public_key_id go together (微信支付公钥 and its ID)")
        if self.platform_public_key is None and self.platform_certificate is None:
            raise ValueError("give the WeChat Pay public key with its ID (platform_public_key, "
                             "platform_public_key_id) or the platform certificate (platform_certificate)")
        return self

    @field_validator("apiv3_key")
    @classmethod
    def _apiv3_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.isascii() or len(raw) != 32:
            raise ValueError("the APIv3 key must be exactly 32 ASCII characters")
        return value


@dataclass(frozen=True, slots=True)
class _Transaction:
    out_trade_no: str
    trade_state: str
    transaction_id: str | None
    amount_cents: int | None
    currency: str | None
    success_time: dt.datetime | None
    payer_openid: str | None = None


def _text(obj: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 128) -> str | None:
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValueError(f"{name} is missing or not a string of 1..{max_len} characters")
    return value


def _fen(value: object, name: str) -> int:
    """WeChat amounts are JSON integers in fen (分); refuse floats, strings, booleans, negatives."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer number of fen, got {value!r}")
    if value < 0 or value > MAX_AMOUNT_CENTS:
        raise ValueError(f"{name} {value} is out of range")
    return value


def _rfc3339(value: str, name: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{name} lacks a timezone offset")
    return parsed


def _parse_transaction(obj: object, config: WechatConfig) -> _Transaction:
    """A transaction object (query answer or decrypted notification resource), checked against our account."""
    if not isinstance(obj, dict):
        raise ValueError("transaction is not a JSON object")
    if obj.get("mchid") != config.mchid or obj.get("appid") != config.appid:
        raise ValueError(f"transaction belongs to mchid={obj.get('mchid')!r} appid={obj.get('appid')!r}, not us")
    out_trade_no = _text(obj, "out_trade_no", max_len=32)
    state = _text(obj, "trade_state", max_len=32)
    assert out_trade_no is not None and state is not None
    if state not in _TRADE_STATES:
        raise ValueError(f"unknown trade_state {state!r}")
    transaction_id = _text(obj, "transaction_id", required=False, max_len=64)
    amount, currency, success_time = None, None, None
    raw_amount = obj.get("amount")
    if raw_amount is not None:
        if not isinstance(raw_amount, dict):
            raise ValueError("amount is not an object")
        if "total" in raw_amount:
            amount = _fen(raw_amount["total"], "amount.total")
        currency = _text(raw_amount, "currency", required=False, max_len=3)
    if state in ("SUCCESS", "REFUND"):
        if transaction_id is None or amount is None or currency is None:
            raise ValueError("a paid transaction lacks transaction_id, amount.total or amount.currency")
        if currency != "CNY":
            raise ValueError(f"unexpected currency {currency!r}")
        success_time = _rfc3339(_text(obj, "success_time", max_len=40) or "", "success_time")
    payer = obj.get("payer")
    openid = payer_account_of(payer.get("openid")) if isinstance(payer, dict) else None
    return _Transaction(out_trade_no, state, transaction_id, amount, currency, success_time, openid)


class WechatGateway(PaymentGateway):
    name = "wechat"
    title, title_en = "微信支付", "WeChat Pay"

    def simulated_scan_url(self, qr_code: str) -> str | None:
        # The in-repo simulator (testpeers.wechat) serves a scan stand-in; never for the real API.
        if self._config.base_url == PRODUCTION_BASE_URL or "pr=" not in qr_code:
            return None
        return f"{self._config.base_url}/sim/scan?pr={qr_code.rsplit('pr=', 1)[-1]}"

    def __init__(self, config: WechatConfig, *, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._private_key = signing.load_private_key(config.merchant_private_key.get_secret_value())
        # Wechatpay-Serial -> what verifies it: the public key by its id; certificates by their serial (they are
        # validated when saved; one that has since expired is refused at verification, by name).
        self._public_keys: dict[str, Any] = {}
        if config.platform_public_key is not None and config.platform_public_key_id is not None:
            self._public_keys[config.platform_public_key_id] = signing.load_public_key(config.platform_public_key)
        self._certificates: dict[str, signing.PlatformCertificate] = {}
        if config.platform_certificate is not None:
            self._certificates = {c.serial: c for c in signing.load_platform_certificates(
                config.platform_certificate, now=None)}
        self._apiv3_key = config.apiv3_key.get_secret_value().encode()
        self._base_url = config.base_url.rstrip("/")

    # ------------------------------------------------------------ signatures of what WeChat Pay sends us

    def _signature_problem(self, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        """Why this answer/notification is not authentic, or None when it verifies."""
        lowered = {key.lower(): value for key, value in headers.items()}
        timestamp = lowered.get("wechatpay-timestamp", "")
        nonce = lowered.get("wechatpay-nonce", "")
        signature = lowered.get("wechatpay-signature", "")
        serial = lowered.get("wechatpay-serial", "")
        if not (timestamp and nonce and signature and serial):
            return "missing Wechatpay-Timestamp/Nonce/Signature/Serial headers"
        key = self._public_keys.get(serial)
        if key is None:
            certificate = self._certificates.get(signing.certificate_serial(serial))
            if certificate is None:
                ours = ", ".join([*self._public_keys, *self._certificates])
                return f"signed with key {serial[:64]!r}, not our WeChat Pay public key or platform certificate {ours}"
            if now >= certificate.not_after.timestamp():
                return (f"signed with platform certificate {certificate.serial}, which expired on "
                        f"{certificate.not_after:%Y-%m-%d} UTC: configure the current platform certificate")
            if now < certificate.not_before.timestamp():
                return f"signed with platform certificate {certificate.serial}, which is not valid yet"
            key = certificate.public_key
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "Wechatpay-Timestamp is not unix seconds"
        if abs(now - int(timestamp)) > self._config.tolerance_seconds:
            return "Wechatpay-Timestamp is outside the accepted window (stale or replayed)"
        if not signing.verify(signing.answer_message(timestamp, nonce, body), signature, key):
            return "bad signature"
        return None

    def verify_notification(
        self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> PaymentNotification:
        problem = self._signature_problem(headers, body, now.timestamp())
        if problem:
            raise NotificationRejected(problem)
        try:
            envelope = json.loads(body)
            if not isinstance(envelope, dict):
                raise ValueError("notification is not a JSON object")
            event_id = _text(envelope, "id")
            event_type = _text(envelope, "event_type", max_len=64)
            if envelope.get("resource_type") != "encrypt-resource":
                raise ValueError(f"unexpected resource_type {envelope.get('resource_type')!r}")
            resource = envelope.get("resource")
            if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("resource is not an AEAD_AES_256_GCM encrypted object")
            if resource.get("original_type") != "transaction":
                raise ValueError(f"not a payment notification (original_type {resource.get('original_type')!r})")
            associated_data = resource.get("associated_data", "")
            if not isinstance(associated_data, str):
                raise ValueError("associated_data is not a string")
            plaintext = signing.decrypt_resource(
                key=self._apiv3_key, nonce=_text(resource, "nonce", max_len=64) or "",
                ciphertext=_text(resource, "ciphertext", max_len=16_384) or "", associated_data=associated_data)
            transaction = _parse_transaction(json.loads(plaintext), self._config)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and SignatureError are ValueErrors
            raise NotificationRejected(f"malformed notification: {exc}") from None
        succeeded = event_type == "TRANSACTION.SUCCESS" and transaction.trade_state == "SUCCESS"
        assert event_id is not None
        return PaymentNotification(
            payment_no=transaction.out_trade_no, gateway_trade_no=transaction.transaction_id or "",
            amount_cents=transaction.amount_cents or 0, currency=transaction.currency or "CNY",
            succeeded=succeeded, paid_at=transaction.success_time, event_id=event_id,
            payer_account=transaction.payer_openid,
        )

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "application/json", json.dumps({"code": "SUCCESS", "message": "成功"}))

    def refuse(self, reason: str) -> GatewayReply:
        # Any non-2xx makes WeChat Pay re-send later (15s, 15s, 30s, 3m, ... over 24h).
        return GatewayReply(400, "application/json",
                            json.dumps({"code": "FAIL", "message": reason[:200]}, ensure_ascii=False))

    # ------------------------------------------------------------ merchant API calls (signed both ways)

    async def _call(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                    body: Mapping[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        path_with_query = path + (f"?{urlencode(query)}" if query else "")
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
        signature = signing.sign(signing.request_message(method, path_with_query, timestamp, nonce, text),
                                 self._private_key)
        headers = {
            "Authorization": signing.authorization(mchid=self._config.mchid, serial_no=self._config.merchant_serial_no,
                                                   nonce=nonce, timestamp=timestamp, signature=signature),
            "Accept": "application/json", "User-Agent": "quanyi-wechatpay/1",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        what = f"WeChat Pay {method} {path}"
        try:
            response = await self._http.request(method, self._base_url + path_with_query, content=text.encode(),
                                                headers=headers, timeout=self._config.timeout_seconds)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise GatewayUnavailable(f"{what}: HTTP {response.status_code}")
        problem = self._signature_problem(response.headers, response.content, time.time())
        if problem:
            # An unsigned 4xx (e.g. our own signature was refused) is not a trustworthy definite answer either.
            raise GatewayUnavailable(f"{what}: HTTP {response.status_code} answer not trusted: {problem}; "
                                     f"body {response.text[:200]!r}")
        if response.status_code == 204 or not response.content:
            return response.status_code, {}
        try:
            answer = response.json()
        except ValueError:
            raise GatewayUnavailable(f"{what}: answer is not JSON") from None
        if not isinstance(answer, dict):
            raise GatewayUnavailable(f"{what}: answer is not a JSON object")
        return response.status_code, answer

    @staticmethod
    def _refusal(answer: Mapping[str, Any]) -> str:
        return f"{answer.get('code', '?')}: {str(answer.get('message', ''))[:200]}"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.currency != "CNY":
            raise WechatUnsupported(f"WeChat Pay takes CNY only, not {request.currency}")
        if request.amount_cents <= 0:
            raise WechatUnsupported("WeChat Pay cannot take a payment of zero")
        body: dict[str, Any] = {
            "appid": self._config.appid, "mchid": self._config.mchid,
            "description": request.subject[:127] or request.payment_no, "out_trade_no": request.payment_no,
            "notify_url": request.notify_url, "amount": {"total": request.amount_cents, "currency": "CNY"},
        }
        if request.expires_at is not None:
            body["time_expire"] = request.expires_at.astimezone(_CST).isoformat(timespec="seconds")
        status, answer = await self._call("POST", "/v3/pay/transactions/native", body=body)
        if status != 200:
            raise WechatCheckoutRefused(f"WeChat Pay refused the payment: {self._refusal(answer)}")
        code_url = answer.get("code_url")
        if not isinstance(code_url, str) or not code_url.startswith("weixin://") or len(code_url) > 256:
            raise GatewayUnavailable(f"WeChat Pay answered without a usable code_url: {str(answer)[:200]}")
        # Native pay has no cashier page: whatever the mode, the buyer scans code_url.
        return Checkout(cashier_url=None, qr_code=code_url)

    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        status, answer = await self._call("GET", f"/v3/pay/transactions/out-trade-no/{quote(payment_no, safe='')}",
                                          query={"mchid": self._config.mchid})
        if status == 404 and answer.get("code") == "ORDER_NOT_EXIST":
            return TradeQuery(payment_no=payment_no, state="not_found")
        if status != 200:
            raise GatewayUnavailable(f"WeChat Pay refused the trade query: {self._refusal(answer)}")
        try:
            transaction = _parse_transaction(answer, self._config)
        except ValueError as exc:
            raise GatewayUnavailable(f"WeChat Pay trade query answer unusable: {exc}") from None
        if transaction.out_trade_no != payment_no:
            raise GatewayUnavailable("WeChat Pay answered about another trade")
        state = _TRADE_STATES[transaction.trade_state]
        if state != "paid":
            return TradeQuery(payment_no=payment_no, state=state)  # type: ignore[arg-type]
        return TradeQuery(payment_no=payment_no, state="paid", gateway_trade_no=transaction.transaction_id,
                          amount_cents=transaction.amount_cents, currency=transaction.currency,
                          paid_at=transaction.success_time, payer_account=transaction.payer_openid)

    def _refund_result(self, refund_no: str, status: int, answer: Mapping[str, Any], asked: int) -> RefundResult:
        if status != 200:
            return RefundResult(refund_no=refund_no, state="failed", amount_cents=asked, detail=self._refusal(answer))
        try:
            if answer.get("out_refund_no") != refund_no:
                raise ValueError("it names another refund")
            state = _REFUND_STATES.get(str(answer.get("status")))
            if state is None:
                raise ValueError(f"unknown refund status {answer.get('status')!r}")
            amount = answer.get("amount")
            if not isinstance(amount, dict):
                raise ValueError("amount is not an object")
            refunded = _fen(amount.get("refund"), "amount.refund")
            refund_id = _text(answer, "refund_id", max_len=64)
        except ValueError as exc:
            raise GatewayUnavailable(f"WeChat Pay refund answer unusable: {exc}") from None
        return RefundResult(refund_no=refund_no, state=state, amount_cents=refunded,  # type: ignore[arg-type]
                            gateway_refund_no=refund_id, detail=str(answer.get("status")))

    async def refund(self, request: RefundRequest) -> RefundResult:
        if request.currency != "CNY" or not 0 < request.amount_cents <= request.payment_amount_cents:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail="refund must be CNY, positive and at most the payment's amount")
        body: dict[str, Any] = {
            "out_trade_no": request.payment_no, "out_refund_no": request.refund_no, "reason": request.reason[:80],
            "amount": {"refund": request.amount_cents, "total": request.payment_amount_cents, "currency": "CNY"},
        }
        if request.notify_url:
            body["notify_url"] = request.notify_url
        status, answer = await self._call("POST", "/v3/refund/domestic/refunds", body=body)
        return self._refund_result(request.refund_no, status, answer, request.amount_cents)

    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        status, answer = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund_no, safe='')}")
        return self._refund_result(refund_no, status, answer, 0)
