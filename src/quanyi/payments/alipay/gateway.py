"""支付宝 Alipay (open platform, RSA2) behind the shop's PaymentGateway interface.

Spec followed: 支付宝开放平台 https://opendocs.alipay.com/open/ (API 列表) and
https://opendocs.alipay.com/common (公共请求参数 / 公共响应参数 / 签名与验签 / 异步通知说明):
- 公共请求参数: app_id, method, format=JSON, charset=utf-8, sign_type=RSA2, timestamp "yyyy-MM-dd HH:mm:ss"
  (Beijing time), version=1.0, notify_url, return_url, biz_content (JSON); signing in `signing.py`.
- 电脑网站支付 alipay.trade.page.pay (FAST_INSTANT_TRADE_PAY) and 手机网站支付 alipay.trade.wap.pay
  (QUICK_WAP_WAY): the signed parameters as a GET URL to the gateway, where the buyer pays.
- 当面付 alipay.trade.precreate: a server call that answers a `qr_code` for the buyer to scan.
- alipay.trade.query (trade_status WAIT_BUYER_PAY / TRADE_CLOSED / TRADE_SUCCESS / TRADE_FINISHED),
  alipay.trade.refund (out_request_no makes it idempotent and allows partial refunds; fund_change=N is
  not a failure and is settled by the refund query) and alipay.trade.fastpay.refund.query (a success answer
  without refund data: "not refunded (yet), retry the refund with the same out_request_no", never a refusal).
- 公共响应参数: `{"<method with _>_response": {code, msg, sub_code, sub_msg, ...}, "sign": ...}`, code 10000
  = success, 20000 = service unavailable (retry), 40004 = business failure named by sub_code.
- 异步通知: a form POST (notify_type=trade_status_sync), verified with Alipay's public key; we answer the
  plain text `success` (anything else and Alipay re-sends, 8 times over ~25 hours).

No SDK: python-alipay-sdk and the official alipay-sdk-python are synchronous (requests/urllib) and cannot
share the shop's httpx client or its transport; the algorithm is small and implemented with `cryptography`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from quanyi.payments import gateway as gateway_errors
from quanyi.payments.alipay.protocol import clean_subject, format_time, format_yuan, parse_time, parse_yuan
from quanyi.payments.alipay.signing import (
    load_private_key,
    load_public_key,
    response_sign_source,
    sign_params,
    verify_params,
    verify_text,
)
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

__all__ = ["AlipayConfig", "AlipayGateway", "UnsupportedCurrency", "CheckoutRefused", "PRODUCTION_GATEWAY_URL"]

PRODUCTION_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
_TRADE_STATES = {"WAIT_BUYER_PAY": "pending", "TRADE_CLOSED": "closed",
                 "TRADE_SUCCESS": "paid", "TRADE_FINISHED": "paid"}
_NOTIFY_REQUIRED = ("notify_time", "notify_type", "notify_id", "app_id", "sign_type", "sign",
                    "trade_no", "out_trade_no", "trade_status", "total_amount")
# Answers that mean "Alipay could not decide now": nothing is known to have happened, ask again later.
_RETRY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})
_NOT_REFUNDED_YET = "not refunded yet at Alipay: retry with the same out_request_no"
_PAGE_METHODS = {"page": ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
                 "wap": ("alipay.trade.wap.pay", "QUICK_WAP_WAY")}


class UnsupportedCurrency(GatewayUnsupported):
    """Alipay takes CNY only."""


class CheckoutRefused(gateway_errors.CheckoutRefused):
    """Alipay definitely refused to open the trade (e.g. ACQ.TRADE_HAS_SUCCESS, ACQ.TRADE_HAS_CLOSE)."""


class AlipayConfig(BaseModel):
    """What the merchant configures for 支付宝. Keys: PEM or the bare base64 Alipay's tools print."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    app_id: str = Field(pattern=r"^[0-9]{8,32}$")
    merchant_private_key: SecretStr  # 应用私钥, RSA 2048
    alipay_public_key: str  # 支付宝公钥 (not the application public key)
    gateway_url: str = PRODUCTION_GATEWAY_URL
    seller_id: str | None = Field(default=None, pattern=r"^2088[0-9]{12}$")  # the merchant's own PID
    # Alipay re-sends for ~25 hours with the same notify_time; older than this is a replay.
    notify_max_age_seconds: int = Field(default=2 * 86400, ge=60)
    clock_skew_seconds: int = Field(default=300, ge=0, le=3600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("merchant_private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        load_private_key(value.get_secret_value())
        return value

    @field_validator("alipay_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        load_public_key(value)
        return value

    @field_validator("gateway_url")
    @classmethod
    def _gateway_url_is_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("gateway_url must be an http(s) URL without query, e.g. " + PRODUCTION_GATEWAY_URL)
        return value


def _detail(content: Mapping[str, Any]) -> str:
    code = content.get("sub_code") or content.get("code") or "?"
    return f"{code}: {content.get('sub_msg') or content.get('msg') or ''}".strip()


class AlipayGateway(PaymentGateway):
    name = "alipay"
    title, title_en = "支付宝", "Alipay"
    resends_processing_refunds = True  # a refund the query does not show yet is retried with the same number

    def simulated_scan_url(self, qr_code: str) -> str | None:
        # The in-repo simulator's precreate code is its own cashier URL; real Alipay codes are not web pages.
        if self._config.gateway_url == PRODUCTION_GATEWAY_URL or not qr_code.startswith(("http://", "https://")):
            return None
        return qr_code

    def __init__(self, config: AlipayConfig, *, http: httpx.AsyncClient) -> None:
        self._config = config
        self._private_key = load_private_key(config.merchant_private_key.get_secret_value())
        self._alipay_key = load_public_key(config.alipay_public_key)
        self._http = http

    # ------------------------------------------------------------ requests

    def _signed(self, method: str, biz: Mapping[str, object], *, notify_url: str | None = None,
                return_url: str | None = None) -> dict[str, str]:
        params = {
            "app_id": self._config.app_id, "method": method, "format": "JSON", "charset": "utf-8",
            "sign_type": "RSA2", "timestamp": format_time(dt.datetime.now(dt.UTC)), "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        params["sign"] = sign_params(params, self._private_key)
        return params

    async def _call(self, method: str, biz: Mapping[str, object], *, notify_url: str | None = None) -> dict[str, Any]:
        """One signed API call; returns the verified `..._response` object. Raises GatewayUnavailable."""
        params = self._signed(method, biz, notify_url=notify_url)
        try:
            response = await self._http.post(
                self._config.gateway_url, content=urlencode(params).encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=self._config.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"alipay {method}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise GatewayUnavailable(f"alipay {method}: HTTP {response.status_code}")
        return self._verified_answer(method, response.content)

    def _verified_answer(self, method: str, body: bytes) -> dict[str, Any]:
        try:
            members = response_sign_source(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise GatewayUnavailable(f"alipay {method}: the answer is not the expected JSON ({exc})") from None
        raw = members.get(method.replace(".", "_") + "_response") or members.get("error_response")
        if raw is None:
            raise GatewayUnavailable(f"alipay {method}: the answer has no {method.replace('.', '_')}_response")
        try:
            content = json.loads(raw)
            sign = json.loads(members["sign"]) if "sign" in members else None
        except ValueError:
            raise GatewayUnavailable(f"alipay {method}: the answer is not the expected JSON") from None
        if not isinstance(content, dict):
            raise GatewayUnavailable(f"alipay {method}: the answer is not an object")
        if not isinstance(sign, str) or not sign:
            # Alipay leaves some gateway-level errors unsigned; an unsigned answer proves nothing either way.
            raise GatewayUnavailable(f"alipay {method}: unsigned answer ({_detail(content)})")
        # Alipay's SDKs also accept a signature over the text with JSON's optional `\/` escapes undone.
        if not (verify_text(raw, sign, self._alipay_key)
                or ("\\/" in raw and verify_text(raw.replace("\\/", "/"), sign, self._alipay_key))):
            raise GatewayUnavailable(f"alipay {method}: the answer's signature does not verify")
        if content.get("code") == "20000" or content.get("sub_code") in _RETRY_SUB_CODES:
            raise GatewayUnavailable(f"alipay {method}: busy, try again ({_detail(content)})")
        return content

    # ------------------------------------------------------------ checkout

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.currency != "CNY":
            raise UnsupportedCurrency(f"支付宝 takes CNY only, not {request.currency}", currency=request.currency)
        try:
            total = format_yuan(request.amount_cents)
        except ValueError as exc:
            raise UnsupportedCurrency(str(exc), currency=request.currency) from None
        biz: dict[str, object] = {"out_trade_no": request.payment_no, "total_amount": total,
                                  "subject": clean_subject(request.subject)}
        if request.expires_at is not None:
            biz["time_expire"] = format_time(request.expires_at)
        if request.mode == "qr":
            content = await self._call("alipay.trade.precreate", biz, notify_url=request.notify_url)
            if content.get("code") != "10000":
                raise CheckoutRefused(f"支付宝 refused the checkout: {_detail(content)}")
            qr_code = content.get("qr_code")
            if content.get("out_trade_no") != request.payment_no or not isinstance(qr_code, str) or not qr_code:
                raise GatewayUnavailable("alipay precreate: the answer lacks this trade's qr_code")
            return Checkout(qr_code=qr_code)
        method, product_code = _PAGE_METHODS[request.mode]
        biz["product_code"] = product_code
        if request.mode == "wap":
            biz["quit_url"] = request.return_url  # where the buyer lands on "cancel" in the mobile cashier
        params = self._signed(method, biz, notify_url=request.notify_url, return_url=request.return_url)
        return Checkout(cashier_url=f"{self._config.gateway_url}?{urlencode(params)}")

    # ------------------------------------------------------------ notifications

    def verify_notification(
        self, *, headers: Mapping[str, str], body: bytes, now: dt.datetime
    ) -> PaymentNotification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                              max_num_fields=64)
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("malformed notification body") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotificationRejected("repeated parameter in notification")
        missing = [name for name in _NOTIFY_REQUIRED if not params.get(name)]
        if missing:
            raise NotificationRejected(f"notification lacks {', '.join(missing)}")
        if params["sign_type"] != "RSA2":
            raise NotificationRejected(f"unsupported sign_type {params['sign_type'][:20]!r}")
        if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
            raise NotificationRejected("notification charset is not utf-8")
        if not verify_params(params, self._alipay_key, notification=True):
            raise NotificationRejected("bad signature")
        # Authentic from here on; the checks below stop a genuine notice meant for another app or seller.
        if params["app_id"] != self._config.app_id:
            raise NotificationRejected(f"notification is for app_id {params['app_id'][:32]}, not ours")
        if self._config.seller_id and params.get("seller_id") != self._config.seller_id:
            raise NotificationRejected("notification is for another seller_id")
        if params["notify_type"] != "trade_status_sync":
            raise NotificationRejected(f"unexpected notify_type {params['notify_type'][:40]!r}")
        try:
            sent_at = parse_time(params["notify_time"])
            amount = parse_yuan(params["total_amount"])
            paid_at = parse_time(params["gmt_payment"]) if params.get("gmt_payment") else None
        except ValueError as exc:
            raise NotificationRejected(str(exc)) from None
        age = (now - sent_at).total_seconds()
        if age > self._config.notify_max_age_seconds or -age > self._config.clock_skew_seconds:
            raise NotificationRejected("notify_time outside the accepted window (stale, replayed or future)")
        state = _TRADE_STATES.get(params["trade_status"])
        if state is None:
            raise NotificationRejected(f"unknown trade_status {params['trade_status'][:40]!r}")
        return PaymentNotification(
            payment_no=params["out_trade_no"], gateway_trade_no=params["trade_no"], amount_cents=amount,
            currency="CNY", succeeded=state == "paid", paid_at=paid_at,
            payer_account=payer_account_of(params.get("buyer_id") or params.get("buyer_open_id")),
        )

    def acknowledge(self) -> GatewayReply:
        return GatewayReply(200, "text/plain", "success")

    def refuse(self, reason: str) -> GatewayReply:
        # Alipay only looks for `success`; the reason goes to our log, not to whoever sent the notice.
        return GatewayReply(400, "text/plain", "fail")

    # ------------------------------------------------------------ query and refunds

    async def query_trade(self, payment_no: str, *, gateway_session_id: str | None = None) -> TradeQuery:
        content = await self._call("alipay.trade.query", {"out_trade_no": payment_no})
        if content.get("code") != "10000":
            if content.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return TradeQuery(payment_no=payment_no, state="not_found")
            raise GatewayUnavailable(f"alipay trade query refused: {_detail(content)}")
        if content.get("out_trade_no") != payment_no:
            raise GatewayUnavailable("alipay trade query answered about another trade")
        state = _TRADE_STATES.get(str(content.get("trade_status")))
        trade_no = content.get("trade_no")
        if state is None or not isinstance(trade_no, str) or not trade_no:
            raise GatewayUnavailable(f"alipay trade query: unexpected trade_status {content.get('trade_status')!r}")
        if state != "paid":
            return TradeQuery(payment_no=payment_no, state=state, gateway_trade_no=trade_no)  # type: ignore[arg-type]
        try:
            amount = parse_yuan(str(content.get("total_amount")))
            paid_at = parse_time(content["send_pay_date"]) if content.get("send_pay_date") else None
        except (TypeError, ValueError) as exc:
            raise GatewayUnavailable(f"alipay trade query: {exc}") from None
        return TradeQuery(payment_no=payment_no, state="paid", gateway_trade_no=trade_no, amount_cents=amount,
                          currency="CNY", paid_at=paid_at,
                          payer_account=payer_account_of(content.get("buyer_user_id") or content.get("buyer_open_id")))

    async def refund(self, request: RefundRequest) -> RefundResult:
        def refused(detail: str) -> RefundResult:
            return RefundResult(refund_no=request.refund_no, state="failed", amount_cents=request.amount_cents,
                                detail=detail)

        if request.currency != "CNY":
            return refused(f"支付宝 refunds CNY only, not {request.currency}")
        try:
            amount = format_yuan(request.amount_cents)
        except ValueError as exc:
            return refused(str(exc))
        content = await self._call("alipay.trade.refund", {
            "out_trade_no": request.payment_no, "out_request_no": request.refund_no, "refund_amount": amount,
            "refund_reason": clean_subject(request.reason)})
        if content.get("code") != "10000":
            return refused(_detail(content))
        if content.get("out_trade_no") != request.payment_no:
            raise GatewayUnavailable("alipay refund answered about another trade")
        if content.get("fund_change") == "Y":
            return RefundResult(refund_no=request.refund_no, state="succeeded", amount_cents=request.amount_cents)
        # fund_change=N: a repeat of this refund number, or money not moved yet. Alipay: ask the refund query.
        queried = await self.query_refund(refund_no=request.refund_no, payment_no=request.payment_no)
        if queried.state == "succeeded" and queried.amount_cents != request.amount_cents:
            return refused(f"refund {request.refund_no} already exists for {queried.amount_cents} fen")
        if queried.state == "succeeded":
            return queried
        return RefundResult(refund_no=request.refund_no, state="processing", amount_cents=request.amount_cents,
                            detail=f"accepted by Alipay without a fund change yet; {queried.detail}"[:200])

    async def query_refund(self, *, refund_no: str, payment_no: str) -> RefundResult:
        content = await self._call("alipay.trade.fastpay.refund.query", {
            "out_trade_no": payment_no, "out_request_no": refund_no, "query_options": ["gmt_refund_pay"]})
        if content.get("code") != "10000":
            return RefundResult(refund_no=refund_no, state="failed", amount_cents=0, detail=_detail(content))
        if not content.get("refund_amount"):
            # Alipay's rule: no refund data in a successful answer means "not refunded (yet)": retry the refund
            # with the same out_request_no. Not a refusal: Alipay may still be processing it and pay it later.
            return RefundResult(refund_no=refund_no, state="processing", amount_cents=0,
                                detail=_NOT_REFUNDED_YET)
        if content.get("out_request_no") != refund_no or content.get("out_trade_no") != payment_no:
            raise GatewayUnavailable("alipay refund query answered about another refund")
        try:
            amount = parse_yuan(str(content["refund_amount"]))
        except ValueError as exc:
            raise GatewayUnavailable(f"alipay refund query: {exc}") from None
        if content.get("refund_status") in (None, "", "REFUND_SUCCESS"):
            return RefundResult(refund_no=refund_no, state="succeeded", amount_cents=amount)
        return RefundResult(refund_no=refund_no, state="processing", amount_cents=amount,
                            detail=str(content.get("refund_status"))[:100])
